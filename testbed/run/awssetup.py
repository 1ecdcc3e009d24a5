"""The scenario's ALB side in the fake AWS, created through boto3 like a user would."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from testbed.scenario import plan
from testbed.scenario.model import Scenario


def clients(endpoint_url: str) -> tuple[Any, Any]:
    kw: dict[str, Any] = {"endpoint_url": endpoint_url, "region_name": "us-east-1",
                          "aws_access_key_id": "testing", "aws_secret_access_key": "testing",
                          # scenario health checks may be faster than AWS allows (fake AWS
                          # accepts them when started with a lower minimum interval)
                          "config": Config(parameter_validation=False)}
    return boto3.client("elbv2", **kw), boto3.client("ec2", **kw)


@dataclass
class AlbSetup:
    lb_arn: str
    tg_arn: str
    listener_arn: str | None
    listener_port: int
    # False: the controller made it from the run's Ingress, and deletes it with the Ingress
    made_by_run: bool = True


def create(sc: Scenario, endpoint_url: str, name: str, listener_port: int, *,
           target_port: int = plan.APP_PORT) -> AlbSetup:
    elbv2, ec2 = clients(endpoint_url)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = tuple(
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24",
                          AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
        for i, z in enumerate("ab"))
    calls = plan.aws_calls(sc, name=name, vpc_id=vpc, subnets=subnets,
                           listener_port=listener_port, target_port=target_port)
    lb = elbv2.create_load_balancer(**calls["create_load_balancer"])["LoadBalancers"][0]
    lb_arn = lb["LoadBalancerArn"]
    elbv2.modify_load_balancer_attributes(
        **{**calls["modify_load_balancer_attributes"], "LoadBalancerArn": lb_arn})
    tg_arn = elbv2.create_target_group(**calls["create_target_group"])["TargetGroups"][0][
        "TargetGroupArn"]
    elbv2.modify_target_group_attributes(
        **{**calls["modify_target_group_attributes"], "TargetGroupArn": tg_arn})
    listener_arn = None
    if calls["create_listener"]:
        listener = {**calls["create_listener"], "LoadBalancerArn": lb_arn,
                    "DefaultActions": [{"Type": "forward", "TargetGroupArn": tg_arn}]}
        listener_arn = elbv2.create_listener(**listener)["Listeners"][0]["ListenerArn"]
    return AlbSetup(lb_arn, tg_arn, listener_arn, listener_port)


def found(endpoint_url: str, tg_arn: str, listener_port: int) -> AlbSetup | None:
    """The ALB the controller made for a run's Ingress, from its target group (None until the
    group is behind a load balancer with a listener on the run's port)."""
    elbv2, _ = clients(endpoint_url)
    groups = elbv2.describe_target_groups(TargetGroupArns=[tg_arn])["TargetGroups"]
    for lb_arn in (groups[0].get("LoadBalancerArns") or []) if groups else []:
        for li in elbv2.describe_listeners(LoadBalancerArn=lb_arn)["Listeners"]:
            if int(li["Port"]) == listener_port:
                return AlbSetup(lb_arn, tg_arn, li["ListenerArn"], listener_port,
                                made_by_run=False)
    return None


def listener_ports_in_use(endpoint_url: str) -> set[int]:
    """Ports of every listener in the fake AWS (of any run, or left by one that crashed)."""
    elbv2, _ = clients(endpoint_url)
    ports: set[int] = set()
    for page in elbv2.get_paginator("describe_load_balancers").paginate():
        for lb in page["LoadBalancers"]:
            listeners = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])
            ports.update(int(li["Port"]) for li in listeners["Listeners"])
    return ports


def delete(setup: AlbSetup, endpoint_url: str) -> None:
    elbv2, _ = clients(endpoint_url)
    if setup.listener_arn:
        elbv2.delete_listener(ListenerArn=setup.listener_arn)
    elbv2.delete_load_balancer(LoadBalancerArn=setup.lb_arn)
    elbv2.delete_target_group(TargetGroupArn=setup.tg_arn)
