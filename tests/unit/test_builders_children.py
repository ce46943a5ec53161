"""desired_children: order, absent children, and the purity of the builders package."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import Any

import pytest

from modelserve import api
from modelserve.builders import Child, desired_children
from modelserve.settings import Settings

pytestmark = pytest.mark.unit

ORDER = [
    ("v1", "ConfigMap", "resnet-tfserving"),
    ("v1", "Service", "resnet"),
    ("networking.k8s.io/v1", "NetworkPolicy", "resnet"),
    ("v1", "PersistentVolumeClaim", "resnet-model-cache"),
    ("apps/v1", "Deployment", "resnet-model-sync"),
    ("apps/v1", "Deployment", "resnet"),
    ("policy/v1", "PodDisruptionBudget", "resnet"),
    ("autoscaling/v2", "HorizontalPodAutoscaler", "resnet"),
    ("keda.sh/v1alpha1", "ScaledObject", "resnet"),
    ("discovery.k8s.io/v1", "EndpointSlice", "resnet-activator"),
    ("monitoring.coreos.com/v1", "ServiceMonitor", "resnet"),
]


def make(**spec: Any) -> api.ModelDeployment:
    spec.setdefault("model", {"storageUri": "gs://models/resnet"})
    return api.parse({"metadata": {"name": "resnet", "namespace": "ml", "uid": "u"}, "spec": spec})


def test_all_children_in_apply_order() -> None:
    md = make(
        autoscaling={"minReplicas": 2, "maxReplicas": 3},
        monitoring={"enabled": True},
        networkPolicy={},
        model={"storageUri": "gs://models/resnet", "cache": {"size": "50Gi"}},
    )
    children = desired_children(md, Settings())
    assert [(c.api_version, c.kind, c.name) for c in children] == ORDER
    # CPU only: a plain HPA, no ScaledObject (one engine at a time).
    # (the activator route is built by the reconciler from live state, never here).
    assert [c.kind for c in children if not c.present] == ["ScaledObject", "EndpointSlice"]
    for child in (c for c in children if c.present):
        assert child.present
        assert child.manifest is not None
        assert (child.manifest["apiVersion"], child.manifest["kind"]) == (child.api_version, child.kind)
        assert child.manifest["metadata"]["name"] == child.name
        assert child.manifest["metadata"]["namespace"] == "ml"
        assert child.manifest["metadata"]["ownerReferences"][0]["uid"] == "u"


def test_disabled_children_are_listed_as_absent() -> None:
    children = desired_children(make(), Settings())
    assert [(c.api_version, c.kind, c.name) for c in children] == ORDER
    assert [c.present for c in children] == [
        True,
        True,
        False,
        False,
        False,
        True,
        False,
        False,
        False,
        False,
        False,
    ]
    assert children[2].manifest is None
    assert children[3].manifest is None and children[4].manifest is None  # no cache
    assert children[6].manifest is None  # one replica: no budget
    assert children[7].manifest is None


def test_a_load_target_switches_the_engine_to_keda() -> None:
    md = make(autoscaling={"maxReplicas": 3, "targetRequestsPerSecond": 20})
    present = {c.kind for c in desired_children(md, Settings()) if c.present}
    assert "ScaledObject" in present and "HorizontalPodAutoscaler" not in present


def test_child_is_frozen() -> None:
    child = desired_children(make(), Settings())[0]
    assert isinstance(child, Child)
    with pytest.raises(dataclasses.FrozenInstanceError):
        child.name = "x"  # type: ignore[misc]


def test_builders_import_neither_kopf_nor_the_kubernetes_client() -> None:
    code = (
        "import sys, modelserve.builders\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('kopf', 'kubernetes'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=None)
