"""Scenarios side by side: batching by controller flags, shards, the scheduler, contention."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from testbed.console import StepFailed
from testbed.loadgen.records import Record
from testbed.report.build import build_report
from testbed.run import runner
from testbed.scenario import builtin_names, load_builtin, parse_scenario


def test_shards_cover_every_scenario_once_and_are_stable() -> None:
    names = builtin_names()
    for n in (1, 2, 3, 5):
        shares = [runner.shard(names, f"{k}/{n}") for k in range(1, n + 1)]
        assert sorted(x for s in shares for x in s) == sorted(names)
        assert max(map(len, shares)) - min(map(len, shares)) <= 1
        assert runner.shard(list(reversed(names)), f"1/{n}") == list(reversed(shares[0]))


@pytest.mark.parametrize("spec", ["0/3", "4/3", "a/b", "3", "1/0"])
def test_bad_shard_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="K/N"):
        runner.shard(["a"], spec)


def test_only_timing_runs_and_shared_faults_run_apart_whatever_their_controller() -> None:
    scs = [load_builtin(n) for n in builtin_names()]
    side, quiet, alone = runner.split(scs)
    assert {s.name for s in alone} == {"aws-restarted-rollout", "node-shutdown",
                                       "node-shutdown-health-check"}
    assert {s.name for s in quiet} == {"steady-requeue", "backoff-requeue-capped"}
    assert len(side) + len(quiet) + len(alone) == len(scs)
    # a network cut is scoped to the run's own pods
    assert "node-network-cut" in {s.name for s in side}
    # API faults are scoped to the run's own target groups
    assert "aws-throttled-rollout" in {s.name for s in side}
    # each run has its own controller: different releases go side by side
    versions = {s.controller.version for s in side}
    assert {"v2.4.1", "v2.6.0", None} <= versions


class _Controller:
    """The stack's shared controller: run_all only clears it."""

    def __init__(self) -> None:
        self.removed = 0

    def remove(self) -> None:
        self.removed += 1

    def stale_instances(self) -> list[Any]:
        return []


class _Aws:
    cluster_endpoint_url = "http://aws"


@pytest.fixture(autouse=True)
def _one_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake stack has no cluster: one worker, nothing to grow."""
    monkeypatch.setattr(runner, "workers", lambda stack: 1)
    monkeypatch.setattr(runner, "grow", lambda stack, want: None)


def _stack() -> Any:
    return runner.Stack(api=None, image="img", aws=_Aws(), controller=_Controller())  # type: ignore[arg-type]


def test_run_all_runs_a_batch_side_by_side_and_keeps_going_after_a_failure(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # three controller releases: each run has its own controller, so they go side by side
    scs = [parse_scenario(f"name: s{i}\ncontroller: {{version: v2.{i + 4}.0}}")
           for i in range(3)]
    together = threading.Barrier(3, timeout=10)  # breaks unless all three run at once

    def fake_run(sc: Any, stack: Any, out: Path, **kw: Any) -> Any:
        together.wait()
        if sc.name == "s1":
            raise StepFailed("baseline of s1 never became healthy")
        return runner.RunResult(sc, build_report([], name=sc.name), {}, False, 1.0)

    monkeypatch.setattr(runner, "run", fake_run)
    seen: list[str] = []
    stack = _stack()
    outcomes = runner.run_all(scs, stack, lambda sc: tmp_path / sc.name, parallel=3,
                              on_done=lambda o: seen.append(o.scenario.name))
    assert [o.scenario.name for o in outcomes] == ["s0", "s1", "s2"]
    assert outcomes[1].result is None and "never became healthy" in str(outcomes[1].error)
    assert outcomes[0].result is not None and outcomes[2].result is not None
    assert sorted(seen) == ["s0", "s1", "s2"]
    assert stack.controller.removed == 1  # the shared controller never serves a run


def test_run_all_runs_a_run_alone_scenario_by_itself(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    scs = [parse_scenario("name: a\n"), parse_scenario("name: b\nrunAlone: true"),
           parse_scenario("name: c\n")]
    running: set[str] = set()
    overlaps: list[set[str]] = []
    lock = threading.Lock()
    pair = threading.Barrier(2, timeout=10)

    def fake_run(sc: Any, stack: Any, out: Path, **kw: Any) -> Any:
        with lock:
            running.add(sc.name)
            overlaps.append(set(running))
        if sc.name != "b":
            pair.wait()  # a and c must run together
        with lock:
            running.discard(sc.name)
        return runner.RunResult(sc, build_report([], name=sc.name), {}, False, 1.0)

    monkeypatch.setattr(runner, "run", fake_run)
    runner.run_all(scs, _stack(), lambda sc: tmp_path / sc.name, parallel=3)
    assert {"b"} in overlaps and not any("b" in o and len(o) > 1 for o in overlaps)


def _rec(i: int, late: float) -> Record:
    return Record(seq=i, intended=100.0 + i, started=100.0 + i + late, latency=0.01,
                  status=200, cls="ok")


def test_contention_is_reported_and_explains_a_failure_on_an_overloaded_machine() -> None:
    sc = parse_scenario("name: x\n")
    calm = build_report([_rec(i, 0.001) for i in range(100)], name="x", expect=sc.expect,
                        host_load=[0.5, 0.7])
    assert calm.contention is not None and not calm.contention.overloaded
    failed = [_rec(i, 1.0) for i in range(99)] + [
        Record(seq=99, intended=199.0, started=200.0, latency=1.0, status=502, cls="502")]
    busy = build_report(failed, name="x", expect=sc.expect, host_load=[9.0])
    assert busy.contention is not None and busy.contention.overloaded
    assert busy.verdict is not None and not busy.verdict.ok
    assert any("overloaded" in r for r in busy.verdict.reasons)
    assert busy.to_dict(with_records=False)["contention"]["overloaded"] is True


def test_runs_that_need_more_nodes_come_after_the_rest() -> None:
    """What the cluster fits runs first; the cluster is grown once, before the first batch
    that needs more workers; side by side and alone stay apart in each."""
    scs = [load_builtin(n) for n in ("full-recipe", "node-drain", "steady-requeue",
                                     "node-drain-spread-pdb", "backoff-requeue-capped",
                                     "node-shutdown", "node-shutdown-health-check")]
    got = [([s.name for s in group], width, need)
           for group, width, need in runner.batches(scs, 3, have=1)]
    assert got == [(["full-recipe"], 3, 1),
                   (["steady-requeue", "backoff-requeue-capped"], 2, 1),
                   (["node-drain", "node-drain-spread-pdb"], 3, 2),
                   (["node-shutdown", "node-shutdown-health-check"], 1, 2)]
    # a cluster that already has two workers runs them all in the first batches
    assert [need for _, _, need in runner.batches(scs, 3, have=2)] == [2, 2, 2]
    # one at a time asked for: one at a time
    assert {width for _, width, _ in runner.batches(scs, 1, have=2)} == {1}
