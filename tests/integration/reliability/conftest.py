"""Fixtures of the reliability tests.

Tests that stop the API server or etcd, kill the operator under load or churn hundreds of objects run
on a cluster of their own (`MODELSERVE_FAULT_CLUSTER_NAME`, default `<MODELSERVE_CLUSTER_NAME>-faults`,
i.e. `modelserve-faults`), created for the session and deleted after it, so nothing they break touches
the cluster other tests share (nor another checkout's fault cluster on the same machine).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit import wait_until
from reliability_kit import FaultCluster, OperatorProcess, delete_fault_cluster, start_fault_cluster


@pytest.fixture(scope="session")
def fault_cluster() -> Iterator[FaultCluster]:
    name = os.environ.get("MODELSERVE_FAULT_CLUSTER_NAME") or (
        os.environ.get("MODELSERVE_CLUSTER_NAME", "modelserve") + "-faults"
    )
    try:
        handle = start_fault_cluster(name)
    except Exception as exc:  # a failure, never a skip
        pytest.fail(f"the fault cluster {name} could not be started: {exc}", pytrace=False)
    yield handle
    if os.environ.get("MODELSERVE_KEEP_FAULT_CLUSTER") != "1":
        delete_fault_cluster(name)


@pytest.fixture
def fault_namespace(fault_cluster: FaultCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    cluster = fault_cluster.cluster
    name = f"r-{request.node.name.lower()[:30].strip('-_[]').replace('_', '-')}-{uuid.uuid4().hex[:5]}"
    name = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in name)
    # The API server may just have been restarted by the previous test: wait for it first.
    fault_cluster.restart_dead()
    wait_until(fault_cluster.ready, timeout=120, what="the fault cluster's /readyz")
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


@pytest.fixture
def operator_process(
    fault_cluster: FaultCluster, fault_namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[OperatorProcess]:
    """An operator process for the test's namespace (not started): tests start, kill and restart it."""
    op = OperatorProcess(
        kubeconfig=fault_cluster.cluster.kubeconfig,
        namespace=fault_namespace,
        log_path=tmp_path / "operator.log",
        env={"MODELSERVE_RETRY_DELAY_SECONDS": "0.5"},
    )
    yield op
    op.stop()
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        print(f"\n===== operator log (last lines) =====\n{op.log_tail(120)}")
