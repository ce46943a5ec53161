"""The ServiceMonitor."""

from __future__ import annotations

from typing import Any

import pytest

from modelserve import api, contract, naming
from modelserve.builders.servicemonitor import build_service_monitor
from modelserve.settings import Settings

pytestmark = pytest.mark.unit


def make(**spec: Any) -> api.ModelDeployment:
    spec.setdefault("model", {"storageUri": "gs://models/resnet"})
    return api.parse({"metadata": {"name": "resnet", "namespace": "ml", "uid": "u"}, "spec": spec})


def test_absent_unless_enabled() -> None:
    assert build_service_monitor(make(), Settings()) is None
    assert build_service_monitor(make(monitoring={"enabled": False, "interval": "5s"}), Settings()) is None


def test_scrapes_the_http_port_of_our_service() -> None:
    md = make(monitoring={"enabled": True, "interval": "15s", "scrapeTimeout": "5s"})
    sm = build_service_monitor(md, Settings())
    assert sm is not None
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["kind"] == "ServiceMonitor"
    assert sm["metadata"] == naming.child_metadata(md, "resnet")
    assert sm["spec"] == {
        "selector": {"matchLabels": {"modelserve.dev/deployment": "resnet"}},
        "namespaceSelector": {"matchNames": ["ml"]},
        "endpoints": [
            {
                "port": "http",
                "path": contract.METRICS_PATH,
                "scheme": "http",
                "interval": "15s",
                "scrapeTimeout": "5s",
            },
            # The sync sidecar's state: a store outage after the first fetch shows here.
            {
                "port": "sync-metrics",
                "path": "/metrics",
                "scheme": "http",
                "interval": "15s",
                "scrapeTimeout": "5s",
            },
        ],
    }


def test_a_cached_model_scrapes_tf_serving_only() -> None:
    md = make(
        model={"storageUri": "gs://models/resnet", "cache": {"size": "1Gi"}},
        monitoring={"enabled": True},
    )
    sm = build_service_monitor(md, Settings())
    assert sm is not None
    assert [e["port"] for e in sm["spec"]["endpoints"]] == ["http"]


def test_extra_labels_are_added_but_cannot_replace_ours() -> None:
    labels = {"release": "prometheus", naming.MANAGED_BY_LABEL: "someone-else"}
    md = make(monitoring={"enabled": True, "labels": labels})
    sm = build_service_monitor(md, Settings())
    assert sm is not None
    assert sm["metadata"]["labels"] == {**naming.child_labels(md), "release": "prometheus"}
