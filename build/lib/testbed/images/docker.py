"""Thin wrappers over the docker CLI for what image building needs."""

from __future__ import annotations

from testbed import proc


def image_exists(ref: str) -> bool:
    return proc.ok(["docker", "image", "inspect", ref])


def try_pull(ref: str, timeout: float = 60) -> bool:
    """Pull if a registry is reachable; False (quickly, on offline machines) otherwise."""
    return proc.ok(["docker", "pull", "-q", ref], timeout=timeout)


def image_size(ref: str) -> int:
    out = proc.run(["docker", "image", "inspect", "-f", "{{.Size}}", ref], log_name="inspect")
    return int(out.strip())
