"""Every rule's passing and failing case, from real manifest dicts through facts to findings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from testbed.check.facts import Facts, Settings, facts_from_manifests
from testbed.check.rules import RULE_IDS, RULES, Finding, evaluate, failed

Docs = Callable[..., list[dict[str, Any]]]
# The fake ALB settings of the built-in gate-no-prestop / full-recipe pair.
SCENARIO = Settings(deregistration_delay_seconds=3, propagation_seconds=5,
                    idle_timeout_seconds=60, drain_seconds=2, keep_alive_timeout_seconds=75,
                    source="scenario test")
SLEEP_10 = {"exec": {"command": ["sleep", "10"]}}


def _finding(docs: list[dict[str, Any]], rule: str, settings: Settings = SCENARIO) -> Finding:
    found = {f.rule: f for f in evaluate(facts_from_manifests(docs, settings=settings))}
    return found[rule]


def test_rule_table() -> None:
    assert RULE_IDS == ("readiness-gate", "prestop-sleep", "grace-period", "readiness-probe",
                        "max-unavailable", "keep-alive")
    assert len({r.id for r in RULES}) == len(RULES)


def test_the_recipe_passes_every_rule(make_docs: Docs) -> None:
    docs = make_docs(pre_stop=SLEEP_10, grace=20)
    findings = evaluate(facts_from_manifests(docs, settings=SCENARIO))
    assert [f.rule for f in findings] == list(RULE_IDS)
    assert {f.rule: f.severity for f in findings} == dict.fromkeys(RULE_IDS, "ok")
    assert not failed(findings)
    for f in findings:  # every finding says why and where that comes from
        assert f.reason and f.references
        assert all(ref.startswith("https://") for ref in f.references)


@pytest.mark.parametrize(("kwargs", "settings", "severity", "text"), [
    ({"namespace_label": True}, SCENARIO, "ok", "readiness gate on"),
    ({"namespace_label": False}, SCENARIO, "violation", "Namespace/shop lacks the label"),
    ({"namespace_label": None}, SCENARIO, "unknown", "cannot tell"),
    ({"namespace_label": None}, replace(SCENARIO, readiness_gate=False), "violation",
     "readinessGate false"),
    ({"namespace_label": None, "template_gate": True}, SCENARIO, "ok", "pod template"),
])
def test_readiness_gate(make_docs: Docs, kwargs: dict[str, Any], settings: Settings,
                        severity: str, text: str) -> None:
    f = _finding(make_docs(**kwargs), "readiness-gate", settings)
    assert f.severity == severity and text in f.verdict
    assert any("pod_readiness_gate" in r for r in f.references)
    assert any(r.endswith("/issues/1124") for r in f.references)


def test_prestop_missing_says_the_numbers(make_docs: Docs) -> None:
    f = _finding(make_docs(), "prestop-sleep")
    assert f.severity == "violation"
    assert f.verdict == ("preStop sleep 0 s; needs at least 8 s (deregistration propagation 5 s "
                         "+ deregistration delay 3 s)")
    assert any(r.endswith("/issues/1719") for r in f.references)


@pytest.mark.parametrize(("hook", "severity", "text"), [
    ({"exec": {"command": ["sleep", "7"]}}, "violation", "preStop sleep 7 s; needs at least 8 s"),
    ({"exec": {"command": ["sleep", "8"]}}, "ok", "preStop sleep 8 s >= 8 s"),
    ({"sleep": {"seconds": 12}}, "ok", "preStop sleep 12 s >= 8 s"),
    ({"exec": {"command": ["sh", "-c", "sleep 3"]}}, "violation", "preStop sleep 3 s"),
    ({"exec": {"command": ["/drain.sh"]}}, "warning", "not a sleep this check can measure"),
])
def test_prestop_sleep(make_docs: Docs, hook: dict[str, Any], severity: str, text: str) -> None:
    f = _finding(make_docs(pre_stop=hook, grace=60), "prestop-sleep")
    assert f.severity == severity and text in f.verdict


def test_prestop_without_settings_names_the_assumptions(make_docs: Docs) -> None:
    f = _finding(make_docs(pre_stop=SLEEP_10, grace=60), "prestop-sleep", Settings())
    assert f.severity == "violation"
    assert "needs at least 310 s" in f.verdict
    assert "propagation 10 s (assumed: AWS does not document it)" in f.verdict
    assert "deregistration delay 300 s (assumed: AWS default)" in f.verdict


@pytest.mark.parametrize(("grace", "hook", "severity", "text"), [
    (12, SLEEP_10, "violation", "terminationGracePeriodSeconds 12 s; needs more than 12 s "
     "(preStop sleep 10 s + app drain 2 s)"),  # equal is not enough
    (13, SLEEP_10, "ok", "terminationGracePeriodSeconds 13 s > 12 s"),
    (None, SLEEP_10, "ok", "terminationGracePeriodSeconds 30 s (not set: the Kubernetes "
     "default) > 12 s"),
    (8, {"exec": {"command": ["sleep", "20"]}}, "violation", "needs more than 22 s"),
    (1, None, "violation", "needs more than 2 s (preStop sleep 0 s + app drain 2 s)"),
])
def test_grace_period(make_docs: Docs, grace: int | None, hook: dict[str, Any] | None,
                      severity: str, text: str) -> None:
    f = _finding(make_docs(pre_stop=hook, grace=grace), "grace-period")
    assert f.severity == severity and text in f.verdict
    assert any("container-lifecycle-hooks" in r for r in f.references)


def test_readiness_probe(make_docs: Docs) -> None:
    assert _finding(make_docs(probe=True), "readiness-probe").severity == "ok"
    f = _finding(make_docs(probe=False, sidecar=True), "readiness-probe")
    assert f.severity == "violation" and "container 'web'" in f.verdict


@pytest.mark.parametrize(("replicas", "strategy", "severity", "text"), [
    (3, {"type": "Recreate"}, "violation", "strategy Recreate: all 3 old pods"),
    (2, {"rollingUpdate": {"maxUnavailable": "100%"}}, "violation",
     "maxUnavailable 100% -> 2 and maxSurge 25% -> 1 of 2 replicas: every pod may go at once"),
    # one replica, no surge: Kubernetes turns 0/0 into maxUnavailable 1, the only pod
    (1, {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "25%"}}, "violation",
     "maxUnavailable 25% -> 1 and maxSurge 0 -> 0 of 1 replica: every pod may go at once"),
    (1, None, "ok", "maxUnavailable 25% -> 0 and maxSurge 25% -> 1 of 1 replica"),
    (4, {"rollingUpdate": {"maxUnavailable": "50%", "maxSurge": 0}}, "ok",
     "at least 2 keep serving"),
    (3, {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}, "ok", "at least 3 keep serving"),
])
def test_max_unavailable(make_docs: Docs, replicas: int, strategy: dict[str, Any] | None,
                         severity: str, text: str) -> None:
    f = _finding(make_docs(replicas=replicas, strategy=strategy), "max-unavailable")
    assert f.severity == severity and text in f.verdict
    assert any("#rolling-update-deployment" in r for r in f.references)


@pytest.mark.parametrize(("keep_alive", "severity", "text"), [
    (None, "unknown", "it must be above the ALB idle timeout 60 s"),
    (5, "violation", "app keep-alive timeout 5 s <= ALB idle timeout 60 s"),
    (60, "violation", "app keep-alive timeout 60 s <= ALB idle timeout 60 s"),
    (75, "ok", "app keep-alive timeout 75 s > ALB idle timeout 60 s"),
])
def test_keep_alive(make_docs: Docs, keep_alive: float | None, severity: str, text: str) -> None:
    settings = replace(SCENARIO, keep_alive_timeout_seconds=keep_alive)
    f = _finding(make_docs(), "keep-alive", settings)
    assert f.severity == severity and text in f.verdict
    assert any("connection-idle-timeout" in r for r in f.references)


def test_only_violations_fail() -> None:
    def one(sev: Any) -> list[Finding]:
        return [Finding("x", sev, "v", "r", ())]

    assert failed(one("violation"))
    assert not failed(one("warning")) and not failed(one("unknown")) and not failed(one("ok"))


def test_rules_read_only_facts() -> None:
    """A hand-made Facts is enough: the rules parse nothing."""
    facts = Facts(deployment="d", container="c", replicas=2, strategy="RollingUpdate",
                  max_surge=1, max_unavailable=0, max_surge_raw=1, max_unavailable_raw=0,
                  pre_stop="exec sleep 4", pre_stop_seconds=4.0, grace_seconds=3.0,
                  readiness_probe=True, readiness_gate=True, readiness_gate_source="test",
                  deregistration_delay_seconds=1.0, propagation_seconds=2.0,
                  idle_timeout_seconds=60.0, drain_seconds=0.0, keep_alive_timeout_seconds=None)
    got = {f.rule: f.severity for f in evaluate(facts)}
    assert got == {"readiness-gate": "ok", "prestop-sleep": "ok", "grace-period": "violation",
                   "readiness-probe": "ok", "max-unavailable": "ok", "keep-alive": "unknown"}
    none = {f.rule: f for f in evaluate(replace(facts, replicas=0, max_unavailable=0))}
    assert none["max-unavailable"].severity == "warning"
    assert "replicas 0" in none["max-unavailable"].verdict
