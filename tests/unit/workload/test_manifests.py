"""Reading a workload's manifests: files, directories, List objects, kustomizations, and the
messages for each way they can be wrong; the rules a run adds (check_for_run)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from testbed.workload.manifests import WorkloadError, check_for_run, in_namespace, load_manifests

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - {name: app, image: "web:1", ports: [{name: http, containerPort: 8080}]}
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
"""


def _kinds(docs: list[dict[str, Any]]) -> list[str]:
    return [f"{d['kind']}/{d['metadata']['name']}" for d in docs]


def test_one_file_with_several_documents_in_order(tmp_path: Path) -> None:
    f = tmp_path / "app.yaml"
    f.write_text(SERVICE + "---\n" + DEPLOYMENT + "---\n")  # a trailing empty document
    docs = load_manifests(f)
    assert _kinds(docs) == ["Service/web", "Deployment/web"]
    assert docs[1]["spec"]["replicas"] == 2


def test_path_may_be_a_string(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(DEPLOYMENT)
    assert _kinds(load_manifests(str(tmp_path / "app.yaml"))) == ["Deployment/web"]


def test_directory_reads_its_own_manifest_files_sorted_not_subdirectories(
        tmp_path: Path) -> None:
    (tmp_path / "b-service.yml").write_text(SERVICE)
    (tmp_path / "a-deployment.yaml").write_text(DEPLOYMENT)
    (tmp_path / "c-config.json").write_text(
        '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}}')
    (tmp_path / "README.md").write_text("# not a manifest\nkind: [\n")
    (tmp_path / "notes.txt").write_text("kind: Secret\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "extra.yaml").write_text(SERVICE.replace("name: web", "name: extra", 1))
    assert _kinds(load_manifests(tmp_path)) == ["Deployment/web", "Service/web",
                                                "ConfigMap/cfg"]


def test_list_objects_are_expanded(tmp_path: Path) -> None:
    f = tmp_path / "list.yaml"
    f.write_text("apiVersion: v1\nkind: List\nitems:\n"
                 "  - {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n"
                 "  - {apiVersion: v1, kind: Secret, metadata: {name: b}}\n"
                 "---\n" + SERVICE)
    assert _kinds(load_manifests(f)) == ["ConfigMap/a", "Secret/b", "Service/web"]


def test_list_items_are_checked_too(tmp_path: Path) -> None:
    f = tmp_path / "list.yaml"
    f.write_text("apiVersion: v1\nkind: List\nitems:\n  - {apiVersion: v1, kind: ConfigMap}\n")
    with pytest.raises(WorkloadError) as info:
        load_manifests(f)
    assert str(info.value) == f"{f}: a ConfigMap without metadata.name"


@pytest.mark.skipif(not (shutil.which("kustomize") or shutil.which("kubectl")),
                    reason="needs kustomize or kubectl (built-in kustomize) on PATH")
def test_kustomization_directory_is_built(tmp_path: Path) -> None:
    (tmp_path / "deployment.yaml").write_text(DEPLOYMENT)
    (tmp_path / "service.yaml").write_text(SERVICE)
    (tmp_path / "unlisted.yaml").write_text(  # not in resources: kustomize leaves it out
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: unlisted}\n")
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "namePrefix: dev-\ncommonLabels: {team: blue}\n"
        "resources: [deployment.yaml, service.yaml]\n")
    docs = load_manifests(tmp_path)
    assert sorted(_kinds(docs)) == ["Deployment/dev-web", "Service/dev-web"]
    for d in docs:
        assert d["metadata"]["labels"] == {"team": "blue"}
    svc = next(d for d in docs if d["kind"] == "Service")
    assert svc["spec"]["selector"] == {"app": "web", "team": "blue"}


@pytest.mark.skipif(not (shutil.which("kustomize") or shutil.which("kubectl")),
                    reason="needs kustomize or kubectl (built-in kustomize) on PATH")
def test_kustomization_that_fails_to_build_says_why(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(WorkloadError) as info:
        load_manifests(tmp_path)
    msg = str(info.value)
    assert msg.startswith(f"kustomize build {tmp_path} failed:\n")
    assert "missing.yaml" in msg


def test_kustomization_without_a_builder_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\n")
    monkeypatch.setattr("testbed.workload.manifests.shutil.which", lambda _name: None)
    with pytest.raises(WorkloadError, match=r"needs `kustomize` or `kubectl`"):
        load_manifests(tmp_path)


def test_bad_yaml_names_file_line_and_column(tmp_path: Path) -> None:
    f = tmp_path / "app.yaml"
    f.write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: [web\n")
    with pytest.raises(WorkloadError) as info:
        load_manifests(f)
    msg = str(info.value)
    assert msg.startswith(f"{f}: not valid YAML (line ")
    assert "(line 5, column 1)" in msg


def test_bad_yaml_tab_indentation_line(tmp_path: Path) -> None:
    f = tmp_path / "app.yaml"
    f.write_text("kind: Service\nmetadata:\n\tname: web\n")
    with pytest.raises(WorkloadError) as info:
        load_manifests(f)
    assert str(info.value).startswith(f"{f}: not valid YAML (line 3, column 1): ")


@pytest.mark.parametrize(("text", "message"), [
    ("kind: Service\nmetadata: {name: web}\n", "a Service without apiVersion"),
    ("apiVersion: v1\nmetadata: {name: web}\n", "a document without kind"),
    ("apiVersion: v1\nkind: Service\n", "a Service without metadata.name"),
    ("apiVersion: v1\nkind: Service\nmetadata: {labels: {a: b}}\n",
     "a Service without metadata.name"),
    ("apiVersion: v1\nkind: Service\nmetadata: web\n", "a Service without metadata.name"),
    ("metadata: {}\n", "a document without apiVersion, kind, metadata.name"),
    ("- a\n- b\n", "expected a Kubernetes object (a mapping), got list"),
    ("just text\n", "expected a Kubernetes object (a mapping), got str"),
])
def test_shape_mistakes(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "app.yaml"
    f.write_text(text)
    with pytest.raises(WorkloadError) as info:
        load_manifests(f)
    assert str(info.value) == f"{f}: {message}"


def test_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError) as info:
        load_manifests(tmp_path)
    assert str(info.value) == (f"{tmp_path}: no Kubernetes objects found (looked for .yaml, "
                               ".yml, .json files)")


def test_file_with_only_comments_has_no_objects(tmp_path: Path) -> None:
    f = tmp_path / "app.yaml"
    f.write_text("# nothing yet\n---\n")
    with pytest.raises(WorkloadError, match="no Kubernetes objects found"):
        load_manifests(f)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError) as info:
        load_manifests(tmp_path / "nope")
    assert str(info.value) == f"{tmp_path / 'nope'}: no such file or directory"


def test_file_that_is_not_text(tmp_path: Path) -> None:
    f = tmp_path / "app.yaml"
    f.write_bytes(b"kind: \xff\xfe\n")
    with pytest.raises(WorkloadError) as info:
        load_manifests(f)
    assert str(info.value) == f"{f}: cannot read (not UTF-8 text: byte 0xff at offset 6)"


def _doc(kind: str, name: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, **meta}}


def test_check_for_run_accepts_namespaced_objects_without_a_namespace() -> None:
    check_for_run([_doc("Service", "web"), _doc("ConfigMap", "cfg"),
                   _doc("Deployment", "web", labels={"a": "b"})])


def test_check_for_run_lists_every_problem_at_once() -> None:
    docs = [_doc("Namespace", "mine"), _doc("Service", "web"),
            _doc("ClusterRole", "reader"), _doc("ConfigMap", "cfg", namespace="prod"),
            _doc("CustomResourceDefinition", "things.example.com")]
    with pytest.raises(WorkloadError) as info:
        check_for_run(docs)
    lines = str(info.value).split("\n")
    assert lines[0] == "the workload cannot run as is:"
    assert len(lines) == 5
    assert lines[1].startswith("  Namespace/mine: the run creates its own namespace")
    assert "remove the Namespace object" in lines[1]
    assert lines[2].startswith("  ClusterRole/reader: a cluster-scoped kind")
    assert lines[3] == ("  ConfigMap/cfg: metadata.namespace is hard-coded ('prod'); remove "
                        "it, the run applies everything into its own namespace")
    assert lines[4].startswith("  CustomResourceDefinition/things.example.com: a cluster-scoped")


def test_in_namespace_sets_only_the_namespace_and_leaves_the_input_alone() -> None:
    docs = [{"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": "web", "labels": {"a": "b"}}, "spec": {"ports": []}}]
    out = in_namespace(docs, "run-1")
    assert out == [{"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "web", "labels": {"a": "b"}, "namespace": "run-1"},
                    "spec": {"ports": []}}]
    assert "namespace" not in docs[0]["metadata"]
