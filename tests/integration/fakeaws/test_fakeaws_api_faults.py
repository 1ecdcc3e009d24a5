"""Injected API faults (POST /_testbed/faults): for their time, a share of the controller's
ELBv2 calls get AWS's throttling (or unavailable) answer, other callers are untouched, nothing
is changed by a refused call, and bad fault bodies are refused with a clear 400."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config
from conftest import FakeAws

CONTROLLER_UA = "elbv2.k8s.aws/alb-testbed"


def _end(fakeaws: FakeAws) -> Any:
    req = urllib.request.Request(fakeaws.url + "/_testbed/faults", method="DELETE")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _client(fakeaws: FakeAws, user_agent: str | None = None) -> Any:
    return boto3.client("elbv2", region_name="us-east-1", endpoint_url=fakeaws.url,
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(user_agent=user_agent, retries={"total_max_attempts": 1}))


def test_controller_calls_are_throttled_others_are_not(fakeaws: FakeAws) -> None:
    ctrl, other = _client(fakeaws, CONTROLLER_UA), _client(fakeaws)
    state = fakeaws.post("/_testbed/faults", {"error": "throttling", "share": 1.0,
                                              "seconds": 30})
    assert state["active"] and state["error"] == "throttling"
    try:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ctrl.create_target_group(Name="fault-tg", Protocol="HTTP", Port=80,
                                     VpcId="vpc-12345678", TargetType="ip")
        err = e.value.response
        assert (err["Error"]["Code"], err["Error"]["Message"]) == ("Throttling", "Rate exceeded")
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
        # the refused create changed nothing; the other caller still gets answers
        names = [t["TargetGroupName"] for t in other.describe_target_groups()["TargetGroups"]]
        assert "fault-tg" not in names
    finally:
        state = _end(fakeaws)
    assert state["refused"] == 1 and state["seen"] == 1
    assert fakeaws.get("/_testbed/faults") == {"active": False}
    ctrl.describe_target_groups()


@pytest.mark.parametrize("body", [{"error": "slow", "seconds": 5},
                                  {"error": "throttling", "share": 0, "seconds": 5},
                                  {"error": "unavailable", "seconds": 0},
                                  {"error": "throttling", "seconds": 5, "callers": "me"}])
def test_bad_fault_bodies_are_refused(fakeaws: FakeAws, body: dict[str, object]) -> None:
    code, answer = fakeaws.post_raw("/_testbed/faults", json.dumps(body).encode())
    assert code == 400 and "error" in answer


def test_a_fault_scoped_to_target_groups_hits_only_calls_naming_them(fakeaws: FakeAws) -> None:
    """Runs side by side share the fake AWS: each one's fault hits only its own groups."""
    ctrl = _client(fakeaws, CONTROLLER_UA)
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=fakeaws.url,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    arns = [ctrl.create_target_group(Name=f"scoped-{n}", Protocol="HTTP", Port=80,
                                     VpcId=vpc, TargetType="ip"
                                     )["TargetGroups"][0]["TargetGroupArn"] for n in "ab"]
    mine, theirs = arns
    state = fakeaws.post("/_testbed/faults", {"error": "unavailable", "seconds": 30,
                                              "target_group_arn": mine})
    assert state["target_group_arns"] == [mine]
    try:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ctrl.describe_target_health(TargetGroupArn=mine)
        assert e.value.response["Error"]["Code"] == "ServiceUnavailable"
        with pytest.raises(botocore.exceptions.ClientError):
            ctrl.describe_target_groups(TargetGroupArns=[theirs, mine])
        ctrl.describe_target_health(TargetGroupArn=theirs)
        ctrl.describe_target_groups()  # names no group
        assert fakeaws.get("/_testbed/faults") == {"active": False}  # no unscoped fault
    finally:
        req = urllib.request.Request(
            fakeaws.url + "/_testbed/faults?target_group_arn=" + urllib.parse.quote(mine),
            method="DELETE")
        with urllib.request.urlopen(req, timeout=10) as r:
            state = json.loads(r.read())
    assert (state["seen"], state["refused"]) == (2, 2)
    ctrl.describe_target_health(TargetGroupArn=mine)
