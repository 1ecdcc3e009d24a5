"""WSGI app in front of moto: answers target registration/health from the engine, adds the
validation moto lacks, keeps the engine in sync after every ELBv2 change, and serves
`/_testbed/*` (event log, config, reset, health).
"""

from __future__ import annotations

import functools
import io
import ipaddress
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlencode
from xml.sax.saxutils import unescape

from moto.core.model_instances import reset_model_data
from moto.core.utils import camelcase_to_underscores
from moto.elbv2.responses import ELBV2Response
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from testbed.fakeaws import wire
from testbed.fakeaws.api import moto_state, validation
from testbed.fakeaws.api.engine_client import EngineClient
from testbed.fakeaws.api.errors import (
    AwsError,
    attributes_response,
    duplicate_load_balancer_name,
    duplicate_target_group_name,
    internal_failure,
    listener_not_bound,
    missing_action,
    not_modelled,
    ok_response,
    renamed_response,
    service_unavailable,
    target_health_xml,
    tg_not_found,
    xml_safe,
)
from testbed.fakeaws.api.faults import CONTROLLER_USER_AGENT, ApiFaults, scope_of
from testbed.fakeaws.api.restart import Busy, EngineSupervisor, RestartFailed
from testbed.fakeaws.settings import AWS_MIN_HEALTH_CHECK_INTERVAL, FakeAwsSettings
from testbed.fakeaws.wire import PORT_TAKEN

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
# ELBv2 actions after which the engine's view (groups, listeners, attributes) must be resynced.
SYNC_ACTIONS = frozenset({
    "CreateTargetGroup", "ModifyTargetGroup", "ModifyTargetGroupAttributes", "DeleteTargetGroup",
    "CreateListener", "ModifyListener", "DeleteListener", "CreateRule", "ModifyRule",
    "DeleteRule", "SetRulePriorities", "CreateLoadBalancer", "DeleteLoadBalancer",
    "ModifyLoadBalancerAttributes",
})
VERSION = "2015-12-01"
# Trust store (mTLS) actions, answered for an account without trust stores (moto lacks them).
TRUST_STORE_ACTIONS = frozenset({
    "DescribeTrustStores", "DescribeTrustStoreAssociations", "DescribeTrustStoreRevocations",
    "GetTrustStoreCaCertificatesBundle", "GetTrustStoreRevocationContent", "ModifyTrustStore",
    "DeleteTrustStore", "AddTrustStoreRevocations", "RemoveTrustStoreRevocations",
})
MARKERS_KEPT = 1000
_NEXT_MARKER = re.compile(rb"<NextMarker>([^<]+)</NextMarker>")
_LISTENER_ARN = re.compile(rb"<ListenerArn>([^<]+)</ListenerArn>")
_DNS_NAME = re.compile(rb"<DNSName>[^<]*</DNSName>")
FIRST_ADDRESS = ipaddress.IPv4Address("127.1.0.1")
TRIM_EVERY = 500  # calls between clearing moto's class-level instance lists (memory bound)
# Characters a query string passed on to the engine keeps as they are (RFC 3986 query
# characters plus '%'); anything else (spaces, control characters) is percent-encoded.
_QUERY_SAFE = "/?:@!$&'()*+,;=%-._~"


class FakeAwsApp:
    """The WSGI callable served on the API port."""

    def __init__(self, engine: EngineClient, settings: FakeAwsSettings,
                 supervisor: EngineSupervisor | None = None) -> None:
        self.moto = DomainDispatcherApplication(create_backend_app)
        self.engine = engine
        # The engine process's owner (POST /_testbed/restart); None: not restartable here.
        self.supervisor = supervisor
        self.settings = settings
        self.lock = threading.RLock()
        self.overrides: dict[str, dict[str, float]] = {}
        self.calls = 0
        self.faults = ApiFaults()
        self.handlers: dict[str, Callable[[dict[str, str], dict[str, Any], StartResponse],
                                          Iterable[bytes]]] = {
            "DescribeTargetHealth": self.describe_target_health,
            "RegisterTargets": self.register_targets,
            "DeregisterTargets": self.deregister_targets,
            "CreateTargetGroup": self.create_target_group,
            "ModifyTargetGroup": self.modify_target_group,
            "ModifyTargetGroupAttributes": self.modify_target_group_attributes,
            "ModifyLoadBalancerAttributes": self.modify_lb_attributes,
            "CreateLoadBalancer": self.create_load_balancer,
        }
        # ELBv2 actions moto lacks that the fake answers itself (see docs "Errors and
        # validation"); every other action moto lacks is refused with a clear 400.
        self.unmodelled: dict[str, Callable[[dict[str, str], dict[str, Any], StartResponse],
                                            Iterable[bytes]]] = {
            action: self.trust_store_action for action in TRUST_STORE_ACTIONS}
        # The parameters each target group / load balancer was created with (by ARN), for
        # AWS's idempotent create: same name + same settings returns the existing one.
        self.created: dict[str, dict[str, str]] = {}
        # listener_addresses per-load-balancer: each load balancer's own loopback address.
        self.addresses: dict[str, str] = {}
        self._next_address = 0
        # NextMarker values moto handed out (paging tokens a client may send back), newest
        # MARKERS_KEPT.
        self.markers: dict[str, None] = {}

    # ---- dispatch ----------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_testbed/"):
            try:
                return self.testbed(path, environ, start_response)
            except OSError as exc:  # the engine is gone or not answering
                log.exception("testbed endpoint %s failed", path)
                return _json(start_response, 503, {"error": f"engine unavailable: {exc}"})
        self.calls += 1
        if self.calls % TRIM_EVERY == 0:
            reset_model_data()
        form = _elbv2_form(environ)
        if form is None:
            return self.moto(environ, start_response)
        injected = self.faults.check(str(environ.get("HTTP_USER_AGENT", "")), form)
        if injected is not None:
            return _respond(start_response, injected.status, injected.xml(), "text/xml")
        # One path for GET query strings and POST forms: AWS's query protocol accepts both.
        try:
            return self.elbv2(form, environ, start_response)
        except AwsError as exc:
            error = exc
        except OSError as exc:  # engine control port unreachable
            log.exception("ELBv2 %s: engine unavailable", form.get("Action"))
            error = service_unavailable(f"(engine: {exc})")
        except Exception:  # never an HTML page or a traceback: AWS's own 500 shape
            log.exception("ELBv2 %s failed", form.get("Action"))
            error = internal_failure()
        return _respond(start_response, error.status, error.xml(), "text/xml")

    def elbv2(self, form: dict[str, str], environ: dict[str, Any],
              start_response: StartResponse) -> Iterable[bytes]:
        action = form.get("Action", "")
        if not action:
            raise missing_action()
        validation.check_model(action, form)  # InvalidAction, required, types, ranges
        validation.arns(form)
        validation.marker(form, self.markers)
        validation.rules(action, form)  # rule conditions and actions moto lets through
        handler = self.handlers.get(action)
        if handler is not None:
            return handler(form, environ, start_response)
        if not _moto_has(action):
            unmodelled = self.unmodelled.get(action)
            if unmodelled is None:
                raise not_modelled(action)
            return unmodelled(form, environ, start_response)
        if action in SYNC_ACTIONS:
            return self.moto_and_sync(form, environ, start_response)
        with self.lock:
            status, headers, body = self.call_moto(form, environ)
        start_response(status, headers)
        return [body]

    def call_moto(self, form: dict[str, str], environ: dict[str, Any]
                  ) -> tuple[str, list[tuple[str, str]], bytes]:
        """moto's answer to `form`, always sent as a signed POST form (however the client
        sent it); its crashes become InternalFailure (raised, so nothing is synced)."""
        data = urlencode(form).encode()
        env = dict(environ)
        env.update({"REQUEST_METHOD": "POST", "QUERY_STRING": "",
                    "CONTENT_TYPE": "application/x-www-form-urlencoded",
                    "CONTENT_LENGTH": str(len(data)), "wsgi.input": io.BytesIO(data)})
        if "/elasticloadbalancing/" not in env.get("HTTP_AUTHORIZATION", ""):
            # moto picks the service from the signature's credential scope.
            env["HTTP_AUTHORIZATION"] = (
                f"AWS4-HMAC-SHA256 Credential=testing/20150830/{_region(environ)}/"
                "elasticloadbalancing/aws4_request, SignedHeaders=host, Signature=0")
        got: dict[str, Any] = {}

        def sr(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            got["status"], got["headers"] = status, headers

        body = b"".join(self.moto(env, sr))
        status = got["status"]
        if int(status.split()[0]) >= 500 or not body.lstrip().startswith(b"<"):
            log.error("moto failed action=%s status=%s body=%r", form.get("Action"), status,
                      body[:300])
            raise internal_failure()
        safe = xml_safe(body)
        headers = got["headers"]
        if safe != body:
            body = safe
            headers = [(k, str(len(body)) if k.lower() == "content-length" else v)
                       for k, v in headers]
        for token in _NEXT_MARKER.findall(body):
            self.markers[unescape(token.decode())] = None
            while len(self.markers) > MARKERS_KEPT:
                del self.markers[next(iter(self.markers))]
        return status, headers, body

    def moto_and_sync(self, form: dict[str, str], environ: dict[str, Any],
                      start_response: StartResponse,
                      after: Callable[[], None] | None = None) -> Iterable[bytes]:
        with self.lock:
            old_port = moto_state.listener_port(form.get("ListenerArn", ""))
            status, headers, body = self.call_moto(form, environ)
            if status.startswith("200"):
                if after is not None:
                    after()
                failed = self.sync()
                if failed:
                    raise self._listener_not_bound(form, environ, body, old_port, failed)
        start_response(status, headers)
        return [body]

    def _listener_not_bound(self, form: dict[str, str], environ: dict[str, Any], body: bytes,
                            old_port: int | None, failed: list[dict[str, Any]]) -> AwsError:
        """A CreateListener or ModifyListener whose port the engine could not listen on:
        undo it in moto (delete the new listener, or put the old port back) and answer an
        error, so the API never shows a listener that does not listen."""
        action = form["Action"]
        m = _LISTENER_ARN.search(body)
        arn = unescape(m.group(1).decode()) if m else form.get("ListenerArn", "")
        mine = next((f for f in failed if f["listener_arn"] == arn), None)
        if mine is None or action not in ("CreateListener", "ModifyListener"):
            log.error("listeners not bound action=%s failed=%s", action, failed)
            return internal_failure()
        if action == "CreateListener":
            self.call_moto({"Action": "DeleteListener", "Version": VERSION,
                            "ListenerArn": arn}, environ)
        elif old_port is not None:
            self.call_moto({"Action": "ModifyListener", "Version": VERSION,
                            "ListenerArn": arn, "Port": str(old_port)}, environ)
        self.sync()
        err = str(mine["error"])
        taken_by = err.removeprefix(PORT_TAKEN) if err.startswith(PORT_TAKEN) else None
        log.warning("listener not bound action=%s listener_arn=%s port=%s error=%s", action,
                    arn, mine["port"], err)
        return listener_not_bound(int(mine["port"]), str(mine["host"]), err, taken_by)

    def snapshot(self) -> wire.Snapshot:
        with self.lock:
            return moto_state.snapshot(self.overrides, self.addresses)

    def sync(self) -> list[dict[str, Any]]:
        """Push moto's state to the engine -> the listeners it could not listen on."""
        with self.lock:
            snap = self.snapshot()
            code, answer = self.engine.call("POST", "/sync", snap)
            if code != 200:
                log.error("engine sync failed status=%s", code)
                return []
            return list(answer.get("bind_failed") or [])

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
        # the controller's calls are the ones a report counts (ALBC's User-Agent prefix)
        caller = ("controller" if str(environ.get("HTTP_USER_AGENT", "")).startswith(
            CONTROLLER_USER_AGENT) else "other")
        code, res = self.engine.call("POST", "/describe", {"tg_arn": tg.arn, "targets": asked,
                                                           "caller": caller})
        if code != 200:
            raise AwsError("InternalFailure", "engine unavailable", 500)
        return _respond(start_response, 200, target_health_xml(res["rows"]), "text/xml")

    def register_targets(self, form: dict[str, str], environ: dict[str, Any],
                         start_response: StartResponse) -> Iterable[bytes]:
        tg = self._tg(form)
        targets = validation.parse_targets(form, tg.target_type, tg.port)
        if any(p is None for _, p, _ in targets):
            raise validation.validation("A port must be specified")
        if tg.target_type == "ip":
            validation.target_ips([i for i, _, _ in targets], tg.ip_address_type or "ipv4",
                                  moto_state.vpc_cidrs(tg.vpc_id, _region(environ)))
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
        validation.health_check_rules(form, form.get("Protocol"),
                                      form.get("TargetType", "instance"))
        name = form.get("Name", "")
        region = _region(environ)
        asked = _settings_of(form)
        with self.lock:
            existing = moto_state.target_group_named(name, region)
            if existing is not None:
                # CreateTargetGroup: "If you attempt to create multiple target groups with
                # the same settings, each call succeeds."
                # https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html
                if self.created.get(existing.arn) != asked:
                    raise duplicate_target_group_name()
                return self.existing_as_created(
                    "DescribeTargetGroups", "TargetGroupArns.member.1", existing.arn,
                    "CreateTargetGroup", environ, start_response)
            self._rewrite_fast(form, values)

            def remember() -> None:
                tg = moto_state.target_group_named(name, region)
                if tg is not None:
                    self.created[tg.arn] = asked
                    if values:
                        self.overrides[tg.arn] = dict(values)

            return self.moto_and_sync(form, environ, start_response, remember)

    def create_load_balancer(self, form: dict[str, str], environ: dict[str, Any],
                             start_response: StartResponse) -> Iterable[bytes]:
        name = form.get("Name", "")
        validation.lb_name(name)
        region = _region(environ)
        asked = _settings_of(form)
        with self.lock:
            existing = moto_state.load_balancer_named(name, region)
            if existing is not None:
                # CreateLoadBalancer: "If you attempt to create multiple load balancers with
                # the same settings, each call succeeds."; otherwise DuplicateLoadBalancerName.
                # https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateLoadBalancer.html
                if self.created.get(existing.arn) != asked:
                    raise duplicate_load_balancer_name()
                return self.existing_as_created(
                    "DescribeLoadBalancers", "LoadBalancerArns.member.1", existing.arn,
                    "CreateLoadBalancer", environ, start_response)
            azs = moto_state.subnet_azs(validation.lb_subnet_ids(form), region)
            if azs is not None:  # an unknown subnet: moto answers SubnetNotFound
                validation.lb_subnets(azs, form.get("Type", "application"))

            address: list[str] = []

            def remember() -> None:
                lb = moto_state.load_balancer_named(name, region)
                if lb is not None:
                    self.created[lb.arn] = asked
                    if self.settings.listener_addresses == "per-load-balancer":
                        address.append(self._address_for(lb))

            body = b"".join(self.moto_and_sync(form, environ, start_response, remember))
            if address:  # moto answered with the DNSName it made; the address replaces it
                body = _DNS_NAME.sub(b"<DNSName>" + address[0].encode() + b"</DNSName>",
                                     body, count=1)
            return [body]

    def _address_for(self, lb: Any) -> str:
        """A new load balancer's own loopback address (127.1.0.1, 127.1.0.2, ...; Linux
        routes all of 127.0.0.0/8 to lo), also its DNSName so clients find it."""
        self._next_address += 1
        address = str(FIRST_ADDRESS + self._next_address - 1)
        self.addresses[lb.arn] = address
        lb.dns_name = address
        return address

    def existing_as_created(self, describe: str, key: str, arn: str, create: str,
                            environ: dict[str, Any], start_response: StartResponse
                            ) -> Iterable[bytes]:
        """An idempotent create's answer: the existing resource, as Describe* shows it."""
        status, headers, body = self.call_moto(
            {"Action": describe, "Version": VERSION, key: arn}, environ)
        start_response(status, [(k, v) for k, v in headers if k.lower() != "content-length"])
        return [renamed_response(body, describe, create)]

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
        validation.health_check_rules(form, tg.protocol, tg.target_type)
        changed = {k: v for k, v in _settings_of(form).items() if k != "TargetGroupArn"}
        self._rewrite_fast(form, values)

        def remember() -> None:
            if tg.arn in self.created:  # an identical create must match the new settings
                self.created[tg.arn] = {**self.created[tg.arn], **changed}
            if values:
                self.overrides.setdefault(tg.arn, {}).update(values)
            if "HealthCheckIntervalSeconds" in form and "interval" not in values:
                self.overrides.get(tg.arn, {}).pop("interval", None)

        return self.moto_and_sync(form, environ, start_response, remember)

    def modify_target_group_attributes(self, form: dict[str, str], environ: dict[str, Any],
                                       start_response: StartResponse) -> Iterable[bytes]:
        tg = self._tg(form)
        attrs = validation.tg_attributes(form, {k: str(v) for k, v in tg.attributes.items()},
                                         tg.protocol)
        # moto rejects the valid 3600 (range(0, 3600)); hand it a valid value, then set ours.
        key = "deregistration_delay.timeout_seconds"
        for k, _v in list(form.items()):
            if k.endswith(".Value") and form.get(k[:-6] + ".Key") == key:
                form[k] = "0"

        def apply() -> None:
            for k, v in attrs.items():
                tg.attributes[k] = v

        with self.lock:
            status, headers, body = self.call_moto(form, environ)
            if not status.startswith("200"):
                start_response(status, headers)
                return [body]
            apply()
            self.sync()
        # Echo what is stored (moto's answer shows the placeholder it was given).
        return _respond(start_response, 200, attributes_response(
            "ModifyTargetGroupAttributes", {k: tg.attributes[k] for k in attrs}), "text/xml")

    def trust_store_action(self, form: dict[str, str], environ: dict[str, Any],
                           start_response: StartResponse) -> Iterable[bytes]:
        """Trust stores (mTLS) are not modelled and cannot be created here, so the account
        has none: DescribeTrustStores lists nothing, any named one is TrustStoreNotFound,
        as AWS answers for an account without trust stores."""
        action = form["Action"]
        if action == "DescribeTrustStores" and not (
                validation.members(form, "Names") or validation.members(form, "TrustStoreArns")):
            return _respond(start_response, 200, ok_response(action, "<TrustStores/>"),
                            "text/xml")
        raise AwsError("TrustStoreNotFound", "One or more trust stores not found")

    def modify_lb_attributes(self, form: dict[str, str], environ: dict[str, Any],
                             start_response: StartResponse) -> Iterable[bytes]:
        validation.lb_attributes(form, self.settings.min_client_keep_alive)
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
                self.created.clear()
                self.addresses.clear()
                self._next_address = 0
                code, raw = self.engine.raw("POST", "/reset")
            return _respond(start_response, code, raw, "application/json")
        if path == "/_testbed/faults":
            if method == "POST":
                try:
                    return _json(start_response, 200, self.faults.set(
                        json.loads(_read_body(environ) or b"{}")))
                except (ValueError, TypeError) as exc:
                    return _json(start_response, 400, {"error": str(exc)})
            try:
                scope = scope_of(",".join(
                    parse_qs(environ.get("QUERY_STRING", "")).get("target_group_arn", [])))
            except ValueError as exc:
                return _json(start_response, 400, {"error": str(exc)})
            if method == "DELETE":
                return _json(start_response, 200, self.faults.clear(scope))
            return _json(start_response, 200, self.faults.state(scope))
        if path == "/_testbed/restart":
            return self.restart(method, qs, environ, start_response)
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


    def restart(self, method: str, qs: str, environ: dict[str, Any],
                start_response: StartResponse) -> Iterable[bytes]:
        """POST /_testbed/restart: a new engine process takes over the old one's state and
        listening sockets (api/restart.py); ELBv2 calls meanwhile wait."""
        if method != "POST":
            return _json(start_response, 405, {"error": f"restart: POST only, not {method}"})
        if qs or _read_body(environ):
            return _json(start_response, 400,
                         {"error": "restart: takes no query and no body"})
        if self.supervisor is None:
            return _json(start_response, 503,
                         {"error": "restart: this API does not own its engine process"})
        try:
            answer = self.supervisor.restart(self.engine, self.lock, self.snapshot)
        except Busy as exc:
            return _json(start_response, 409, {"error": f"restart: {exc}"})
        except RestartFailed as exc:
            return _json(start_response, 500, {"error": f"restart failed: {exc}"})
        return _json(start_response, 200, answer)


def _elbv2_form(environ: dict[str, Any]) -> dict[str, str] | None:
    """The query-protocol parameters of an ELBv2 request (query string and, for POST, the
    form body, merged), or None when the request is for another service. ELBv2: signed for
    `elasticloadbalancing`, or unsigned with Version=2015-12-01."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    query = environ.get("QUERY_STRING", "")
    if auth and "/elasticloadbalancing/" not in auth:
        return None
    body = b""
    if environ.get("REQUEST_METHOD") == "POST" and (
            auth or VERSION in query
            or environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded")):
        body = _read_body(environ)
    form = dict(parse_qsl(query, keep_blank_values=True))
    form.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if not auth and form.get("Version") != VERSION:
        return None
    return form


def _region(environ: dict[str, Any]) -> str:
    """The region of the signature's credential scope (`Credential=AK/DATE/REGION/...`);
    us-east-1 for unsigned requests."""
    scope = environ.get("HTTP_AUTHORIZATION", "").partition("Credential=")[2].split("/")
    return scope[2] if len(scope) > 3 and scope[2] else "us-east-1"


@functools.cache
def _moto_has(action: str) -> bool:
    return hasattr(ELBV2Response, camelcase_to_underscores(action))


def _settings_of(form: dict[str, str]) -> dict[str, str]:
    """A create call's settings as compared for idempotency (the request, not its
    envelope)."""
    return {k: v for k, v in form.items() if k not in ("Action", "Version")}


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


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        n = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        n = 0
    if not n:
        return b""  # nothing announced: leave the stream as it is for whoever reads it
    body = environ["wsgi.input"].read(n)
    environ["wsgi.input"] = io.BytesIO(body)  # moto (or the engine) reads it again
    return body


def _respond(start_response: StartResponse, status: int, body: bytes, ctype: str
             ) -> list[bytes]:
    phrase = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
              409: "Conflict", 500: "Internal Server Error",
              503: "Service Unavailable"}.get(status, "")
    start_response(f"{status} {phrase}", [("Content-Type", ctype),
                                          ("Content-Length", str(len(body)))])
    return [body]


def _json(start_response: StartResponse, status: int, obj: Any) -> list[bytes]:
    return _respond(start_response, status, json.dumps(obj).encode(), "application/json")
