"""Run inside the project image build (testbed/assets/images/project/Dockerfile) with the
image's venv Python.

`deps REQUIREMENTS` (first stage, reused across code changes):
  - drops what the image's processes never load. botocore ships a model for every AWS service
    (~28 MB); the controller and the fake AWS speak ELBv2 and EC2 only (moto's ELBv2 backend
    also loads ELB's), so the image keeps those plus STS, IAM and ACM (moto's credential and
    certificate paths). kubernetes ships an asyncio copy of its client (`kubernetes.aio`,
    ~21 MB) that nothing here imports.
  - smoke-tests and byte-compiles the dependencies: imports each required distribution's
    packages and runs moto's server answering the EC2, ELBv2 and STS calls the testbed makes
    through boto3, so Python writes the .pyc of the modules these paths import (and only
    those: moto's other services get none, and would still work, compiled on first use). A
    model trimmed away that these calls need fails the build here.

`app` (second stage, after the project's wheel is installed): compiles the project's own
packages, then runs the entry points the cluster uses (`alb-controller run --help`, a real
`testbed fakeaws serve` up to "fakeaws ready" and its clean stop). Whatever they import that
is not compiled yet gets its .pyc now, at build time, once. Any failure fails the build.
"""

from __future__ import annotations

import compileall
import importlib
import importlib.metadata
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

KEEP_BOTOCORE_SERVICES = {"acm", "ec2", "elb", "elbv2", "iam", "sts"}
UNUSED_PACKAGES = ["kubernetes/aio"]
APP_PACKAGES = ["controller", "testbed"]


def _site() -> Path:
    return Path(sysconfig.get_path("purelib"))


def trim(site: Path) -> None:
    data = site / "botocore" / "data"
    for service in data.iterdir():
        if service.is_dir() and service.name not in KEEP_BOTOCORE_SERVICES:
            shutil.rmtree(service)
    for rel in UNUSED_PACKAGES:
        shutil.rmtree(site / rel)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _import_requirements(requirements: Path) -> None:
    wanted = {_canonical(m.group(1)) for line in requirements.read_text().splitlines()
              if (m := re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line))}
    for top, dists in importlib.metadata.packages_distributions().items():
        if wanted.intersection(_canonical(d) for d in dists):
            importlib.import_module(top)
    for extra in ("kubernetes.client", "aiohttp.web", "moto.server"):
        importlib.import_module(extra)


def _aws_calls(url: str) -> None:
    import boto3

    kw = {"endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": "testing",
          "aws_secret_access_key": "testing"}
    ec2, elbv2, sts = (boto3.client(s, **kw) for s in ("ec2", "elbv2", "sts"))
    sts.get_caller_identity()
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24",
                                 AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
               for i, z in ((1, "a"), (2, "b"))]
    ec2.describe_subnets(SubnetIds=subnets)
    lb_arn = elbv2.create_load_balancer(Name="warm", Subnets=subnets)[
        "LoadBalancers"][0]["LoadBalancerArn"]
    elbv2.modify_load_balancer_attributes(LoadBalancerArn=lb_arn, Attributes=[
        {"Key": "idle_timeout.timeout_seconds", "Value": "60"}])
    tg_arn = elbv2.create_target_group(
        Name="warm", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip",
        HealthCheckPath="/health")["TargetGroups"][0]["TargetGroupArn"]
    elbv2.modify_target_group_attributes(TargetGroupArn=tg_arn, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "0"}])
    elbv2.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTP", Port=8080,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}])
    targets = [{"Id": "10.0.1.10", "Port": 8080}]
    elbv2.register_targets(TargetGroupArn=tg_arn, Targets=targets)
    elbv2.describe_target_health(TargetGroupArn=tg_arn)
    elbv2.describe_listeners(LoadBalancerArn=lb_arn)
    elbv2.describe_target_groups(TargetGroupArns=[tg_arn])
    elbv2.deregister_targets(TargetGroupArn=tg_arn, Targets=targets)
    elbv2.delete_load_balancer(LoadBalancerArn=lb_arn)


def deps(requirements: Path) -> None:
    trim(_site())
    _import_requirements(requirements)
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        _aws_calls(f"http://{host}:{port}")
    finally:
        server.stop()


def _run(*args: str) -> None:
    done = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr}")


def app() -> None:
    site = _site()
    for pkg in APP_PACKAGES:
        if not compileall.compile_dir(site / pkg, quiet=1):
            raise SystemExit(f"byte-compiling {pkg} failed")
    bindir = Path(sys.executable).parent
    _run(str(bindir / "alb-controller"), "run", "--help")
    proc = subprocess.Popen(
        [str(bindir / "testbed"), "fakeaws", "serve", "--host", "127.0.0.1", "--port", "0",
         "--log-level", "WARNING"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    proc.send_signal(signal.SIGTERM)
    try:
        rest, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise SystemExit("testbed fakeaws serve did not stop on SIGTERM") from None
    if "fakeaws ready" not in line or proc.returncode not in (0, -signal.SIGTERM):
        raise SystemExit(f"testbed fakeaws serve failed ({proc.returncode}):\n{line}{rest}")


def main() -> None:
    os.chdir("/")  # nothing from the build context on sys.path
    if sys.argv[1:2] == ["deps"] and len(sys.argv) == 3:
        deps(Path(sys.argv[2]))
    elif sys.argv[1:] == ["app"]:
        app()
    else:
        raise SystemExit("usage: slim.py deps REQUIREMENTS | slim.py app")


if __name__ == "__main__":
    main()
