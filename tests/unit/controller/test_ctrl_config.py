"""The `alb-controller run` CLI is derived from the Config declaration: every switch is an
option with its ALBC_* env var and its declared default, the names the manifest and the testbed
pass keep working, inverted flags invert, durations read as seconds or Go durations, and the
flag table in docs/controller.md is the one the declaration renders."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

import controller.main as m
from controller import presets
from controller.config import Config, Flag, flags, markdown_table, parse_duration, presets_of

ROOT = Path(__file__).resolve().parents[3]
MANIFESTS = ROOT / "testbed/assets/manifests/controller"
ENDPOINT = "http://fake-aws:5000"


def run_cli(
    monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str] | None = None
) -> Config:
    seen: list[Config] = []
    monkeypatch.setattr(m, "run_controller", seen.append)
    monkeypatch.setenv("POD_NAME", "ctrl-0")
    r = CliRunner().invoke(m.app, ["run", *args], env=env)
    assert r.exit_code == 0, r.output
    (cfg,) = seen
    return cfg


def test_every_switch_is_a_run_option_with_its_env_var_and_nothing_else() -> None:
    cmd = typer.main.get_command(m.app).commands["run"]  # type: ignore[attr-defined]
    options = {
        (tuple(p.opts), tuple(p.secondary_opts), p.envvar) for p in cmd.params if p.name != "help"
    }
    assert options == {
        ((fl.option,), (f"--{fl.off}",) if fl.off else (), fl.envvar) for _, fl in flags()
    }
    assert ("--targetgroupbinding-max-exponential-backoff-delay",) in {o for o, _, _ in options}
    assert (("--pod-watch",), ("--no-pod-watch",), "ALBC_POD_WATCH") in options


def test_cli_defaults_are_the_declared_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = run_cli(monkeypatch, ["--aws-endpoint-url", ENDPOINT])
    # the empty Lease namespace means "the pod's own"; outside a pod that is alb-system
    assert cfg == Config(
        aws_endpoint_url=ENDPOINT, pod_name="ctrl-0", leader_election_namespace="alb-system"
    )


def _sample(f: dataclasses.Field[Any], fl: Flag) -> tuple[str, Any]:
    """An env value for the field and the field value it must produce."""
    if fl.inverted:
        return "true", False
    if fl.duration:
        return "2m30s", 150.0
    if fl.choices:
        other = next(c for c in fl.choices if c != f.default)
        return other, other
    if f.name == "behave_like":
        return "v2.6.0", "v2.6.0"
    if isinstance(f.default, bool):
        return ("false", False) if f.default else ("true", True)
    if isinstance(f.default, int):
        return "7", 7
    return "http://e:1", "http://e:1"


@pytest.mark.parametrize("name", [f.name for f, _ in flags()])
def test_each_switch_reads_its_env_var(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    ((f, fl),) = [(f, fl) for f, fl in flags() if f.name == name]
    raw, want = _sample(f, fl)
    env = {"ALBC_AWS_ENDPOINT_URL": ENDPOINT, fl.envvar: raw}
    cfg = run_cli(monkeypatch, [], env)
    assert want != f.default  # else the env var could be ignored unnoticed
    assert getattr(cfg, name) == want


def test_names_the_manifest_passes_keep_working(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = yaml.safe_load_all((MANIFESTS / "deployment.yaml").read_text())
    dep = next(d for d in docs if d["kind"] == "Deployment")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert c["command"] == ["alb-controller", "run"]
    assert not [e for e in c["env"] if e["name"].startswith("ALBC_")]  # settings are flags
    # the deployer (testbed/stack/controller.py) appends the endpoint flag
    cfg = run_cli(monkeypatch, [*c["args"], f"--aws-endpoint-url={ENDPOINT}"])
    assert (cfg.leader_elect, cfg.metrics_port, cfg.webhook_port) == (True, 8080, 9443)
    assert cfg.aws_endpoint_url == ENDPOINT and cfg.requeue_seconds == 15.0


def test_names_the_testbed_passes_keep_working(monkeypatch: pytest.MonkeyPatch) -> None:
    # the env form of every setting still works for hand-made deployments
    cfg = run_cli(
        monkeypatch,
        ["--no-pod-watch", "--backoff-requeue", "--legacy-endpoints"],
        {"ALBC_AWS_ENDPOINT_URL": ENDPOINT, "ALBC_TARGETGROUPBINDING_REQUEUE_DURATION": "0.5"},
    )
    assert (cfg.pod_watch, cfg.backoff_requeue, cfg.endpoint_slices) == (False, True, False)
    assert cfg.requeue_seconds == 0.5
    # testbed/stack/controller.py + testbed/scenario/plan.py: every setting as `--flag=value`
    cfg = run_cli(
        monkeypatch,
        [f"--aws-endpoint-url={ENDPOINT}", "--targetgroupbinding-requeue-duration=2.0"],
    )
    assert (cfg.aws_endpoint_url, cfg.requeue_seconds) == (ENDPOINT, 2.0)


def test_inverted_flags_turn_their_field_off(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = run_cli(
        monkeypatch,
        ["--aws-endpoint-url", ENDPOINT, "--disable-endpoints-fail-open", "--disable-webhook"],
    )
    assert (cfg.fail_open, cfg.enable_webhook) == (False, False)


def test_bad_duration_exits_2() -> None:
    r = CliRunner().invoke(
        m.app, ["run", "--aws-endpoint-url", ENDPOINT, "--sync-period", "10 minutes"]
    )
    assert r.exit_code == 2
    assert "sync-period" in r.output


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15", 15.0),
        ("0.25", 0.25),
        ("500ms", 0.5),
        ("16m40s", 1000.0),
        ("1h", 3600.0),
        ("1.5m", 90.0),
        ("0", 0.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "10x", "5m garbage", "-1", "-1s", "nan", "inf"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_docs_flag_table_is_the_generated_one() -> None:
    doc = (ROOT / "docs/controller.md").read_text()
    begin, end = "<!-- flags:begin -->\n", "<!-- flags:end -->"
    assert doc.count(begin) == 1 and doc.count(end) == 1
    table = doc[doc.index(begin) + len(begin) : doc.index(end)]
    assert table == markdown_table(), "regenerate it: .venv/bin/python -m controller.config"


def test_config_defaults_are_the_latest_preset() -> None:
    cfg = Config(aws_endpoint_url=ENDPOINT)
    assert cfg.behave_like == presets.LATEST
    assert {k: getattr(cfg, k) for k in presets_of(presets.LATEST)} == presets_of(presets.LATEST)


def test_every_preset_sets_every_preset_switch_and_nothing_unknown() -> None:
    switches = {f.name for f, fl in flags() if fl.preset}
    for p in presets.PRESETS:
        assert set(presets.settings(p.version)) == switches | {presets.POD_FAILURE_POLICY}
        Config.behaving_like(p.version, aws_endpoint_url=ENDPOINT)  # every value is valid


def test_behave_like_sets_the_release_and_explicit_switches_win_both_ways(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = run_cli(monkeypatch, ["--aws-endpoint-url", ENDPOINT, "--behave-like", "v2.6.0"])
    assert cfg == Config.behaving_like(
        "v2.6.0", aws_endpoint_url=ENDPOINT, pod_name="ctrl-0",
        leader_election_namespace="alb-system")
    assert (cfg.pod_watch, cfg.missing_pod, cfg.checkpoint, cfg.endpoint_slices) == (
        False, "poll", "off", False)
    cfg = run_cli(monkeypatch, ["--aws-endpoint-url", ENDPOINT, "--behave-like", "v2.6.0",
                                "--pod-watch", "--enable-endpoint-slices", "--checkpoint",
                                "gate-flip"])
    assert (cfg.pod_watch, cfg.endpoint_slices, cfg.checkpoint) == (True, True, "gate-flip")
    assert cfg.missing_pod == "poll"  # not given: still the release's
    cfg = run_cli(monkeypatch, ["--aws-endpoint-url", ENDPOINT, "--no-pod-watch",
                                "--fixed-requeue"])
    assert (cfg.pod_watch, cfg.backoff_requeue, cfg.behave_like) == (False, False, "v3.5.0")


@pytest.mark.parametrize(
    ("asked", "modelled"),
    [("v2.4.0", "v2.2.1"), ("2.4.1", "v2.4.1"), ("v2.13.3", "v2.12.0"), ("v9.0.0", "v3.5.0")],
)
def test_a_release_between_presets_behaves_as_the_newest_preset_before_it(
    asked: str, modelled: str
) -> None:
    assert presets.modelled(asked) == modelled


@pytest.mark.parametrize("args", [["--behave-like", "v1.1.0"], ["--behave-like", "latest"],
                                  ["--missing-pod", "retry"]])
def test_bad_release_or_choice_exits_2_naming_it(args: list[str]) -> None:
    r = CliRunner().invoke(m.app, ["run", "--aws-endpoint-url", ENDPOINT, *args])
    assert r.exit_code == 2
    assert args[1] in r.output


def test_docs_carry_the_preset_table() -> None:
    doc = (ROOT / "docs/controller.md").read_text()
    assert presets.markdown_table() in doc
