"""Bad ELBv2 input gets AWS's answer: an XML ErrorResponse with AWS's code and status (never
an HTML page or a traceback), and a rejected call changes nothing.

One row per case of issue 13 item 3; rules and sources: docs/fakeaws.md "Errors and
validation". The raw-request helpers here are shared with test_fakeaws_api_fuzz.py.
"""

from __future__ import annotations

import http.client
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

pytestmark = pytest.mark.integration

NS = "{http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/}"
VERSION = "2015-12-01"
# What boto3 sends (moto does not check signatures; the credential scope names the service).
SIGNED = {"Authorization": "AWS4-HMAC-SHA256 Credential=testing/20150830/us-east-1/"
                           "elasticloadbalancing/aws4_request, SignedHeaders=host, Signature=0"}


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes

    def xml(self) -> ET.Element:
        return ET.fromstring(self.body)

    def error(self) -> tuple[str, str, str]:
        """(Type, Code, Message) of an AWS XML ErrorResponse; fails on any other shape."""
        root = self.xml()
        assert root.tag == f"{NS}ErrorResponse", self.body[:300]
        err = root.find(f"{NS}Error")
        assert err is not None, self.body[:300]
        kind, code, msg = (err.findtext(f"{NS}{t}") for t in ("Type", "Code", "Message"))
        assert kind in ("Sender", "Receiver") and code and msg is not None, self.body[:300]
        assert root.findtext(f"{NS}RequestId"), self.body[:300]
        return kind, code, msg


class RawApi:
    """ELBv2 requests as bytes on the wire (what boto3 would refuse to send)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80

    def send(self, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> Answer:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return Answer(resp.status, resp.getheader("Content-Type") or "", resp.read())
        finally:
            conn.close()

    def post(self, params: dict[str, str] | bytes, signed: bool = True) -> Answer:
        body = params if isinstance(params, bytes) else urlencode(params).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                   **(SIGNED if signed else {})}
        return self.send("POST", "/", body, headers)

    def get(self, params: dict[str, str], signed: bool = True) -> Answer:
        return self.send("GET", "/?" + urlencode(params), None, SIGNED if signed else {})

    def call(self, action: str, **params: str) -> Answer:
        return self.post({"Action": action, "Version": VERSION, **params})

    def ok(self, action: str, **params: str) -> ET.Element:
        answer = self.call(action, **params)
        assert answer.status == 200, answer.body[:500]
        return answer.xml()


def texts(root: ET.Element, tag: str) -> list[str]:
    return [e.text or "" for e in root.iter(f"{NS}{tag}")]


def canonical(root: ET.Element) -> bytes:
    """An answer without its ResponseMetadata (the RequestId differs per call)."""
    for meta in root.findall(f"{NS}ResponseMetadata"):
        root.remove(meta)
    return ET.tostring(root)


def snapshot(api: RawApi) -> dict[str, Any]:
    """Everything a rejected call must leave alone: load balancers, target groups (and
    their attributes), listeners and their rules, and the registered targets (Id, Port) of
    every group. Target health states move on with health checks, so only the target set
    is compared."""
    lbs = api.ok("DescribeLoadBalancers")
    tgs = api.ok("DescribeTargetGroups")
    snap: dict[str, Any] = {
        "lbs": canonical(lbs),
        "tgs": canonical(tgs),
    }
    for lb in texts(lbs, "LoadBalancerArn"):
        listeners = api.ok("DescribeListeners", LoadBalancerArn=lb)
        for listener in texts(listeners, "ListenerArn"):
            snap[f"rules {listener}"] = canonical(api.ok("DescribeRules",
                                                         ListenerArn=listener))
        snap[f"listeners {lb}"] = canonical(listeners)
    for tg in sorted(set(texts(tgs, "TargetGroupArn"))):
        health = api.ok("DescribeTargetHealth", TargetGroupArn=tg)
        snap[f"targets {tg}"] = sorted(zip(texts(health, "Id"), texts(health, "Port"),
                                           strict=True))
        attrs = api.ok("DescribeTargetGroupAttributes", TargetGroupArn=tg)
        snap[f"attributes {tg}"] = sorted(zip(texts(attrs, "Key"), texts(attrs, "Value"),
                                              strict=True))
    return snap


@dataclass
class World:
    api: RawApi
    vpc: str
    subnets: list[str]
    lb_arn: str
    tg_arn: str
    tg2_arn: str


def make_world(fakeaws: Any, prefix: str = "err") -> World:
    """A VPC (10.0.0.0/16) with two subnets in two AZs, an ALB, two ip target groups (no
    listener: no health checks run, so nothing changes by itself) and one target."""
    api = RawApi(fakeaws.url)
    ec2 = fakeaws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24",
                                 AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
               for i, z in ((1, "a"), (2, "b"))]
    lb = api.ok("CreateLoadBalancer", Name=f"{prefix}-lb", **{"Subnets.member.1": subnets[0],
                                                              "Subnets.member.2": subnets[1]})
    tgs = [texts(api.ok("CreateTargetGroup", Name=f"{prefix}-tg{i}", Protocol="HTTP",
                        Port="80", VpcId=vpc, TargetType="ip",
                        HealthCheckIntervalSeconds="0.5"), "TargetGroupArn")[0]
           for i in (1, 2)]
    api.ok("RegisterTargets", TargetGroupArn=tgs[0], **{"Targets.member.1.Id": "10.0.1.5",
                                                        "Targets.member.1.Port": "80"})
    return World(api, vpc, subnets, texts(lb, "LoadBalancerArn")[0], tgs[0], tgs[1])


@pytest.fixture()
def world(fakeaws: Any) -> World:
    return make_world(fakeaws)


def forward(w: World, weight: str) -> dict[str, str]:
    """CreateListener params: a weighted forward to both groups."""
    lead = "DefaultActions.member.1.ForwardConfig.TargetGroups.member"
    return {"LoadBalancerArn": w.lb_arn, "Protocol": "HTTP", "Port": "8080",
            "DefaultActions.member.1.Type": "forward",
            f"{lead}.1.TargetGroupArn": w.tg_arn, f"{lead}.1.Weight": weight,
            f"{lead}.2.TargetGroupArn": w.tg2_arn, f"{lead}.2.Weight": "1"}


def tg_params(w: World, name: str = "new-tg", **extra: str) -> dict[str, str]:
    return {"Name": name, "Protocol": "HTTP", "Port": "80", "VpcId": w.vpc,
            "TargetType": "ip", **extra}


def attr(key: str, value: str) -> dict[str, str]:
    return {"Attributes.member.1.Key": key, "Attributes.member.1.Value": value}


# (case id, builds the request from the world, AWS code, message fragment or None). Each is
# sent signed as a POST form; all must answer 400 and change nothing.
REJECTED: list[tuple[str, Any, str, str | None]] = [
    ("unknown action", lambda w: {"Action": "DescribeUnicorns", "Version": VERSION},
     "InvalidAction", "DescribeUnicorns"),
    ("random bytes body", lambda w: b"\x00\xff\xfe garbage \x9c&&==%zz%",
     "MissingAction", None),
    ("no action", lambda w: {"Version": VERSION, "Name": "x"}, "MissingAction", None),
    ("CreateTargetGroup without Name",
     lambda w: {"Action": "CreateTargetGroup", "Version": VERSION, "Protocol": "HTTP",
                "Port": "80", "VpcId": w.vpc},
     "ValidationError", "Value null at 'name'"),
    ("trust store action not modelled",
     lambda w: {"Action": "CreateTrustStore", "Version": VERSION, "Name": "ts",
                "CaCertificatesBundleS3Bucket": "b", "CaCertificatesBundleS3Key": "k"},
     "InvalidAction", "not modelled"),
    ("named trust store", lambda w: {"Action": "DescribeTrustStores", "Version": VERSION,
                                     "Names.member.1": "ts"},
     "TrustStoreNotFound", None),
    ("malformed target group ARN",
     lambda w: {"Action": "DescribeTargetHealth", "Version": VERSION, "TargetGroupArn": "x"},
     "ValidationError", "'x' is not a valid target group ARN"),
    ("malformed load balancer ARN",
     lambda w: {"Action": "DescribeListeners", "Version": VERSION, "LoadBalancerArn": "lb"},
     "ValidationError", "'lb' is not a valid load balancer ARN"),
    ("deregistration delay 3601",
     lambda w: {"Action": "ModifyTargetGroupAttributes", "Version": VERSION,
                "TargetGroupArn": w.tg_arn,
                **attr("deregistration_delay.timeout_seconds", "3601")},
     "ValidationError", "0-3600"),
    ("IPv6 target in an ipv4 group",
     lambda w: {"Action": "RegisterTargets", "Version": VERSION, "TargetGroupArn": w.tg_arn,
                "Targets.member.1.Id": "2001:db8::1", "Targets.member.1.Port": "80"},
     "ValidationError", "not a valid IPv4 address"),
    ("public IP target",
     lambda w: {"Action": "RegisterTargets", "Version": VERSION, "TargetGroupArn": w.tg_arn,
                "Targets.member.1.Id": "8.8.8.8", "Targets.member.1.Port": "80"},
     "ValidationError", "publicly routable"),
    ("forward weight 1000",
     lambda w: {"Action": "CreateListener", "Version": VERSION, **forward(w, "1000")},
     "ValidationError", "less than or equal to 999"),
    ("forward weight -5",
     lambda w: {"Action": "CreateListener", "Version": VERSION, **forward(w, "-5")},
     "ValidationError", "greater than or equal to 0"),
    ("duplicate load balancer name, other settings",
     lambda w: {"Action": "CreateLoadBalancer", "Version": VERSION, "Name": "err-lb",
                "Scheme": "internal", "Subnets.member.1": w.subnets[0],
                "Subnets.member.2": w.subnets[1]},
     "DuplicateLoadBalancerName", None),
    ("one subnet for an ALB",
     lambda w: {"Action": "CreateLoadBalancer", "Version": VERSION, "Name": "one-subnet",
                "Subnets.member.1": w.subnets[0]},
     "ValidationError", "At least two subnets in two different Availability Zones"),
    ("TCP health check on an HTTP group",
     lambda w: {"Action": "CreateTargetGroup", "Version": VERSION,
                **tg_params(w, HealthCheckProtocol="TCP")},
     "ValidationError", "TCP"),
    ("health check path without /",
     lambda w: {"Action": "CreateTargetGroup", "Version": VERSION,
                **tg_params(w, HealthCheckPath="health")},
     "ValidationError", "must begin with a '/'"),
    ("TCP health check via ModifyTargetGroup",
     lambda w: {"Action": "ModifyTargetGroup", "Version": VERSION,
                "TargetGroupArn": w.tg_arn, "HealthCheckProtocol": "TCP"},
     "ValidationError", "TCP"),
    ("stickiness.enabled=maybe",
     lambda w: {"Action": "ModifyTargetGroupAttributes", "Version": VERSION,
                "TargetGroupArn": w.tg_arn, **attr("stickiness.enabled", "maybe")},
     "ValidationError", "stickiness.enabled"),
    ("proxy_protocol_v2 on an ALB group",
     lambda w: {"Action": "ModifyTargetGroupAttributes", "Version": VERSION,
                "TargetGroupArn": w.tg_arn, **attr("proxy_protocol_v2.enabled", "true")},
     "ValidationError", "proxy_protocol_v2.enabled"),
    ("listener port 70000",
     lambda w: {"Action": "CreateListener", "Version": VERSION, **forward(w, "1"),
                "Port": "70000"},
     "ValidationError", "less than or equal to 65535"),
    ("listener port 0",
     lambda w: {"Action": "CreateListener", "Version": VERSION, **forward(w, "1"),
                "Port": "0"},
     "ValidationError", "greater than or equal to 1"),
    ("port not a number",
     lambda w: {"Action": "CreateListener", "Version": VERSION, **forward(w, "1"),
                "Port": "eighty"},
     "ValidationError", "Member must be a number"),
    ("same target group name, other settings",
     lambda w: {"Action": "CreateTargetGroup", "Version": VERSION,
                **tg_params(w, name="err-tg1"), "Port": "81"},
     "DuplicateTargetGroupName", None),
    # Found by the fuzz suite (moto crashed or stored garbage):
    ("paging marker never handed out",
     lambda w: {"Action": "DescribeLoadBalancers", "Version": VERSION, "Marker": "zz"},
     "ValidationError", "marker"),
    ("load balancer name with control characters",
     lambda w: {"Action": "CreateLoadBalancer", "Version": VERSION, "Name": "lb\x08",
                "Subnets.member.1": w.subnets[0], "Subnets.member.2": w.subnets[1]},
     "ValidationError", "Load balancer name"),
    ("attribute without a value",
     lambda w: {"Action": "ModifyLoadBalancerAttributes", "Version": VERSION,
                "LoadBalancerArn": w.lb_arn,
                "Attributes.member.1.Key": "idle_timeout.timeout_seconds"},
     "ValidationError", "Value null"),
    ("rule priority without a rule",
     lambda w: {"Action": "SetRulePriorities", "Version": VERSION,
                "RulePriorities.member.1.Priority": "3"},
     "ValidationError", "Value null"),
    ("health check interval below the server's minimum",
     lambda w: {"Action": "CreateTargetGroup", "Version": VERSION,
                **tg_params(w, HealthCheckIntervalSeconds="0.1")},
     "ValidationError", "healthCheckIntervalSeconds"),
]


@pytest.mark.parametrize(("case", "build", "code", "fragment"), REJECTED,
                         ids=[r[0] for r in REJECTED])
def test_rejected_with_aws_code_and_nothing_changes(world: World, case: str, build: Any,
                                                    code: str, fragment: str | None) -> None:
    before = snapshot(world.api)
    answer = world.api.post(build(world))
    assert answer.status == 400, (case, answer.status, answer.body[:300])
    assert answer.content_type.startswith("text/xml"), answer.content_type
    kind, got, message = answer.error()
    assert (kind, got) == ("Sender", code), (case, message)
    if fragment is not None:
        assert fragment in message, message
    assert snapshot(world.api) == before, case


def test_get_query_is_handled_like_post(world: World) -> None:
    """A GET query string goes the same way as a POST form: DescribeTargetHealth answers
    from the target store (it used to reach moto and list nothing), errors are XML too."""
    params = {"Action": "DescribeTargetHealth", "Version": VERSION,
              "TargetGroupArn": world.tg_arn}
    post, get = world.api.post(params), world.api.get(params)
    assert get.status == post.status == 200
    assert texts(get.xml(), "Id") == texts(post.xml(), "Id") == ["10.0.1.5"]
    # Unsigned, as a browser or curl would send it: still ELBv2 (Version=2015-12-01).
    unsigned = world.api.get(params, signed=False)
    assert unsigned.status == 200 and texts(unsigned.xml(), "Id") == ["10.0.1.5"]
    bad = world.api.get({"Action": "DescribeUnicorns", "Version": VERSION}, signed=False)
    assert bad.status == 400 and bad.error()[1] == "InvalidAction"


def test_describe_trust_stores_is_an_empty_account(world: World) -> None:
    root = world.api.ok("DescribeTrustStores")
    assert root.tag == f"{NS}DescribeTrustStoresResponse"
    stores = root.find(f"{NS}DescribeTrustStoresResult/{NS}TrustStores")
    assert stores is not None and list(stores) == []


def test_deregistration_delay_3600_is_stored_and_echoed(world: World) -> None:
    """moto refuses 3600 (it checks range(0, 3600)); the fake stores and echoes it."""
    answer = world.api.ok("ModifyTargetGroupAttributes", TargetGroupArn=world.tg_arn,
                          **attr("deregistration_delay.timeout_seconds", "3600"))
    assert dict(zip(texts(answer, "Key"), texts(answer, "Value"), strict=True)) == {
        "deregistration_delay.timeout_seconds": "3600"}
    stored = world.api.ok("DescribeTargetGroupAttributes", TargetGroupArn=world.tg_arn)
    assert dict(zip(texts(stored, "Key"), texts(stored, "Value"), strict=True))[
        "deregistration_delay.timeout_seconds"] == "3600"


def test_create_is_idempotent_for_the_same_settings(world: World) -> None:
    """Same name and settings: the existing group / load balancer, nothing new."""
    before = snapshot(world.api)
    again = world.api.ok("CreateTargetGroup", **tg_params(world, name="err-tg1"),
                         HealthCheckIntervalSeconds="0.5")
    assert again.tag == f"{NS}CreateTargetGroupResponse"
    assert texts(again, "TargetGroupArn") == [world.tg_arn]
    lb = world.api.ok("CreateLoadBalancer", Name="err-lb",
                      **{"Subnets.member.1": world.subnets[0],
                         "Subnets.member.2": world.subnets[1]})
    assert lb.tag == f"{NS}CreateLoadBalancerResponse"
    assert texts(lb, "LoadBalancerArn") == [world.lb_arn]
    assert snapshot(world.api) == before


def test_valid_edges_are_accepted(world: World) -> None:
    """The limits themselves: weights 0 and 999, ports 1 and 65535, targets in the VPC,
    RFC 1918 outside it, RFC 6598, and loopback (the fake's own tests)."""
    lead = "DefaultActions.member.1.ForwardConfig.TargetGroups.member"
    world.api.ok("CreateListener", **{**forward(world, "999"), f"{lead}.2.Weight": "0",
                                      "Port": "65535"})
    world.api.ok("CreateListener", **{**forward(world, "0"), "Port": "1"})
    for ip in ("10.0.2.9", "192.168.1.1", "172.16.0.1", "100.64.0.1", "127.0.0.1"):
        world.api.ok("RegisterTargets", TargetGroupArn=world.tg2_arn,
                     **{"Targets.member.1.Id": ip, "Targets.member.1.Port": "80"})
    health = world.api.ok("DescribeTargetHealth", TargetGroupArn=world.tg2_arn)
    assert sorted(texts(health, "Id")) == sorted(
        ["10.0.2.9", "192.168.1.1", "172.16.0.1", "100.64.0.1", "127.0.0.1"])


def test_health_checks_cannot_be_disabled_for_ip_groups(world: World) -> None:
    before = snapshot(world.api)
    for params in ({"Action": "CreateTargetGroup", **tg_params(world, HealthCheckEnabled="false")},
                   {"Action": "ModifyTargetGroup", "TargetGroupArn": world.tg_arn,
                    "HealthCheckEnabled": "false"}):
        answer = world.api.post({"Version": VERSION, **params})
        assert answer.status == 400 and answer.error()[1] == "ValidationError"
    assert snapshot(world.api) == before


def test_testbed_events_bad_since_is_a_json_400(fakeaws: Any) -> None:
    for query in ("since=abc", "since=-1", "limit=0"):
        code, answer = fakeaws.get_raw(f"/_testbed/events?{query}")
        assert code == 400 and isinstance(answer["error"], str) and answer["error"], query
    # Still a JSON object for the stream endpoint, before any line.
    raw = RawApi(fakeaws.url).send("GET", "/_testbed/events/stream?since=abc")
    assert raw.status == 400 and "error" in json.loads(raw.body)


def test_paging_markers_handed_out_are_accepted(world: World) -> None:
    """Only unknown markers are refused: the NextMarker of a page fetches the next one."""
    world.api.ok("CreateLoadBalancer", Name="err-lb2", **{"Subnets.member.1": world.subnets[0],
                                                          "Subnets.member.2": world.subnets[1]})
    first = world.api.ok("DescribeLoadBalancers", PageSize="1")
    token = texts(first, "NextMarker")
    assert len(token) == 1 and token[0]
    second = world.api.ok("DescribeLoadBalancers", PageSize="1", Marker=token[0])
    assert texts(first, "LoadBalancerName") + texts(second, "LoadBalancerName") == [
        "err-lb", "err-lb2"]
