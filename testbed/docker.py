"""Every docker CLI call the testbed makes, and the engine they need.

One wrapper, as cloud-provider-kind keeps its container calls in one package
(https://github.com/kubernetes-sigs/cloud-provider-kind/tree/main/pkg/container): the rest of
the testbed says what it wants from a container or image and never spells docker arguments, so
a change of engine or flags happens here only. Built on testbed.proc, which keeps each call's
output for the error message. Shell scripts run through proc (rootfs and node image builds,
testbed/assets/scripts/ensure-docker.sh) call docker themselves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from testbed import proc
from testbed.console import step
from testbed.paths import SCRIPTS_DIR


def engine_answers(timeout: float = 20) -> bool:
    return proc.ok(["docker", "info"], timeout=timeout)


def ensure_engine() -> None:
    """Start a Docker engine when none answers (testbed/assets/scripts/ensure-docker.sh says
    how)."""
    if engine_answers():
        return
    with step("starting a Docker engine"):
        proc.run(["bash", SCRIPTS_DIR / "ensure-docker.sh"], log_name="ensure-docker")


def image_exists(ref: str) -> bool:
    return proc.ok(["docker", "image", "inspect", ref])


def try_pull(ref: str, timeout: float = 60) -> bool:
    """Pull if a registry is reachable; False (quickly, on offline machines) otherwise."""
    return proc.ok(["docker", "pull", "-q", ref], timeout=timeout)


def image_id(ref: str) -> str:
    """The local image's ID ("sha256:..." of its config), which containerd keeps on import."""
    return proc.run(["docker", "image", "inspect", "-f", "{{.Id}}", ref],
                    log_name="docker-image-id").strip()


def node_image_id(node: str, ref: str) -> str | None:
    """ID of image `ref` in the containerd of kind node container `node` (through the CRI, as
    `kind load` itself checks); None when the node lacks it or cannot answer."""
    out = proc.attempt(["docker", "exec", node, "crictl", "inspecti", "-o", "json", ref],
                       timeout=30)
    if not out.ok:
        return None
    try:
        found: str = json.loads(out.output)["status"]["id"]
    except (ValueError, KeyError, TypeError):
        return None
    return found


def image_size(ref: str) -> int:
    out = proc.run(["docker", "image", "inspect", "-f", "{{.Size}}", ref],
                   log_name="docker-image-size")
    return int(out.strip())


def build(context: Path, tag: str, build_args: Mapping[str, str] | None = None) -> None:
    args: list[str | Path] = ["docker", "build", "-q", "-t", tag]
    for key, value in (build_args or {}).items():
        args += ["--build-arg", f"{key}={value}"]
    proc.run([*args, context], log_name=f"docker-build-{tag.split(':')[0].replace('/', '-')}")


def tag(source: str, target: str) -> None:
    proc.run(["docker", "tag", source, target], log_name="docker-tag")


def run_detached(name: str, image: str, command: Sequence[str], *, network: str,
                 cap_add: Sequence[str] = (), publish: Sequence[str] = (),
                 env: Mapping[str, str] | None = None,
                 labels: Mapping[str, str] | None = None) -> None:
    """`docker run -d`; `publish` entries are docker's -p syntax (ip:hostPort:containerPort)."""
    args = ["docker", "run", "-d", "--name", name, "--network", network]
    for cap in cap_add:
        args += ["--cap-add", cap]
    for spec in publish:
        args += ["-p", spec]
    for key, value in (env or {}).items():
        args += ["-e", f"{key}={value}"]
    for key, value in (labels or {}).items():
        args += ["--label", f"{key}={value}"]
    proc.run([*args, image, *command], log_name=f"docker-run-{name}")


def run_like(name: str, template: str) -> None:
    """`docker run -d` a container `name` (also its hostname) as `template` was run: its image,
    labels, network, privileges, security options, tmpfs, bind mounts, anonymous volumes,
    restart policy, environment and cgroup namespace (a kind node like an existing one)."""
    t = inspect(template)
    host, cfg = t["HostConfig"], t["Config"]
    args = ["docker", "run", "-d", "--name", name, "--hostname", name, "--tty"]
    if host.get("Privileged"):
        args.append("--privileged")
    for opt in host.get("SecurityOpt") or []:
        args += ["--security-opt", opt]
    for path, opts in (host.get("Tmpfs") or {}).items():
        args += ["--tmpfs", f"{path}:{opts}" if opts else path]
    for bind in host.get("Binds") or []:
        args += ["--volume", bind]
    for m in t.get("Mounts") or []:
        if m.get("Type") == "volume":
            args += ["--volume", m["Destination"]]  # a fresh anonymous volume, not the same
    restart = host.get("RestartPolicy") or {}
    if restart.get("Name"):
        retries = restart.get("MaximumRetryCount") or 0
        args += ["--restart", restart["Name"] + (f":{retries}" if retries else "")]
    if host.get("CgroupnsMode"):
        args += ["--cgroupns", host["CgroupnsMode"]]
    for net in (t["NetworkSettings"].get("Networks") or {}):
        args += ["--network", net]
    for key, value in (cfg.get("Labels") or {}).items():
        args += ["--label", f"{key}={value}"]
    for env in cfg.get("Env") or []:
        args += ["-e", env]
    proc.run([*args, cfg["Image"]], log_name=f"docker-run-{name}")


def exec_in(container: str, command: Sequence[str], *, hint: str = "") -> str:
    """Run `command` inside a running container; its stdout, or StepFailed."""
    return proc.run(["docker", "exec", container, *command], log_name=f"docker-exec-{container}",
                    hint=hint)


def inspect(name: str) -> dict[str, Any]:
    out = proc.run(["docker", "inspect", name], log_name="docker-inspect")
    info: dict[str, Any] = json.loads(out)[0]
    return info


def containers(label: str) -> list[str]:
    """Names of containers, running or not, carrying `label` ("key" or "key=value")."""
    out = proc.run(["docker", "ps", "-a", "--filter", f"label={label}", "--format",
                    "{{.Names}}"], log_name="docker-ps")
    return sorted(out.split())


def remove(*names: str) -> None:
    """Force-remove containers known to exist; StepFailed when docker refuses."""
    if names:
        proc.run(["docker", "rm", "-f", *names], log_name="docker-rm")


def discard(name: str) -> None:
    """Make sure no container `name` exists, whether or not one did (before a fresh start)."""
    proc.ok(["docker", "rm", "-f", name])


def logs(name: str, tail: int = 40) -> str:
    """The container's last lines, stdout and stderr together as it wrote them (or docker's
    own complaint, which is as useful in an error message)."""
    return proc.attempt(["docker", "logs", "--tail", str(tail), name], merge_stderr=True).output
