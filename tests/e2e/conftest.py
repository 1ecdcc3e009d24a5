"""e2e fixtures: the real kind cluster (pytest-kubernetes's kind manager), the project image
loaded into it, and fresh namespaces. `make e2e` creates the cluster first with progress
output; these fixtures reuse it, or create it when pytest is run directly."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from kubernetes import client
from pytest_kubernetes.options import ClusterOptions
from pytest_kubernetes.providers import KindManagerBase

from testbed.cluster import kindconfig, lifecycle
from testbed.images import build
from testbed.stack import fakeaws
from testbed.stack.controller import ControllerDeployment, ControllerSettings

pytestmark = pytest.mark.e2e
# `make e2e WORKERS=N` made the cluster with N workers; unset or empty: the testbed's default.
WORKERS = int(os.environ.get("WORKERS") or kindconfig.DEFAULT_WORKERS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With SHARD=K/N, the e2e tests other than the scenarios run on shard 1 only."""
    spec = os.environ.get("SHARD")
    if not spec or spec.startswith("1/"):
        return
    keep = [i for i in items if i.path.name == "test_scenarios.py"]
    config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    items[:] = keep


class KindCluster(KindManagerBase):
    """pytest-kubernetes kind manager plus a kubernetes client for the same kubeconfig."""

    @property
    def api(self) -> client.ApiClient:
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))


def _manager(name: str, workers: int, tmp: Path, kubeconfig: Path) -> KindCluster:
    cfg = kindconfig.write(tmp / f"{name}.yaml", name, workers, build.node_image())
    manager = KindCluster(provider_config=str(cfg), kubeconfig=kubeconfig)
    # create() reuses a ready cluster behind `kubeconfig` and only then creates one.
    manager.create(ClusterOptions(provider_config=cfg, kubeconfig_path=kubeconfig,
                                  cluster_timeout=900), timeout=120)
    lifecycle.wait_usable(name, workers + 1, kubeconfig)
    return manager


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> KindCluster:
    """The project's cluster `alb-testbed` (1 control-plane + WORKERS workers)."""
    path = lifecycle.up(WORKERS)  # idempotent: progress output, cleanup on failure
    return _manager(kindconfig.CLUSTER_NAME, WORKERS, tmp_path_factory.mktemp("kind"), path)


@pytest.fixture(scope="session")
def project_image(cluster: KindCluster) -> str:
    image = build.project_image()
    cluster.load_image(image)
    return image


@pytest.fixture
def namespace(cluster: KindCluster) -> Iterator[str]:
    core = client.CoreV1Api(cluster.api)
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=name, labels={"elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"})))
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="session")
def kube(cluster: KindCluster) -> client.ApiClient:
    return cluster.api


@pytest.fixture(scope="session")
def aws(kube: client.ApiClient, project_image: str) -> Iterator[fakeaws.FakeAws]:
    """The fake AWS container on the kind network (fast health checks allowed for tests)."""
    started = fakeaws.start(kube, project_image)
    yield started
    fakeaws.stop()


@pytest.fixture(scope="session")
def elbv2(aws: fakeaws.FakeAws) -> Any:
    return boto3.client("elbv2", endpoint_url=aws.endpoint_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(parameter_validation=False))


@pytest.fixture(scope="session")
def controller(kube: client.ApiClient, aws: fakeaws.FakeAws,
               project_image: str) -> ControllerDeployment:
    ctl = ControllerDeployment(kube)
    ctl.deploy(ControllerSettings(aws_endpoint_url=aws.cluster_endpoint_url,
                                  image=project_image))
    return ctl
