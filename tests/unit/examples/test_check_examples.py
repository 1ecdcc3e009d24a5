"""`testbed check` over the worked example: the failing form is flagged for its missing preStop
sleep (exit 1, for CI), the fixed form passes (exit 0)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from testbed.cli import app

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "go-server"


def _check(scenario: str) -> tuple[int, dict[str, str]]:
    result = CliRunner().invoke(app, ["check", str(EXAMPLE / scenario), "--json"])
    findings = json.loads(result.stdout)["findings"]
    return result.exit_code, {f["rule"]: f["severity"] for f in findings}


def test_failing_form_is_flagged_for_its_prestop_sleep() -> None:
    code, severities = _check("failing.yaml")
    assert code == 1
    assert [rule for rule, sev in severities.items() if sev == "violation"] == ["prestop-sleep"]


def test_fixed_form_passes_every_rule() -> None:
    code, severities = _check("fixed.yaml")
    assert code == 0
    assert set(severities.values()) == {"ok"}
