"""Pure helpers: validation, matcher, HTTP/1.1 heads, event log ring buffer."""

from __future__ import annotations

import asyncio

import pytest

from testbed.fakeaws.api.errors import AwsError, target_health_xml
from testbed.fakeaws.api.validation import (
    health_check_params,
    members,
    parse_targets,
    tg_attributes,
)
from testbed.fakeaws.engine.dataplane.http1 import (
    BadMessage,
    Head,
    HttpError,
    RequestReader,
    ResponseReader,
    error_response,
)
from testbed.fakeaws.engine.events import EventLog
from testbed.fakeaws.engine.health import parse_matcher


def test_members_and_targets() -> None:
    form = {"Targets.member.2.Id": "10.0.0.2", "Targets.member.1.Id": "10.0.0.1",
            "Targets.member.1.Port": "8080"}
    assert members(form, "Targets") == [{"Id": "10.0.0.1", "Port": "8080"}, {"Id": "10.0.0.2"}]
    assert parse_targets(form, "ip", 80) == [("10.0.0.1", 8080, None), ("10.0.0.2", 80, None)]


@pytest.mark.parametrize("form", [
    {"Targets.member.1.Id": "10.0.0.256"},
    {"Targets.member.1.Id": "10.0.0.1", "Targets.member.1.Port": "0"},
    {"Targets.member.1.Id": "10.0.0.1", "Targets.member.1.Port": "65536"},
    {},
])
def test_bad_targets(form: dict[str, str]) -> None:
    with pytest.raises(AwsError) as exc:
        parse_targets(form, "ip", 80)
    assert exc.value.code == "ValidationError"


def test_health_check_ranges_and_fast_mode() -> None:
    ok = {"HealthCheckIntervalSeconds": "5", "HealthCheckTimeoutSeconds": "2",
          "HealthyThresholdCount": "2", "UnhealthyThresholdCount": "10"}
    assert health_check_params(ok, 5.0) == {"interval": 5, "timeout": 2}
    for bad in ({"HealthCheckIntervalSeconds": "4"}, {"HealthCheckIntervalSeconds": "301"},
                {"HealthCheckTimeoutSeconds": "1"}, {"HealthCheckTimeoutSeconds": "121"},
                {"HealthyThresholdCount": "1"}, {"UnhealthyThresholdCount": "11"},
                {"HealthCheckIntervalSeconds": "5", "HealthCheckTimeoutSeconds": "5"},
                {"HealthCheckIntervalSeconds": "0.5"}, {"Matcher.HttpCode": "600"}):
        with pytest.raises(AwsError):
            health_check_params(bad, 5.0)
    assert health_check_params({"HealthCheckIntervalSeconds": "0.5",
                                "HealthCheckTimeoutSeconds": "0.3"}, 0.5) == {
        "interval": 0.5, "timeout": 0.3}


def _attrs(**kv: str) -> dict[str, str]:
    form = {}
    for i, (k, v) in enumerate(kv.items(), 1):
        form[f"Attributes.member.{i}.Key"] = k.replace("__", ".")
        form[f"Attributes.member.{i}.Value"] = v
    return form


ROUND_ROBIN = {"load_balancing.algorithm.type": "round_robin",
               "slow_start.duration_seconds": "0", "stickiness.enabled": "false"}


def _code(form: dict[str, str], current: dict[str, str] = ROUND_ROBIN) -> str:
    with pytest.raises(AwsError) as exc:
        tg_attributes(form, current)
    return exc.value.code


def test_tg_attributes() -> None:
    assert tg_attributes(_attrs(deregistration_delay__timeout_seconds="3600"), ROUND_ROBIN)
    assert tg_attributes(_attrs(slow_start__duration_seconds="0"), ROUND_ROBIN)
    for k, v in (("deregistration_delay__timeout_seconds", "3601"),
                 ("slow_start__duration_seconds", "29"), ("slow_start__duration_seconds", "901"),
                 ("load_balancing__algorithm__type", "random"), ("bogus", "1")):
        assert _code(_attrs(**{k: v})) == "ValidationError", (k, v)
    slow = {**ROUND_ROBIN, "slow_start.duration_seconds": "30"}
    assert _code(_attrs(load_balancing__algorithm__type="least_outstanding_requests"),
                 slow) == "InvalidConfigurationRequest"


def test_weighted_random_and_anomaly_mitigation() -> None:
    wr = _attrs(load_balancing__algorithm__type="weighted_random")
    assert tg_attributes(wr, ROUND_ROBIN) == {"load_balancing.algorithm.type": "weighted_random"}
    off = _attrs(load_balancing__algorithm__type="weighted_random",
                 load_balancing__algorithm__anomaly_mitigation="off")
    assert tg_attributes(off, ROUND_ROBIN)["load_balancing.algorithm.anomaly_mitigation"] == "off"
    # The fake does not model anomaly mitigation: refused, not silently ignored.
    on = _attrs(load_balancing__algorithm__type="weighted_random",
                load_balancing__algorithm__anomaly_mitigation="on")
    with pytest.raises(AwsError, match="does not model") as exc:
        tg_attributes(on, ROUND_ROBIN)
    assert exc.value.code == "ValidationError"
    assert _code(_attrs(load_balancing__algorithm__anomaly_mitigation="maybe")) == \
        "ValidationError"
    # AWS: weighted random combines neither with slow start nor with sticky sessions, in
    # whichever order they are set.
    slow = {**ROUND_ROBIN, "slow_start.duration_seconds": "30"}
    assert _code(wr, slow) == "InvalidConfigurationRequest"
    on_wr = {**ROUND_ROBIN, "load_balancing.algorithm.type": "weighted_random"}
    assert _code(_attrs(slow_start__duration_seconds="60"), on_wr) == \
        "InvalidConfigurationRequest"
    assert _code(_attrs(stickiness__enabled="true"), on_wr) == "InvalidConfigurationRequest"


def test_matcher() -> None:
    m = parse_matcher("200,202,300-399")
    assert [m(c) for c in (200, 201, 202, 302, 400)] == [True, False, True, True, False]


def test_target_health_xml_healthy_has_no_reason() -> None:
    xml = target_health_xml([{"id": "10.0.0.1", "port": 80, "hc_port": "80", "az": None,
                              "state": "healthy", "reason": None, "description": None}])
    assert b"<State>healthy</State>" in xml and b"<Reason>" not in xml


def _requests(data: bytes) -> list[tuple[Head, bytes]] | HttpError:
    async def run() -> list[tuple[Head, bytes]]:
        r = asyncio.StreamReader()
        r.feed_data(data)
        r.feed_eof()
        rr, out = RequestReader(r), []
        while (msg := await rr.next()) is not None:
            out.append(msg)
        return out

    try:
        return asyncio.run(run())
    except HttpError as err:
        return err


def test_request_reader_heads_bodies_pipelining() -> None:
    out = _requests(b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: te"
                    b"\r\nX-Forwarded-For: 1.1.1.1\r\nTE: trailers\r\n\r\nabc"
                    b"POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
                    b"\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n")
    assert not isinstance(out, HttpError)
    (a, body_a), (b, body_b) = out
    assert a.first[:2] == [b"GET", b"/a"] and a.length == 3 and not a.close
    assert body_a == b"abc" and a.xff == b"1.1.1.1" and a.block == b"Host: x\r\n"
    assert b.chunked and b.close and body_b == b"abcde"
    http10 = _requests(b"GET / HTTP/1.0\r\n\r\n")
    assert not isinstance(http10, HttpError) and http10[0][0].close


@pytest.mark.parametrize(("data", "status", "reason"), [
    (b"garbage\r\n\r\n", 400, "bad_request"),
    (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400,
     "bad_request"),
    (b"GET / HTTP/1.1\nHost: x\n\n", 400, "bad_request"),
    (b"GET / HTTP/1.1\r\nX: " + b"a" * 17000 + b"\r\n\r\n", 400, "header_too_large"),
    (b"GET /" + b"a" * 17000 + b" HTTP/1.1\r\n\r\n", 414, "uri_too_long"),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: br\r\n\r\n", 501,
     "unsupported_transfer_encoding"),
])
def test_request_reader_refuses(data: bytes, status: int, reason: str) -> None:
    err = _requests(data)
    assert isinstance(err, HttpError) and (err.status, err.reason) == (status, reason)


def test_request_reader_answers_good_requests_before_a_bad_one() -> None:
    async def run() -> tuple[bytes, HttpError | None]:
        r = asyncio.StreamReader()
        r.feed_data(b"GET /ok HTTP/1.1\r\n\r\nGET /bad HTTP/1.1\r\nContent-Length: x\r\n\r\n")
        rr = RequestReader(r)
        first = await rr.next()
        assert first is not None
        try:
            await rr.next()
        except HttpError as err:
            return first[0].first[1], err
        return first[0].first[1], None

    path, err = asyncio.run(run())
    assert path == b"/ok" and err is not None and err.status == 400


def test_response_reader_interim_and_chunked() -> None:
    async def run() -> tuple[list[int], bytes, bool]:
        r = asyncio.StreamReader()
        r.feed_data(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: x\r\n\r\n"
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
                    b"\r\n3\r\nabc\r\n0\r\n\r\n")
        rr = ResponseReader(r)
        rr.start(head_request=False)
        codes, body = [], b""
        while True:
            h = await rr.head()
            codes.append(h.status)
            if h.status >= 200:
                break
        while (part := await rr.body()) is not None:
            body += part
        return codes, body, h.chunked and h.close

    assert asyncio.run(run()) == ([100, 103, 200], b"abc", True)


def test_response_reader_head_request_and_errors() -> None:
    async def run() -> tuple[bytes | None, int]:
        r = asyncio.StreamReader()
        r.feed_data(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
        rr = ResponseReader(r)
        rr.start(head_request=True)
        h = await rr.head()
        assert h.length == 5
        nothing = await rr.body()
        rr.start(head_request=False)  # the next response on the connection parses cleanly
        r.feed_data(b"HTTP/1.1 204 No Content\r\n\r\n")
        return nothing, (await rr.head()).status

    assert asyncio.run(run()) == (None, 204)

    async def bad() -> None:
        r = asyncio.StreamReader()
        r.feed_data(b"HTTP/1.1 2x0 OK\r\n\r\n")
        rr = ResponseReader(r)
        rr.start(head_request=False)
        await rr.head()

    with pytest.raises(BadMessage):
        asyncio.run(bad())


def test_error_page() -> None:
    page = error_response(502, "target_refused")
    assert page.startswith(b"HTTP/1.1 502 Bad Gateway") and b"x-testbed-elb-error: " \
        b"target_refused" in page
    assert error_response(463, "xff_too_many", close=True).startswith(b"HTTP/1.1 463 \r\n")


def test_event_log_seq_and_bound() -> None:
    log = EventLog(maxlen=5)
    for i in range(8):
        log.emit("x", i=i)
    evs, nxt = log.since(0)
    assert [e["seq"] for e in evs] == [4, 5, 6, 7, 8] and nxt == 8
    evs, nxt = log.since(6)
    assert [e["seq"] for e in evs] == [7, 8]
    assert log.since(8) == ([], 8)
    log.clear()
    assert log.emit("y")["seq"] == 9
