"""Routing algorithms, each picker on its own (no store, no sockets)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import pytest

from testbed.fakeaws import wire
from testbed.fakeaws.engine.balancer import (
    PICKERS,
    LeastOutstandingRequests,
    RoundRobin,
    WeightedRandom,
)


@dataclass(eq=False)
class T:
    name: str
    in_flight: int = 0
    healthy_since: float | None = None


def test_one_picker_per_algorithm_the_api_accepts() -> None:
    assert set(PICKERS) == set(wire.ALGORITHMS)
    assert {name: type(make(0.0)) for name, make in PICKERS.items()} == {
        "round_robin": RoundRobin, "least_outstanding_requests": LeastOutstandingRequests,
        "weighted_random": WeightedRandom}


def test_round_robin_takes_turns() -> None:
    a, b, c = T("a"), T("b"), T("c")
    rr = RoundRobin()
    assert [rr.pick([a, b, c], 0).name for _ in range(7)] == list("abcabca")


@pytest.mark.parametrize("elapsed, share", [(3.0, 0.1 / 1.1), (15.0, 0.5 / 1.5), (30.0, 0.5)])
def test_round_robin_slow_start_ramps_linearly(elapsed: float, share: float) -> None:
    """The new target weighs elapsed / duration (the old one 1), so its share of two is
    w / (1 + w); from the full duration on the two take turns."""
    old, new = T("old", healthy_since=0.0), T("new", healthy_since=100.0)
    rr = RoundRobin(slow_start=30.0, rng=random.Random(7))
    picks = Counter(rr.pick([old, new], 100.0 + elapsed).name for _ in range(4000))
    assert abs(picks["new"] / 4000 - share) < 0.03


def test_round_robin_slow_start_skipped_when_every_target_is_ramping() -> None:
    a, b = T("a", healthy_since=10.0), T("b", healthy_since=11.0)
    rr = RoundRobin(slow_start=30.0, rng=random.Random(1))
    assert [rr.pick([a, b], 12.0).name for _ in range(4)] == list("abab")


def test_least_outstanding_requests_picks_the_idlest_and_rotates_ties() -> None:
    a, b, c = T("a", in_flight=2), T("b", in_flight=0), T("c", in_flight=0)
    lor = LeastOutstandingRequests()
    assert [lor.pick([a, b, c], 0).name for _ in range(4)] == list("bcbc")
    b.in_flight = c.in_flight = 5
    assert lor.pick([a, b, c], 0) is a


def test_weighted_random_is_uniform_and_in_random_order() -> None:
    targets = [T("a"), T("b"), T("c")]
    wr = WeightedRandom(rng=random.Random(3))
    picks = [wr.pick(targets, 0).name for _ in range(6000)]
    counts = Counter(picks)
    assert all(abs(counts[t.name] - 2000) < 150 for t in targets), counts
    # Not round robin in disguise: a cyclic order never picks the same target twice in a row.
    assert any(x == y for x, y in zip(picks, picks[1:], strict=False))
