"""Server-side apply of manifests with the Kubernetes client (no kubectl on the host needed)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, dynamic

FIELD_MANAGER = "alb-testbed"
# Namespaces and CRDs before what lives in them or uses them.
_FIRST = {"Namespace": 0, "CustomResourceDefinition": 1}


def load_docs(*paths: Path) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in paths:
        files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
        for f in files:
            docs += [d for d in yaml.safe_load_all(f.read_text()) if d and "kind" in d
                     and d["kind"] != "Kustomization"]
    return docs


def apply(api: client.ApiClient, docs: Iterable[dict[str, Any]]) -> None:
    dyn = dynamic.DynamicClient(api)
    for doc in sorted(docs, key=lambda d: _FIRST.get(d["kind"], 2)):
        resource = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        ns = doc["metadata"].get("namespace") if resource.namespaced else None
        resource.server_side_apply(body=doc, name=doc["metadata"]["name"], namespace=ns,
                                   field_manager=FIELD_MANAGER, force_conflicts=True)
