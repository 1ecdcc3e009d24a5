"""Routing algorithms: which of a target group's routable targets gets the next request.

`PICKERS` maps each `load_balancing.algorithm.type` value to a picker factory; every picker
has the same interface, `pick(candidates, now)`. What AWS documents for each:
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-target-group-attributes.html#modify-routing-algorithm
Slow start only combines with round robin: AWS refuses it with the other two, and so does the
fake's API, so the other pickers never see a slow-start duration.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar


class Candidate(Protocol):
    """What a picker reads of a target."""

    @property
    def in_flight(self) -> int: ...
    @property
    def slow_start_since(self) -> float | None: ...  # None: not in slow start mode


C = TypeVar("C", bound=Candidate)


class Picker(Protocol):
    def pick(self, candidates: Sequence[C], now: float) -> C:
        """One of `candidates` (never empty) for a new request at loop time `now`."""
        ...


class RoundRobin:
    """In turn. With slow start, a target in slow start mode (`slow_start_since` set by the
    store when it became healthy while slow start was enabled; never for targets already
    healthy when slow start was enabled, as AWS documents) that entered it less than
    `slow_start` seconds ago gets a weight ramping linearly from 0 to 1 (the others 1) and the
    choice is random by weight; AWS skips slow start when no healthy target is outside it,
    and so does this."""

    def __init__(self, slow_start: float = 0.0, rng: random.Random | None = None) -> None:
        self.slow_start = slow_start
        self.rng = rng or random.Random()
        self._turn = itertools.count()

    def pick(self, candidates: Sequence[C], now: float) -> C:
        if self.slow_start > 0:
            weights = [self.weight(c, now) for c in candidates]
            if any(w < 1.0 for w in weights) and any(w >= 1.0 for w in weights):
                return self.rng.choices(candidates, weights=weights)[0]
        return candidates[next(self._turn) % len(candidates)]

    def weight(self, c: Candidate, now: float) -> float:
        if c.slow_start_since is None:
            return 1.0
        frac = (now - c.slow_start_since) / self.slow_start
        # Never exactly 0: a target just out of its first check still gets the odd request.
        return 1.0 if frac >= 1 else max(frac, 0.01)


class LeastOutstandingRequests:
    """The target with the fewest requests in flight; ties in turn."""

    def __init__(self, slow_start: float = 0.0) -> None:
        self._turn = itertools.count()

    def pick(self, candidates: Sequence[C], now: float) -> C:
        low = min(c.in_flight for c in candidates)
        best = [c for c in candidates if c.in_flight == low]
        return best[next(self._turn) % len(best)]


class WeightedRandom:
    """AWS: "routes requests evenly across healthy targets in the target group, in a random
    order". The weights come from Automatic Target Weights anomaly mitigation, which the fake
    does not model (the API refuses `load_balancing.algorithm.anomaly_mitigation=on`), so
    every target weighs the same: uniform random."""

    def __init__(self, slow_start: float = 0.0, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()

    def pick(self, candidates: Sequence[C], now: float) -> C:
        return self.rng.choice(candidates)


def pick_from(candidates: Sequence[C] | None, picker: Picker | None,
              clock: Callable[[], float]) -> C | None:
    """The routing set's target for a new request (None when the set is empty); the picker
    (and the clock) only when there is a choice: the one-target case is the hot path."""
    if not candidates:
        return None
    if len(candidates) == 1 or picker is None:
        return candidates[0]
    return picker.pick(candidates, clock())


def pick_weighted(items: Sequence[tuple[str, int]], rng: random.Random) -> str | None:
    """A forward action's target group by weight (ForwardConfig.TargetGroups[].Weight,
    0-999). Weight 0 gets no requests; None when every weight is 0 (the caller answers 503)."""
    live = [(arn, w) for arn, w in items if w > 0]
    if not live:
        return None
    if len(live) == 1:
        return live[0][0]
    return rng.choices([a for a, _ in live], weights=[w for _, w in live])[0]


PICKERS: dict[str, Callable[[float], Picker]] = {
    "round_robin": RoundRobin,
    "least_outstanding_requests": LeastOutstandingRequests,
    "weighted_random": WeightedRandom,
}
