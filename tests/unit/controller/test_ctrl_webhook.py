"""Webhook decisions (injection, duplicate ARN), cert generation, the HTTPS server, and the
refusal of real AWS endpoints."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from ctrl_helpers import ARN, NS, namespace, pod, service, tgb
from typer.testing import CliRunner

from controller import certs
from controller.config import RealAWSRefused, check_aws_endpoint
from controller.main import app
from controller.testing import FakeKube
from controller.webhook import WebhookServer, gates_to_inject, mutate_pod, validate_tgb

GATE = "target-health.elbv2.k8s.aws/web-tgb"


def kube_with(
    inject: bool = True, target_type: str = "ip", selector: dict[str, str] | None = None
) -> FakeKube:
    kube = FakeKube()
    kube.put("namespace", namespace(inject=inject))
    kube.put("service", service(selector=selector))
    kube.put("tgb", tgb(target_type=target_type))
    return kube


def review(obj: dict[str, Any], op: str = "CREATE") -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {"uid": str(uuid.uuid4()), "operation": op, "namespace": NS, "object": obj},
    }


def patch_of(resp: dict[str, Any]) -> list[dict[str, Any]]:
    r = resp["response"]
    return json.loads(base64.b64decode(r["patch"])) if "patch" in r else []


def new_pod(labels: dict[str, str] | None = None, gates: list[str] | None = None) -> dict[str, Any]:
    p = pod("x", None, labels=labels, gates=gates)
    p["metadata"].pop("namespace")  # pods created by ReplicaSets arrive without it
    p.pop("status")
    return p


def test_injects_gate_when_namespace_labelled_and_selector_matches() -> None:
    out = mutate_pod(kube_with(), review(new_pod()))
    assert out["response"]["allowed"] and out["response"]["patchType"] == "JSONPatch"
    assert patch_of(out) == [
        {"op": "add", "path": "/spec/readinessGates", "value": [{"conditionType": GATE}]}
    ]


def test_appends_to_existing_gates() -> None:
    out = mutate_pod(kube_with(), review(new_pod(gates=["other"])))
    assert patch_of(out) == [
        {"op": "add", "path": "/spec/readinessGates/-", "value": {"conditionType": GATE}}
    ]


@pytest.mark.parametrize(
    "case",
    ["selector-mismatch", "gate-present", "instance", "empty-selector", "update"],
)
def test_no_injection(case: str) -> None:
    kube = kube_with(
        target_type="instance" if case == "instance" else "ip",
        selector={} if case == "empty-selector" else None,
    )
    p = new_pod(
        labels={"app": "other"} if case == "selector-mismatch" else None,
        gates=["web-tgb"] if case == "gate-present" else None,
    )
    out = mutate_pod(kube, review(p, op="UPDATE" if case == "update" else "CREATE"))
    assert out["response"]["allowed"] and "patch" not in out["response"]


def test_one_gate_per_matching_tgb() -> None:
    kube = kube_with()
    kube.put("tgb", tgb("second", arn=ARN + "2"))
    assert gates_to_inject(kube, NS, new_pod()) == ["target-health.elbv2.k8s.aws/second", GATE]


def test_validating_webhook_denies_second_binding_of_an_arn() -> None:
    kube = kube_with()
    out = validate_tgb(kube, review(tgb("copy")))
    assert out["response"]["allowed"] is False
    assert "already bound" in out["response"]["status"]["message"]
    assert validate_tgb(kube, review(tgb("web-tgb"), op="UPDATE"))["response"]["allowed"]
    assert validate_tgb(kube, review(tgb("new", arn=ARN + "x")))["response"]["allowed"]


def test_cert_chain_and_sans() -> None:
    c = certs.generate("alb-controller-webhook", "alb-system")
    ca = x509.load_pem_x509_certificate(c.ca_pem)
    leaf = x509.load_pem_x509_certificate(c.cert_pem)
    leaf.verify_directly_issued_by(ca)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "alb-controller-webhook.alb-system.svc" in sans.get_values_for_type(x509.DNSName)


def test_gen_webhook_manifests_cli(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        app,
        [
            "gen-webhook-manifests",
            "--namespace",
            "alb-system",
            "--service",
            "alb-controller-webhook",
            "--failure-policy",
            "Fail",
            "--out",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 0, r.output
    mwc = yaml.safe_load((tmp_path / "mutating-webhook.yaml").read_text())
    vwc = yaml.safe_load((tmp_path / "validating-webhook.yaml").read_text())
    sec = yaml.safe_load((tmp_path / "webhook-secret.yaml").read_text())
    hook = mwc["webhooks"][0]
    assert (
        hook["failurePolicy"] == "Fail"
        and hook["clientConfig"]["service"]["path"] == "/mutate-v1-pod"
    )
    assert (
        hook["namespaceSelector"]["matchExpressions"][0]["key"]
        == "elbv2.k8s.aws/pod-readiness-gate-inject"
    )
    assert (
        vwc["webhooks"][0]["clientConfig"]["service"]["path"]
        == "/validate-elbv2-k8s-aws-v1beta1-targetgroupbinding"
    )
    ca = base64.b64decode(hook["clientConfig"]["caBundle"])
    leaf = x509.load_pem_x509_certificate(base64.b64decode(sec["data"]["tls.crt"]))
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(ca))
    bad = CliRunner().invoke(
        app, ["gen-webhook-manifests", "--failure-policy", "Maybe", "--out", str(tmp_path)]
    )
    assert bad.exit_code == 2


def test_https_server_round_trip(tmp_path: Path) -> None:
    c = certs.generate("svc", "ns", extra_names=["localhost"])
    (tmp_path / "tls.crt").write_bytes(c.cert_pem)
    (tmp_path / "tls.key").write_bytes(c.key_pem)
    srv = WebhookServer(kube_with(), 0, str(tmp_path), host="127.0.0.1")
    srv.start()
    stalled = socket.create_connection(("127.0.0.1", srv.port))  # never sends a ClientHello
    try:
        ctx = ssl.create_default_context(cadata=c.ca_pem.decode())
        conn = http.client.HTTPSConnection("localhost", srv.port, context=ctx, timeout=5)
        conn.request(
            "POST",
            "/mutate-v1-pod",
            json.dumps(review(new_pod())),
            {"Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        out = json.loads(resp.read())
        assert resp.status == 200 and patch_of(out)[0]["value"] == [{"conditionType": GATE}]
    finally:
        stalled.close()
        srv.stop()


@pytest.mark.parametrize(
    "url",
    [
        "https://elasticloadbalancing.us-east-1.amazonaws.com",
        "http://elasticloadbalancing.us-east-1.amazonaws.com",
        "https://elasticloadbalancing.cn-north-1.amazonaws.com.cn",
        "https://elasticloadbalancing.us-east-1.api.aws",
        "https://52.94.1.1",
    ],
)
def test_refuses_real_aws(url: str) -> None:
    with pytest.raises(RealAWSRefused):
        check_aws_endpoint(url)
    assert check_aws_endpoint(url, allow_real_aws=True) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://fake-aws:5000",
        "http://172.18.0.5:4566",
        "https://10.0.0.1:443",
        "http://localhost:5000",
    ],
)
def test_accepts_local_endpoints(url: str) -> None:
    assert check_aws_endpoint(url) == url


def test_cli_run_exits_2_on_real_aws_and_requires_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    import controller.main as m

    monkeypatch.setattr(m, "run_controller", lambda cfg: None)
    r = CliRunner().invoke(
        app, ["run", "--aws-endpoint-url", "https://elasticloadbalancing.amazonaws.com"]
    )
    assert r.exit_code == 2
    assert CliRunner().invoke(app, ["run"]).exit_code == 2
    seen: list[Any] = []
    monkeypatch.setattr(m, "run_controller", seen.append)
    r = CliRunner().invoke(
        app,
        ["run"],
        env={
            "ALBC_AWS_ENDPOINT_URL": "http://fake:5000",
            "ALBC_POD_WATCH": "false",
            "ALBC_BACKOFF_REQUEUE": "1",
        },
    )
    assert r.exit_code == 0, r.output
    assert not seen[0].pod_watch and seen[0].backoff_requeue and seen[0].endpoint_slices
    r = CliRunner().invoke(
        app,
        [
            "run",
            "--aws-endpoint-url",
            "http://f:1",
            "--legacy-endpoints",
            "--targetgroupbinding-requeue-duration",
            "3",
        ],
    )
    assert not seen[1].endpoint_slices and seen[1].requeue_seconds == 3.0


def test_namespace_label_is_left_to_the_namespace_selector() -> None:
    # ALBC's mutator never re-reads the label: the API server only calls for labelled
    # namespaces, and a cache that lags a label change must not drop the gate
    kube = kube_with(inject=False)
    assert gates_to_inject(kube, NS, new_pod()) == [GATE]


def test_a_binding_being_deleted_still_injects_its_gate() -> None:
    kube = kube_with()
    t = kube.get("tgb", NS, "web-tgb")
    t["metadata"]["deletionTimestamp"] = "2026-11-30T10:00:00Z"
    kube.put("tgb", t)
    assert gates_to_inject(kube, NS, new_pod()) == [GATE]


def test_webhooks_of_a_namespaced_instance_answer_for_its_namespace_only() -> None:
    from controller.certs import generate, render_manifests

    docs = render_manifests(generate("svc-x", "alb-system"), "alb-system", "svc-x",
                            watch_namespace="shop", name_suffix="-x")
    mutating, validating = docs["mutating-webhook.yaml"], docs["validating-webhook.yaml"]
    assert mutating["metadata"]["name"].endswith("-x")
    assert validating["metadata"]["name"].endswith("-x")
    only = {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["shop"]}
    assert only in mutating["webhooks"][0]["namespaceSelector"]["matchExpressions"]
    assert validating["webhooks"][0]["namespaceSelector"]["matchExpressions"] == [only]
    every = render_manifests(generate("svc", "alb-system"), "alb-system", "svc")
    assert every["validating-webhook.yaml"]["webhooks"][0]["namespaceSelector"] == {
        "matchExpressions": []}
