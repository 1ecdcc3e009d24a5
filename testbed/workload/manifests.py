"""Read a workload's Kubernetes YAML: a file, a directory of files, or a kustomization.

Reading is separate from the rules a run adds (`check_for_run`): `testbed check` reads
manifests a run would refuse (a Namespace object, for instance) and still gives advice.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from testbed import proc

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")

# Kinds without a namespace, from the Kubernetes API reference
# (https://kubernetes.io/docs/reference/kubernetes-api/) and `kubectl api-resources
# --namespaced=false` on v1.34. A custom kind missing here is still refused at apply time,
# where the API server's discovery says whether it is namespaced (testbed/stack/apply.py).
CLUSTER_SCOPED_KINDS = frozenset({
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding",
    "CustomResourceDefinition", "StorageClass", "VolumeAttachment", "CSIDriver", "CSINode",
    "IngressClass", "PriorityClass", "RuntimeClass", "APIService",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
    "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding", "CertificateSigningRequest",
    "FlowSchema", "PriorityLevelConfiguration", "ComponentStatus", "IPAddress", "ServiceCIDR",
    "DeviceClass"})


class WorkloadError(ValueError):
    """What is wrong with a workload's manifests, readable as is."""


def _is_kustomization(path: Path) -> bool:
    return path.is_dir() and any((path / f).is_file() for f in KUSTOMIZATION_FILES)


def _kustomize(path: Path) -> str:
    """`kustomize build`, through kubectl's built-in kustomize when there is no kustomize."""
    if shutil.which("kustomize"):
        cmd: list[str | Path] = ["kustomize", "build", path]
    elif shutil.which("kubectl"):
        cmd = ["kubectl", "kustomize", path]
    else:
        raise WorkloadError(f"{path} is a kustomization, and building it needs `kustomize` or "
                            "`kubectl` (which has kustomize built in) on PATH; install one, or "
                            "point workload.path at plain YAML files")
    out = proc.attempt(cmd, timeout=120)
    if not out.ok:  # again with stderr, for the message (on success it would mix into YAML)
        why = proc.attempt(cmd, timeout=120, merge_stderr=True).output.strip()
        raise WorkloadError(f"kustomize build {path} failed:\n{why[-2000:]}")
    return out.output


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        # like `kubectl apply -f DIR`: the directory's own manifest files, not its subdirectories
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in MANIFEST_SUFFIXES)
    raise WorkloadError(f"{path}: no such file or directory")


def _documents(text: str, source: str) -> list[Any]:
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise WorkloadError(f"{source}: not valid YAML{where}: "
                            f"{getattr(exc, 'problem', None) or exc}") from None


def _check_shape(doc: Any, source: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise WorkloadError(f"{source}: expected a Kubernetes object (a mapping), got "
                            f"{type(doc).__name__}")
    missing = [k for k in ("apiVersion", "kind") if not doc.get(k)]
    name = (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"), dict) \
        else None
    if missing or not name:
        what = ", ".join(missing + ([] if name else ["metadata.name"]))
        raise WorkloadError(f"{source}: a {doc.get('kind') or 'document'} without {what}")
    return doc


def load_manifests(path: str | Path) -> list[dict[str, Any]]:
    """Every Kubernetes object under `path`, `List` objects expanded, in file order."""
    p = Path(path)
    if _is_kustomization(p):
        sources = [(f"{p} (kustomize build)", _kustomize(p))]
    else:
        sources = []
        for f in _files(p):
            try:
                sources.append((str(f), f.read_text(encoding="utf-8")))
            except OSError as exc:
                raise WorkloadError(f"{f}: cannot read ({exc.strerror})") from None
            except UnicodeDecodeError as exc:  # kubectl, too, reads manifests as UTF-8
                raise WorkloadError(f"{f}: cannot read (not UTF-8 text: byte "
                                    f"{exc.object[exc.start]:#04x} at offset {exc.start})"
                                    ) from None
    docs: list[dict[str, Any]] = []
    for source, text in sources:
        for doc in _documents(text, source):
            if isinstance(doc, dict) and doc.get("kind") == "List":
                docs += [_check_shape(item, source) for item in doc.get("items") or []]
            else:
                docs.append(_check_shape(doc, source))
    if not docs:
        raise WorkloadError(f"{p}: no Kubernetes objects found (looked for "
                            f"{', '.join(MANIFEST_SUFFIXES)} files)")
    return docs


def describe(doc: dict[str, Any]) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


INGRESS_HINT = ("add `ingress: {}` to the scenario to run through it (the controller builds "
                "the ALB from its annotations), or leave it out and the run binds the Service "
                "through a TargetGroupBinding")


def check_for_run(docs: list[dict[str, Any]], ingress: bool = False,
                  ingress_hint: str = INGRESS_HINT) -> None:
    """What a run cannot do with these manifests: it applies them, unchanged, into a namespace
    of its own and deletes that namespace afterwards. Ingresses only in ingress mode
    (`ingress`); otherwise the error says `ingress_hint`."""
    problems = []
    for doc in docs:
        ns = doc["metadata"].get("namespace")
        if doc["kind"] == "Namespace":
            problems.append(f"{describe(doc)}: the run creates its own namespace (and labels it "
                            "for readiness-gate injection when workload.readinessGate is true); "
                            "remove the Namespace object from the workload")
        elif doc["kind"] == "TargetGroupBinding":
            problems.append(f"{describe(doc)}: the run makes its own TargetGroupBinding (to its "
                            "fake target group, for the Service named by workload.service); "
                            "leave yours out")
        elif doc["kind"] == "Ingress" and not ingress:
            problems.append(f"{describe(doc)}: an Ingress, and the scenario has no `ingress`: "
                            + ingress_hint)
        elif doc["kind"] in CLUSTER_SCOPED_KINDS:
            problems.append(f"{describe(doc)}: a cluster-scoped kind, which a run cannot own "
                            "(it only deletes its namespace afterwards); install it in the "
                            "cluster separately or leave it out")
        elif ns:
            problems.append(f"{describe(doc)}: metadata.namespace is hard-coded ({ns!r}); "
                            "remove it, the run applies everything into its own namespace")
    if problems:
        raise WorkloadError("the workload cannot run as is:\n  " + "\n  ".join(problems))


def in_namespace(docs: list[dict[str, Any]], ns: str) -> list[dict[str, Any]]:
    """Copies of the objects with the run's namespace set (the one change a run makes)."""
    return [{**d, "metadata": {**d["metadata"], "namespace": ns}} for d in docs]
