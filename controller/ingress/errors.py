"""Errors of the Ingress model-building layer.

Upstream (aws-load-balancer-controller v3.5.0) returns plain Go errors from the model builder and
the group controller turns them into a Warning event on every member Ingress:
``FailedBuildModel`` / "Failed build model due to <err>" (controllers/ingress/group_controller.go)
and ``FailedLoadGroupID`` / "failed load groupID due to <err>"
(controllers/ingress/eventhandlers/ingress_events.go). Our errors carry the same reason and the
upstream-shaped message so the caller can emit the event verbatim.
"""

from __future__ import annotations

REASON_FAILED_BUILD_MODEL = "FailedBuildModel"
REASON_FAILED_LOAD_GROUP_ID = "FailedLoadGroupID"


class IngressModelError(Exception):
    """A user-facing configuration error; ``message`` is upstream's error text."""

    reason: str = REASON_FAILED_BUILD_MODEL
    _event_prefix = "Failed build model due to"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason

    def wrap(self, context: str) -> IngressModelError:
        """Prefix the message like Go's errors.Wrapf(err, context), keeping the class."""
        err = type(self)(f"{context}: {self.message}", reason=self.reason)
        return err

    @property
    def event_message(self) -> str:
        return f"{self._event_prefix} {self.message}"

    def __str__(self) -> str:
        return self.message


class UnsupportedError(IngressModelError):
    """Valid upstream configuration this controller does not implement (HTTPS, instance, ...)."""


class GroupError(IngressModelError):
    """An Ingress cannot be assigned to an IngressGroup (bad class or group name)."""

    reason = REASON_FAILED_LOAD_GROUP_ID
    _event_prefix = "failed load groupID due to"
