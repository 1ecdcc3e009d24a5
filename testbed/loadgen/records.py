"""One record per request and the error classes that the reports count."""

from __future__ import annotations

import errno
import json
from dataclasses import asdict, dataclass
from typing import Any

OK = "ok"
CONN_REFUSED = "conn_refused"
CONN_RESET = "conn_reset"
CONN_CLOSED = "conn_closed"
TIMEOUT = "timeout"
CONN_ERROR = "conn_error"
BAD_RESPONSE = "bad_response"
TRANSPORT_CLASSES = (CONN_REFUSED, CONN_RESET, CONN_CLOSED, TIMEOUT, CONN_ERROR, BAD_RESPONSE)


class ConnectionClosedError(ConnectionError):
    """The peer closed the connection (FIN) before a whole response arrived."""


class BadResponseError(Exception):
    """The bytes received were not a valid HTTP/1.x response."""


@dataclass(slots=True)
class Record:
    """A request as seen by the client; `status` 0 means no HTTP response (vegeta's code 0)."""

    seq: int
    intended: float  # unix seconds the request was scheduled for
    started: float  # unix seconds it was actually written (or its connect began)
    latency: float  # seconds from `intended` to the end of the response or error
    status: int
    cls: str  # "ok", an HTTP code like "502", or one of TRANSPORT_CLASSES
    error: str = ""  # error text for transport errors
    elb_error: str | None = None  # x-testbed-elb-error header: the fake ALB's own reason
    pod: str | None = None
    req: int = 0  # index of the request sent in AttackResult.requests (0 when there is one)

    @property
    def ok(self) -> bool:
        return self.cls == OK

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Record:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def status_class(status: int) -> str:
    """vegeta and k6 count [200, 400) as success; anything else is its own code."""
    return OK if 200 <= status < 400 else str(status)


def _errno_of(exc: BaseException) -> int | None:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno is not None:
            return cur.errno
        cur = cur.__cause__ or cur.__context__
    return None


def classify_exception(exc: BaseException) -> str:
    """Map a client-side exception to refused / reset / closed / timeout / other."""
    if isinstance(exc, TimeoutError):
        return TIMEOUT
    if isinstance(exc, ConnectionClosedError):
        return CONN_CLOSED
    if isinstance(exc, BadResponseError):
        return BAD_RESPONSE
    code = _errno_of(exc)
    if code == errno.ECONNREFUSED:
        return CONN_REFUSED
    if code in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED):
        return CONN_RESET
    if code == errno.ETIMEDOUT:
        return TIMEOUT
    return CONN_ERROR


def pod_from_body(body: bytes) -> str | None:
    """The demo app answers {"pod": ...}; parsing it is cheap enough for small bodies only."""
    if not body or len(body) > 512 or body[:1] != b"{":
        return None
    try:
        value = json.loads(body).get("pod")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
