"""AWS query-protocol errors and responses (the XML boto3 and the AWS CLI parse)."""

from __future__ import annotations

import uuid
from xml.sax.saxutils import escape

NS = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"


class AwsError(Exception):
    """An error AWS would return: code, message, HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def xml(self) -> bytes:
        return (f'<ErrorResponse xmlns="{NS}"><Error><Type>Sender</Type>'
                f"<Code>{escape(self.code)}</Code><Message>{escape(self.message)}</Message>"
                f"</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>").encode()


def validation(message: str) -> AwsError:
    return AwsError("ValidationError", message)


def tg_not_found() -> AwsError:
    return AwsError("TargetGroupNotFound", "One or more target groups not found")


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
