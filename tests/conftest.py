"""Fixtures for every test layer.

Cluster-backed tests get a session-wide cluster: the local kwok control plane (built and started on
demand), or an existing cluster named by MODELSERVE_TEST_KUBECONFIG (kind, or a real one). A cluster
that cannot be had is a test error, never a skip: CI must not pass by running nothing.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kit import CRD_DIR, Cluster, start_local_cluster, wait_until
from prometheus_kit import Exporter, Prometheus, start_exporter, start_prometheus

TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The layer follows from the folder, so no test can forget its marker.
    for item in items:
        parts = Path(str(item.fspath)).relative_to(TESTS).parts
        layer = {"unit": "unit", "serving_image": "unit", "integration": "integration", "e2e": "e2e"}.get(
            parts[0]
        )
        if layer and not any(m.name == layer for m in item.iter_markers()):
            item.add_marker(getattr(pytest.mark, layer))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    kubeconfig = os.environ.get("MODELSERVE_TEST_KUBECONFIG")
    if kubeconfig:
        return Cluster(kubeconfig=kubeconfig, bin_dir=os.environ.get("MODELSERVE_TEST_BIN_DIR"), local=False)
    try:
        return start_local_cluster()
    except Exception as exc:  # a missing binary or a broken build is a failure, not a skip
        pytest.fail(f"the local Kubernetes cluster could not be started: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def crds_installed(cluster: Cluster) -> Cluster:
    """The checked-in CRDs applied to the cluster and Established."""
    files = sorted(CRD_DIR.glob("*.yaml"))
    assert files, f"no CRDs in {CRD_DIR}"
    for path in files:
        cluster.kubectl(
            "apply", "--server-side", "--force-conflicts", "--field-manager=modelserve-tests", "-f", str(path)
        )
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    return cluster


@pytest.fixture(scope="session")
def kube_api(crds_installed: Cluster) -> Iterator[object]:
    """A kubernetes.client.ApiClient for the test cluster, with our CRDs installed."""
    from kubernetes import config

    client = config.new_client_from_config(config_file=crds_installed.kubeconfig)
    yield client
    client.close()


def _namespace_name(request: pytest.FixtureRequest) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    return f"t-{slug}-{uuid.uuid4().hex[:5]}"


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test; on failure its state is printed, then it is deleted."""
    name = _namespace_name(request)
    cluster.kubectl("create", "namespace", name)
    wait_until(
        lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
        timeout=60,
        what=f"the default ServiceAccount in {name}",
    )
    yield name
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        print(f"\n===== cluster state of {name} =====\n{cluster.dump(name)}")
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """One real Prometheus for the session (built from its Go module on a cold cache), on loopback.

    Tests add their own targets (`prometheus.add_target`) with labels that keep their series apart
    (their namespace), and remove them when done; see tests/prometheus_kit.py."""
    try:
        prom = start_prometheus(tmp_path_factory.mktemp("prometheus"))
    except Exception as exc:  # a missing binary or a broken build is a failure, not a skip
        pytest.fail(f"Prometheus could not be started: {exc}", pytrace=False)
    yield prom
    prom.stop()


@pytest.fixture
def exporters(prometheus: Prometheus) -> Iterator[Callable[..., Exporter]]:
    """Starts stand-in TF Serving metrics endpoints that the session's Prometheus scrapes.

    `exporters(model="m", namespace=ns, pod="m-canary-abc", rps=10)` starts one, adds it as a target
    with the remaining keyword arguments as labels, and returns it; all are stopped and removed at
    the end of the test."""
    started: list[Exporter] = []

    def start(
        *, model: str, rps: float = 0.0, error_ratio: float = 0.0, latency_ms: float = 10.0, **labels: str
    ) -> Exporter:
        exporter = start_exporter(model=model, rps=rps, error_ratio=error_ratio, latency_ms=latency_ms)
        started.append(exporter)
        prometheus.add_target(exporter.address, **labels)
        return exporter

    yield start
    for exporter in started:
        prometheus.remove_target(exporter.address)
        exporter.stop()
