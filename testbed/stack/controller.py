"""The minimal controller deployed in-cluster from testbed/assets/manifests/controller, pointed
at the fake AWS.

The testbed drives the controller only through its public interfaces: its manifests, its CLI
(`alb-controller gen-webhook-manifests` for the webhook TLS material) and the Kubernetes API.
"""

from __future__ import annotations

import copy
import hashlib
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from testbed import proc
from testbed.console import StepFailed, step
from testbed.paths import MANIFESTS_DIR
from testbed.poll import TimedOut, poll
from testbed.stack.apply import apply, load_docs

NAMESPACE = "alb-system"
MUTATING_WEBHOOK = "alb-controller-mutating-webhook"
WEBHOOK_SECRET = "alb-controller-webhook-tls"
CERT_ANNOTATION = "alb-testbed/webhook-cert"
# the gen-webhook-manifests flags the webhook configurations in place were made with
WEBHOOK_ARGS_ANNOTATION = "alb-testbed/webhook-args"
RELEASE_FLAG = "--behave-like"
WEBHOOK_SERVICE = "alb-controller-webhook"
WEBHOOK_DOWN_LABEL = "alb-testbed/webhook"
WEBHOOK_PROBE_ARN = ("arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/"
                     "webhook-probe/0000000000000000")
DEPLOYMENT = "alb-controller"
SELECTOR = "app.kubernetes.io/name=alb-controller"


@dataclass
class ControllerSettings:
    """What a deployment of the controller is given. Every controller setting travels as a
    command-line flag (`alb-controller run --help`), the same channel a scenario's switches
    use (testbed/scenario/plan.controller_args)."""

    aws_endpoint_url: str
    image: str
    args: list[str] = field(default_factory=list)  # e.g. ["--behave-like=v3.2.0"]

    def flags(self) -> list[str]:
        return [f"--aws-endpoint-url={self.aws_endpoint_url}", *self.args]

    def webhook_args(self) -> list[str]:
        """The release decides the pod webhook's failurePolicy (Fail before v2.12.0), so
        the webhook configurations are made for the same --behave-like as the controller."""
        return [a for a in self.args if a.split("=", 1)[0] == RELEASE_FLAG]


def _webhook_docs(args: list[str]) -> list[dict[str, Any]]:
    cli = shutil.which("alb-controller") or str(Path(sys.executable).parent / "alb-controller")
    with tempfile.TemporaryDirectory(prefix="albtb-webhook-") as tmp:
        proc.run([cli, "gen-webhook-manifests", "--namespace", NAMESPACE, *args, "--out", tmp],
                 log_name="gen-webhook-manifests", timeout=60)
        docs = load_docs(Path(tmp))
    for d in docs:
        if d["kind"] == "MutatingWebhookConfiguration":
            d["metadata"].setdefault("annotations", {})[WEBHOOK_ARGS_ANNOTATION] = " ".join(args)
    return docs


def _cert_id(secret: dict[str, Any]) -> str:
    return hashlib.sha256(str(sorted((secret.get("data") or {}).items())).encode()).hexdigest()[:12]


def _deployment(doc: dict[str, Any], s: ControllerSettings, cert: str) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    # The controller loads its serving cert at start: a new cert must restart its pod.
    meta = doc["spec"]["template"].setdefault("metadata", {})
    meta.setdefault("annotations", {})[CERT_ANNOTATION] = cert
    pod = doc["spec"]["template"]["spec"]
    c = pod["containers"][0]
    c["image"] = s.image
    c["imagePullPolicy"] = "Never"
    c["args"] = [*c.get("args", []), *s.flags()]
    return doc


class ControllerDeployment:
    """The controller's Deployment in the cluster: deploy with settings, wait, restart, logs."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)

    def deploy(self, settings: ControllerSettings, timeout: float = 180) -> None:
        docs = load_docs(MANIFESTS_DIR / "controller")
        deployment = [d for d in docs if d["kind"] == "Deployment"]
        rest = [d for d in docs if d["kind"] != "Deployment"]
        if len(deployment) != 1:
            raise StepFailed(f"expected one Deployment in {MANIFESTS_DIR / 'controller'}")
        with step(f"deploying the controller ({' '.join(settings.args) or 'defaults'})"):
            apply(self.api, rest)
            cert = self._current_cert(settings.webhook_args())
            if cert is None:
                webhook = _webhook_docs(settings.webhook_args())
                apply(self.api, webhook)
                cert = next(_cert_id(d) for d in webhook if d["kind"] == "Secret")
            apply(self.api, [_deployment(deployment[0], settings, cert)])
            self.wait_ready(timeout)
            self.wait_webhook(timeout)

    def _current_cert(self, args: list[str]) -> str | None:
        """Id of the webhook cert in place if it can be kept (made with the same flags), else
        None."""
        try:
            secret = self.core.read_namespaced_secret(WEBHOOK_SECRET, NAMESPACE)
            hooks = client.AdmissionregistrationV1Api(self.api).list_mutating_webhook_configuration(
                field_selector="metadata.name=" + MUTATING_WEBHOOK)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        if not hooks.items or (hooks.items[0].metadata.annotations or {}).get(
                WEBHOOK_ARGS_ANNOTATION) != " ".join(args):
            return None
        return _cert_id({"data": secret.data or {}})

    def wait_ready(self, timeout: float = 180) -> str:
        """Wait until the Deployment's current generation has one Ready pod; return its name."""
        def ready_pod() -> str | None:
            dep = self.apps.read_namespaced_deployment(DEPLOYMENT, NAMESPACE)
            st = dep.status
            if (st.observed_generation == dep.metadata.generation
                    and (st.updated_replicas or 0) >= 1 and (st.ready_replicas or 0) >= 1
                    and (st.replicas or 0) == (st.updated_replicas or 0)):
                pods = self._ready_pods()
                if len(pods) == 1:
                    return pods[0]
            return None

        try:
            return poll(ready_pod, timeout) or ""
        except TimedOut:
            raise StepFailed(f"controller not Ready within {timeout:.0f}s; logs:\n"
                             f"{self.logs()}") from None

    def _ready_pods(self) -> list[str]:
        out = []
        for p in self.core.list_namespaced_pod(NAMESPACE, label_selector=SELECTOR).items:
            if p.metadata.deletion_timestamp:
                continue
            if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or []):
                out.append(p.metadata.name)
        return out

    def wait_webhook(self, timeout: float = 60, reachable: bool = True) -> None:
        """Wait until the API server reaches the TargetGroupBinding webhook (or, reachable
        False, no longer does): it is failurePolicy Fail, as upstream's, so a Service that
        still points at the pod just replaced refuses every binding. The probe is a dry-run
        create (nothing is stored)."""
        probe = {"apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
                 "metadata": {"name": "webhook-probe", "namespace": NAMESPACE},
                 "spec": {"targetType": "ip", "serviceRef": {"name": "webhook-probe", "port": 80},
                          "targetGroupARN": WEBHOOK_PROBE_ARN}}
        custom = client.CustomObjectsApi(self.api)
        seen: list[str] = []

        def answered() -> bool:
            try:
                custom.create_namespaced_custom_object(
                    "elbv2.k8s.aws", "v1beta1", NAMESPACE, "targetgroupbindings", probe,
                    dry_run="All")
            except client.ApiException as exc:
                if "failed calling webhook" in str(exc.body):
                    seen[:] = [str(exc.body)]
                    return False
            return True  # stored nothing; an answer (even a denial) means it is reachable

        try:
            poll(answered if reachable else lambda: not answered(), timeout)
        except TimedOut:
            state = "not reachable within" if reachable else "still reachable after"
            raise StepFailed(f"the controller's webhook {state} {timeout:.0f}s: "
                             f"{seen[0] if seen else ''}") from None

    def webhook_down(self, down: bool) -> None:
        """Take the webhooks away (their Service also selects a label no pod has: callers get
        connection refused) or bring them back (the label removed from the selector)."""
        self.core.patch_namespaced_service(
            WEBHOOK_SERVICE, NAMESPACE,
            {"spec": {"selector": {WEBHOOK_DOWN_LABEL: "down" if down else None}}})

    def scale(self, replicas: int, timeout: float = 120) -> None:
        """Set the controller's replicas; back above 0, wait until it serves again."""
        self.apps.patch_namespaced_deployment_scale(
            DEPLOYMENT, NAMESPACE, {"spec": {"replicas": replicas}})
        if replicas:
            self.wait_ready(timeout)
            self.wait_webhook(timeout)

    def restart(self, timeout: float = 120) -> str:
        """Kill the controller pod (no grace) and wait for its replacement to be Ready."""
        old = set(self._ready_pods())
        for name in old:
            self.core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
        try:
            fresh = poll(lambda: [p for p in self._ready_pods() if p not in old], timeout)
        except TimedOut:
            raise StepFailed(f"no new controller pod Ready within {timeout:.0f}s") from None
        self.wait_webhook(timeout)
        return fresh[0]

    def logs(self, tail: int | None = 200, since_seconds: int | None = None) -> str:
        """The controller pods' logs: the last `tail` lines, or (tail=None) every line of the
        last `since_seconds`."""
        chunks = []
        for p in self.core.list_namespaced_pod(NAMESPACE, label_selector=SELECTOR).items:
            try:
                # Raw bytes: the client's deserialiser turns JSON-lines text into a bytes repr.
                resp = self.core.read_namespaced_pod_log(
                    p.metadata.name, NAMESPACE, tail_lines=tail, since_seconds=since_seconds,
                    _preload_content=False)
                chunks.append(resp.data.decode("utf-8", "replace"))
            except client.ApiException as exc:
                chunks.append(f"<{p.metadata.name}: {exc.reason}>")
        return "\n".join(chunks)
