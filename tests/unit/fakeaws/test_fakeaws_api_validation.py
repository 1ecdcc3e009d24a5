"""The API's validation rules and error shapes as pure functions (no server): the model
checks, ARNs, target IPs, subnets, health check and attribute rules, request parsing."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from testbed.fakeaws.api import validation
from testbed.fakeaws.api.errors import (
    AwsError,
    attributes_response,
    internal_failure,
    renamed_response,
    service_unavailable,
    xml_safe,
)
from testbed.fakeaws.api.middleware import _elbv2_form, _region

NS = "{http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/}"
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg1/9e82fc9267a25c80"
LB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/lb1/24347a689bd9381a"
LISTENER = ("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/lb1/"
            "24347a689bd9381a/29d0362a8778ead5")


def _error(call: Any) -> AwsError:
    with pytest.raises(AwsError) as exc:
        call()
    return exc.value


def _fwd(weight: str) -> dict[str, str]:
    lead = "DefaultActions.member.1.ForwardConfig.TargetGroups.member.1"
    return {"LoadBalancerArn": LB, "DefaultActions.member.1.Type": "forward",
            f"{lead}.TargetGroupArn": TG, f"{lead}.Weight": weight}


@pytest.mark.parametrize(("action", "form", "code", "fragment"), [
    ("DescribeUnicorns", {}, "InvalidAction", "DescribeUnicorns"),
    ("CreateTargetGroup", {"Protocol": "HTTP"}, "ValidationError", "Value null at 'name'"),
    ("RegisterTargets", {"TargetGroupArn": TG}, "ValidationError", "Value null at 'targets'"),
    ("RegisterTargets", {"TargetGroupArn": TG, "Targets.member.1.Port": "80"},
     "ValidationError", "Value null at 'targets.1.member.id'"),
    ("CreateListener", {**_fwd("1"), "Port": "70000"}, "ValidationError",
     "Value '70000' at 'port'"),
    ("CreateListener", {**_fwd("1"), "Port": "0"}, "ValidationError",
     "greater than or equal to 1"),
    ("CreateListener", {**_fwd("1"), "Port": "x"}, "ValidationError", "must be a number"),
    ("CreateListener", {**_fwd("1000")}, "ValidationError",
     "'defaultActions.1.member.forwardConfig.targetGroups.1.member.weight'"),
    ("CreateListener", {**_fwd("-5")}, "ValidationError", "greater than or equal to 0"),
    ("CreateListener", {**_fwd("1"), "Protocol": "SMTP"}, "ValidationError",
     "enum value set"),
    ("CreateTargetGroup", {"Name": "a", "HealthCheckEnabled": "maybe"}, "ValidationError",
     "boolean"),
    ("CreateTargetGroup", {"Name": "a", "HealthCheckPath": ""}, "ValidationError",
     "length greater than or equal to 1"),
    ("CreateTargetGroup", {"Name": "a", "HealthyThresholdCount": "11"}, "ValidationError",
     "less than or equal to 10"),
])
def test_model_rules(action: str, form: dict[str, str], code: str, fragment: str) -> None:
    err = _error(lambda: validation.check_model(action, form))
    assert (err.code, err.status) == (code, 400)
    assert fragment in err.message, err.message


@pytest.mark.parametrize(("action", "form"), [
    ("DescribeLoadBalancers", {}),
    ("CreateListener", {**_fwd("999"), "Port": "65535", "Protocol": "HTTP"}),
    ("CreateListener", {**_fwd("0"), "Port": "1"}),
    # Fast mode: intervals/timeouts below the model's minimum and fractions are the
    # server setting's business (health_check_params), not the model's.
    ("CreateTargetGroup", {"Name": "a", "HealthCheckIntervalSeconds": "0.2",
                           "HealthCheckTimeoutSeconds": "0.1"}),
    # Members the model does not know are ignored, as AWS does.
    ("DescribeTargetGroups", {"NoSuchMember": "1", "Port.x": "y"}),
    ("DescribeTrustStores", {}),
])
def test_model_accepts(action: str, form: dict[str, str]) -> None:
    validation.check_model(action, form)


@pytest.mark.parametrize(("form", "noun"), [
    ({"TargetGroupArn": "x"}, "target group"),
    ({"TargetGroupArn": ""}, "target group"),
    ({"TargetGroupArn": TG + "/extra"}, "target group"),
    ({"TargetGroupArns.member.1": TG, "TargetGroupArns.member.2": "nope"}, "target group"),
    ({"LoadBalancerArn": TG}, "load balancer"),
    ({"ListenerArn": LB}, "listener"),
    ({"DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn": "tg"},
     "target group"),
])
def test_malformed_arns(form: dict[str, str], noun: str) -> None:
    err = _error(lambda: validation.arns(form))
    assert err.code == "ValidationError" and f"is not a valid {noun} ARN" in err.message


def test_well_formed_arns_pass() -> None:
    validation.arns({"TargetGroupArn": TG, "LoadBalancerArn": LB, "ListenerArn": LISTENER,
                     "TargetGroupArns.member.1": TG, "Names.member.1": "x"})


@pytest.mark.parametrize(("ip", "family", "fragment"), [
    ("2001:db8::1", "ipv4", "not a valid IPv4 address"),
    ("10.0.0.1", "ipv6", "not a valid IPv6 address"),
    ("8.8.8.8", "ipv4", "publicly routable"),
    ("11.0.0.1", "ipv4", "publicly routable"),
    ("100.128.0.1", "ipv4", "publicly routable"),  # just past RFC 6598's 100.64.0.0/10
])
def test_target_ips_refused(ip: str, family: str, fragment: str) -> None:
    err = _error(lambda: validation.target_ips([ip], family, ["10.0.0.0/16"]))
    assert err.code == "ValidationError" and fragment in err.message


def test_target_ips_accepted() -> None:
    validation.target_ips(["10.0.1.1", "172.31.255.255", "192.168.0.1", "100.64.0.1",
                           "100.127.255.255", "127.0.0.1", "54.1.2.3"], "ipv4",
                          ["54.1.0.0/16"])  # a VPC may own a public CIDR
    validation.target_ips(["2001:db8::1"], "ipv6", [])


def test_lb_subnets() -> None:
    for azs in ([], ["us-east-1a"], ["us-east-1a", "us-east-1a"]):
        err = _error(lambda a=azs: validation.lb_subnets(a, "application"))
        assert err.message == ("At least two subnets in two different Availability Zones "
                               "must be specified")
    validation.lb_subnets(["us-east-1a", "us-east-1b"], "application")
    validation.lb_subnets(["us-east-1a"], "network")  # NLBs may use one
    assert validation.lb_subnet_ids({"Subnets.member.1": "s-1", "Subnets.member.2": "s-2",
                                     "SubnetMappings.member.1.SubnetId": "s-3"}) == [
        "s-1", "s-2", "s-3"]


@pytest.mark.parametrize(("form", "protocol", "fragment"), [
    ({"HealthCheckProtocol": "TCP"}, "HTTP", "'TCP' is not supported"),
    ({"HealthCheckProtocol": "TCP"}, "HTTPS", "'TCP' is not supported"),
    ({"HealthCheckPath": "health"}, "HTTP", "must begin with a '/'"),
])
def test_health_check_rules_refused(form: dict[str, str], protocol: str, fragment: str
                                    ) -> None:
    err = _error(lambda: validation.health_check_rules(form, protocol, "ip"))
    assert err.code == "ValidationError" and fragment in err.message


def test_health_check_rules_accepted() -> None:
    validation.health_check_rules({"HealthCheckProtocol": "TCP"}, "TCP", "ip")  # an NLB group
    validation.health_check_rules({"HealthCheckProtocol": "HTTPS",
                                   "HealthCheckPath": "/health"}, "HTTP", "ip")
    validation.health_check_rules({"HealthCheckEnabled": "false"}, "HTTP", "lambda")


@pytest.mark.parametrize("target_type", ["ip", "instance", "alb"])
def test_health_checks_cannot_be_disabled(target_type: str) -> None:
    err = _error(lambda: validation.health_check_rules(
        {"HealthCheckEnabled": "false"}, "HTTP", target_type))
    assert err.code == "ValidationError" and target_type in err.message


@pytest.mark.parametrize(("attrs", "protocol", "fragment"), [
    ({"stickiness.enabled": "maybe"}, "HTTP", "must be one of [true, false]"),
    ({"stickiness.enabled": "TRUE"}, "HTTP", "must be one of [true, false]"),
    ({"proxy_protocol_v2.enabled": "true"}, "HTTP", "not supported"),
    ({"preserve_client_ip.enabled": "false"}, "HTTPS", "not supported"),
    ({"stickiness.type": "source_ip"}, "HTTP", "lb_cookie, app_cookie"),
    ({"stickiness.lb_cookie.duration_seconds": "0"}, "HTTP", "'1-604800'"),
    ({"stickiness.app_cookie.duration_seconds": "604801"}, "HTTP", "'1-604800'"),
    ({"stickiness.lb_cookie.duration_seconds": "1.5"}, "HTTP", "'1-604800'"),
])
def test_attribute_values_refused(attrs: dict[str, str], protocol: str, fragment: str
                                  ) -> None:
    err = _error(lambda: validation.tg_attribute_values(attrs, protocol))
    assert err.code == "ValidationError" and fragment in err.message


def test_attribute_values_accepted() -> None:
    validation.tg_attribute_values({"stickiness.enabled": "true",
                                    "stickiness.type": "app_cookie",
                                    "stickiness.app_cookie.duration_seconds": "604800",
                                    "stickiness.lb_cookie.duration_seconds": "1"}, "HTTP")
    validation.tg_attribute_values({"proxy_protocol_v2.enabled": "true",
                                    "stickiness.type": "source_ip"}, "TCP")


def test_tg_attributes_checks_values_with_the_protocol() -> None:
    form = {"Attributes.member.1.Key": "proxy_protocol_v2.enabled",
            "Attributes.member.1.Value": "true"}
    assert validation.tg_attributes(form, {}) == {"proxy_protocol_v2.enabled": "true"}
    assert _error(lambda: validation.tg_attributes(form, {}, "HTTP")).code == "ValidationError"


def _xml_error(err: AwsError) -> tuple[str | None, ...]:
    root = ET.fromstring(err.xml())
    assert root.tag == f"{NS}ErrorResponse" and root.findtext(f"{NS}RequestId")
    return tuple(root.findtext(f"{NS}Error/{NS}{t}") for t in ("Type", "Code"))


def test_error_shapes() -> None:
    assert _xml_error(validation.validation("x")) == ("Sender", "ValidationError")
    assert _xml_error(internal_failure()) == ("Receiver", "InternalFailure")
    assert internal_failure().status == 500
    assert _xml_error(service_unavailable("engine")) == ("Receiver", "ServiceUnavailable")
    assert service_unavailable().status == 503
    # Messages are XML-escaped, whatever the client sent.
    root = ET.fromstring(AwsError("ValidationError", "'<&>' bad").xml())
    assert root.findtext(f"{NS}Error/{NS}Message") == "'<&>' bad"


def test_responses() -> None:
    body = attributes_response("ModifyTargetGroupAttributes",
                               {"deregistration_delay.timeout_seconds": "3600"})
    root = ET.fromstring(body)
    assert root.tag == f"{NS}ModifyTargetGroupAttributesResponse"
    assert root.findtext(f".//{NS}Value") == "3600"
    moto = (b'<DescribeTargetGroupsResponse xmlns="x"><DescribeTargetGroupsResult><A/>'
            b'</DescribeTargetGroupsResult></DescribeTargetGroupsResponse>')
    assert renamed_response(moto, "DescribeTargetGroups", "CreateTargetGroup") == (
        b'<CreateTargetGroupResponse xmlns="x"><CreateTargetGroupResult><A/>'
        b'</CreateTargetGroupResult></CreateTargetGroupResponse>')


SIGNED = ("AWS4-HMAC-SHA256 Credential=AK/20150830/eu-west-1/elasticloadbalancing/"
          "aws4_request, SignedHeaders=host, Signature=0")


def _environ(method: str, query: str = "", body: bytes = b"", auth: str = "",
             ctype: str = "application/x-www-form-urlencoded") -> dict[str, Any]:
    env: dict[str, Any] = {"REQUEST_METHOD": method, "QUERY_STRING": query,
                           "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": ctype,
                           "wsgi.input": io.BytesIO(body)}
    if auth:
        env["HTTP_AUTHORIZATION"] = auth
    return env


def test_get_and_post_give_the_same_form() -> None:
    params = "Action=DescribeTargetHealth&Version=2015-12-01&TargetGroupArn=a%2Fb"
    post = _elbv2_form(_environ("POST", body=params.encode(), auth=SIGNED))
    get = _elbv2_form(_environ("GET", query=params, auth=SIGNED))
    unsigned = _elbv2_form(_environ("GET", query=params))
    assert post == get == unsigned == {"Action": "DescribeTargetHealth",
                                       "Version": "2015-12-01", "TargetGroupArn": "a/b"}


def test_other_services_are_not_elbv2() -> None:
    ec2 = SIGNED.replace("elasticloadbalancing", "ec2")
    env = _environ("POST", body=b"Action=CreateVpc&Version=2016-11-15", auth=ec2)
    assert _elbv2_form(env) is None
    assert _elbv2_form(_environ("GET", query="Action=CreateVpc&Version=2016-11-15")) is None
    # The body is still there for moto after we looked at it.
    env = _environ("POST", body=b"Action=X&Version=1")
    assert _elbv2_form(env) is None and env["wsgi.input"].read() == b"Action=X&Version=1"


def test_random_bytes_are_a_form_without_action() -> None:
    form = _elbv2_form(_environ("POST", body=b"\x00\xff\xfe&&==%zz%", auth=SIGNED))
    assert form is not None and "Action" not in form


def test_region_from_the_signature() -> None:
    assert _region({"HTTP_AUTHORIZATION": SIGNED}) == "eu-west-1"
    assert _region({}) == "us-east-1"
    assert _region({"HTTP_AUTHORIZATION": "garbage"}) == "us-east-1"


def test_messages_echoing_control_characters_stay_parseable() -> None:
    """A message quoting client input with characters XML cannot carry (found by the
    fuzz suite: an enum value '\\x1f') is still a parseable ErrorResponse."""
    err = _error(lambda: validation.check_model(
        "SetSubnets", {"LoadBalancerArn": LB, "EnablePrefixForIpv6SourceNat": "\x1f\ud800"}))
    message = ET.fromstring(err.xml()).findtext(f"{NS}Error/{NS}Message") or ""
    assert "'\\x1f\\xd800'" in message


def test_rule_priority_pairs_need_both_members() -> None:
    """moto fails with a KeyError on a pair without RuleArn (found by the fuzz suite)."""
    err = _error(lambda: validation.check_model(
        "SetRulePriorities", {"RulePriorities.member.1.Priority": "5"}))
    assert "'rulePriorities.1.member.ruleArn'" in err.message


def test_markers_must_have_been_issued() -> None:
    """moto fails with a ValueError on a marker it did not hand out (found by the fuzz
    suite)."""
    err = _error(lambda: validation.marker({"Marker": "zz"}, {"lb2"}))
    assert err.code == "ValidationError" and "'zz'" in err.message
    validation.marker({"Marker": "lb2"}, {"lb2"})
    validation.marker({}, set())


def test_subnet_mappings_need_a_subnet() -> None:
    """moto fails with a KeyError on a mapping without SubnetId (found by the fuzz suite)."""
    err = _error(lambda: validation.check_model("CreateLoadBalancer", {
        "Name": "a", "SubnetMappings.member.1.AllocationId": "eipalloc-1"}))
    assert "'subnetMappings.1.member.subnetId'" in err.message


def test_moto_answers_are_made_xml_safe() -> None:
    """moto echoes client input into messages unfiltered (found by the fuzz suite:
    DescribeTags of ResourceArns '\\x1f')."""
    body = b"<ErrorResponse><Message>'\x1f' not found\tok\n</Message></ErrorResponse>"
    safe = xml_safe(body)
    assert ET.fromstring(safe).findtext("Message") == "'\\x1f' not found\tok\n"
    assert xml_safe(b"<a>plain</a>") == b"<a>plain</a>"


@pytest.mark.parametrize("member", ["Key", "Value"])
def test_attributes_need_key_and_value(member: str) -> None:
    """moto fails with a KeyError on an attribute without Key or Value (found by the fuzz
    suite)."""
    form = {"LoadBalancerArn": LB, "Attributes.member.1.Key": "idle_timeout.timeout_seconds",
            "Attributes.member.1.Value": "5"}
    del form[f"Attributes.member.1.{member}"]
    err = _error(lambda: validation.check_model("ModifyLoadBalancerAttributes", form))
    assert f"'attributes.1.member.{member.lower()}'" in err.message


@pytest.mark.parametrize("name", ["", "-lb", "lb-", "a" * 33, "l b", "lb\x08", "internal-lb",
                                  "lö"])
def test_load_balancer_names_refused(name: str) -> None:
    """moto accepts any name (the fuzz suite created one with control characters)."""
    assert _error(lambda: validation.lb_name(name)).code == "ValidationError"


def test_load_balancer_names_accepted() -> None:
    for name in ("a", "lb-1", "A" * 32, "internal"):
        validation.lb_name(name)
