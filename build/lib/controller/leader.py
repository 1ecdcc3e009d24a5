"""Optional Lease-based leader election (coordination.k8s.io/v1), so two replicas never
reconcile at once. Losing the lease exits the process, as controller-runtime does."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

from controller.log import get_logger

log = get_logger("leader")


class LeaderElector:
    def __init__(
        self,
        api_client: Any,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
    ) -> None:
        from kubernetes import client

        self.api = client.CoordinationV1Api(api_client)
        self.namespace, self.name, self.identity = namespace, name, identity
        self.lease_duration, self.renew_deadline, self.retry_period = (
            lease_duration,
            renew_deadline,
            retry_period,
        )
        self._stop = threading.Event()

    def _now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def try_acquire_or_renew(self) -> bool:
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        now = self._now()
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as e:
            if e.status != 404:
                raise
            body = client.V1Lease(
                metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace),
                spec=client.V1LeaseSpec(
                    holder_identity=self.identity,
                    lease_duration_seconds=int(self.lease_duration),
                    acquire_time=now,
                    renew_time=now,
                    lease_transitions=0,
                ),
            )
            self.api.create_namespaced_lease(self.namespace, body)
            return True
        spec = lease.spec or client.V1LeaseSpec()
        renew = spec.renew_time
        expired = (
            renew is None
            or renew + dt.timedelta(seconds=spec.lease_duration_seconds or self.lease_duration)
            < now
        )
        if spec.holder_identity and spec.holder_identity != self.identity and not expired:
            return False
        if spec.holder_identity != self.identity:
            spec.lease_transitions = (spec.lease_transitions or 0) + 1
            spec.acquire_time = now
        spec.holder_identity = self.identity
        spec.renew_time = now
        spec.lease_duration_seconds = int(self.lease_duration)
        lease.spec = spec
        self.api.replace_namespaced_lease(self.name, self.namespace, lease)
        return True

    def run(self, on_started: Callable[[], None], on_lost: Callable[[], None]) -> None:
        """Block until leadership is acquired, call on_started, then keep renewing in a thread."""
        while not self._stop.is_set():
            try:
                if self.try_acquire_or_renew():
                    break
            except Exception as e:
                log.warning("lease acquire failed", error=repr(e))
            self._stop.wait(self.retry_period)
        log.info("became leader", lease=f"{self.namespace}/{self.name}", identity=self.identity)
        on_started()

        def renew_loop() -> None:
            last_ok = self._now()
            while not self._stop.wait(self.retry_period):
                try:
                    if self.try_acquire_or_renew():
                        last_ok = self._now()
                        continue
                except Exception as e:
                    log.warning("lease renew failed", error=repr(e))
                if (self._now() - last_ok).total_seconds() > self.renew_deadline:
                    log.error("leadership lost", lease=f"{self.namespace}/{self.name}")
                    on_lost()
                    return

        threading.Thread(target=renew_loop, name="leader-renew", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def release(self) -> None:
        """Give the lease up on a clean shutdown so a replacement pod takes over at once."""
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace)
            if lease.spec and lease.spec.holder_identity == self.identity:
                lease.spec.holder_identity = ""
                lease.spec.lease_duration_seconds = 1
                self.api.replace_namespaced_lease(self.name, self.namespace, lease)
                log.info("lease released", lease=f"{self.namespace}/{self.name}")
        except Exception as e:
            log.warning("lease release failed", error=repr(e))
