"""`testbed check`: exit codes 0 / 1 / 2, text and JSON output, manifests vs scenarios."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from testbed.cli import app

Docs = Callable[..., list[dict[str, Any]]]
TG = "alb.ingress.kubernetes.io/target-group-attributes"
runner = CliRunner()


def _write(path: Path, docs: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def _good(make_docs: Docs) -> list[dict[str, Any]]:
    # deregistration delay 30 s from the annotation + 10 s assumed propagation = 40 s
    return make_docs(pre_stop={"exec": {"command": ["sleep", "45"]}}, grace=60,
                     service_annotations={TG: "deregistration_delay.timeout_seconds=30"})


def test_good_manifests_exit_0(make_docs: Docs, tmp_path: Path) -> None:
    r = runner.invoke(app, ["check", str(_write(tmp_path / "app.yaml", _good(make_docs)))])
    assert r.exit_code == 0, r.output
    assert "✓ prestop-sleep" in r.stdout and "preStop sleep 45 s >= 40 s" in r.stdout
    assert "? keep-alive" in r.stdout  # unknown without a scenario: not a failure
    assert "OK: 1 unknown, 5 ok" in r.stdout


def test_violation_exit_1_with_reason_and_references(make_docs: Docs, tmp_path: Path) -> None:
    docs = make_docs(grace=60, probe=False)  # no preStop, no readinessProbe
    r = runner.invoke(app, ["check", str(_write(tmp_path / "app.yaml", docs))])
    assert r.exit_code == 1, r.output
    assert "✗ prestop-sleep" in r.stdout and "✗ readiness-probe" in r.stdout
    assert "preStop sleep 0 s; needs at least 310 s" in r.stdout
    assert "see https://github.com/kubernetes-sigs/aws-load-balancer-controller/issues/1719" \
        in r.stdout
    assert "note: numbers marked 'assumed' are defaults" in r.stdout
    assert "FAIL: 2 violations, 1 unknown, 3 ok" in r.stdout


def test_directory_of_manifests(make_docs: Docs, tmp_path: Path) -> None:
    for i, doc in enumerate(_good(make_docs)):
        _write(tmp_path / f"{i}-{doc['kind'].lower()}.yaml", [doc])
    r = runner.invoke(app, ["check", str(tmp_path)])
    assert r.exit_code == 0, r.output


def test_json_output(make_docs: Docs, tmp_path: Path) -> None:
    path = _write(tmp_path / "app.yaml", make_docs(probe=False, pre_stop={"sleep": {
        "seconds": 9}}, grace=20))
    r = runner.invoke(app, ["check", str(path), "--scenario", "full-recipe", "--json"])
    assert r.exit_code == 1, r.output
    data = json.loads(r.stdout)
    assert data["ok"] is False
    sev = {f["rule"]: f["severity"] for f in data["findings"]}
    assert sev["readiness-probe"] == "violation" and sev["prestop-sleep"] == "ok"
    assert data["facts"]["propagation_seconds"] == 5.0 and data["facts"]["assumed"] == []
    assert data["facts"]["settings_source"] == "scenario full-recipe"
    assert all(f["references"] for f in data["findings"])


@pytest.mark.parametrize(("name", "code", "text"), [
    ("full-recipe", 0, "OK: 6 ok"),
    ("gate-no-prestop", 1, "preStop sleep 0 s; needs at least 8 s (deregistration propagation 5 s"
     " + deregistration delay 3 s)"),
    ("prestop-exceeds-grace", 1, "terminationGracePeriodSeconds 8 s; needs more than 20 s"),
    ("no-gate-fast-rollout", 1, "✗ readiness-gate"),
    ("keepalive-shorter-than-idle", 1, "app keep-alive timeout 0.2 s <= ALB idle timeout 60 s"),
])
def test_builtin_scenarios_demo_manifests(name: str, code: int, text: str) -> None:
    r = runner.invoke(app, ["check", "--scenario", name])
    assert r.exit_code == code, r.output
    assert text in r.stdout


def test_scenario_with_workload_as_path(make_docs: Docs, tmp_path: Path) -> None:
    (tmp_path / "k8s").mkdir()
    _write(tmp_path / "k8s" / "app.yaml", make_docs(
        namespace_label=None, pre_stop={"exec": {"command": ["sleep", "9"]}}, grace=15))
    sc = tmp_path / "mine.yaml"
    sc.write_text("name: mine\nworkload: {path: k8s/app.yaml, drainSeconds: 2,"
                  " keepAliveTimeoutSeconds: 65}\n"
                  "targetGroup: {deregistrationDelaySeconds: 3}\n"
                  "alb: {deregisterDelaySeconds: 5}\n")
    r = runner.invoke(app, ["check", str(sc)])  # the path is relative to the scenario file
    assert r.exit_code == 0, r.output
    assert "readinessGate true" in r.stdout and "preStop sleep 9 s >= 8 s" in r.stdout
    r = runner.invoke(app, ["check", "--scenario", str(sc)])
    assert r.exit_code == 0, r.output
    sc.write_text(sc.read_text().replace("drainSeconds: 2", "drainSeconds: 6"))
    r = runner.invoke(app, ["check", str(sc)])
    assert r.exit_code == 1 and "needs more than 15 s (preStop sleep 9 s + app drain 6 s)" \
        in r.stdout


def test_several_deployments_need_a_name(make_docs: Docs, tmp_path: Path) -> None:
    docs = _good(make_docs)
    other = json.loads(json.dumps(next(d for d in docs if d["kind"] == "Deployment")))
    other["metadata"]["name"] = "worker"
    path = _write(tmp_path / "app.yaml", [*docs, other])
    r = runner.invoke(app, ["check", str(path)])
    assert r.exit_code == 2
    r = runner.invoke(app, ["check", str(path), "--deployment", "web"])
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("case", ["missing", "no-deployment", "not-yaml", "no-args",
                                  "bad-scenario", "scenario-twice", "bad-container"])
def test_bad_input_exit_2(make_docs: Docs, tmp_path: Path, case: str) -> None:
    good = _write(tmp_path / "app.yaml", _good(make_docs))
    args = {
        "missing": ["check", str(tmp_path / "nope.yaml")],
        "no-deployment": ["check", str(_write(tmp_path / "svc.yaml", [
            d for d in _good(make_docs) if d["kind"] != "Deployment"]))],
        "not-yaml": ["check", str(tmp_path / "broken.yaml")],
        "no-args": ["check"],
        "bad-scenario": ["check", str(good), "--scenario", "no-such-scenario"],
        "scenario-twice": ["check", str(tmp_path / "sc.yaml"), "--scenario", "full-recipe"],
        "bad-container": ["check", str(good), "--container", "nginx"],
    }[case]
    (tmp_path / "broken.yaml").write_text("kind: Deployment\n  bad: [indent\n")
    (tmp_path / "sc.yaml").write_text("name: sc\n")
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert "error:" in r.stderr and "Traceback" not in r.output
