"""A per-pod store outage reaches the ModelDeployment's status and Events through a real Prometheus.

Without spec.model.cache each serving pod runs `modelserve-serving sync` as a sidecar, which reports
a store it cannot reach only on its metrics port. kwok runs no containers, so the sidecar runs here
for real (sidecar mode, against the real S3 implementation, gofakes3) and the session's real
Prometheus scrapes it with the target labels a ServiceMonitor of the model's Service produces
(`namespace`, `service` = the ModelDeployment's name, `pod`, `container`, `endpoint`). The operator,
pointed at that Prometheus, asks it once a second. The outage is the store's endpoint in the mounted
credentials turned to a loopback port that refuses connections (picked up at the next poll, as a
rotated Secret is); recovery is the real store's endpoint again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit import Cluster, condition, get_or_none, model_deployment, wait_condition, wait_event, wait_until
from modelserve import contract, metrics, naming
from prometheus_kit import Prometheus, free_port
from serving_image.serving_kit import (
    BUCKET,
    S3_KEY,
    S3_SECRET,
    S3Store,
    build_test_servers,
    s3_creds,
    start_s3server,
    write_files,
)
from serving_image.sync_kit import CountingProxy, SyncProcess, specific

pytestmark = pytest.mark.integration

NAME = "llm"


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[S3Store]:
    try:
        server_bin = build_test_servers()
    except Exception as exc:  # a server that cannot be built fails the test; it never skips it
        pytest.fail(f"could not build the test storage servers: {exc}", pytrace=False)
    proc = start_s3server(
        server_bin / "s3server", tmp_path / "s3server.log", access_key=S3_KEY, secret_key=S3_SECRET,
        buckets=[BUCKET],
    )
    try:
        yield S3Store(proc.endpoint, proc)
    finally:
        proc.stop()


@pytest.fixture
def prometheus_front(prometheus: Prometheus) -> Iterator[CountingProxy]:
    """The operator's way to Prometheus, which the test can cut (`down`) to make it unreachable."""
    with CountingProxy(prometheus.url).running() as proxy:
        yield proxy


@pytest.fixture
def sync_health_operator(
    operator_env: Cluster, namespace: str, prometheus_front: CountingProxy, monkeypatch: pytest.MonkeyPatch
) -> Iterator[object]:
    from kopf.testing import KopfRunner

    monkeypatch.setenv("MODELSERVE_PROMETHEUS_URL", prometheus_front.endpoint)
    monkeypatch.setenv("MODELSERVE_SYNC_HEALTH_SECONDS", "1")
    args = ["run", "--standalone", "--namespace", namespace, "-m", "modelserve.handlers"]
    with KopfRunner(args, timeout=60) as runner:
        yield runner
    assert runner.exception is None, runner.output


def failed_queries() -> float:
    """The operator's count of failed sync-health queries (it runs in this process)."""
    return float(metrics.SYNC_HEALTH_QUERIES.labels(result="failure")._value.get())


@pytest.mark.usefixtures("sync_health_operator")
def test_a_per_pod_store_outage_sets_model_sync_degraded_and_its_recovery_clears_it(
    *,
    cluster: Cluster,
    namespace: str,
    prometheus: Prometheus,
    prometheus_front: CountingProxy,
    s3: S3Store,
    tmp_path: Path,
) -> None:
    s3.upload(write_files(tmp_path / "model", {"1/saved_model.pb": b"\x08\x01"}), "llm")
    sync = SyncProcess(
        tmp_path / "sync",
        f"s3://{BUCKET}/llm",
        s3_creds(s3),
        specific(1),
        poll_seconds=0.5,
        metrics_port=free_port(),
    ).start()
    address = f"127.0.0.1:{sync.metrics_port}"
    try:
        sync.wait_for(lambda: sync.state().get("complete") is True, what="the first fetch")
        spec = {
            "model": {"storageUri": f"s3://{BUCKET}/llm", "versionPolicy": {"specific": {"versions": [1]}}}
        }
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(model_deployment(NAME, spec)))
        # What a ServiceMonitor's endpoint `sync-metrics` of the Service `llm` yields as target labels.
        prometheus.add_target(
            address,
            __metrics_path__=contract.SYNC_METRICS_PATH,
            namespace=namespace,
            service=NAME,
            pod=f"{NAME}-5d8f9c7b6-x2x9q",
            container=naming.SYNC_CONTAINER,
            endpoint=contract.SYNC_METRICS_PORT_NAME,
        )
        prometheus.wait_for_series(f'modelserve_sync_degraded{{namespace="{namespace}", service="{NAME}"}}')

        # Healthy: the condition says so, and a first False is no news (no Event).
        md = wait_condition(cluster, namespace, NAME, "ModelSyncDegraded", "False", reason="SyncHealthy")
        ready_before = (condition(md, "Ready") or {}).get("status")

        # The store refuses connections: the sidecar keeps serving version 1 and reports it.
        sync.write_creds(s3_creds(s3, AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}"))
        sync.wait_for(lambda: sync.state().get("degraded") is True, timeout=60, what="a failed poll")
        md = wait_condition(
            cluster, namespace, NAME, "ModelSyncDegraded", "True", reason="StoreUnreachable", timeout=60
        )
        degraded = condition(md, "ModelSyncDegraded") or {}
        assert degraded["message"].startswith("the only pod cannot reach the model store"), degraded
        assert "no successful poll since 20" in degraded["message"], degraded
        assert degraded["message"].endswith("it keeps serving what is on disk: versions 1"), degraded
        # Ready says what is served, and the pods still serve: the outage does not change it.
        assert (condition(md, "Ready") or {}).get("status") == ready_before
        assert sync.versions() == ["1"]
        event = wait_event(cluster, namespace, NAME, "StoreUnreachable", type_="Warning", timeout=30)
        assert "cannot reach the model store" in event["message"]

        # Prometheus cannot be asked while the store comes back: the last answer stands (no flap
        # to healthy or to absent), each failed query is counted.
        prometheus_front.down = True
        sync.write_creds(s3_creds(s3))
        selector = f'namespace="{namespace}", service="{NAME}"'
        wait_until(
            lambda: prometheus.value(f"max(modelserve_sync_degraded{{{selector}}})") == 0,
            timeout=60,
            what="the sidecar's recovery scraped",
        )
        failed = failed_queries()
        wait_until(lambda: failed_queries() >= failed + 3, timeout=30, what="three failed queries")
        md = get_or_none(cluster, namespace, "modeldeployment", NAME)
        assert condition(md, "ModelSyncDegraded") == degraded, "it changed while Prometheus was unreachable"

        # Prometheus answers again, the store answers: the condition clears with a Normal Event.
        prometheus_front.down = False
        md = wait_condition(
            cluster, namespace, NAME, "ModelSyncDegraded", "False", reason="SyncHealthy", timeout=60
        )
        assert (condition(md, "ModelSyncDegraded") or {})["message"] == (
            "the model sync of the pod reached the store at its last poll"
        )
        wait_event(cluster, namespace, NAME, "SyncHealthy", type_="Normal", timeout=30)

        # The sidecars' series go (the pods are gone): no series, no condition.
        prometheus.remove_target(address)
        wait_until(
            lambda: condition(get_or_none(cluster, namespace, "modeldeployment", NAME), "ModelSyncDegraded")
            is None,
            timeout=60,
            what="ModelSyncDegraded gone with the series",
        )
    finally:
        prometheus.remove_target(address)
        sync.stop()
        cluster.kubectl("delete", "mdep", NAME, "-n", namespace, "--wait=true", check=False)
