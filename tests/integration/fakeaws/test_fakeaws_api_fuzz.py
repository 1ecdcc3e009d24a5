"""Fuzzing the ELBv2 API of a real fake AWS server (the session's subprocess).

Requests: actions from botocore's ELBv2 model (except Delete*, so the world under test stays)
with parameters built from the model's input shapes, some right and many wrong (wrong
types, out-of-range numbers, missing required members, unknown extra members, random text),
unknown actions, and random bytes as the body or the query string; POST forms and GET
query strings. Properties, per request:

- no 5xx except AWS's own (InternalFailure / ServiceUnavailable as an AWS XML ErrorResponse);
- every 4xx is a parseable AWS XML ErrorResponse, every 2xx parseable XML;
- a rejected call changes nothing (load balancers, target groups and their attributes,
  listeners, registered targets: test_fakeaws_api_errors.snapshot);
- afterwards the engine is healthy and still answers DescribeTargetHealth.

Deterministic for CI: derandomized, no example database; sized to run in well under 60 s.
"""

from __future__ import annotations

import string
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testbed.fakeaws.api import validation
from tests.integration.fakeaws.conftest import free_port
from tests.integration.fakeaws.test_fakeaws_api_errors import (
    NS,
    SIGNED,
    VERSION,
    Answer,
    RawApi,
    World,
    make_world,
    snapshot,
)

pytestmark = pytest.mark.integration

MODEL = validation.service_model()
# Delete* would remove the world the other examples aim at; deletes are simple in moto and
# covered by the scenario and API tests.
FUZZ_OPS = sorted(op for op in MODEL["operations"] if not op.startswith("Delete"))
# AWS's own server-side faults: the only 5xx an answer may be.
AWS_5XX = {"InternalFailure", "ServiceUnavailable"}
MAX_EXAMPLES = 500
FUZZ = settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])

JUNK = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "NaN", "-1", "0", "1e9", "0.5", "9" * 25, "true", "null", "::1",
                     "8.8.8.8", "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/1"]),
    st.integers(-100_000, 100_000).map(str),
)


def _scalar(draw: Any, world: World, ports: list[int], name: str, shape: dict[str, Any]
            ) -> str:
    if draw(st.integers(0, 3)) == 0:
        return str(draw(JUNK))
    kind = shape["type"]
    if name.endswith("Arn") or name.endswith("Arns"):
        return str(draw(st.sampled_from([world.lb_arn, world.tg_arn, world.tg2_arn])))
    if name == "Port":
        # Valid values only from ports reserved for this test: an accepted CreateListener
        # binds a real socket.
        return str(draw(st.sampled_from([*ports, 0, 65536, 70000])))
    if name in ("VpcId",):
        return world.vpc
    if name in ("Subnets", "SubnetId"):
        return str(draw(st.sampled_from(world.subnets)))
    if "enum" in shape:
        return str(draw(st.sampled_from(shape["enum"])))
    if kind in ("integer", "long"):
        lo, hi = shape.get("min", -5), shape.get("max", 1000)
        return str(draw(st.integers(lo - 1, hi + 1)))
    if kind == "boolean":
        return str(draw(st.sampled_from(["true", "false", "True", "maybe"])))
    if name == "Id":
        return str(draw(st.sampled_from(["10.0.1.7", "10.0.2.8", "2001:db8::5", "8.8.4.4",
                                         "i-0123456789abcdef0"])))
    return str(draw(st.text(alphabet=string.ascii_letters + string.digits + "-./_",
                            min_size=1, max_size=20)))


def _fill(draw: Any, world: World, ports: list[int], shape_name: str, key: str, name: str,
          out: dict[str, str], depth: int) -> None:
    shape = MODEL["shapes"][shape_name]
    kind = shape["type"]
    if kind == "structure":
        required = set(shape.get("required", ()))
        for member, spec in shape.get("members", {}).items():
            # Required members mostly present, optional ones sometimes: both kinds of
            # request (complete and incomplete) come up.
            if depth > 3 or not draw(st.integers(0, 9)) < (8 if member in required else 3):
                continue
            sub = f"{key}.{member}" if key else member
            _fill(draw, world, ports, spec["shape"], sub, member, out, depth + 1)
    elif kind == "list":
        for i in range(1, draw(st.integers(0, 2)) + 1):
            _fill(draw, world, ports, shape["member"]["shape"], f"{key}.member.{i}", name,
                  out, depth + 1)
    elif kind == "map":
        out[f"{key}.entry.1.key"] = "k"
        out[f"{key}.entry.1.value"] = str(draw(JUNK))
    else:
        out[key] = _scalar(draw, world, ports, name, shape)


@st.composite
def requests(draw: Any, world: World, ports: list[int]) -> tuple[str, dict[str, str] | bytes]:
    """(method, params or raw bytes) of one request."""
    kind = draw(st.sampled_from(["model"] * 6 + ["unknown", "bytes", "query"]))
    if kind == "bytes":
        return "POST", draw(st.binary(max_size=200))
    if kind == "query":
        return "GET", draw(st.text(max_size=60)).encode("utf-8", "surrogatepass")
    if kind == "unknown":
        action = draw(st.text(alphabet=string.ascii_letters, min_size=1, max_size=24))
        params: dict[str, str] = {"Action": action, "Version": VERSION}
    else:
        action = draw(st.sampled_from(FUZZ_OPS))
        params = {"Action": action, "Version": VERSION}
        shape = MODEL["operations"][action].get("input", {}).get("shape")
        if shape:
            _fill(draw, world, ports, shape, "", "", params, 0)
    for _ in range(draw(st.integers(0, 1))):  # an extra member the model does not know
        params[draw(st.text(alphabet=string.ascii_letters + ".", min_size=1,
                            max_size=15))] = str(draw(JUNK))
    return draw(st.sampled_from(["POST", "GET"])), params


def send(api: RawApi, method: str, req: dict[str, str] | bytes) -> Answer:
    if isinstance(req, bytes):
        if method == "GET":
            return api.send("GET", "/?" + quote(req, safe="=&"), None, SIGNED)
        return api.send("POST", "/", req, {**SIGNED, "Content-Type":
                                           "application/x-www-form-urlencoded"})
    return api.get(req) if method == "GET" else api.post(req)


def check_shape(answer: Answer, what: object) -> None:
    if answer.status < 300:
        ET.fromstring(answer.body)  # parseable XML
        return
    assert 400 <= answer.status < 600, (what, answer.status)
    kind, code, message = answer.error()  # AWS XML ErrorResponse, or fails
    if answer.status >= 500:
        assert code in AWS_5XX and kind == "Receiver", (what, answer.status, code, message)
    else:
        assert kind == "Sender", (what, code)


def test_fuzzed_requests_get_aws_answers_and_rejections_change_nothing(fakeaws: Any) -> None:
    world = make_world(fakeaws, prefix="fz")
    ports = [free_port(), free_port()]
    state = {"baseline": snapshot(world.api)}
    seen: dict[int, int] = {}

    @FUZZ
    @given(req=requests(world, ports))
    def one(req: tuple[str, dict[str, str] | bytes]) -> None:
        method, params = req
        answer = send(world.api, method, params)
        seen[answer.status] = seen.get(answer.status, 0) + 1
        check_shape(answer, req)
        after = snapshot(world.api)
        if answer.status >= 400:
            assert after == state["baseline"], ("rejected call changed state", req)
        state["baseline"] = after  # an accepted call may change state

    one()
    # The fuzzer reached both sides: plenty rejected, some accepted.
    assert seen.get(400, 0) > MAX_EXAMPLES // 3 and seen.get(200, 0) > 5, seen
    assert fakeaws.get("/_testbed/healthz")["ok"] is True
    # The engine answers for the world's group (its targets may have been deregistered by
    # an accepted call, so only the answer itself is checked).
    health = world.api.ok("DescribeTargetHealth", TargetGroupArn=world.tg_arn)
    assert health.tag == f"{NS}DescribeTargetHealthResponse"
