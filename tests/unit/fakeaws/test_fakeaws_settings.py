"""The settings declaration and everything derived from it: the engine's flags, the
`testbed fakeaws serve` options, the API->engine command line, /_testbed/config validation."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, get_args

import pytest
from typer.testing import CliRunner

from testbed.fakeaws import cli
from testbed.fakeaws.engine.main import parse_args
from testbed.fakeaws.settings import (
    PRESETS,
    RUNTIME_KEYS,
    SETTINGS,
    FakeAwsSettings,
    RuntimeKey,
    SettingsError,
    engine_argv,
    markdown_table,
    runtime_update,
    scoped_runtime_update,
    settings_for,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "fakeaws.md"


def test_runtime_keys_are_the_propagation_delays_and_connect_timeout() -> None:
    # testbed/stack/fakeaws.py and the scenario runner POST these names.
    assert {"register_delay", "deregister_delay", "connect_timeout"} == RUNTIME_KEYS
    assert all(set(p) <= RUNTIME_KEYS for p in PRESETS.values())


BAD_BODIES: list[Any] = [
    {"register_delay": math.nan}, {"deregister_delay": math.inf},
    {"register_delay": -math.inf}, {"register_delay": -1}, {"deregister_delay": 3601},
    {"connect_timeout": 0}, {"register_delay": "5"}, {"register_delay": True},
    {"register_delay": None}, {"register_delay": [1]}, {"nope": 1}, {"port": 1234},
    {"register_delay": 1, "connect_timeout": -1},
]


@pytest.mark.parametrize("payload", [*BAD_BODIES, [("register_delay", 1)], "register_delay=1"])
def test_runtime_update_refuses(payload: Any) -> None:
    with pytest.raises(SettingsError):
        runtime_update(payload)


def test_runtime_key_type_names_the_runtime_keys() -> None:
    assert set(get_args(RuntimeKey)) == RUNTIME_KEYS


@pytest.mark.parametrize("payload", BAD_BODIES)
def test_scoped_update_refuses_what_the_global_one_refuses(payload: dict[str, Any]) -> None:
    with pytest.raises(SettingsError) as scoped:
        scoped_runtime_update({"target_group_arn": "arn:tg/a", **payload})
    with pytest.raises(SettingsError) as unscoped:
        runtime_update(payload)
    assert str(scoped.value) == str(unscoped.value)


@pytest.mark.parametrize("arn", [None, 5, "", "  ", ["arn:tg/a"], {"arn": "x"}, True])
def test_scoped_update_refuses_a_scope_that_is_not_an_arn(arn: Any) -> None:
    with pytest.raises(SettingsError, match="target_group_arn"):
        scoped_runtime_update({"target_group_arn": arn, "register_delay": 1})


def test_scoped_update_splits_scope_and_values() -> None:
    assert scoped_runtime_update({"target_group_arn": "arn:tg/a", "register_delay": 2}) == (
        "arn:tg/a", {"register_delay": 2.0})
    assert scoped_runtime_update({"target_group_arn": "arn:tg/a"}) == ("arn:tg/a", {})
    assert scoped_runtime_update({"connect_timeout": 3}) == (None, {"connect_timeout": 3.0})
    with pytest.raises(SettingsError):
        scoped_runtime_update(["target_group_arn"])


def test_runtime_update_accepts_numbers_and_applies_all_or_nothing() -> None:
    assert runtime_update({"register_delay": 2, "connect_timeout": 0.5}) == {
        "register_delay": 2.0, "connect_timeout": 0.5}
    s = FakeAwsSettings()
    with pytest.raises(SettingsError, match="register_delay"):
        s.apply_runtime({"deregister_delay": 4, "register_delay": math.nan})
    assert s == FakeAwsSettings()
    assert s.apply_runtime({"deregister_delay": 4}) == {"deregister_delay": 4.0}
    assert s.deregister_delay == 4.0


def test_engine_flags_are_generated_with_the_declared_defaults() -> None:
    settings, control_port = parse_args([])
    assert settings == FakeAwsSettings() and control_port == 0
    names = {s.name for s in settings_for("engine")}
    assert {"register_delay", "deregister_delay", "connect_timeout", "listener_host",
            "min_health_check_interval", "log_level", "loop", "dataplane_workers"} == names


def test_api_passes_every_engine_setting_through_the_command_line() -> None:
    chosen = FakeAwsSettings(listener_host="0.0.0.0", register_delay=1.5,
                             deregister_delay=2.25, min_health_check_interval=0.2,
                             connect_timeout=3, log_level="debug", loop="auto", port=9,
                             api_nice=0)
    parsed, _ = parse_args(["--control-port", "0", *engine_argv(chosen)])
    assert parsed.values_for("engine") == chosen.values_for("engine")


@pytest.mark.parametrize("argv", [
    ["--register-delay", "nan"], ["--register-delay", "-1"], ["--connect-timeout", "0"],
    ["--min-health-check-interval", "0"], ["--loop", "twisted"], ["--port", "1"],
])
def test_engine_refuses_bad_flags(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2


@pytest.fixture()
def served(monkeypatch: pytest.MonkeyPatch) -> list[FakeAwsSettings]:
    got: list[FakeAwsSettings] = []
    monkeypatch.setattr(cli, "serve", lambda settings, ready: got.append(settings))
    return got


def _serve(*args: str) -> Any:
    return CliRunner().invoke(cli.app, ["serve", *args])


def test_serve_help_lists_every_setting() -> None:
    out = _serve("--help")
    assert out.exit_code == 0
    flat = " ".join(out.output.replace("│", " ").split())
    for s in SETTINGS:
        assert s.flag in flat or s.flag[:20] in flat, s.flag  # rich may cut long flags


def test_serve_options_default_to_the_declaration(served: list[FakeAwsSettings]) -> None:
    assert _serve().exit_code == 0
    assert served == [FakeAwsSettings()]


def test_serve_options_and_presets(served: list[FakeAwsSettings]) -> None:
    assert _serve("--preset", "realistic", "--register-delay", "3", "--log-level", "debug",
                  "--listener-host", "0.0.0.0", "--port", "0").exit_code == 0
    s = served[-1]
    assert (s.register_delay, s.deregister_delay) == (3.0, 30.0)
    assert (s.log_level, s.listen_on, s.port) == ("DEBUG", "0.0.0.0", 0)
    assert _serve("--preset", "realistic").exit_code == 0
    assert (served[-1].register_delay, served[-1].deregister_delay) == (15.0, 30.0)


@pytest.mark.parametrize("args", [
    ["--register-delay", "nan"], ["--register-delay", "-1"], ["--api-nice", "20"],
    ["--port", "65536"], ["--loop", "twisted"], ["--preset", "slow"],
    ["--min-health-check-interval", "0"],
])
def test_serve_refuses_bad_options(served: list[FakeAwsSettings], args: list[str]) -> None:
    out = _serve(*args)
    assert out.exit_code == 2, out.output
    assert served == []


def test_docs_table_is_the_declaration() -> None:
    """docs/fakeaws.md carries the table `testbed fakeaws settings` prints."""
    assert markdown_table() in DOC.read_text()
    assert _cmd("settings").output.strip() == markdown_table()


def _cmd(*args: str) -> Any:
    return CliRunner().invoke(cli.app, list(args))
