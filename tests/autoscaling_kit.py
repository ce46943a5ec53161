"""Fixtures for the autoscaling tests: KEDA running against the test cluster, the operator told
where Prometheus and the activator are, and small helpers to read replicas and managedFields."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keda_kit import Keda, start_keda
from kit import Cluster, get_or_none

ACTIVATOR_NAMESPACE = "modelserve-activator-test"
ACTIVATOR_SERVICE = "modelserve-activator"
# Stand-ins for the activator pods' addresses in its EndpointSlice: the activator processes listen on
# loopback, which an EndpointSlice may not name; nothing routes by them here (kwok has no kube-proxy),
# the tests check that the model's Service points at them and send requests to the processes.
ACTIVATOR_ADDRESSES = ("10.244.250.10", "10.244.250.11")


@pytest.fixture(scope="session")
def keda(crds_installed: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keda]:
    running = start_keda(crds_installed, tmp_path_factory.mktemp("keda"))
    yield running
    running.stop()


def activator_service(cluster: Cluster, addresses: tuple[str, ...] = ACTIVATOR_ADDRESSES) -> None:
    """The activator's Service and the EndpointSlice its pods would have in a cluster."""
    cluster.kubectl("create", "namespace", ACTIVATOR_NAMESPACE, check=False)
    items = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": ACTIVATOR_SERVICE, "namespace": ACTIVATOR_NAMESPACE},
            "spec": {"ports": [{"name": "http", "port": 8501}, {"name": "grpc", "port": 8500}]},
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{ACTIVATOR_SERVICE}-pods",
                "namespace": ACTIVATOR_NAMESPACE,
                "labels": {"kubernetes.io/service-name": ACTIVATOR_SERVICE},
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8501}, {"name": "grpc", "port": 8500}],
            "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in addresses],
        },
    ]
    cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=modelserve-tests",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
    )


def operator_settings(
    monkeypatch: pytest.MonkeyPatch,
    *,
    prometheus_url: str = "http://127.0.0.1:9",
    scaler: str = "127.0.0.1:9",
) -> None:
    """What the chart would pass the operator; short windows so tests see decisions in seconds."""
    monkeypatch.setenv("MODELSERVE_PROMETHEUS_URL", prometheus_url)
    monkeypatch.setenv("MODELSERVE_RATE_WINDOW", "10s")
    monkeypatch.setenv("MODELSERVE_KEDA_POLLING_SECONDS", "2")
    monkeypatch.setenv("MODELSERVE_ACTIVATOR_NAMESPACE", ACTIVATOR_NAMESPACE)
    monkeypatch.setenv("MODELSERVE_ACTIVATOR_SERVICE", ACTIVATOR_SERVICE)
    monkeypatch.setenv("MODELSERVE_ACTIVATOR_SCALER_ADDRESS", scaler)


def replicas(cluster: Cluster, namespace: str, name: str) -> tuple[int, int]:
    """(spec.replicas, status.readyReplicas) of the model's Deployment."""
    dep = get_or_none(cluster, namespace, "deployment", name) or {}
    return int((dep.get("spec") or {}).get("replicas") or 0), int(
        (dep.get("status") or {}).get("readyReplicas") or 0
    )


def replica_writers(deployment: dict[str, Any]) -> set[str]:
    """Field managers owning spec.replicas of a Deployment (from managedFields)."""
    owners = set()
    for entry in deployment["metadata"].get("managedFields") or []:
        fields = (entry.get("fieldsV1") or {}).get("f:spec") or {}
        if "f:replicas" in fields:
            owners.add(f"{entry['manager']}/{entry.get('subresource', '')}")
    return owners


def wait_dir(tmp: Path) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    return tmp
