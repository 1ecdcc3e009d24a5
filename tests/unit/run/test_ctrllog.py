"""The report's controller actions come from the controller's own log lines: run the real
reconciler over the in-memory fakes, feed what its logger wrote to the parser, and read back
register / deregister / gate actions by their `action` field, for one namespace only."""

from __future__ import annotations

import io
import json
from typing import Any

from controller import log as ctrl_log
from controller.aws import TargetsManager
from controller.config import Config
from controller.reconcile import Reconciler
from controller.testing import FakeELBv2, FakeKube
from testbed.run.ctrllog import parse_actions

GATE = "target-health.elbv2.k8s.aws/demo"


def _pod(ns: str, name: str, ip: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{ns}-{name}"},
        "spec": {"nodeName": "node-1", "readinessGates": [{"conditionType": GATE}]},
        "status": {"phase": "Running", "podIP": ip,
                   "conditions": [{"type": "ContainersReady", "status": "True"}]},
    }


def _slice(ns: str, pods: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "metadata": {"name": "demo-x", "namespace": ns,
                     "labels": {"kubernetes.io/service-name": "demo"}},
        "ports": [{"name": "http", "port": 8080}],
        "endpoints": [{"addresses": [ip], "conditions": {"ready": False},
                       "targetRef": {"kind": "Pod", "name": n}, "nodeName": "node-1"}
                      for n, ip in pods],
    }


def _binding(kube: FakeKube, elb: FakeELBv2, ns: str, pods: list[tuple[str, str]]) -> str:
    arn = f"arn:tg/{ns}"
    elb.create_target_group(arn)
    kube.put("service", {"metadata": {"name": "demo", "namespace": ns},
                         "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    for name, ip in pods:
        kube.put("pod", _pod(ns, name, ip))
    kube.put("endpointslice", _slice(ns, pods))
    kube.put("tgb", {"metadata": {"name": "demo", "namespace": ns},
                     "spec": {"targetGroupARN": arn, "targetType": "ip",
                              "serviceRef": {"name": "demo", "port": 80}}})
    return arn


def controller_output() -> str:
    """Log of: two gated pods registered in sc-a, their gates False then True, one pod gone and
    deregistered; one pod registered in sc-b."""
    kube, elb = FakeKube(notify_on_write=False), FakeELBv2()
    kube.put("node", {"metadata": {"name": "node-1"},
                      "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    arn = _binding(kube, elb, "sc-a", [("demo-abc", "10.244.1.5"), ("demo-def", "10.244.1.6")])
    _binding(kube, elb, "sc-b", [("other", "10.244.2.9")])
    r = Reconciler(kube, TargetsManager(elb, ttl=0), Config(aws_endpoint_url="http://fake:1"))
    buf = io.StringIO()
    ctrl_log.configure("info", buf)
    try:
        r.reconcile(("sc-a", "demo"))
        r.reconcile(("sc-b", "demo"))
        elb.all_healthy(arn)
        r.reconcile(("sc-a", "demo"))
        kube.put("endpointslice", _slice("sc-a", [("demo-def", "10.244.1.6")]))
        r.reconcile(("sc-a", "demo"))
    finally:
        ctrl_log.configure("info", None)
    return "starting up (not JSON)\n" + buf.getvalue() + "{broken json\n"


def test_register_deregister_and_gate_actions_for_one_namespace() -> None:
    acts = parse_actions(controller_output(), "sc-a")
    assert [(a["kind"], a["target"], a["pod"], a.get("status")) for a in acts] == [
        ("register", "10.244.1.5:8080", "demo-abc", None),
        ("register", "10.244.1.6:8080", "demo-def", None),
        ("gate", "", "demo-abc", "False"),
        ("gate", "", "demo-def", "False"),
        ("gate", "", "demo-abc", "True"),
        ("gate", "", "demo-def", "True"),
        ("deregister", "10.244.1.5:8080", "", None),
    ]
    assert acts[2]["reason"] == "Elb.RegistrationInProgress"
    assert {a["tgb"] for a in acts} == {"sc-a/demo"}
    assert all(a["ts"] > 1.7e9 for a in acts)  # unix seconds, like the other report inputs


def test_actions_are_read_from_the_action_field_not_the_message() -> None:
    lines = [json.loads(x) for x in controller_output().splitlines() if x.startswith('{"')]
    for rec in lines:
        rec["msg"] = "reworded"
    text = "\n".join(json.dumps(rec) for rec in lines)
    assert [a["kind"] for a in parse_actions(text, "sc-b")] == ["register", "gate"]


def test_other_namespaces_and_noise_give_nothing() -> None:
    assert parse_actions(controller_output(), "sc-c") == []
    assert parse_actions("", "sc-a") == []


def test_an_endpoint_whose_pod_is_not_cached_is_a_skip_action() -> None:
    """#3299's race as the report sees it: the binding's log names the pod it left out."""
    kube, elb = FakeKube(notify_on_write=False), FakeELBv2()
    kube.put("node", {"metadata": {"name": "node-1"},
                      "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    _binding(kube, elb, "sc-a", [("demo-abc", "10.244.1.5")])
    kube.delete("pod", "sc-a", "demo-abc")  # the slice has it, the pod cache not yet
    r = Reconciler(kube, TargetsManager(elb, ttl=0),
                   Config.behaving_like("v2.4.1", aws_endpoint_url="http://fake:1",
                                        endpoint_slices=True))
    buf = io.StringIO()
    ctrl_log.configure("info", buf)
    try:
        r.reconcile(("sc-a", "demo"))
    finally:
        ctrl_log.configure("info", None)
    acts = parse_actions(buf.getvalue(), "sc-a")
    assert [(a["kind"], a["target"], a["pod"], a["reason"]) for a in acts] == [
        ("skip", "10.244.1.5:8080", "demo-abc", "pod not in cache")]
