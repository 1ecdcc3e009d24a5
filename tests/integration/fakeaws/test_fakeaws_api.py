"""ELBv2 API through boto3 and the AWS CLI, and AWS error codes for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.waiting import wait_until

pytestmark = pytest.mark.integration
AWS = str(Path(sys.executable).parent / "aws")


def test_aws_cli_full_flow(fakeaws, targets, http_get, free_port):
    """The AWS CLI, unchanged, drives VPC -> LB -> TG -> listener -> register -> health."""
    env = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
           "AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"}

    def aws(*args: str) -> dict:
        out = subprocess.run([AWS, "--endpoint-url", fakeaws.url, "--output", "json", *args],
                             env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else {}

    srv = targets()
    vpc = aws("ec2", "create-vpc", "--cidr-block", "10.1.0.0/16")["Vpc"]["VpcId"]
    sub = [aws("ec2", "create-subnet", "--vpc-id", vpc, "--cidr-block", f"10.1.{i}.0/24",
               "--availability-zone", f"us-east-1{z}")["Subnet"]["SubnetId"]
           for i, z in ((1, "a"), (2, "b"))]
    lb = aws("elbv2", "create-load-balancer", "--name", "cli-alb", "--subnets", *sub)
    lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
    tg_arn = aws("elbv2", "create-target-group", "--name", "cli-tg", "--protocol", "HTTP",
                 "--port", "80", "--vpc-id", vpc, "--target-type", "ip",
                 "--health-check-path", "/health", "--health-check-interval-seconds", "5",
                 "--healthy-threshold-count", "2")["TargetGroups"][0]["TargetGroupArn"]
    port = free_port()
    aws("elbv2", "create-listener", "--load-balancer-arn", lb_arn, "--protocol", "HTTP",
        "--port", str(port), "--default-actions", f"Type=forward,TargetGroupArn={tg_arn}")
    aws("elbv2", "register-targets", "--target-group-arn", tg_arn,
        "--targets", f"Id=127.0.0.1,Port={srv.port}")
    # A new target needs one successful check; the first one runs at registration.
    desc = wait_until(lambda: [d for d in aws(
        "elbv2", "describe-target-health", "--target-group-arn", tg_arn,
    )["TargetHealthDescriptions"] if d["TargetHealth"]["State"] == "healthy"], 20,
        what="healthy via CLI")
    assert desc[0]["Target"] == {"Id": "127.0.0.1", "Port": srv.port}
    assert http_get(f"http://127.0.0.1:{port}/cli")[0] == 200
    aws("elbv2", "deregister-targets", "--target-group-arn", tg_arn,
        "--targets", f"Id=127.0.0.1,Port={srv.port}")
    th = aws("elbv2", "describe-target-health", "--target-group-arn", tg_arn)
    assert th["TargetHealthDescriptions"][0]["TargetHealth"]["State"] == "draining"
    assert th["TargetHealthDescriptions"][0]["TargetHealth"]["Reason"] == \
        "Target.DeregistrationInProgress"


def test_boto3_flow_keys_by_id_and_port(make_alb, targets):
    """Targets are keyed by (id, port): the same IP on two ports is two targets."""
    a, b = targets(), targets()
    alb = make_alb()
    alb.register(a, b)
    alb.wait_state(a, "healthy")
    alb.wait_state(b, "healthy")
    assert set(alb.health()) == {a.addr, b.addr}
    # Asked explicitly, an unknown target is unused/Target.NotRegistered.
    res = alb.elbv2.describe_target_health(TargetGroupArn=alb.tg_arn, Targets=[
        {"Id": "10.9.9.9", "Port": 8080}])["TargetHealthDescriptions"][0]
    assert res["TargetHealth"]["State"] == "unused"
    assert res["TargetHealth"]["Reason"] == "Target.NotRegistered"
    assert res["HealthCheckPort"] == "8080"


def test_target_group_load_balancers_follow_the_rules_that_route_to_it(make_alb):
    """DescribeTargetGroups LoadBalancerArns (and its LoadBalancerArn filter) say which load
    balancers route to the group now: a rule moved to another group (ModifyRule, as an
    Ingress controller does when a Service appears) moves it; a rule deleted drops it. moto
    alone kept both wrong, and a run that looked up its ALB from its group waited for ever."""
    alb = make_alb()
    elbv2 = alb.elbv2
    other = elbv2.create_target_group(Name=f"other-{alb.tg_arn[-6:]}", Protocol="HTTP",
                                      Port=80, VpcId=alb.vpc_id, TargetType="ip")
    other_arn = other["TargetGroups"][0]["TargetGroupArn"]

    def lbs(arn):
        return elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0][
            "LoadBalancerArns"]

    rule = elbv2.create_rule(ListenerArn=alb.listener_arn, Priority=1, Conditions=[
        {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*"]}}], Actions=[
        {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503"}}])
    rule_arn = rule["Rules"][0]["RuleArn"]
    assert lbs(other_arn) == []
    elbv2.modify_rule(RuleArn=rule_arn, Actions=[{"Type": "forward",
                                                  "TargetGroupArn": other_arn}])
    assert lbs(other_arn) == [alb.lb_arn]
    by_lb = elbv2.describe_target_groups(LoadBalancerArn=alb.lb_arn)["TargetGroups"]
    assert {g["TargetGroupArn"] for g in by_lb} == {alb.tg_arn, other_arn}
    # the listener's default action moves too: the first group is routed to by nothing
    elbv2.modify_listener(ListenerArn=alb.listener_arn, DefaultActions=[
        {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}])
    assert lbs(alb.tg_arn) == []
    elbv2.delete_rule(RuleArn=rule_arn)
    assert lbs(other_arn) == []


def _code(call) -> str:
    with pytest.raises(ClientError) as exc:
        call()
    return exc.value.response["Error"]["Code"]


def test_bad_input_gives_aws_error_codes(make_alb, fakeaws):
    alb = make_alb(listener=False)
    e = fakeaws.client("elbv2", validate=False)
    arn = alb.tg_arn
    missing = arn.replace(arn.rsplit("/", 1)[1], "0000000000000000")
    assert _code(lambda: e.describe_target_health(TargetGroupArn=missing)) == \
        "TargetGroupNotFound"
    assert _code(lambda: e.register_targets(TargetGroupArn=missing, Targets=[
        {"Id": "10.0.1.5", "Port": 80}])) == "TargetGroupNotFound"
    assert _code(lambda: e.register_targets(TargetGroupArn=arn, Targets=[
        {"Id": "10.0.1.300", "Port": 80}])) == "ValidationError"
    for port in (0, 65536):
        assert _code(lambda p=port: e.register_targets(TargetGroupArn=arn, Targets=[
            {"Id": "10.0.1.5", "Port": p}])) == "ValidationError"
    for key, value in (("deregistration_delay.timeout_seconds", "3601"),
                       ("slow_start.duration_seconds", "5"),
                       ("slow_start.duration_seconds", "901"),
                       ("load_balancing.algorithm.type", "random"),
                       ("load_balancing.algorithm.anomaly_mitigation", "on"),
                       ("no.such.attribute", "1")):
        assert _code(lambda k=key, v=value: e.modify_target_group_attributes(
            TargetGroupArn=arn, Attributes=[{"Key": k, "Value": v}])) == "ValidationError"
    # Valid edge values moto alone gets wrong are accepted.
    e.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "3600"},
        {"Key": "slow_start.duration_seconds", "Value": "30"}])
    attrs = {a["Key"]: a["Value"] for a in e.describe_target_group_attributes(
        TargetGroupArn=arn)["Attributes"]}
    assert attrs["deregistration_delay.timeout_seconds"] == "3600"
    # AWS refuses slow start with weighted random; the group has slow start on now.
    assert _code(lambda: e.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
        {"Key": "load_balancing.algorithm.type", "Value": "weighted_random"}])) == \
        "InvalidConfigurationRequest"
    for field, value in (("HealthCheckIntervalSeconds", 301),
                         ("HealthCheckTimeoutSeconds", 121),
                         ("HealthyThresholdCount", 1), ("HealthyThresholdCount", 11),
                         ("UnhealthyThresholdCount", 11)):
        assert _code(lambda f=field, v=value: e.modify_target_group(
            TargetGroupArn=arn, **{f: v})) == "ValidationError", field
    # Below the server's --min-health-check-interval (0.2 in tests; AWS 5).
    assert _code(lambda: e.create_target_group(
        Name="tooshort", Protocol="HTTP", Port=80, VpcId=alb.vpc_id, TargetType="ip",
        HealthCheckIntervalSeconds=0.1)) == "ValidationError"
    assert _code(lambda: e.modify_load_balancer_attributes(
        LoadBalancerArn=alb.lb_arn, Attributes=[
            {"Key": "idle_timeout.timeout_seconds", "Value": "0"}])) == "ValidationError"


def test_event_log_contract(fakeaws, make_alb, targets):
    """/_testbed/events?since= pages with seq; the stream endpoint yields NDJSON live."""
    import urllib.request

    start = fakeaws.last_seq()
    stream = urllib.request.urlopen(fakeaws.url + f"/_testbed/events/stream?since={start}",
                                    timeout=10)
    a = targets()
    alb = make_alb()
    alb.register(a)
    alb.wait_state(a, "healthy")
    page = fakeaws.get(f"/_testbed/events?since={start}")
    seqs = [ev["seq"] for ev in page["events"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) and page["next"] == seqs[-1]
    assert all(isinstance(ev["ts"], float) for ev in page["events"])
    kinds = {ev["kind"] for ev in page["events"]}
    assert {"listener", "registered", "target_state", "routing"} <= kinds
    got = []
    while not any(e.get("kind") == "routing" for e in got):
        line = stream.readline()
        if line.strip():
            got.append(json.loads(line))
    stream.close()
    assert got[0]["seq"] > start
    # A healthy target whose checks keep passing changes nothing: no newer events yet.
    nxt = page["next"]
    assert fakeaws.get(f"/_testbed/events?since={nxt}") == {"events": [], "next": nxt,
                                                           "latest": nxt}
    alb.deregister(a)
    later = fakeaws.get(f"/_testbed/events?since={nxt}")
    assert [e["seq"] for e in later["events"]] == list(range(nxt + 1, later["next"] + 1))
    assert later["events"][0]["kind"] == "deregistered"
    two = fakeaws.get(f"/_testbed/events?since={start}&limit=2")
    assert [e["seq"] for e in two["events"]] == seqs[:2] and two["next"] == seqs[1]
    # a full page's `next` is an old seq; `latest` is where a new reader starts
    assert two["latest"] == later["next"] > two["next"]
    assert fakeaws.get("/_testbed/healthz")["ok"] is True


def test_runtime_config_validated_by_the_declaration(fakeaws, make_alb, targets):
    """POST /_testbed/config refuses what the settings declaration refuses, with a JSON error,
    and the engine keeps working (a NaN delay used to kill its timers)."""
    before = fakeaws.get("/_testbed/config")
    assert before["register_delay"] == 0 and before["port"] == int(fakeaws.url.rsplit(":", 1)[1])
    for body in (b'{"register_delay": NaN}', b'{"deregister_delay": Infinity}',
                 b'{"register_delay": -1}', b'{"register_delay": 3601}',
                 b'{"connect_timeout": 0}', b'{"register_delay": "5"}',
                 b'{"register_delay": true}', b'{"register_delay": null}',
                 b'{"no_such_setting": 1}', b'{"port": 1234}', b'[1]', b'not json'):
        code, answer = fakeaws.post_raw("/_testbed/config", body)
        assert code == 400 and isinstance(answer["error"], str) and answer["error"], body
    # All or nothing: one bad value keeps the valid one in the same body from applying.
    code, _ = fakeaws.post_raw("/_testbed/config",
                               b'{"deregister_delay": 2, "register_delay": NaN}')
    assert code == 400
    assert fakeaws.get("/_testbed/config") == before
    # The engine still runs its timers: a registration becomes healthy, with the new delay.
    assert fakeaws.post("/_testbed/config", {"register_delay": 0.3})["register_delay"] == 0.3
    srv = targets()
    alb = make_alb()
    alb.register(srv)
    alb.wait_state(srv, "healthy")
    registered = fakeaws.events(kind="registered")[-1]
    assert registered["visible_in"] == 0.3
    assert fakeaws.events(kind="config")[-1]["register_delay"] == 0.3
