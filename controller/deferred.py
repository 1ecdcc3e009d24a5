"""The deferred full reconcile: some time after a reconcile that the checkpoint skipped, reset
the binding's checkpoint so the next pass does the full work again (repairs drift that no
Kubernetes event announces, e.g. a target deregistered by hand or a restarted AWS side).

After ALBC controllers/elbv2/targetgroupbinding_deferred_reconciler.go: a delaying queue of
its own, 30 min + up to 15 min jitter (--deferred-reconcile-delay/-jitter here), and the reset
is a checkpoint patch whose update event enqueues the binding. Which skipped bindings qualify
is --deferred-reconcile: stale-checkpoint (v2.9.1-v2.12: the checkpoint is older than the sync
period) or sync-period (v2.14.0+, PR #4224: not already deferred or fully reconciled within
the sync period; the memory starts empty, so once after every start).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from controller.config import Config
from controller.kube import Kube
from controller.log import get_logger
from controller.queue import WorkQueue
from controller.reconcile import CHECKPOINT_ANNOTATION, CHECKPOINT_TIMESTAMP_ANNOTATION

Key = tuple[str, str]
log = get_logger("deferred")


class Deferred:
    def __init__(
        self,
        kube: Kube,
        cfg: Config,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        jitter: Callable[[float], float] = lambda top: random.uniform(0.0, top),
    ) -> None:
        self.kube = kube
        self.cfg = cfg
        self.clock = clock
        self.wall = wall
        self.jitter = jitter
        self.queue = WorkQueue(clock=clock)
        self._seen: dict[Key, float] = {}  # key -> when its sync-period memory expires
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def _remembered(self, key: Key) -> bool:
        with self._lock:
            return self._seen.get(key, float("-inf")) > self.clock()

    def _remember(self, key: Key) -> None:
        with self._lock:
            self._seen[key] = self.clock() + self.cfg.sync_period_seconds

    def enqueue(self, key: Key) -> float | None:
        """A reconcile of key was skipped: schedule its checkpoint reset if it qualifies;
        returns the delay (None: not deferred)."""
        mode = self.cfg.deferred_reconcile
        if mode == "off":
            return None
        if mode == "stale-checkpoint":
            tgb = self.kube.get("tgb", *key) or {}
            ann = (tgb.get("metadata") or {}).get("annotations") or {}
            try:
                stamp = float(ann.get(CHECKPOINT_TIMESTAMP_ANNOTATION, "0"))
            except ValueError:
                stamp = 0.0
            if self.wall() - stamp <= self.cfg.sync_period_seconds:
                return None
        elif self._remembered(key):
            return None
        else:
            self._remember(key)
        delay = self.cfg.deferred_delay_seconds + self.jitter(self.cfg.deferred_jitter_seconds)
        self.queue.add_after(key, delay)
        log.info("deferred full reconcile", tgb=f"{key[0]}/{key[1]}", delay=round(delay, 1))
        return delay

    def mark_processed(self, key: Key) -> None:
        """A full (not skipped) reconcile of key succeeded."""
        if self.cfg.deferred_reconcile == "sync-period" and not self._remembered(key):
            self._remember(key)

    def process_one(self, timeout: float | None = None) -> Key | None:
        key = self.queue.get(timeout)
        if key is None:
            return None
        assert isinstance(key, tuple)
        try:
            if self.kube.get("tgb", *key) is not None:
                self.kube.patch_tgb(
                    key[0], key[1], {"metadata": {"annotations": {CHECKPOINT_ANNOTATION: ""}}}
                )
                log.info("checkpoint reset", action="deferred", tgb=f"{key[0]}/{key[1]}",
                         namespace=key[0])
        except Exception as e:  # upstream re-enqueues on any error but NotFound
            log.error("checkpoint reset failed", tgb=f"{key[0]}/{key[1]}", error=repr(e))
            self.queue.add_after(key, self.cfg.deferred_delay_seconds)
        finally:
            self.queue.done(key)
        return key

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                self.process_one(timeout=1.0)

        threading.Thread(target=loop, name="deferred", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self.queue.shutdown()
