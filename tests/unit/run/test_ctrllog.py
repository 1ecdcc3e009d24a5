"""The report's controller actions come from the controller's own log lines: parse what the
controller's logger really writes, for one namespace only."""

from __future__ import annotations

import io

from controller import log as ctrl_log
from testbed.run.ctrllog import parse_actions


def controller_output() -> str:
    buf = io.StringIO()
    ctrl_log.configure("info", buf)
    try:
        lg = ctrl_log.get_logger("reconcile")
        lg.info("registering targets", tgb="sc-a/demo", arn="arn:tg",
                targets=["10.244.1.5:8080(demo-abc)", "10.244.1.6:8080(demo-def)"])
        lg.info("deregistering targets", tgb="sc-a/demo", arn="arn:tg",
                targets=["10.244.1.4:8080"])
        lg.info("pod condition updated", tgb="sc-a/demo", pod="demo-abc",
                condition="target-health.elbv2.k8s.aws/demo", status="True",
                reason="", message="")
        lg.info("registering targets", tgb="sc-b/demo", arn="arn:other",
                targets=["10.244.2.9:8080(other)"])
        lg.info("finalizer removed", tgb="sc-a/demo")
    finally:
        ctrl_log.configure("info", None)
    return "starting up (not JSON)\n" + buf.getvalue() + "{broken json\n"


def test_register_deregister_and_gate_actions_for_one_namespace() -> None:
    acts = parse_actions(controller_output(), "sc-a")
    assert [(a["kind"], a["target"], a["pod"]) for a in acts] == [
        ("register", "10.244.1.5:8080", "demo-abc"),
        ("register", "10.244.1.6:8080", "demo-def"),
        ("deregister", "10.244.1.4:8080", ""),
        ("gate", "", "demo-abc"),
    ]
    assert acts[-1]["status"] == "True"
    assert all(a["ts"] > 1.7e9 for a in acts)  # unix seconds, like the other report inputs


def test_other_namespaces_and_noise_give_nothing() -> None:
    assert parse_actions(controller_output(), "sc-c") == []
    assert parse_actions("", "sc-a") == []
