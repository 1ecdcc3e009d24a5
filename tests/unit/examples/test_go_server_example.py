"""examples/go-server without a cluster: the manifests say what the README says they say (no
namespace, failing form without preStop, fixed form with the #1719 timing rule), the scenarios
load and point at them, and the Go code passes `go vet`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.scenario.loader import load_scenario

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "go-server"
IMAGE = "albtb-example/go-server:v1"


def _docs(form: str) -> list[dict[str, Any]]:
    docs = []
    for f in sorted((EXAMPLE / "manifests" / form).glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(f.read_text()) if d is not None]
    return docs


def _container(form: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(pod spec, the `server` container) of the form's Deployment."""
    (dep,) = [d for d in _docs(form) if d["kind"] == "Deployment"]
    spec = dep["spec"]["template"]["spec"]
    (server,) = [c for c in spec["containers"] if c["name"] == "server"]
    return spec, server


def _env(container: dict[str, Any], name: str) -> str:
    return next(e["value"] for e in container["env"] if e["name"] == name)


def test_every_manifest_is_namespace_free() -> None:
    files = sorted((EXAMPLE / "manifests").rglob("*.yaml"))
    assert len(files) == 7  # failing/, fixed/, ingress/ (fixed/'s two files linked + Ingress)
    for f in files:
        for doc in yaml.safe_load_all(f.read_text()):
            assert doc is not None, f
            assert "namespace" not in doc["metadata"], f
            assert doc["kind"] != "Namespace", f


@pytest.mark.parametrize("form", ["failing", "fixed"])
def test_deployment_and_service(form: str) -> None:
    docs = {d["kind"]: d for d in _docs(form)}
    assert sorted(docs) == ["Deployment", "Service"]
    dep, svc = docs["Deployment"], docs["Service"]
    assert dep["metadata"]["name"] == svc["metadata"]["name"] == "go-server"
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()
    assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": 8080,
                                     "protocol": "TCP"}]
    _, server = _container(form)
    assert server["image"] == IMAGE
    assert server["imagePullPolicy"] == "IfNotPresent"
    assert server["readinessProbe"]["httpGet"]["path"] == "/ready"
    pod_name = next(e for e in server["env"] if e["name"] == "POD_NAME")
    assert pod_name["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_failing_form_has_no_prestop() -> None:
    spec, server = _container("failing")
    assert "lifecycle" not in server
    assert spec["terminationGracePeriodSeconds"] == 30


def test_fixed_form_follows_the_1719_rule() -> None:
    """deregistration propagation + deregistration delay < preStop sleep < grace - drain."""
    sc = load_scenario(EXAMPLE / "fixed.yaml")
    assert sc.workload is not None
    spec, server = _container("fixed")
    command = server["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    sleep = int(command[1])
    drain = float(_env(server, "DRAIN_SECONDS"))
    assert drain == sc.workload.drain_seconds == 5
    deregistration = sc.alb.deregister_delay_seconds + sc.target_group.deregistration_delay_seconds
    assert deregistration == 5 + 3
    assert sleep > deregistration
    assert spec["terminationGracePeriodSeconds"] > sleep + drain


def test_forms_differ_only_by_the_fixes() -> None:
    failing, fixed = _docs("failing"), _docs("fixed")
    for doc in fixed:
        if doc["kind"] == "Deployment":
            spec = doc["spec"]["template"]["spec"]
            spec["terminationGracePeriodSeconds"] = 30
            for c in spec["containers"]:
                c.pop("lifecycle")
    assert fixed == failing


@pytest.mark.parametrize("form", ["failing", "fixed"])
def test_scenario_runs_its_form(form: str) -> None:
    sc = load_scenario(EXAMPLE / f"{form}.yaml")
    assert sc.workload is not None
    assert sc.name == f"go-server-{form}"
    assert Path(sc.workload.path) == EXAMPLE / "manifests" / form
    assert (sc.workload.deployment, sc.workload.service, sc.workload.port) == \
        ("go-server", "go-server", 80)
    _, server = _container(form)
    assert sc.workload.keep_alive_timeout_seconds == float(_env(server, "KEEPALIVE_SECONDS"))
    assert sc.workload.keep_alive_timeout_seconds > sc.alb.idle_timeout_seconds
    assert (sc.expect.errors == "none") == (form == "fixed")


def test_build_script_tags_the_manifests_image() -> None:
    assert f"tag=${{TAG:-{IMAGE}}}" in (EXAMPLE / "build.sh").read_text()


@pytest.mark.skipif(shutil.which("go") is None, reason="needs go on PATH")
def test_go_vet() -> None:
    env = {**os.environ, "GOPROXY": "off", "CGO_ENABLED": "0"}  # stdlib only: no downloads
    out = subprocess.run(["go", "vet", "./..."], cwd=EXAMPLE, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


def test_ingress_form_is_the_fixed_form_behind_its_own_ingress() -> None:
    """manifests/ingress/ links fixed/'s files (no copy to drift) and adds an Ingress whose
    annotations keep the #1719 rule with fixed.yaml's numbers: a run of ingress.yaml applies
    it through the controller (docs/own-workload.md, "Your Ingress")."""
    ingress_dir = EXAMPLE / "manifests" / "ingress"
    for name in ("deployment.yaml", "service.yaml"):
        assert (ingress_dir / name).is_symlink()
        assert (ingress_dir / name).resolve() == (EXAMPLE / "manifests" / "fixed" / name)
    (ing,) = [d for d in _docs("ingress") if d["kind"] == "Ingress"]
    ann = ing["metadata"]["annotations"]
    a = "alb.ingress.kubernetes.io/"
    assert ann[a + "target-type"] == "ip"
    assert ann[a + "target-group-attributes"] == "deregistration_delay.timeout_seconds=3"
    paths = ing["spec"]["rules"][0]["http"]["paths"]
    assert paths[0]["backend"]["service"]["name"] == "go-server"
    sc = load_scenario(EXAMPLE / "ingress.yaml")
    assert sc.ingress is not None and sc.workload is not None
    assert sc.load.host == ing["spec"]["rules"][0]["host"]
    _, server = _container("ingress")
    # propagation 5 s + deregistration delay 3 s < preStop sleep
    assert sc.alb.deregister_delay_seconds + 3 < int(server["lifecycle"]["preStop"]["exec"][
        "command"][1])
