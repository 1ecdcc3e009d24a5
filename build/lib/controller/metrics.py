"""Prometheus metrics and the small /metrics + /healthz HTTP server."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

RECONCILE_TOTAL = Counter(
    "albc_reconcile_total", "TargetGroupBinding reconciles by result", ["result"]
)
RECONCILE_DURATION = Histogram(
    "albc_reconcile_duration_seconds",
    "TargetGroupBinding reconcile wall time by result",
    ["result"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
AWS_CALLS = Counter(
    "albc_aws_api_calls_total",
    "AWS API calls by operation and error code",
    ["operation", "error_code"],
)
AWS_DURATION = Histogram(
    "albc_aws_api_duration_seconds", "AWS API call wall time by operation", ["operation"]
)
POD_CONDITION_PATCHES = Counter(
    "albc_pod_condition_patches_total", "pods/status patches for readiness gates", ["status"]
)
TARGET_CHANGES = Counter("albc_target_changes_total", "targets registered/deregistered", ["action"])
QUEUE_DEPTH = Gauge("albc_workqueue_depth", "keys waiting in the work queue")
WEBHOOK_REQUESTS = Counter(
    "albc_webhook_requests_total",
    "admission requests by webhook and outcome",
    ["webhook", "outcome"],
)


def serve_metrics(
    port: int, healthy: Callable[[], bool], ready: Callable[[], bool]
) -> ThreadingHTTPServer:
    """Start /metrics, /healthz (process alive and loops running) and /readyz (caches synced)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            if self.path.startswith("/metrics"):
                body, ctype, code = generate_latest(), CONTENT_TYPE_LATEST, 200
            elif self.path.startswith("/healthz"):
                ok = healthy()
                body, ctype, code = (
                    (b"ok" if ok else b"unhealthy"),
                    "text/plain",
                    200 if ok else 500,
                )
            elif self.path.startswith("/readyz"):
                ok = ready()
                body, ctype, code = (
                    (b"ok" if ok else b"not ready"),
                    "text/plain",
                    200 if ok else 500,
                )
            else:
                body, ctype, code = b"not found", "text/plain", 404
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

    srv = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, name="metrics", daemon=True).start()
    return srv
