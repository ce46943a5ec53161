"""Autoscaling engines on the real control plane: a plain HPA on simulated CPU (metrics-server over
kwok's pod usage), KEDA's ScaledObject for load targets (the real KEDA operator and metrics adapter,
registered with the aggregation layer), switching between them, KEDA missing or down.

Requests-per-second ramps and scale to zero are in test_scale_to_zero.py (they need Prometheus)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from autoscaling_kit import keda, operator_settings, replica_writers, replicas  # noqa: F401  (fixture)
from keda_kit import Keda, install_crds
from kit import Cluster, condition, get_or_none, model_deployment, wait_condition, wait_until
from prometheus_kit import Prometheus, start_prometheus

pytestmark = pytest.mark.integration

MODEL = {"storageUri": "gs://models/half_plus_two"}


def apply(cluster: Cluster, namespace: str, manifest: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))


def patch_spec(cluster: Cluster, namespace: str, name: str, patch: dict[str, Any]) -> None:
    cluster.kubectl("patch", "mdep", name, "-n", namespace, "--type=merge", "-p", json.dumps({"spec": patch}))


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """A real Prometheus (nothing to scrape here): KEDA's prometheus triggers must reach one to be
    Ready; the load ramp with exporters is in test_scale_to_zero.py."""
    prom = start_prometheus(tmp_path_factory.mktemp("prometheus"))
    yield prom
    prom.stop()


@pytest.fixture
def settings(operator_env: Cluster, monkeypatch: pytest.MonkeyPatch, prometheus: Prometheus) -> None:
    operator_settings(monkeypatch, prometheus_url=prometheus.url)


def annotate_pods(cluster: Cluster, namespace: str, name: str, cpu: str) -> int:
    pods = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", f"modelserve.dev/deployment={name}")[
        "items"
    ]
    for pod in pods:
        cluster.kubectl(
            "annotate",
            "pod",
            "-n",
            namespace,
            pod["metadata"]["name"],
            f"kwok.x-k8s.io/usage-cpu={cpu}",
            "--overwrite",
        )
    return len(pods)


@pytest.mark.usefixtures("settings", "operator")
def test_cpu_target_scales_on_simulated_cpu_usage(cluster: Cluster, namespace: str) -> None:
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 0}, "scaleUp": {"stabilizationWindowSeconds": 0}}
    spec = {
        "model": MODEL,
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
        "autoscaling": {"minReplicas": 1, "maxReplicas": 4, "targetCPUUtilization": 50, "behavior": behavior},
    }
    apply(cluster, namespace, model_deployment("cpu", spec))
    wait_condition(cluster, namespace, "cpu", "Ready", "True", timeout=90)
    assert get_or_none(cluster, namespace, "hpa", "cpu") is not None  # CPU only: a plain HPA

    # kwok reports 900m of CPU per pod (90% of the request): the real HPA controller, reading
    # metrics-server, asks for more replicas; new pods get the same usage as they appear.
    def scaled_up() -> bool:
        annotate_pods(cluster, namespace, "cpu", "900m")
        return replicas(cluster, namespace, "cpu")[0] >= 2

    wait_until(scaled_up, timeout=180, interval=3, what="the HPA to scale up on simulated CPU")
    hpa = get_or_none(cluster, namespace, "hpa", "cpu")
    assert (
        hpa is not None
        and hpa["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"] > 50
    )

    def scaled_down() -> bool:
        annotate_pods(cluster, namespace, "cpu", "10m")
        return replicas(cluster, namespace, "cpu")[0] == 1

    wait_until(scaled_down, timeout=180, interval=3, what="the HPA to scale back down when CPU is idle")
    # kubectl leaves managedFields out unless asked; without them the check below would be empty.
    deployment = cluster.kubectl_json("get", "deployment", "cpu", "-n", namespace, "--show-managed-fields")
    writers = replica_writers(deployment)
    assert not any(w.startswith("modelserve-operator") for w in writers), writers
    assert any(w.startswith("kube-controller-manager") for w in writers), writers


@pytest.mark.usefixtures("settings", "keda", "operator")
def test_a_load_target_is_a_keda_scaled_object_and_the_operator_never_writes_replicas(
    cluster: Cluster, namespace: str
) -> None:
    spec = {
        "model": MODEL,
        "autoscaling": {"minReplicas": 2, "maxReplicas": 5, "targetRequestsPerSecond": 10},
    }
    apply(cluster, namespace, model_deployment("rps", spec))
    md = wait_condition(cluster, namespace, "rps", "AutoscalerReady", "True", timeout=120)
    so = get_or_none(cluster, namespace, "scaledobject", "rps")
    assert so is not None
    trigger = so["spec"]["triggers"][0]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
    assert ':tensorflow:serving:request_count{namespace="' + namespace in trigger["metadata"]["query"]
    assert trigger["metadata"]["threshold"] == "10"
    assert get_or_none(cluster, namespace, "hpa", "rps") is None  # no HPA of ours
    keda_hpa = get_or_none(cluster, namespace, "hpa", "keda-hpa-rps")
    assert keda_hpa is not None and keda_hpa["spec"]["minReplicas"] == 2
    assert keda_hpa["metadata"]["ownerReferences"][0]["kind"] == "ScaledObject"
    wait_until(
        lambda: replicas(cluster, namespace, "rps") == (2, 2), timeout=90, what="2 replicas (KEDA's min)"
    )
    deployment = cluster.kubectl_json("get", "deployment", "rps", "-n", namespace, "--show-managed-fields")
    # Created at KEDA's minimum by the operator's apply, which owns that count only until an
    # autoscaler changes it; KEDA's HPA has had no reason to (it wants 2 as well). Nothing else of
    # the operator's owns it: no claim was made, the count was never written again.
    writers = replica_writers(deployment)
    assert writers == {"modelserve-operator/"}, writers
    # A spec change now: our apply leaves spec.replicas out, so it hands the count over first, at
    # the value KEDA's HPA keeps, and never writes another value.
    patch = {"spec": {"serving": {"env": [{"name": "A", "value": "1"}]}}}
    cluster.kubectl("patch", "mdep", "rps", "-n", namespace, "--type=merge", "-p", json.dumps(patch))
    wait_until(
        lambda: (
            "modelserve-operator/"
            not in replica_writers(
                cluster.kubectl_json("get", "deployment", "rps", "-n", namespace, "--show-managed-fields")
            )
        ),
        timeout=60,
        what="the operator's apply no longer owning spec.replicas",
    )
    deployment = cluster.kubectl_json("get", "deployment", "rps", "-n", namespace, "--show-managed-fields")
    assert deployment["spec"]["replicas"] == 2
    assert replica_writers(deployment) == {"modelserve-operator-replicas/"}, replica_writers(deployment)
    assert condition(md, "Ready")["status"] == "True"  # type: ignore[index]


@pytest.mark.usefixtures("settings", "keda", "operator")
def test_suspend_pauses_the_scaled_object_at_zero_and_resume_brings_it_back(
    cluster: Cluster, namespace: str
) -> None:
    spec = {
        "model": MODEL,
        "autoscaling": {"minReplicas": 2, "maxReplicas": 4, "targetRequestsPerSecond": 10},
    }
    apply(cluster, namespace, model_deployment("nap", spec))
    wait_condition(cluster, namespace, "nap", "AutoscalerReady", "True", timeout=120)
    wait_until(lambda: replicas(cluster, namespace, "nap") == (2, 2), timeout=90, what="2 replicas")
    so = get_or_none(cluster, namespace, "scaledobject", "nap")
    assert so is not None
    uid = so["metadata"]["uid"]

    apply(cluster, namespace, model_deployment("nap", {**spec, "suspend": True}))
    wait_until(lambda: replicas(cluster, namespace, "nap") == (0, 0), timeout=90, what="0 replicas")
    md = wait_condition(cluster, namespace, "nap", "Suspended", "True", timeout=60)
    assert condition(md, "AutoscalerReady")["reason"] == "Suspended"  # type: ignore[index]
    paused = get_or_none(cluster, namespace, "scaledobject", "nap")
    assert paused is not None and paused["metadata"]["uid"] == uid, "the same ScaledObject, kept"
    assert paused["metadata"]["annotations"]["autoscaling.keda.sh/paused-replicas"] == "0"
    # KEDA itself says it is paused (and takes its HPA away while it is).
    wait_until(
        lambda: any(
            c.get("type") == "Paused" and c.get("status") == "True"
            for c in ((get_or_none(cluster, namespace, "scaledobject", "nap") or {}).get("status") or {}).get(
                "conditions"
            )
            or []
        ),
        timeout=60,
        what="KEDA reporting the ScaledObject Paused",
    )

    apply(cluster, namespace, model_deployment("nap", spec))
    wait_until(lambda: replicas(cluster, namespace, "nap") == (2, 2), timeout=120, what="2 replicas again")
    resumed = get_or_none(cluster, namespace, "scaledobject", "nap")
    assert resumed is not None and resumed["metadata"]["uid"] == uid
    assert "autoscaling.keda.sh/paused-replicas" not in (resumed["metadata"].get("annotations") or {})
    wait_until(
        lambda: get_or_none(cluster, namespace, "hpa", "keda-hpa-nap") is not None,
        timeout=60,
        what="KEDA's HPA back",
    )
    wait_condition(cluster, namespace, "nap", "AutoscalerReady", "True", reason="Created", timeout=120)


@pytest.mark.usefixtures("settings", "keda", "operator")
def test_switching_engines_cleans_up_the_other(cluster: Cluster, namespace: str) -> None:
    spec = {"model": MODEL, "autoscaling": {"minReplicas": 1, "maxReplicas": 3, "targetCPUUtilization": 60}}
    apply(cluster, namespace, model_deployment("switch", spec))
    wait_until(lambda: get_or_none(cluster, namespace, "hpa", "switch"), timeout=60, what="the plain HPA")

    patch_spec(cluster, namespace, "switch", {"autoscaling": {"targetRequestsPerSecond": 5}})
    wait_until(
        lambda: get_or_none(cluster, namespace, "scaledobject", "switch"), timeout=60, what="the ScaledObject"
    )
    wait_until(
        lambda: get_or_none(cluster, namespace, "hpa", "switch") is None, timeout=60, what="our HPA deleted"
    )
    so = get_or_none(cluster, namespace, "scaledobject", "switch")
    assert so is not None and [t["type"] for t in so["spec"]["triggers"]] == ["cpu", "prometheus"]

    patch_spec(cluster, namespace, "switch", {"autoscaling": {"targetRequestsPerSecond": None}})
    wait_until(
        lambda: get_or_none(cluster, namespace, "hpa", "switch"), timeout=60, what="the plain HPA again"
    )
    wait_until(
        lambda: get_or_none(cluster, namespace, "scaledobject", "switch") is None,
        timeout=60,
        what="SO deleted",
    )
    # KEDA removes its own HPA with the ScaledObject (owner reference).
    wait_until(
        lambda: get_or_none(cluster, namespace, "hpa", "keda-hpa-switch") is None,
        timeout=60,
        what="KEDA's HPA gone",
    )
    wait_condition(cluster, namespace, "switch", "AutoscalerReady", "True", timeout=60)


@pytest.mark.usefixtures("settings", "keda", "operator")
def test_keda_down_keeps_replicas_and_says_why(cluster: Cluster, namespace: str, keda: Keda) -> None:  # noqa: F811
    spec = {
        "model": MODEL,
        "autoscaling": {"minReplicas": 2, "maxReplicas": 5, "targetRequestsPerSecond": 10},
    }
    apply(cluster, namespace, model_deployment("down", spec))
    wait_condition(cluster, namespace, "down", "AutoscalerReady", "True", timeout=120)
    wait_until(lambda: replicas(cluster, namespace, "down") == (2, 2), timeout=90, what="2 replicas")
    keda.stop()
    try:
        md = wait_condition(
            cluster, namespace, "down", "AutoscalerReady", "False", reason="MetricsUnavailable", timeout=180
        )
        assert "cannot read its metrics" in condition(md, "AutoscalerReady")["message"]  # type: ignore[index]
        assert condition(md, "Ready")["status"] == "True"  # type: ignore[index]  (still serving)
        assert replicas(cluster, namespace, "down") == (2, 2)
    finally:
        keda.start()
    wait_condition(cluster, namespace, "down", "AutoscalerReady", "True", timeout=180)


@pytest.mark.usefixtures("settings", "keda", "operator")
def test_without_keda_crds_the_model_is_served_at_its_minimum(
    cluster: Cluster,
    namespace: str,
    keda: Keda,  # noqa: F811
) -> None:
    cluster.kubectl("delete", "crd", "scaledobjects.keda.sh", "--wait=true", "--ignore-not-found")
    try:
        spec = {
            "model": MODEL,
            "autoscaling": {
                "minReplicas": 0,
                "maxReplicas": 3,
                "idleWindow": "30s",
                "targetRequestsPerSecond": 5,
            },
        }
        apply(cluster, namespace, model_deployment("nokeda", spec))
        md = wait_condition(
            cluster, namespace, "nokeda", "AutoscalerReady", "False", reason="KEDANotInstalled", timeout=90
        )
        assert "served at 1 replica" in condition(md, "AutoscalerReady")["message"]  # type: ignore[index]
        wait_condition(cluster, namespace, "nokeda", "Available", "True", timeout=90)
        assert replicas(cluster, namespace, "nokeda") == (1, 1)
        assert get_or_none(cluster, namespace, "endpointslice", "nokeda-activator") is None
    finally:
        install_crds(cluster)
        keda.stop()  # KEDA's informers lost their CRD: start it afresh
        keda.start()
    # The CRD's arrival is seen through its watch: the ScaledObject is created, KEDA takes over.
    wait_until(
        lambda: get_or_none(cluster, namespace, "scaledobject", "nokeda"), timeout=90, what="the ScaledObject"
    )
