"""Lease leader election against an in-memory CoordinationV1Api stand-in."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from controller.leader import LeaderElector


class FakeLeases:
    def __init__(self) -> None:
        self.lease: client.V1Lease | None = None

    def read_namespaced_lease(self, name: str, ns: str) -> client.V1Lease:
        if self.lease is None:
            raise ApiException(status=404)
        return self.lease

    def create_namespaced_lease(self, ns: str, body: client.V1Lease) -> None:
        self.lease = body

    def replace_namespaced_lease(self, name: str, ns: str, body: client.V1Lease) -> None:
        self.lease = body


def elector(api: Any, ident: str) -> LeaderElector:
    e = LeaderElector(client.ApiClient(), "alb-system", "alb-controller-leader", ident)
    e.api = api
    return e


def test_acquire_block_expire_and_release() -> None:
    api = FakeLeases()
    a, b = elector(api, "a"), elector(api, "b")
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()  # held and fresh
    assert a.try_acquire_or_renew()  # renew
    assert api.lease is not None and api.lease.spec is not None
    api.lease.spec.renew_time = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60)
    assert b.try_acquire_or_renew()  # expired: taken over
    assert api.lease.spec.holder_identity == "b" and api.lease.spec.lease_transitions == 1
    b.release()
    assert api.lease.spec.holder_identity == ""
    assert a.try_acquire_or_renew()  # released: taken at once
