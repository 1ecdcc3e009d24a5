"""The Docker engine the cluster runs on (see scripts/ensure-docker.sh for the details)."""

from __future__ import annotations

from testbed import proc
from testbed.console import step
from testbed.paths import SCRIPTS_DIR


def ensure_docker() -> None:
    if proc.ok(["docker", "info"], timeout=20):
        return
    with step("starting a Docker engine"):
        proc.run(["bash", SCRIPTS_DIR / "ensure-docker.sh"], log_name="ensure-docker")
