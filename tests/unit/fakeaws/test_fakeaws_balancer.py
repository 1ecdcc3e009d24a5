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
    pick_weighted,
)
from testbed.fakeaws.engine.dataplane.proxy import (
    CookieJar,
    request_cookies,
    response_sets_cookie,
)


@dataclass(eq=False)
class T:
    name: str
    in_flight: int = 0
    slow_start_since: float | None = None


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
    old, new = T("old", slow_start_since=0.0), T("new", slow_start_since=100.0)
    rr = RoundRobin(slow_start=30.0, rng=random.Random(7))
    picks = Counter(rr.pick([old, new], 100.0 + elapsed).name for _ in range(4000))
    assert abs(picks["new"] / 4000 - share) < 0.03


def test_round_robin_slow_start_skipped_when_every_target_is_ramping() -> None:
    a, b = T("a", slow_start_since=10.0), T("b", slow_start_since=11.0)
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


def test_round_robin_slow_start_ignores_targets_not_in_slow_start() -> None:
    """Only `slow_start_since` counts: a target the store did not put in slow start (e.g.
    healthy before slow start was enabled) weighs 1 however recently it became healthy."""
    a, b = T("a"), T("b")
    rr = RoundRobin(slow_start=30.0, rng=random.Random(2))
    assert [rr.pick([a, b], 1.0).name for _ in range(4)] == list("abab")


def test_forward_weight_zero_gets_nothing() -> None:
    rng = random.Random(5)
    picks = Counter(pick_weighted([("a", 0), ("b", 1), ("c", 3)], rng) for _ in range(4000))
    assert picks["a"] == 0
    assert abs(picks["c"] / 4000 - 0.75) < 0.03


def test_forward_all_weights_zero_picks_no_group() -> None:
    assert pick_weighted([("a", 0), ("b", 0)], random.Random(1)) is None
    assert pick_weighted([("a", 0)], random.Random(1)) is None
    assert pick_weighted([("a", 0), ("b", 999)], random.Random(1)) == "b"


def test_sticky_cookie_values_are_opaque_and_signed() -> None:
    jar = CookieJar(b"k" * 16)
    value = jar.make("tag", "10.0.0.1", "80", "12.5")
    assert b"10.0.0.1" not in value
    assert jar.read(value) == ["tag", "10.0.0.1", "80", "12.5"]
    assert jar.read(value[:-2] + b"xx") is None  # tampered
    assert CookieJar(b"o" * 16).read(value) is None  # another engine's key
    assert jar.read(b"garbage") is None and jar.read(None) is None


def test_request_and_response_cookie_parsing() -> None:
    block = b"host: x\r\nCookie: a=1; AWSALB=v.w\r\ncookie: b=2\r\n"
    assert request_cookies(block) == {b"a": b"1", b"AWSALB": b"v.w", b"b": b"2"}
    assert request_cookies(b"host: x\r\n") == {}
    resp = b"content-type: text/plain\r\nSet-Cookie: session=abc; Path=/\r\n"
    assert response_sets_cookie(resp, b"session")
    assert not response_sets_cookie(resp, b"sess")
