"""The operator under test: kopf's KopfRunner running `modelserve.handlers` in this process,
watching only the test's namespace, so every test gets its own operator and nothing leaks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kit import Cluster
from kubelet_kit import StandInKubelet


@pytest.fixture
def operator_env(crds_installed: Cluster, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    monkeypatch.setenv("KUBECONFIG", crds_installed.kubeconfig)
    # kopf's login goes through the kubernetes client, which read KUBECONFIG once at its import:
    # whichever earlier test imported it first would otherwise decide which cluster (if any) we get.
    import kubernetes.config.kube_config

    monkeypatch.setattr(
        kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", crds_installed.kubeconfig
    )
    # Metrics and health are read in-process by the tests; no ports to collide between runs.
    monkeypatch.setenv("MODELSERVE_METRICS_PORT", "0")
    monkeypatch.setenv("MODELSERVE_HEALTH_PORT", "0")
    monkeypatch.setenv("MODELSERVE_RETRY_DELAY_SECONDS", "0.5")
    return crds_installed


@pytest.fixture
def operator(operator_env: Cluster, namespace: str) -> Iterator[object]:
    from kopf.testing import KopfRunner

    args = ["run", "--standalone", "--namespace", namespace, "-m", "modelserve.handlers"]
    with KopfRunner(args, timeout=60) as runner:
        yield runner
    assert runner.exception is None, runner.output
    assert runner.exit_code == 0, runner.output


@pytest.fixture
def kubelet(cluster: Cluster, namespace: str) -> Iterator[StandInKubelet]:
    """A tainted node of this test's own, whose kubelet the test plays (tests/kubelet_kit.py)."""
    stand_in = StandInKubelet(cluster, f"standin-{namespace}"[:63], namespace)
    stand_in.register()
    yield stand_in
    cluster.kubectl("delete", "node", stand_in.node, "--ignore-not-found", "--wait=false", check=False)
