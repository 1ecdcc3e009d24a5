"""boto3 error mapping and metrics, the CRD/RBAC manifests, /metrics and /healthz."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from controller import metrics
from controller.aws import AWSError, Boto3ELBv2

ROOT = Path(__file__).resolve().parents[3]
MANIFESTS = ROOT / "testbed/assets/manifests/controller"
ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"


def _client() -> object:
    return boto3.client(
        "elbv2",
        region_name="us-east-1",
        endpoint_url="http://fake:5000",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _count(op: str, code: str) -> float:
    return metrics.AWS_CALLS.labels(op, code)._value.get()


def test_boto3_errors_carry_the_aws_code_and_are_counted() -> None:
    c = _client()
    api = Boto3ELBv2("http://fake:5000", client=c)
    before = _count("DescribeTargetHealth", "TargetGroupNotFound")
    with Stubber(c) as st:
        st.add_client_error(
            "describe_target_health",
            service_error_code="TargetGroupNotFound",
            service_message="Target groups 'x' not found",
            http_status_code=400,
        )
        st.add_response(
            "describe_target_health",
            {
                "TargetHealthDescriptions": [
                    {
                        "Target": {"Id": "10.0.0.1", "Port": 8080},
                        "TargetHealth": {
                            "State": "initial",
                            "Reason": "Elb.RegistrationInProgress",
                        },
                    }
                ]
            },
            {"TargetGroupArn": ARN, "Targets": [{"Id": "10.0.0.1", "Port": 8080}]},
        )
        with pytest.raises(AWSError) as ei:
            api.describe_target_health(ARN)
        assert ei.value.code == "TargetGroupNotFound" and "not found" in ei.value.message
        out = api.describe_target_health(ARN, [{"Id": "10.0.0.1", "Port": 8080}])
        assert out[0]["TargetHealth"]["State"] == "initial"
    assert _count("DescribeTargetHealth", "TargetGroupNotFound") == before + 1


def test_crd_shape() -> None:
    crd = yaml.safe_load((MANIFESTS / "crd.yaml").read_text())
    assert crd["spec"]["group"] == "elbv2.k8s.aws"
    (v,) = crd["spec"]["versions"]
    assert (
        v["name"] == "v1beta1"
        and v["served"]
        and v["storage"]
        and v["subresources"] == {"status": {}}
    )
    assert [c["name"] for c in v["additionalPrinterColumns"]] == [
        "SERVICE-NAME",
        "SERVICE-PORT",
        "TARGET-TYPE",
        "ARN",
        "AGE",
    ]
    spec = v["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert set(spec["required"]) == {"serviceRef", "targetType"}
    assert spec["properties"]["targetType"]["enum"] == ["instance", "ip"]
    for f in (
        "targetGroupARN",
        "targetGroupName",
        "multiClusterTargetGroup",
        "targetType",
        "targetGroupProtocol",
        "serviceRef",
        "networking",
        "nodeSelector",
        "ipAddressType",
        "vpcID",
        "iamRoleArnToAssume",
        "assumeRoleExternalId",
    ):
        assert f in spec["properties"], f
    rules = " ".join(r["rule"] for r in spec["x-kubernetes-validations"])
    for f in ("targetGroupARN", "targetType", "ipAddressType", "vpcID", "nodeSelector"):
        assert f in rules and "oldSelf" in rules


def test_rbac_is_least_privilege() -> None:
    docs = list(yaml.safe_load_all((MANIFESTS / "rbac.yaml").read_text()))
    (role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    verbs = {
        (g, r): set(rule["verbs"])
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }
    # delete only where Ingress mode removes what it made: its TargetGroupBindings
    assert {k for k, v in verbs.items() if "delete" in v} == {
        ("elbv2.k8s.aws", "targetgroupbindings")}
    assert verbs[("", "pods")] == {"get", "list", "watch"}
    assert verbs[("", "pods/status")] == {"patch", "update"}


def test_metrics_and_health_endpoints() -> None:
    healthy = {"ok": True}
    srv = metrics.serve_metrics(0, healthy=lambda: healthy["ok"], ready=lambda: False)
    port = srv.server_address[1]
    try:
        metrics.RECONCILE_TOTAL.labels("success").inc()
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert "albc_reconcile_total" in body and "albc_aws_api_calls_total" in body
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).status == 200
        healthy["ok"] = False
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5)
    finally:
        srv.shutdown()
