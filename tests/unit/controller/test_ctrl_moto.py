"""Boto3ELBv2 + TargetsManager against moto's in-process ELBv2 (wire shapes and error codes)."""

from __future__ import annotations

import boto3
import pytest

from controller.aws import AWSError, Boto3ELBv2, TargetInfo, TargetsManager

moto = pytest.importorskip("moto")


def test_register_describe_deregister_against_moto() -> None:
    with moto.mock_aws():
        kw = {
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        ec2 = boto3.client("ec2", **kw)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        elbv2 = boto3.client("elbv2", **kw)
        arn = elbv2.create_target_group(
            Name="t", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip"
        )["TargetGroups"][0]["TargetGroupArn"]
        tm = TargetsManager(Boto3ELBv2("http://unused", client=elbv2), ttl=0)
        tm.register_targets(arn, [TargetInfo("10.0.1.5", 8080), TargetInfo("10.0.1.6", 8080)])
        assert {t.key for t in tm.list_targets(arn)} == {"10.0.1.5:8080", "10.0.1.6:8080"}
        tm.deregister_targets(arn, [TargetInfo("10.0.1.5", 8080)])
        assert {t.key for t in tm.list_targets(arn)} == {"10.0.1.6:8080"}
        with pytest.raises(AWSError) as ei:
            tm.list_targets(arn.replace("/t/", "/missing/"))
        assert ei.value.code == "TargetGroupNotFound"
