"""The Service."""

from __future__ import annotations

from typing import Any

import pytest

from modelserve import api, naming
from modelserve.builders.service import build_service
from modelserve.settings import Settings

pytestmark = pytest.mark.unit


def make(**spec: Any) -> api.ModelDeployment:
    spec.setdefault("model", {"storageUri": "gs://models/resnet"})
    return api.parse({"metadata": {"name": "resnet", "namespace": "ml", "uid": "u"}, "spec": spec})


def test_default_cluster_ip_service() -> None:
    md = make()
    svc = build_service(md, Settings())
    assert svc["apiVersion"] == "v1"
    assert svc["kind"] == "Service"
    assert svc["metadata"] == naming.child_metadata(md, "resnet")
    assert svc["spec"] == {
        "type": "ClusterIP",
        "selector": {"modelserve.dev/deployment": "resnet"},
        "ports": [
            {"name": "grpc", "port": 8500, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "grpc"},
            {"name": "http", "port": 8501, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"},
            # The sync sidecar's own metrics, for the ServiceMonitor.
            {
                "name": "sync-metrics",
                "port": 8502,
                "targetPort": "sync-metrics",
                "protocol": "TCP",
                "appProtocol": "http",
            },
        ],
    }
    assert "annotations" not in svc["metadata"]


def test_a_cached_model_has_no_sync_metrics_port() -> None:
    # The cache's sync Deployment is read by the operator (CacheReady); serving pods run no sync.
    md = make(model={"storageUri": "gs://models/resnet", "cache": {"size": "1Gi"}})
    svc = build_service(md, Settings())
    assert [p["name"] for p in svc["spec"]["ports"]] == ["grpc", "http"]


def test_type_and_annotations_from_spec() -> None:
    annotations = {"service.beta.kubernetes.io/aws-load-balancer-internal": "true", "a.example/x": "1"}
    svc = build_service(make(service={"type": "LoadBalancer", "annotations": annotations}), Settings())
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["metadata"]["annotations"] == annotations
    assert list(svc["metadata"]["annotations"]) == sorted(annotations)
    # Allocated values are the API server's: never claimed by our apply.
    assert all("nodePort" not in p for p in svc["spec"]["ports"])
    assert "clusterIP" not in svc["spec"]


def test_selector_is_the_selector_labels_only() -> None:
    md = make()
    assert build_service(md, Settings())["spec"]["selector"] == naming.selector_labels(md)
