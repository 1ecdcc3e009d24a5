"""Admission webhooks: pod readiness-gate injection and the one-ARN-one-binding check.

Decisions are pure functions of an AdmissionReview dict and the caches (unit-testable); the
HTTPS server is Python ssl + http.server, cert and key read from --webhook-cert-dir.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from controller import metrics
from controller.certs import MUTATE_POD_PATH, VALIDATE_TGB_PATH
from controller.gates import gate_type
from controller.kube import Kube, labels_match
from controller.log import get_logger
from controller.reconcile import arn_holder

Obj = dict[str, Any]
log = get_logger("webhook")


def gates_to_inject(kube: Kube, namespace: str, pod: Obj) -> list[str]:
    """Readiness gates the pod should get: one per ip TGB in its namespace whose Service
    selector matches the pod's labels, not already there. As ALBC's pod mutator: the namespace
    label is left to the webhook's namespaceSelector (never re-read from a cache), and bindings
    being deleted still count."""
    labels = pod.get("metadata", {}).get("labels") or {}
    have = {g.get("conditionType") for g in (pod.get("spec") or {}).get("readinessGates") or []}
    out: list[str] = []
    for tgb in sorted(kube.list("tgb", namespace), key=lambda t: t["metadata"]["name"]):
        spec = tgb.get("spec") or {}
        if spec.get("targetType") != "ip":
            continue
        svc = kube.get("service", namespace, str((spec.get("serviceRef") or {}).get("name", "")))
        if svc is None:
            continue
        selector = (svc.get("spec") or {}).get("selector") or {}
        if not selector or not labels_match(selector, labels):
            continue
        g = gate_type(tgb["metadata"]["name"])
        if g not in have and g not in out:
            out.append(g)
    return out


def _response(
    uid: str,
    allowed: bool = True,
    message: str = "",
    patch: list[Obj] | None = None,
    code: int | None = None,
) -> Obj:
    resp: Obj = {"uid": uid, "allowed": allowed}
    if message:
        resp["status"] = {"code": code or (200 if allowed else 403), "message": message}
    if patch:
        resp["patchType"] = "JSONPatch"
        resp["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": resp}


def mutate_pod(kube: Kube, review: Obj) -> Obj:
    """Answer a pods CREATE review with a JSONPatch appending the readiness gates."""
    req = review.get("request") or {}
    uid = str(req.get("uid", ""))
    pod = req.get("object") or {}
    if req.get("operation", "CREATE") != "CREATE":
        return _response(uid)
    namespace = str(req.get("namespace") or pod.get("metadata", {}).get("namespace") or "")
    gates = gates_to_inject(kube, namespace, pod)
    if not gates:
        return _response(uid)
    patch: list[Obj]
    if (pod.get("spec") or {}).get("readinessGates"):
        patch = [
            {"op": "add", "path": "/spec/readinessGates/-", "value": {"conditionType": g}}
            for g in gates
        ]
    else:
        patch = [
            {
                "op": "add",
                "path": "/spec/readinessGates",
                "value": [{"conditionType": g} for g in gates],
            }
        ]
    log.info(
        "injecting readiness gates",
        namespace=namespace,
        pod=pod.get("metadata", {}).get("name") or pod.get("metadata", {}).get("generateName"),
        gates=gates,
    )
    return _response(uid, patch=patch)


def validate_tgb(kube: Kube, review: Obj) -> Obj:
    """Deny a binding whose targetGroupARN another TargetGroupBinding already holds."""
    req = review.get("request") or {}
    uid = str(req.get("uid", ""))
    tgb = req.get("object") or {}
    if req.get("operation") not in ("CREATE", "UPDATE"):
        return _response(uid)
    md = tgb.get("metadata", {})
    ns = str(req.get("namespace") or md.get("namespace") or "")
    name = str(md.get("name") or req.get("name") or "")
    arn = (tgb.get("spec") or {}).get("targetGroupARN")
    others = [
        t
        for t in kube.list("tgb")
        if (t["metadata"].get("namespace"), t["metadata"]["name"]) != (ns, name)
    ]
    holder = arn_holder(others, str(arn)) if arn else None
    if holder is not None:
        hmd = holder["metadata"]
        msg = (
            f"TargetGroup {arn} is already bound to TargetGroupBinding "
            f"{hmd.get('namespace')}/{hmd['name']}"
        )
        log.info("denying TargetGroupBinding", tgb=f"{ns}/{name}", reason=msg)
        return _response(uid, allowed=False, message=msg)
    return _response(uid)


class _TLSServer(ThreadingHTTPServer):
    """TLS handshake in the per-connection thread (with a timeout), so one stalled client
    cannot block accept() for everyone."""

    daemon_threads = True

    def __init__(self, addr: tuple[str, int], handler: Any, ctx: ssl.SSLContext) -> None:
        super().__init__(addr, handler)
        self.ctx = ctx

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(10)
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log.debug("TLS handshake failed", peer=str(client_address), error=repr(e))
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]
        finally:
            tls.close()


class WebhookServer:
    """HTTPS server for both webhooks; failures answer 'allowed' with a message, never 500
    loops (the API server's failurePolicy decides what an unreachable webhook means)."""

    def __init__(self, kube: Kube, port: int, cert_dir: str, host: str = "0.0.0.0") -> None:
        self.kube = kube
        cert = Path(cert_dir) / "tls.crt"
        key = Path(cert_dir) / "tls.key"
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(cert), str(key))
        kube_ref = kube

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    review = json.loads(self.rfile.read(length) or b"{}")
                    if self.path.startswith(MUTATE_POD_PATH):
                        name, answer = "mpod", mutate_pod
                    elif self.path.startswith(VALIDATE_TGB_PATH):
                        name, answer = "vtgb", validate_tgb
                    else:
                        self.send_error(404)
                        return
                    try:
                        out = answer(kube_ref, review)
                    except Exception as e:
                        # controller-runtime answers a handler error admission.Errored(500):
                        # a denial, whatever the failurePolicy (that covers unreachable hooks)
                        log.error("webhook handler failed, denying", webhook=name, error=repr(e))
                        uid = str((review.get("request") or {}).get("uid", ""))
                        out = _response(uid, allowed=False, message=str(e), code=500)
                    metrics.WEBHOOK_REQUESTS.labels(
                        name, "allowed" if out["response"]["allowed"] else "denied"
                    ).inc()
                    body = json.dumps(out).encode()
                    code = 200
                except Exception as e:
                    log.error("webhook request failed", path=self.path, error=repr(e))
                    body, code = json.dumps({"error": str(e)}).encode(), 400
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                body = b"ok"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

        self.httpd = _TLSServer((host, port), Handler, ctx)
        self.port = self.httpd.server_address[1]

    def start(self) -> None:
        threading.Thread(target=self.httpd.serve_forever, name="webhook", daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
