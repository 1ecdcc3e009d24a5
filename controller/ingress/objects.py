"""Raw API JSON (what controller/kube.py caches) -> kubernetes client models.

The builder reads ``kubernetes.client`` models (V1Ingress, V1Service, V1IngressClass); the
informers keep camelCase dicts. ``ApiClient.deserialize`` is the client's own decoder, so the
conversion matches what a typed read through the client would return.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client as k8s

_api = k8s.ApiClient()


class _Response:
    """The one attribute ApiClient.deserialize reads from an HTTP response."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.data = json.dumps(obj)


def _decode(obj: dict[str, Any], klass: str) -> Any:
    return _api.deserialize(_Response(obj), klass)


def ingress_from_dict(obj: dict[str, Any]) -> Any:
    return _decode(obj, "V1Ingress")


def service_from_dict(obj: dict[str, Any]) -> Any:
    return _decode(obj, "V1Service")


def ingress_class_from_dict(obj: dict[str, Any]) -> Any:
    return _decode(obj, "V1IngressClass")
