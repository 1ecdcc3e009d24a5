"""The scenario's `workload` section, the workload rollout triggers and their rules, the
request mix (`load.requests`, `load.host`) and `expect.baseline`: what is accepted, and the
exact line each mistake gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.scenario import ScenarioError, load_scenario, parse_scenario
from testbed.scenario.model import Request

WL = "workload: {path: app.yaml}\n"


def _errors(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario("name: x\n" + text, "t.yaml")
    return info.value.errors


def test_workload_defaults() -> None:
    sc = parse_scenario("name: x\n" + WL)
    w = sc.workload
    assert w is not None
    assert (w.path, w.deployment, w.service, w.port) == ("app.yaml", None, None, None)
    assert w.readiness_gate and w.drain_seconds == 0 and w.keep_alive_timeout_seconds is None
    assert sc.readiness_gate
    assert sc.rollout.trigger == "restart"


def test_workload_every_field() -> None:
    sc = parse_scenario("name: x\nworkload:\n  path: k8s/\n  deployment: web\n  service: web-svc\n"
                        "  port: http\n  readinessGate: false\n  drainSeconds: 5\n"
                        "  keepAliveTimeoutSeconds: 75\n")
    w = sc.workload
    assert w is not None
    assert (w.path, w.deployment, w.service, w.port) == ("k8s/", "web", "web-svc", "http")
    assert w.drain_seconds == 5.0 and w.keep_alive_timeout_seconds == 75.0
    assert not w.readiness_gate and not sc.readiness_gate
    assert parse_scenario("name: x\nworkload: {path: a, port: 8080}").workload.port == 8080  # type: ignore[union-attr]


def test_no_workload_means_the_demo_app() -> None:
    sc = parse_scenario("name: x\napp: {readinessGate: false}")
    assert sc.workload is None and not sc.readiness_gate


@pytest.mark.parametrize(("snippet", "message"), [
    ("workload: {}", "workload.path: required key missing (line 2, column 1)"),
    ("workload: {path: ''}", "workload.path: expected a file or directory of Kubernetes YAML, "
     "relative to the scenario file, got '' (line 2, column 12)"),
    ("workload: {path: a.yaml, port: 0}",
     "workload.port: expected a Service port number or name, got 0 (line 2, column 26)"),
    ("workload: {path: a.yaml, port: 70000}",
     "workload.port: expected a Service port number or name, got 70000 (line 2, column 26)"),
    ("workload: {path: a.yaml, drainSeconds: -1}",
     "workload.drainSeconds: expected a number 0-3600, got -1 (line 2, column 26)"),
    ("workload: {path: a.yaml, keepAliveTimeoutSeconds: 0}",
     "workload.keepAliveTimeoutSeconds: expected a number of seconds or null, got 0 "
     "(line 2, column 26)"),
    ("workload: {path: a.yaml, readinessGate: 'no'}",
     "workload.readinessGate: expected true or false, got 'no' (line 2, column 26)"),
    ("workload: {path: a.yaml, deploy: x}",
     "workload.deploy: unknown key; did you mean 'deployment'? (line 2, column 26)"),
])
def test_workload_mistakes(snippet: str, message: str) -> None:
    assert message in _errors(snippet)


def test_each_trigger_is_accepted_alone() -> None:
    for body, trigger in (("{}", "restart"), ("{restart: true}", "restart"),
                          ("{image: 'web:2'}", "image"),
                          ("{image: 'web:2', container: app}", "image"),
                          ("{patch: {spec: {minReadySeconds: 3}}}", "patch"),
                          ("{manifests: v2/}", "manifests"),
                          ("{restart: false, image: 'web:2'}", "image")):
        assert parse_scenario(f"name: x\n{WL}rollout: {body}").rollout.trigger == trigger, body


def test_restart_may_repeat() -> None:
    assert parse_scenario(f"name: x\n{WL}rollout: {{restart: true, count: 3}}").rollout.count == 3
    assert parse_scenario(f"name: x\n{WL}rollout: {{count: 2}}").rollout.count == 2


@pytest.mark.parametrize(("snippet", "message"), [
    ("rollout: {restart: true, image: 'a:1'}",
     "rollout.image: expected one rollout trigger, got restart and image (line 3, column 26)"),
    ("rollout: {image: 'a:1', patch: {spec: {}}}",
     "rollout.patch: expected one rollout trigger, got image and patch (line 3, column 25)"),
    ("rollout:\n  patch: {spec: {paused: false}}\n  manifests: v2/\n",
     "rollout.manifests: expected one rollout trigger, got patch and manifests "
     "(line 5, column 3)"),
    ("rollout: {container: web}",
     "rollout.container: expected only together with rollout.image (line 3, column 11)"),
    ("rollout: {image: 'a:1', count: 2}",
     "rollout.count: expected 1 with rollout.image (a second rollout to the same image changes "
     "nothing), got 2 (line 3, column 25)"),
    ("rollout: {manifests: v2, count: 2}",
     "rollout.count: expected 1 with rollout.manifests (a second rollout to the same manifests "
     "changes nothing), got 2 (line 3, column 26)"),
    ("rollout: {patch: [1]}",
     "rollout.patch: expected a mapping (a Deployment patch), got a list (line 3, column 11)"),
    ("app: {replicas: 2}",
     "app: expected no app section with workload (the demo app and your manifests are "
     "alternatives) (line 3, column 1)"),
    ("rollout: {newApp: {healthCode: 500}}",
     "rollout.newApp: expected no newApp with workload (it changes the demo app); use restart, "
     "image, patch or manifests (line 3, column 11)"),
])
def test_trigger_rules_with_workload(snippet: str, message: str) -> None:
    assert message in _errors(WL + snippet)


def test_strategy_keys_are_refused_with_workload_both_at_once() -> None:
    assert _errors(WL + "rollout: {maxSurge: 1, maxUnavailable: 0}") == [
        "rollout.maxSurge: expected no such key with workload: your Deployment's own strategy "
        "applies; set it in your manifest (line 3, column 11)",
        "rollout.maxUnavailable: expected no such key with workload: your Deployment's own "
        "strategy applies; set it in your manifest (line 3, column 24)"]


def test_an_empty_app_section_counts_as_given() -> None:
    assert any(e.startswith("app: expected no app section") for e in _errors(WL + "app: {}"))


@pytest.mark.parametrize("key", ["restart: true", "image: 'a:1'", "patch: {spec: {}}",
                                 "manifests: v2/"])
def test_triggers_need_a_workload(key: str) -> None:
    name = key.split(":")[0]
    assert _errors(f"rollout: {{{key}}}") == [
        f"rollout.{name}: expected only with workload (the demo app rolls with rollout.newApp) "
        "(line 2, column 11)"]


def test_container_without_workload_or_image() -> None:
    # the rollout's own rule fails first; pydantic then skips the scenario-wide rules
    assert _errors("rollout: {container: app}") == [
        "rollout.container: expected only together with rollout.image (line 2, column 11)"]


def test_demo_app_rollout_is_unchanged() -> None:
    sc = parse_scenario("name: x\nrollout: {maxSurge: 1, maxUnavailable: 0, "
                        "newApp: {healthCode: 500}}")
    assert sc.rollout.max_surge == 1 and sc.app_for(True).health_code == 500


def test_empty_patch_is_not_a_silent_second_trigger() -> None:
    with pytest.raises(ScenarioError):
        parse_scenario(f"name: x\n{WL}rollout: {{restart: true, patch: {{}}}}")


def test_empty_patch_needs_a_workload_too() -> None:
    with pytest.raises(ScenarioError):
        parse_scenario("name: x\nrollout: {patch: {}}")


def test_empty_image_message_is_readable() -> None:
    errors = _errors(WL + "rollout: {image: ''}")
    assert errors == ["rollout.image: expected an image reference like repo/app:v2, got '' "
                      "(line 3, column 11)"]


def test_requests_default_to_one_get() -> None:
    load = parse_scenario("name: x").load
    assert load.requests == (Request(),) and load.host is None
    r = load.requests[0]
    assert (r.path, r.method, r.headers, r.body, r.weight) == ("/", "GET", {}, "", 1.0)


def test_requests_every_field() -> None:
    load = parse_scenario(
        "name: x\nload:\n  host: api.example.com\n  requests:\n"
        "    - {path: '/items?page=2', weight: 3}\n"
        "    - path: /items\n      method: POST\n      body: '{\"a\": 1}'\n"
        "      headers: {Content-Type: application/json, X-Trace: 'on'}\n").load
    assert load.host == "api.example.com"
    first, second = load.requests
    assert (first.path, first.method, first.weight) == ("/items?page=2", "GET", 3.0)
    assert (second.method, second.body) == ("POST", '{"a": 1}')
    assert second.headers == {"Content-Type": "application/json", "X-Trace": "on"}


def test_managed_headers_are_refused_whatever_their_case() -> None:
    assert _errors("load:\n  requests:\n    - path: /\n"
                   "      headers: {Host: x, content-length: '3', X-Ok: y}\n") == [
        "load.requests[0].headers: expected no Host, content-length header (the load generator "
        "sets it; use load.host for Host) (line 5, column 7)"]
    for name in ("Transfer-Encoding", "CONNECTION"):
        errors = _errors(f"load: {{requests: [{{}}, {{headers: {{{name}: x}}}}]}}")
        assert errors == [f"load.requests[1].headers: expected no {name} header (the load "
                          "generator sets it; use load.host for Host) (line 2, column 24)"]


@pytest.mark.parametrize(("snippet", "message"), [
    ("load: {host: 'a b'}",
     "load.host: expected a host name like api.example.com, got 'a b' (line 2, column 8)"),
    ("load: {host: 'a.com/x'}",
     "load.host: expected a host name like api.example.com, got 'a.com/x' (line 2, column 8)"),
    ("load: {requests: [{path: nope}]}",
     "load.requests[0].path: expected a path starting with '/' (no spaces), got 'nope' "
     "(line 2, column 20)"),
    ("load: {requests: [{path: '/a b'}]}",
     "load.requests[0].path: expected a path starting with '/' (no spaces), got '/a b' "
     "(line 2, column 20)"),
    ("load: {requests: [{method: 'GE T'}]}",
     "load.requests[0].method: expected an HTTP method like GET, got 'GE T' (line 2, column 20)"),
    ("load: {requests: [{}, {wieght: 2}]}",
     "load.requests[1].wieght: unknown key; did you mean 'weight'? (line 2, column 24)"),
    ("load: {requests: {path: /}}",
     "load.requests: expected a non-empty list of requests (path, method, headers, body, "
     "weight), got a mapping (line 2, column 8)"),
    ("load: {requests: [{body: 3}]}",
     "load.requests[0].body: expected a string, got 3 (line 2, column 20)"),
])
def test_request_mistakes(snippet: str, message: str) -> None:
    assert message in _errors(snippet)


def test_request_weight_must_be_positive() -> None:
    errors = _errors("load: {requests: [{weight: 0}]}")
    assert len(errors) == 1
    assert errors[0].startswith("load.requests[0].weight: expected a number")
    assert errors[0].endswith("got 0 (line 2, column 20)")


def test_request_header_values_are_one_line() -> None:
    errors = _errors('load: {requests: [{headers: {X-A: "a\\r\\nX-B: b"}}]}')
    assert len(errors) == 1 and errors[0].startswith("load.requests[0].headers")


def test_empty_request_list_is_refused() -> None:
    errors = _errors("load: {requests: []}")
    assert len(errors) == 1
    assert errors[0].startswith("load.requests: expected a non-empty list of requests")


def test_baseline_defaults_healthy_and_unhealthy_needs_no_gate() -> None:
    assert parse_scenario("name: x").expect.baseline == "healthy"
    sc = parse_scenario("name: x\nworkload: {path: a, readinessGate: false}\n"
                        "expect: {baseline: unhealthy}")
    assert sc.expect.baseline == "unhealthy"
    sc = parse_scenario("name: x\napp: {readinessGate: false}\nexpect: {baseline: unhealthy}")
    assert sc.expect.baseline == "unhealthy"


@pytest.mark.parametrize("snippet", [
    "expect: {baseline: unhealthy}",  # the demo app's gate, on by default
    "workload: {path: a}\nexpect: {baseline: unhealthy}",
    "app: {readinessGate: true}\nexpect: {baseline: unhealthy}",
])
def test_unhealthy_baseline_with_a_gate(snippet: str) -> None:
    line = snippet.count("\n") + 2
    assert _errors(snippet) == [
        "expect.baseline: expected healthy with a readiness gate: the gate keeps pods unready "
        "while their targets are unhealthy, so no Deployment could become Available; set "
        f"readinessGate: false (line {line}, column 10)"]


def test_unhealthy_baseline_checks_the_workload_gate_not_the_app_one() -> None:
    # the app section is refused with a workload, but the gate rule must read the workload's
    errors = _errors("workload: {path: a, readinessGate: false}\napp: {readinessGate: true}\n"
                     "expect: {baseline: unhealthy}")
    assert not any(e.startswith("expect.baseline") for e in errors)
    assert any(e.startswith("app: expected no app section") for e in errors)


def test_baseline_values() -> None:
    assert _errors("expect: {baseline: sick}") == [
        "expect.baseline: expected one of healthy, unhealthy, got 'sick' (line 2, column 10)"]


def test_load_scenario_resolves_paths_relative_to_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "scenarios"
    d.mkdir()
    f = d / "mine.yaml"
    f.write_text("name: mine\nworkload: {path: k8s/app.yaml}\nrollout: {manifests: ../v2}\n")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    sc = load_scenario(Path("..") / "scenarios" / "mine.yaml")
    assert sc.workload is not None
    assert sc.workload.path == str(d / "k8s" / "app.yaml")
    assert sc.rollout.manifests == str(d / ".." / "v2")
    assert Path(sc.rollout.manifests).resolve() == tmp_path / "v2"
    assert sc.rollout.trigger == "manifests"


def test_load_scenario_keeps_absolute_paths_and_other_fields(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("name: s\nworkload: {path: /srv/app, deployment: web, port: 80}\n"
                 "rollout: {image: 'web:2'}\nload: {rate: 7}\n")
    sc = load_scenario(f)
    assert sc.workload is not None
    assert (sc.workload.path, sc.workload.deployment, sc.workload.port) == ("/srv/app", "web", 80)
    assert sc.rollout.manifests is None and sc.rollout.image == "web:2"
    assert sc.load.rate == 7


def test_load_scenario_without_workload_is_untouched(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("name: s\napp: {replicas: 2}\n")
    sc = load_scenario(f)
    assert sc.workload is None and sc.app.replicas == 2


def test_parse_scenario_leaves_paths_as_written() -> None:
    sc = parse_scenario("name: x\nworkload: {path: k8s}\nrollout: {manifests: v2}")
    assert sc.workload is not None
    assert (sc.workload.path, sc.rollout.manifests) == ("k8s", "v2")
