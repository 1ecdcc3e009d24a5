"""WSGI app in front of moto: answers target registration/health from the engine, adds the
validation moto lacks, keeps the engine in sync after every ELBv2 change, and serves
`/_testbed/*` (event log, config, reset, health).
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlencode

from moto.core.model_instances import reset_model_data
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from testbed.fakeaws.api import moto_state, validation
from testbed.fakeaws.api.engine_client import EngineClient
from testbed.fakeaws.api.errors import AwsError, ok_response, target_health_xml, tg_not_found
from testbed.fakeaws.settings import AWS_MIN_HEALTH_CHECK_INTERVAL, FakeAwsSettings

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
# ELBv2 actions after which the engine's view (groups, listeners, attributes) must be resynced.
SYNC_ACTIONS = frozenset({
    "CreateTargetGroup", "ModifyTargetGroup", "ModifyTargetGroupAttributes", "DeleteTargetGroup",
    "CreateListener", "ModifyListener", "DeleteListener", "CreateRule", "ModifyRule",
    "DeleteRule", "SetRulePriorities", "CreateLoadBalancer", "DeleteLoadBalancer",
    "ModifyLoadBalancerAttributes",
})
TRIM_EVERY = 500  # calls between clearing moto's class-level instance lists (memory bound)
# Characters a query string passed on to the engine keeps as they are (RFC 3986 query
# characters plus '%'); anything else (spaces, control characters) is percent-encoded.
_QUERY_SAFE = "/?:@!$&'()*+,;=%-._~"


class FakeAwsApp:
    """The WSGI callable served on the API port."""

    def __init__(self, engine: EngineClient, settings: FakeAwsSettings) -> None:
        self.moto = DomainDispatcherApplication(create_backend_app)
        self.engine = engine
        self.settings = settings
        self.lock = threading.RLock()
        self.overrides: dict[str, dict[str, float]] = {}
        self.calls = 0
        self.handlers: dict[str, Callable[[dict[str, str], dict[str, Any], StartResponse],
                                          Iterable[bytes]]] = {
            "DescribeTargetHealth": self.describe_target_health,
            "RegisterTargets": self.register_targets,
            "DeregisterTargets": self.deregister_targets,
            "CreateTargetGroup": self.create_target_group,
            "ModifyTargetGroup": self.modify_target_group,
            "ModifyTargetGroupAttributes": self.modify_target_group_attributes,
            "ModifyLoadBalancerAttributes": self.modify_lb_attributes,
        }

    # ---- dispatch --------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_testbed/"):
            return self.testbed(path, environ, start_response)
        self.calls += 1
        if self.calls % TRIM_EVERY == 0:
            reset_model_data()
        if environ.get("REQUEST_METHOD") == "POST" and _is_elbv2(environ):
            body = _read_body(environ)
            form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            action = form.get("Action", "")
            try:
                handler = self.handlers.get(action)
                if handler is not None:
                    return handler(form, environ, start_response)
                if action in SYNC_ACTIONS:
                    return self.moto_and_sync(form, environ, start_response)
            except AwsError as err:
                return _respond(start_response, err.status, err.xml(), "text/xml")
        return self.moto(environ, start_response)

    def call_moto(self, form: dict[str, str], environ: dict[str, Any]
                  ) -> tuple[str, list[tuple[str, str]], bytes]:
        data = urlencode(form).encode()
        environ["wsgi.input"] = io.BytesIO(data)
        environ["CONTENT_LENGTH"] = str(len(data))
        got: dict[str, Any] = {}

        def sr(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            got["status"], got["headers"] = status, headers

        body = b"".join(self.moto(environ, sr))
        return got["status"], got["headers"], body

    def moto_and_sync(self, form: dict[str, str], environ: dict[str, Any],
                      start_response: StartResponse,
                      after: Callable[[], None] | None = None) -> Iterable[bytes]:
        with self.lock:
            status, headers, body = self.call_moto(form, environ)
            if status.startswith("200"):
                if after is not None:
                    after()
                self.sync()
        start_response(status, headers)
        return [body]

    def sync(self) -> None:
        with self.lock:
            snap = moto_state.snapshot(self.overrides)
            code, _ = self.engine.call("POST", "/sync", snap)
            if code != 200:
                log.error("engine sync failed status=%s", code)

    # ---- targets (answered from the engine's store) ------------------------------------------
    def _tg(self, form: dict[str, str]) -> Any:
        arn = form.get("TargetGroupArn", "")
        tg = moto_state.find_target_group(arn)
        if tg is None:
            raise tg_not_found()
        return tg

    def describe_target_health(self, form: dict[str, str], environ: dict[str, Any],
                               start_response: StartResponse) -> Iterable[bytes]:
        tg = self._tg(form)
        asked = None
        if validation.members(form, "Targets"):
            asked = [[i, p] for i, p, _ in validation.parse_targets(
                form, tg.target_type, tg.port, need_port=False)]
        code, res = self.engine.call("POST", "/describe", {"tg_arn": tg.arn, "targets": asked})
        if code != 200:
            raise AwsError("InternalFailure", "engine unavailable", 500)
        return _respond(start_response, 200, target_health_xml(res["rows"]), "text/xml")

    def register_targets(self, form: dict[str, str], environ: dict[str, Any],
                         start_response: StartResponse) -> Iterable[bytes]:
        tg = self._tg(form)
        targets = validation.parse_targets(form, tg.target_type, tg.port)
        if any(p is None for _, p, _ in targets):
            raise validation.validation("A port must be specified")
        code, _ = self.engine.call("POST", "/register", {
            "tg_arn": tg.arn, "targets": [[i, p, az] for i, p, az in targets]})
        if code == 404:  # group created but engine not synced yet (should not happen)
            self.sync()
            code, _ = self.engine.call("POST", "/register", {
                "tg_arn": tg.arn, "targets": [[i, p, az] for i, p, az in targets]})
        if code != 200:
            raise AwsError("InternalFailure", "engine unavailable", 500)
        return _respond(start_response, 200, ok_response("RegisterTargets"), "text/xml")

    def deregister_targets(self, form: dict[str, str], environ: dict[str, Any],
                           start_response: StartResponse) -> Iterable[bytes]:
        tg = self._tg(form)
        targets = validation.parse_targets(form, tg.target_type, tg.port)
        code, _ = self.engine.call("POST", "/deregister", {
            "tg_arn": tg.arn, "targets": [[i, p] for i, p, _ in targets]})
        if code != 200:
            raise AwsError("InternalFailure", "engine unavailable", 500)
        return _respond(start_response, 200, ok_response("DeregisterTargets"), "text/xml")

    # ---- validation moto lacks ---------------------------------------------------------------
    def _rewrite_fast(self, form: dict[str, str], values: dict[str, float]) -> None:
        """Sub-AWS-minimum or fractional values (fast mode) are kept by us; moto gets valid
        integers so it stays consistent (DescribeTargetGroups then shows 5 / 2)."""
        if "interval" in values and (values["interval"] < AWS_MIN_HEALTH_CHECK_INTERVAL
                                     or values["interval"] != int(values["interval"])):
            form["HealthCheckIntervalSeconds"] = "5"
            if "HealthCheckTimeoutSeconds" in form:
                form["HealthCheckTimeoutSeconds"] = "2"
        if "timeout" in values and (values["timeout"] < 2
                                    or values["timeout"] != int(values["timeout"])):
            form["HealthCheckTimeoutSeconds"] = "2"
            if float(form.get("HealthCheckIntervalSeconds", "30")) <= 2:
                form["HealthCheckIntervalSeconds"] = "5"

    def create_target_group(self, form: dict[str, str], environ: dict[str, Any],
                            start_response: StartResponse) -> Iterable[bytes]:
        values = validation.health_check_params(form, self.settings.min_health_check_interval)
        self._rewrite_fast(form, values)
        name = form.get("Name", "")

        def remember() -> None:
            if values:
                for be in moto_state.backends():
                    for tg in be.target_groups.values():
                        if tg.name == name:
                            self.overrides[tg.arn] = dict(values)

        return self.moto_and_sync(form, environ, start_response, remember)

    def modify_target_group(self, form: dict[str, str], environ: dict[str, Any],
                            start_response: StartResponse) -> Iterable[bytes]:
        tg = self._tg(form)
        ov = self.overrides.get(tg.arn, {})
        current = (ov.get("interval", float(tg.health_check_interval_seconds)),
                   ov.get("timeout", float(tg.health_check_timeout_seconds)))
        form_p = dict(form)
        form_p.setdefault("Protocol", tg.protocol or "HTTP")
        values = validation.health_check_params(
            form_p, self.settings.min_health_check_interval, current)
        self._rewrite_fast(form, values)

        def remember() -> None:
            if values:
                self.overrides.setdefault(tg.arn, {}).update(values)
            if "HealthCheckIntervalSeconds" in form and "interval" not in values:
                self.overrides.get(tg.arn, {}).pop("interval", None)

        return self.moto_and_sync(form, environ, start_response, remember)

    def modify_target_group_attributes(self, form: dict[str, str], environ: dict[str, Any],
                                       start_response: StartResponse) -> Iterable[bytes]:
        tg = self._tg(form)
        attrs = validation.tg_attributes(form, {k: str(v) for k, v in tg.attributes.items()})
        # moto rejects the valid 3600 (range(0, 3600)); hand it a valid value, then set ours.
        key = "deregistration_delay.timeout_seconds"
        for k, _v in list(form.items()):
            if k.endswith(".Value") and form.get(k[:-6] + ".Key") == key:
                form[k] = "0"

        def apply() -> None:
            for k, v in attrs.items():
                tg.attributes[k] = v

        return self.moto_and_sync(form, environ, start_response, apply)

    def modify_lb_attributes(self, form: dict[str, str], environ: dict[str, Any],
                             start_response: StartResponse) -> Iterable[bytes]:
        validation.lb_attributes(form)
        return self.moto_and_sync(form, environ, start_response)

    # ---- /_testbed -----------------------------------------------------------------------------
    def testbed(self, path: str, environ: dict[str, Any], start_response: StartResponse
                ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        qs = environ.get("QUERY_STRING", "")
        query = parse_qs(qs)
        # The engine parses and validates the query of /events, /events/stream and /config
        # (filters, since, limit, target_group_arn): 400 with a JSON error when it is bad.
        suffix = f"?{quote(qs, safe=_QUERY_SAFE)}" if qs else ""
        if path == "/_testbed/events/stream":
            code, stream = self.engine.open_stream("/events/stream" + suffix)
            if isinstance(stream, bytes):
                return _respond(start_response, code, stream, "application/json")
            start_response("200 OK", [("Content-Type", "application/x-ndjson")])
            return stream
        if path == "/_testbed/events":
            code, raw = self.engine.raw("GET", "/events" + suffix)
            return _respond(start_response, code, raw, "application/json")
        if path == "/_testbed/config":
            # The engine owns the run-time settings (global and per target group) and
            # validates changes; this process adds the values only it reads (host, port,
            # api_nice) to what the engine reports.
            body = _read_body(environ) if method == "POST" else None
            code, raw = self.engine.raw(method, "/config" + suffix, body)
            if code == 200:
                raw = json.dumps({**self.settings.values_for("api"),
                                  **json.loads(raw)}).encode()
            return _respond(start_response, code, raw, "application/json")
        if path == "/_testbed/reset" and method == "POST":
            from moto.moto_api._internal.models import moto_api_backend

            with self.lock:
                moto_api_backend.reset()
                self.overrides.clear()
                code, raw = self.engine.raw("POST", "/reset")
            return _respond(start_response, code, raw, "application/json")
        if path == "/_testbed/healthz":
            try:
                code, eng = self.engine.call("GET", "/healthz")
            except OSError as exc:
                return _json(start_response, 503, {"ok": False, "engine": str(exc)})
            return _json(start_response, 200 if code == 200 else 503,
                         {"ok": code == 200, "engine": eng, "time": time.time()})
        if path == "/_testbed/stats":
            _, eng = self.engine.call("GET", "/stats" + (
                "?clear=1" if query.get("clear") else ""))
            return _json(start_response, 200, {"engine": eng, "api": _self_stats(self.calls)})
        return _json(start_response, 404, {"error": f"no route {path}"})


def _self_stats(calls: int) -> dict[str, Any]:
    rss_kb = 0
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss_kb = int(line.split()[1])
    except OSError:
        pass
    return {"calls": calls, "rss_kb": rss_kb}


def _is_elbv2(environ: dict[str, Any]) -> bool:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if auth:
        return "/elasticloadbalancing/" in auth
    return "2015-12-01" in environ.get("QUERY_STRING", "")


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        n = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        n = 0
    body = environ["wsgi.input"].read(n) if n else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _respond(start_response: StartResponse, status: int, body: bytes, ctype: str
             ) -> list[bytes]:
    phrase = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error",
              503: "Service Unavailable"}.get(status, "")
    start_response(f"{status} {phrase}", [("Content-Type", ctype),
                                          ("Content-Length", str(len(body)))])
    return [body]


def _json(start_response: StartResponse, status: int, obj: Any) -> list[bytes]:
    return _respond(start_response, status, json.dumps(obj).encode(), "application/json")
