"""lifecycle.load_image: no `kind load` when every node already holds the image."""

from __future__ import annotations

from typing import Any

import pytest

from testbed import docker, proc
from testbed.cluster import lifecycle


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    ran: list[list[str]] = []
    monkeypatch.setattr(lifecycle, "node_containers", lambda name: ["cp", "worker"])
    monkeypatch.setattr(lifecycle, "kind_binary", lambda: "kind")
    monkeypatch.setattr(docker, "image_id", lambda ref: "sha256:new")

    def run(args: list[Any], **kw: Any) -> str:
        ran.append([str(a) for a in args])
        return ""

    monkeypatch.setattr(proc, "run", run)
    return ran


def _on_nodes(monkeypatch: pytest.MonkeyPatch, ids: dict[str, Any]) -> None:
    monkeypatch.setattr(docker, "node_image_id", lambda node, ref: ids[node])


def test_skipped_when_every_node_has_it(calls: list[list[str]],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _on_nodes(monkeypatch, {"cp": "sha256:new", "worker": "sha256:new"})
    lifecycle.load_image("alb-testbed:abc", "c")
    assert calls == []


@pytest.mark.parametrize("worker", [None, "sha256:old"])
def test_loaded_when_a_node_lacks_it_or_has_another_image(
        calls: list[list[str]], monkeypatch: pytest.MonkeyPatch, worker: str | None) -> None:
    _on_nodes(monkeypatch, {"cp": "sha256:new", "worker": worker})
    lifecycle.load_image("alb-testbed:abc", "c")
    assert calls == [["kind", "load", "docker-image", "alb-testbed:abc", "--name", "c"]]
