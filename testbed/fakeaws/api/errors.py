"""AWS query-protocol errors and responses (the XML boto3 and the AWS CLI parse).

Every answer to an ELBv2 request is one of these shapes, also for input that makes no sense:
AWS's common errors (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/CommonErrors.html)
are a 400 MissingAction / InvalidAction / ValidationError, or, for faults of the service
itself, a 500 InternalFailure / 503 ServiceUnavailable, all as an XML ErrorResponse.
"""

from __future__ import annotations

import re
import uuid
from xml.sax.saxutils import escape as _escape

NS = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"
# Characters XML 1.0 cannot carry at all, not even escaped (control characters, surrogates,
# U+FFFE/U+FFFF): a message echoing such client input would make the answer unparseable.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def escape(text: str) -> str:
    """XML text: markup escaped, characters XML cannot carry shown as `\\xNN`."""
    return _escape(_NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text))


_NOT_XML_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def xml_safe(body: bytes) -> bytes:
    """moto's answer with the control characters XML cannot carry shown as `\\xNN` (moto
    echoes client input, e.g. an unknown ARN, into its messages unfiltered)."""
    return _NOT_XML_BYTES.sub(lambda m: f"\\x{m.group()[0]:02x}".encode(), body)


class AwsError(Exception):
    """An error AWS would return: code, message, HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def xml(self) -> bytes:
        # Sender: the request is at fault (4xx); Receiver: the service is (5xx).
        fault = "Receiver" if self.status >= 500 else "Sender"
        return (f'<ErrorResponse xmlns="{NS}"><Error><Type>{fault}</Type>'
                f"<Code>{escape(self.code)}</Code><Message>{escape(self.message)}</Message>"
                f"</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>").encode()


def validation(message: str) -> AwsError:
    return AwsError("ValidationError", message)


def tg_not_found() -> AwsError:
    return AwsError("TargetGroupNotFound", "One or more target groups not found")


def missing_action() -> AwsError:
    return AwsError("MissingAction", "The request is missing an action or a required parameter")


def not_modelled(action: str) -> AwsError:
    """An ELBv2 action (botocore knows it) the fake does not implement: a clear 400 rather
    than a made-up answer (InvalidAction is what a client would get for an action the
    service lacks)."""
    return AwsError("InvalidAction", f"The action {action} is valid for ELBv2 but not modelled "
                                     "by the fake AWS (testbed)")


def internal_failure(detail: str = "") -> AwsError:
    return AwsError("InternalFailure", "The request processing has failed because of an "
                    f"unknown error, exception or failure.{' ' + detail if detail else ''}", 500)


def service_unavailable(detail: str = "") -> AwsError:
    return AwsError("ServiceUnavailable", "The request has failed due to a temporary failure "
                    f"of the server.{' ' + detail if detail else ''}", 503)


def listener_not_bound(port: int, host: str, error: str, taken_by: str | None) -> AwsError:
    """The fake ALB could not listen on a new listener's port. Not an AWS case (each real
    load balancer has its own addresses): the fake listens for every load balancer on one
    address, so a port can be one listener's only (docs/fakeaws.md, "Listeners")."""
    if taken_by is not None:
        return AwsError("DuplicateListener",
                        f"A listener with the specified port already exists: port {port} on "
                        f"{host} is listener {taken_by}'s (the fake ALB listens for every "
                        "load balancer on one address; use another port)")
    return AwsError("ValidationError",
                    f"The fake ALB cannot listen on {host}:{port}: {error} (another process "
                    "holds the port, or it needs privileges; use another port)")


def duplicate_load_balancer_name() -> AwsError:
    return AwsError("DuplicateLoadBalancerName",
                    "A load balancer with the same name exists, but with different settings")


def duplicate_target_group_name() -> AwsError:
    return AwsError("DuplicateTargetGroupName",
                    "A target group with the same name exists, but with different settings")


def renamed_response(xml: bytes, from_action: str, to_action: str) -> bytes:
    """moto's answer to `from_action` as the answer to `to_action` (same result members,
    e.g. DescribeTargetGroups -> CreateTargetGroup for an idempotent create)."""
    return (xml.replace(f"<{from_action}".encode(), f"<{to_action}".encode())
            .replace(f"</{from_action}".encode(), f"</{to_action}".encode()))


def attributes_response(action: str, attrs: dict[str, str]) -> bytes:
    """`<Attributes>` answer of Modify*Attributes / Describe*Attributes."""
    items = "".join(f"<member><Key>{escape(k)}</Key><Value>{escape(str(v))}</Value></member>"
                    for k, v in attrs.items())
    return ok_response(action, f"<Attributes>{items}</Attributes>")


def ok_response(action: str, result_xml: str = "") -> bytes:
    result = (f"<{action}Result>{result_xml}</{action}Result>" if result_xml
              else f"<{action}Result/>")
    return (f'<{action}Response xmlns="{NS}">{result}<ResponseMetadata><RequestId>'
            f"{uuid.uuid4()}</RequestId></ResponseMetadata></{action}Response>").encode()


def target_health_xml(rows: list[dict[str, object]]) -> bytes:
    parts = ["<TargetHealthDescriptions>"]
    for r in rows:
        parts.append("<member>")
        parts.append(f"<HealthCheckPort>{escape(str(r['hc_port']))}</HealthCheckPort>")
        parts.append("<TargetHealth>")
        parts.append(f"<State>{r['state']}</State>")
        if r.get("reason"):
            parts.append(f"<Reason>{escape(str(r['reason']))}</Reason>")
        if r.get("description"):
            parts.append(f"<Description>{escape(str(r['description']))}</Description>")
        parts.append("</TargetHealth><Target>")
        parts.append(f"<Id>{escape(str(r['id']))}</Id><Port>{r['port']}</Port>")
        if r.get("az"):
            parts.append(f"<AvailabilityZone>{escape(str(r['az']))}</AvailabilityZone>")
        parts.append("</Target></member>")
    parts.append("</TargetHealthDescriptions>")
    return ok_response("DescribeTargetHealth", "".join(parts))
