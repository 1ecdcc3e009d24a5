"""Every built-in scenario validates; every kind of mistake gets a precise message."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from testbed.scenario import ScenarioError, builtin_names, docs, load_builtin, load_scenario
from testbed.scenario.cli import app
from testbed.scenario.loader import builtin_text, parse_scenario, validate_data

BUGS_AND_TWINS = {
    "no-gate-fast-rollout": "gated-fast-rollout",
    "gate-no-prestop": "full-recipe",
    "prestop-exceeds-grace": "full-recipe",
    "keepalive-shorter-than-idle": "keepalive-longer-than-idle",
    "no-pod-watch": "pod-watch",
    "backoff-requeue": "steady-requeue",
    "health-check-failing-gate": "health-check-fail-open",
    "pod-cache-race": "pod-cache-race-polled",
    "readiness-all-fail": "readiness-all-fail-health-check",
    "binding-replaced": "binding-replaced-gates-released",
    "webhook-down-ignore": "webhook-down-fail",
}
# bugs of one controller release and their twins on the release that fixed them (or, for a
# workaround, the same release with the workaround applied)
RELEASE_BUGS = {"no-pod-watch": ("v3.2.0", "v3.4.0"), "backoff-requeue": ("v2.6.0", "v2.10.0"),
                "pod-cache-race": ("v2.4.1", "v2.6.0"),
                "binding-replaced": ("v2.2.1", "v2.4.1")}
WORKAROUNDS = {"backoff-requeue-capped": "backoff-requeue"}


@pytest.mark.parametrize("name", builtin_names())
def test_builtin_validates_and_cites_an_issue(name: str) -> None:
    sc = load_builtin(name)
    assert sc.name == name
    assert "#" in sc.description or "troubleshooting" in sc.description
    # short enough for CI: bounded load and rollout
    if sc.load.duration_seconds is None:
        assert sc.load.max_duration_seconds <= 180
    else:
        assert sc.load.duration_seconds <= 60
    assert sc.target_group.health_check.interval_seconds <= 10


def test_builtin_set_covers_the_brief() -> None:
    names = set(builtin_names())
    assert set(BUGS_AND_TWINS) | set(BUGS_AND_TWINS.values()) | {"listener-missing"} <= names
    for bug, fixed in BUGS_AND_TWINS.items():
        assert load_builtin(bug).description.startswith("BUG")
        if fixed != "health-check-fail-open":
            assert load_builtin(fixed).expect.errors == "none", fixed


@pytest.mark.parametrize("bug", sorted(RELEASE_BUGS))
def test_release_bugs_are_pinned_to_the_release_and_their_twins_to_the_fix(bug: str) -> None:
    assert (load_builtin(bug).controller.version,
            load_builtin(BUGS_AND_TWINS[bug]).controller.version) == RELEASE_BUGS[bug]


@pytest.mark.parametrize("twin", sorted(WORKAROUNDS))
def test_workarounds_run_the_buggy_release_with_one_setting_changed(twin: str) -> None:
    fixed, bug = load_builtin(twin), load_builtin(WORKAROUNDS[twin])
    assert fixed.controller.version == bug.controller.version
    changed = {k for k, v in fixed.controller if getattr(bug.controller, k) != v}
    assert changed == {"max_backoff_seconds"}
    assert fixed.expect.errors == "none"


def test_recipe_orders_delays() -> None:
    sc = load_builtin("full-recipe")
    app_, tg, alb = sc.app, sc.target_group, sc.alb
    assert app_.readiness_gate
    assert (tg.deregistration_delay_seconds + alb.deregister_delay_seconds
            < app_.pre_stop_sleep_seconds < app_.termination_grace_period_seconds)


def test_listener_missing_expects_stall() -> None:
    sc = load_builtin("listener-missing")
    assert not sc.target_group.attach_listener and sc.expect.rollout_stalls


def test_defaults_filled() -> None:
    sc = parse_scenario("name: x\n")
    assert sc.app.replicas == 3 and sc.app.readiness_gate and sc.app.on_sigterm == "drain"
    assert sc.rollout.max_surge == "25%" and sc.rollout.count == 1
    assert sc.rollout.new_app.model_dump(exclude_none=True) == {}
    hc = sc.target_group.health_check
    assert (hc.path, hc.interval_seconds, hc.timeout_seconds, hc.healthy_threshold,
            hc.unhealthy_threshold, hc.matcher) == ("/healthz", 15, 5, 2, 2, "200")
    assert sc.target_group.deregistration_delay_seconds == 300
    assert sc.alb.idle_timeout_seconds == 60 and sc.alb.algorithm == "round_robin"
    assert sc.controller.requeue_seconds == 15 and sc.controller.pod_watch is None
    assert sc.controller.version is None  # the controller's latest release
    assert sc.load.until_rollout_done and sc.load.margin_seconds == 10
    assert sc.expect.errors == "none" and sc.expect.classes == ()


def test_new_app_overrides_only_the_new_version() -> None:
    sc = parse_scenario("name: x\nrollout: {newApp: {healthCode: 500, preStopSleepSeconds: 3}}")
    assert sc.app_for(False).health_code == 200
    assert sc.app_for(True).health_code == 500 and sc.app_for(True).pre_stop_sleep_seconds == 3


def test_classes_accept_ints_and_durations_numbers() -> None:
    sc = parse_scenario("name: x\nload: {durationSeconds: 20}\n"
                        "expect: {errors: expected, classes: [502, conn_refused]}")
    assert sc.expect.classes == ("502", "conn_refused") and sc.load.duration_seconds == 20.0


MISTAKES = [
    ("rollout: {maxSurge: lots}",
     "rollout.maxSurge: expected an integer or percentage like '25%', got 'lots'"),
    ("rollout: {maxUnavailable: -1}",
     "rollout.maxUnavailable: expected an integer or percentage like '25%', got -1"),
    ("rollout: {maxSurge: 150%}", "rollout.maxSurge: expected a percentage 0%-100%, got '150%'"),
    ("rollout: {maxSurge: 0, maxUnavailable: 0}",
     "rollout.maxUnavailable: expected non-zero when maxSurge is 0"),
    ("app: {replica: 2}", "app.replica: unknown key; did you mean 'replicas'?"),
    ("app: {prestopSleepSeconds: 2}",
     "app.prestopSleepSeconds: unknown key; did you mean 'preStopSleepSeconds'?"),
    ("app: {zzz: 2}", "app.zzz: unknown key; allowed keys: onSigterm, drainSeconds"),
    ("targetgroup: {}", "targetgroup: unknown key; did you mean 'targetGroup'?"),
    ("app: {replicas: three}", "app.replicas: expected an integer 1-50, got 'three'"),
    ("app: {replicas: 0}", "app.replicas: expected an integer 1-50, got 0"),
    ("app: {replicas: 2.5}", "app.replicas: expected an integer 1-50, got 2.5"),
    ("app: {readinessGate: 'yes'}", "app.readinessGate: expected true or false, got 'yes'"),
    ("app: {onSigterm: kill}", "app.onSigterm: expected one of exit, drain, ignore, got 'kill'"),
    ("app: {keepAliveTimeoutSeconds: 0}",
     "app.keepAliveTimeoutSeconds: expected a number 0.1-4000, got 0"),
    ("app: {healthCode: 700}", "app.healthCode: expected an integer 100-599, got 700"),
    ("app: [1]", "app: expected a mapping, got a list"),
    ("app:", "app: expected a mapping, got null (empty)"),
    ("alb: {algorithm: random}",
     "alb.algorithm: expected one of round_robin, least_outstanding_requests, weighted_random, "
     "got 'random'"),
    ("alb: {deregisterDelaySeconds: -1}",
     "alb.deregisterDelaySeconds: expected a number 0-600, got -1"),
    ("targetGroup: {healthCheck: {path: healthz}}",
     "targetGroup.healthCheck.path: expected a path starting with '/', got 'healthz'"),
    ("targetGroup: {healthCheck: {matcher: ok}}",
     "targetGroup.healthCheck.matcher: expected HTTP codes like '200', '200,202' or '200-299'"),
    ("targetGroup: {healthCheck: {healthyThreshold: 1}}",
     "targetGroup.healthCheck.healthyThreshold: expected an integer 2-10, got 1"),
    ("targetGroup: {healthCheck: {intervalSeconds: 2}}",
     "targetGroup.healthCheck.timeoutSeconds: expected less than intervalSeconds (2), got 5"),
    ("targetGroup: {slowStartSeconds: 10}",
     "targetGroup.slowStartSeconds: expected 0 or 30-900 (AWS limits), got 10"),
    ("targetGroup: {slowStartSeconds: 30}\nalb: {algorithm: least_outstanding_requests}",
     "targetGroup.slowStartSeconds: expected 0 with alb.algorithm least_outstanding_requests"),
    ("targetGroup: {attachListener: 1}",
     "targetGroup.attachListener: expected true or false, got 1"),
    ("controller: {podwatch: false}",
     "controller.podwatch: unknown key; did you mean 'podWatch'?"),
    ("controller: {requeueSeconds: 0}",
     "controller.requeueSeconds: expected a number 0.1-3600, got 0"),
    ("load: {durationSeconds: forever}",
     "load.durationSeconds: expected a number of seconds or 'untilRolloutDone', got 'forever'"),
    ("load: {durationSeconds: 0}",
     "load.durationSeconds: expected a number of seconds or 'untilRolloutDone', got 0"),
    ("load: {rate: fast}", "load.rate: expected a number 0.1-5000, got 'fast'"),
    ("expect: {errors: some}",
     "expect.errors: expected 'none' (the recipe holds) or 'expected' (a bug reproduces), "
     "got 'some'"),
    ("expect: {errors: expected, classes: [502, nope]}",
     "expect.classes[1]: expected an HTTP error code like '502' or one of conn_refused"),
    ("expect: {errors: expected, classes: [502, 502]}", "expect.classes: entries must be unique"),
    ("expect: {errors: expected, classes: 502}",
     "expect.classes: expected a list of error classes, got 502"),
    ("expect: {classes: ['502']}",
     "expect.classes: expected an empty list when expect.errors is 'none'"),
    ("expect: {minErrors: 3}", "expect.minErrors: expected 0 when expect.errors is 'none'"),
    ("expect: {rolloutStalls: maybe}", "expect.rolloutStalls: expected true or false"),
    ("expect: {maxRolloutSeconds: soon}",
     "expect.maxRolloutSeconds: expected a number of seconds or null, got 'soon'"),
    ("rollout: {newApp: {replicas: 2}}", "rollout.newApp.replicas: expected no such key"),
    ("rollout: {newApp: {helthCode: 500}}",
     "rollout.newApp.helthCode: unknown key; did you mean 'healthCode'?"),
    ("rollout: {count: 0}", "rollout.count: expected an integer 1-20, got 0"),
    ("description: 3", "description: expected a string"),
]


@pytest.mark.parametrize(("snippet", "message"), MISTAKES)
def test_mistake_messages(snippet: str, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario("name: x\n" + snippet, "t.yaml")
    assert any(e.startswith(message) for e in info.value.errors), info.value.errors


def test_top_level_mistakes() -> None:
    assert validate_data({})[1] == ["name: required key missing"]
    assert validate_data({"nam": "x"})[1] == ["nam: unknown key; did you mean 'name'?",
                                              "name: required key missing"]
    assert validate_data({"name": "x", "app": {"replicas": 2}})[0] is not None
    assert validate_data({"name": "Bad Name"})[1][0].startswith(
        "name: expected a DNS label")
    assert validate_data([1])[1] == [
        "(top level): expected a mapping of scenario fields, got a list"]


def test_all_problems_reported_at_once() -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario("name: x\napp: {replicas: 0, onSigterm: kill}\nalb: {algorithm: x}")
    assert len(info.value.errors) == 3
    assert "3 problems" in str(info.value)


def test_yaml_syntax_error_has_a_line() -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario("name: x\napp: {replicas: 3\n", "bad.yaml")
    assert info.value.errors[0].startswith("line ")
    assert "bad.yaml" in str(info.value)


def test_load_by_path_and_by_name(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(builtin_text("full-recipe"))
    assert load_scenario(f).name == "full-recipe"
    assert load_scenario("full-recipe").name == "full-recipe"
    with pytest.raises(ScenarioError, match="cannot read file"):
        load_scenario(tmp_path / "missing.yaml")
    with pytest.raises(ScenarioError, match="did you mean 'full-recipe'"):
        load_builtin("full-recipes")


def test_builtin_yaml_is_plain_data() -> None:
    for name in builtin_names():
        assert isinstance(yaml.safe_load(builtin_text(name)), dict)


def test_cli_validate_list_show(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["validate", "full-recipe"])
    assert r.exit_code == 0 and "OK" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nrollout: {maxSurge: lots}\n")
    r = runner.invoke(app, ["validate", str(bad)])
    assert r.exit_code == 1
    assert "rollout.maxSurge: expected an integer or percentage like '25%', got 'lots'" in r.output
    r = runner.invoke(app, ["list"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and all(n in r.output for n in builtin_names())
    r = runner.invoke(app, ["show", "listener-missing"])
    assert r.exit_code == 0 and '"attachListener": false' in r.output
    r = runner.invoke(app, ["schema"])
    assert r.exit_code == 0
    schema = json.loads(r.output)
    assert schema["$schema"].endswith("2020-12/schema")
    assert "readinessGate" in schema["$defs"]["App"]["properties"]


def test_field_tables_in_docs_are_current() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "scenarios.md").read_text()
    assert docs.render_into(doc) == doc, (
        "docs/scenarios.md is stale: run `testbed scenario docs --write docs/scenarios.md`")


def test_field_tables_name_every_field() -> None:
    tables = docs.field_tables()
    for key in ("app.preStopSleepSeconds", "targetGroup.healthCheck.matcher",
                "controller.podWatch", "expect.maxRegistrationLagSeconds", "load.durationSeconds"):
        section, _, field = key.partition(".")
        assert f"`{field}`" in tables.split(f"`{section}`", 1)[1], key


def test_json_schema_accepts_the_builtins_and_refuses_unknown_keys() -> None:
    validator = jsonschema.Draft202012Validator(docs.json_schema())
    for name in builtin_names():
        assert not list(validator.iter_errors(yaml.safe_load(builtin_text(name)))), name
    assert list(validator.iter_errors({"name": "x", "app": {"replica": 2}}))


def test_errors_carry_yaml_line_and_column() -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario("name: x\napp:\n  replicas: 0\n  zzz: 1\n", "t.yaml")
    assert "app.replicas: expected an integer 1-50, got 0 (line 3, column 3)" in \
        info.value.errors
    assert any(e.startswith("app.zzz: unknown key") and e.endswith("(line 4, column 3)")
               for e in info.value.errors)
