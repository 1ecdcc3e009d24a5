"""Graceful node shutdown of a kind node, by the node's own kubelet.

The kubelet's node shutdown manager (kubernetes pkg/kubelet/nodeshutdown, v1.34) holds a
systemd-logind "delay" inhibitor lock for `shutdownGracePeriod`; when logind signals
PrepareForShutdown(true) it marks the node not ready, kills every pod on it (regular pods
first, with min(their terminationGracePeriodSeconds, shutdownGracePeriod -
shutdownGracePeriodCriticalPods), then critical ones), sets them phase Failed with reason
Terminated and no deletion timestamp, and releases its lock
(https://kubernetes.io/docs/concepts/cluster-administration/node-shutdown/).

The node image masks systemd-logind (a kind node needs no seats), so `enable` unmasks and
starts it, sets the two kubelet settings and restarts the kubelet. The signal is sent on the
node's system bus as logind would send it: the kubelet matches the signal's interface, member
and path only. Once the pods are gone the node comes back instead of powering off: a new
kubelet, as after a reboot, so the node serves the runs that follow (docs/faults.md).
"""

from __future__ import annotations

import time

import yaml

from testbed import docker
from testbed.poll import poll

KUBELET_CONFIG = "/var/lib/kubelet/config.yaml"
LOGIND = ["org.freedesktop.login1", "/org/freedesktop/login1", "org.freedesktop.login1.Manager"]
# kube-proxy and the node's other system-node-critical pods, after the regular ones
CRITICAL_PODS_SECONDS = 5
ENABLE_TIMEOUT = 60.0


def _busctl(node: str, *args: str) -> str:
    return docker.exec_in(node, ["busctl", *args], hint="the node needs systemd and D-Bus.")


def lock_holder(node: str) -> int | None:
    """PID of the kubelet process that holds the shutdown delay lock (None: no lock)."""
    out = docker.exec_in(node, ["systemd-inhibit", "--list", "--no-legend", "--no-pager"])
    for line in out.splitlines():
        who, _uid, _user, pid, _comm, what, *_ = (line.split() + [""] * 6)[:7]
        if who == "kubelet" and "shutdown" in what.split(":"):
            return int(pid)
    return None


def _kubelet_pid(node: str) -> int:
    out = docker.exec_in(node, ["systemctl", "show", "--property", "MainPID", "--value",
                                "kubelet"])
    return int(out.strip() or 0)


def _wait_new_lock(node: str) -> None:
    """Until the running kubelet (not the one before a restart) holds the lock: it takes it
    once it has raised logind's InhibitDelayMaxSec to its shutdownGracePeriod."""
    poll(lambda: (pid := _kubelet_pid(node)) > 0 and lock_holder(node) == pid, ENABLE_TIMEOUT,
         0.5)


def settings(grace: float) -> dict[str, str]:
    """The kubelet settings for `grace` seconds given to regular pods."""
    return {"shutdownGracePeriod": f"{int(grace) + CRITICAL_PODS_SECONDS}s",
            "shutdownGracePeriodCriticalPods": f"{CRITICAL_PODS_SECONDS}s"}


def enable(node: str, grace: float) -> bool:
    """Make the kubelet on `node` shut down gracefully, giving regular pods `grace` seconds;
    False when it already does (the kubelet is restarted only when something changes)."""
    config = yaml.safe_load(docker.exec_in(node, ["cat", KUBELET_CONFIG]))
    want = settings(grace)
    if all(config.get(k) == v for k, v in want.items()) and lock_holder(node) is not None:
        return False
    config.update(want)
    docker.exec_in(node, ["sh", "-c", 'printf "%s" "$1" > ' + KUBELET_CONFIG, "sh",
                          yaml.safe_dump(config, sort_keys=False)])
    docker.exec_in(node, ["sh", "-c", "systemctl unmask systemd-logind >/dev/null 2>&1; "
                          "systemctl start systemd-logind && systemctl restart kubelet"],
                   hint="the node needs systemd-logind (kind's node image has it).")
    _wait_new_lock(node)
    return True


def signal(node: str) -> None:
    """logind's PrepareForShutdown(true) on the node's system bus."""
    _busctl(node, "emit", LOGIND[1], LOGIND[2], "PrepareForShutdown", "b", "true")


def wait_released(node: str, timeout: float) -> float:
    """Until the kubelet has killed every pod and released its lock; the seconds it took."""
    start = time.monotonic()
    poll(lambda: lock_holder(node) is None, timeout, 0.5)
    return time.monotonic() - start


def come_back(node: str) -> None:
    """The node back after its shutdown, as after a reboot: a new kubelet, which admits pods
    again and holds a new lock. Not PrepareForShutdown(false): on a cancelled shutdown kubelet
    v1.34 takes a new lock and then closes the old lock's file descriptor, whose number the
    new one may reuse (acquireInhibitLock in pkg/kubelet/nodeshutdown), so the node can end
    with no lock and no graceful shutdown at all."""
    docker.exec_in(node, ["systemctl", "restart", "kubelet"])
    _wait_new_lock(node)
