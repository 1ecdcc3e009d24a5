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
VALIDATING_WEBHOOK = "alb-controller-validating-webhook"
WEBHOOK_SECRET = "alb-controller-webhook-tls"
CERT_ANNOTATION = "alb-testbed/webhook-cert"
# the gen-webhook-manifests flags the webhook configurations in place were made with
WEBHOOK_ARGS_ANNOTATION = "alb-testbed/webhook-args"
RELEASE_FLAG = "--behave-like"
WEBHOOK_SERVICE = "alb-controller-webhook"
DOWN_SUFFIX = "-down"  # a Service name nothing creates
WEBHOOK_PROBE_ARN = ("arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/"
                     "webhook-probe/0000000000000000")
DEPLOYMENT = "alb-controller"
NAME_LABEL, INSTANCE_LABEL = "app.kubernetes.io/name", "app.kubernetes.io/instance"
# a run's own controller: another name label, so the shared Deployment and Services never
# select its pods
RUN_APP = "alb-controller-run"
WATCHED_ANNOTATION = "alb-testbed/watch-namespace"


@dataclass(frozen=True)
class Names:
    """The objects of one controller deployment: the shared one (watching every namespace),
    or a run's own instance (`--watch-namespace`, webhooks for that namespace only)."""

    instance: str = ""
    watch_namespace: str = ""

    @property
    def suffix(self) -> str:
        return f"-{self.instance}" if self.instance else ""

    @property
    def deployment(self) -> str:
        return DEPLOYMENT + self.suffix

    @property
    def webhook_service(self) -> str:
        return WEBHOOK_SERVICE + self.suffix

    @property
    def secret(self) -> str:
        return WEBHOOK_SECRET + self.suffix

    @property
    def mutating(self) -> str:
        return MUTATING_WEBHOOK + self.suffix

    @property
    def validating(self) -> str:
        return VALIDATING_WEBHOOK + self.suffix

    @property
    def labels(self) -> dict[str, str]:
        if not self.instance:
            return {NAME_LABEL: DEPLOYMENT}
        return {NAME_LABEL: RUN_APP, INSTANCE_LABEL: self.instance}

    @property
    def selector(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.labels.items())

    @property
    def probe_namespace(self) -> str:
        """Where a dry-run binding reaches this deployment's webhook."""
        return self.watch_namespace or NAMESPACE

    def webhook_args(self) -> list[str]:
        if not self.instance:
            return []
        return ["--service", self.webhook_service, "--secret-name", self.secret,
                "--name-suffix", self.suffix, "--watch-namespace", self.watch_namespace]

    def controller_args(self) -> list[str]:
        if not self.instance:
            return []
        return [f"--watch-namespace={self.watch_namespace}",
                f"--leader-election-id=alb-controller-leader{self.suffix}"]


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


def _deployment(doc: dict[str, Any], s: ControllerSettings, cert: str,
                names: Names) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    doc["metadata"]["name"] = names.deployment
    doc["metadata"]["labels"] = dict(names.labels)
    doc["metadata"].setdefault("annotations", {})[WATCHED_ANNOTATION] = names.watch_namespace
    doc["spec"]["selector"] = {"matchLabels": dict(names.labels)}
    # The controller loads its serving cert at start: a new cert must restart its pod.
    meta = doc["spec"]["template"].setdefault("metadata", {})
    meta["labels"] = dict(names.labels)
    meta.setdefault("annotations", {})[CERT_ANNOTATION] = cert
    pod = doc["spec"]["template"]["spec"]
    for v in pod.get("volumes") or []:
        if (v.get("secret") or {}).get("secretName") == WEBHOOK_SECRET:
            v["secret"]["secretName"] = names.secret
    c = pod["containers"][0]
    c["image"] = s.image
    c["imagePullPolicy"] = "Never"
    c["args"] = [*c.get("args", []), *s.flags(), *names.controller_args()]
    return doc


def _webhook_service(doc: dict[str, Any], names: Names) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    doc["metadata"]["name"] = names.webhook_service
    doc["metadata"]["labels"] = dict(names.labels)
    doc["spec"]["selector"] = dict(names.labels)
    return doc


class ControllerDeployment:
    """A controller Deployment in the cluster (the shared one, or with `names` a run's own):
    deploy with settings, wait, restart, stop, take its webhooks away, logs, remove."""

    def __init__(self, api: client.ApiClient, names: Names | None = None) -> None:
        self.api = api
        self.names = names or Names()
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)

    def deploy(self, settings: ControllerSettings, timeout: float = 180) -> None:
        n = self.names
        docs = load_docs(MANIFESTS_DIR / "controller")
        deployment = [d for d in docs if d["kind"] == "Deployment"]
        service = [d for d in docs if d["kind"] == "Service"
                   and d["metadata"]["name"] == WEBHOOK_SERVICE]
        # a run's instance shares the namespace, account, RBAC and CRD, not the Services
        rest = [d for d in docs if d["kind"] != "Deployment"
                and (not n.instance or d["kind"] != "Service")]
        if len(deployment) != 1 or len(service) != 1:
            raise StepFailed(f"expected one Deployment and one {WEBHOOK_SERVICE} Service in "
                             f"{MANIFESTS_DIR / 'controller'}")
        what = f"controller {n.deployment}" + (f" for {n.watch_namespace}" if n.instance else "")
        with step(f"deploying the {what} ({' '.join(settings.args) or 'defaults'})"):
            apply(self.api, rest)
            if n.instance:
                apply(self.api, [_webhook_service(service[0], n)])
            webhook_args = [*settings.webhook_args(), *n.webhook_args()]
            cert = self._current_cert(webhook_args)
            if cert is None:
                webhook = _webhook_docs(webhook_args)
                apply(self.api, webhook)
                cert = next(_cert_id(d) for d in webhook if d["kind"] == "Secret")
            apply(self.api, [_deployment(deployment[0], settings, cert, n)])
            self.wait_ready(timeout)
            self.wait_webhook(timeout)

    def remove(self) -> None:
        """Delete this deployment's objects (absent ones are fine)."""
        n = self.names
        adm = client.AdmissionregistrationV1Api(self.api)
        for delete in (
            lambda: self.apps.delete_namespaced_deployment(n.deployment, NAMESPACE),
            lambda: self.core.delete_namespaced_service(n.webhook_service, NAMESPACE),
            lambda: self.core.delete_namespaced_secret(n.secret, NAMESPACE),
            lambda: adm.delete_mutating_webhook_configuration(n.mutating),
            lambda: adm.delete_validating_webhook_configuration(n.validating),
        ):
            try:
                delete()
            except client.ApiException as exc:
                if exc.status != 404:
                    raise

    def stale_instances(self) -> list[Names]:
        """Runs' instances whose namespace is gone (a run that crashed before its clean-up)."""
        out = []
        deps = self.apps.list_namespaced_deployment(NAMESPACE,
                                                    label_selector=f"{NAME_LABEL}={RUN_APP}")
        for d in deps.items:
            watched = (d.metadata.annotations or {}).get(WATCHED_ANNOTATION, "")
            try:
                self.core.read_namespace(watched)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise
                out.append(Names((d.metadata.labels or {}).get(INSTANCE_LABEL, ""), watched))
        return [x for x in out if x.instance]

    def _current_cert(self, args: list[str]) -> str | None:
        """Id of the webhook cert in place if it can be kept (made with the same flags), else
        None."""
        try:
            secret = self.core.read_namespaced_secret(self.names.secret, NAMESPACE)
            hooks = client.AdmissionregistrationV1Api(self.api).list_mutating_webhook_configuration(
                field_selector="metadata.name=" + self.names.mutating)
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
            dep = self.apps.read_namespaced_deployment(self.names.deployment, NAMESPACE)
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
        for p in self.core.list_namespaced_pod(NAMESPACE,
                                               label_selector=self.names.selector).items:
            if p.metadata.deletion_timestamp:
                continue
            if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or []):
                out.append(p.metadata.name)
        return out

    def pod(self) -> tuple[str, str, str]:
        """(name, IP, node) of the Ready controller pod."""
        name = next(iter(self._ready_pods()), None)
        if name is None:
            raise StepFailed(f"no Ready pod of {self.names.deployment}")
        pod = self.core.read_namespaced_pod(name, NAMESPACE)
        return name, str(pod.status.pod_ip), str(pod.spec.node_name)

    def wait_webhook(self, timeout: float = 60, reachable: bool = True) -> None:
        """Wait until the API server reaches the TargetGroupBinding webhook (or, reachable
        False, no longer does): it is failurePolicy Fail, as upstream's, so a Service that
        still points at the pod just replaced refuses every binding. The probe is a dry-run
        create (nothing is stored)."""
        ns = self.names.probe_namespace
        probe = {"apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
                 "metadata": {"name": "webhook-probe", "namespace": ns},
                 "spec": {"targetType": "ip", "serviceRef": {"name": "webhook-probe", "port": 80},
                          "targetGroupARN": WEBHOOK_PROBE_ARN}}
        custom = client.CustomObjectsApi(self.api)
        seen: list[str] = []

        def state() -> str:
            """reached (allowed, or denied by the webhook), unreachable, or other."""
            try:
                custom.create_namespaced_custom_object(
                    "elbv2.k8s.aws", "v1beta1", ns, "targetgroupbindings", probe,
                    dry_run="All")
            except client.ApiException as exc:
                seen[:] = [str(exc.body)]
                if "failed calling webhook" in str(exc.body):
                    return "unreachable"
                return "reached" if "denied the request" in str(exc.body) else "other"
            return "reached"  # a dry run: nothing is stored

        want = "reached" if reachable else "unreachable"
        try:
            poll(lambda: state() == want, timeout)
        except TimedOut:
            what = "not reachable within" if reachable else "still reachable after"
            raise StepFailed(f"the controller's webhook {what} {timeout:.0f}s: "
                             f"{seen[0] if seen else 'the probe was allowed'}") from None

    def webhook_down(self, down: bool) -> None:
        """Take the webhooks away (their configurations point at a Service that does not
        exist: the API server's calls fail, and each webhook's failurePolicy decides) or bring
        them back. Not by emptying the Service: the API server keeps its connection to the pod
        alive through the Service's address, so that would change nothing."""
        adm = client.AdmissionregistrationV1Api(self.api)
        name = self.names.webhook_service + (DOWN_SUFFIX if down else "")
        for read, replace, config in (
            (adm.read_mutating_webhook_configuration,
             adm.replace_mutating_webhook_configuration, self.names.mutating),
            (adm.read_validating_webhook_configuration,
             adm.replace_validating_webhook_configuration, self.names.validating),
        ):
            doc = read(config)
            for hook in doc.webhooks or []:
                hook.client_config.service.name = name
            replace(config, doc)

    def scale(self, replicas: int, timeout: float = 120) -> None:
        """Set the controller's replicas; back above 0, wait until it serves again."""
        self.apps.patch_namespaced_deployment_scale(
            self.names.deployment, NAMESPACE, {"spec": {"replicas": replicas}})
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
        for p in self.core.list_namespaced_pod(NAMESPACE,
                                               label_selector=self.names.selector).items:
            try:
                # Raw bytes: the client's deserialiser turns JSON-lines text into a bytes repr.
                resp = self.core.read_namespaced_pod_log(
                    p.metadata.name, NAMESPACE, tail_lines=tail, since_seconds=since_seconds,
                    _preload_content=False)
                chunks.append(resp.data.decode("utf-8", "replace"))
            except client.ApiException as exc:
                chunks.append(f"<{p.metadata.name}: {exc.reason}>")
        return "\n".join(chunks)
