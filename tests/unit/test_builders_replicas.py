"""Replica ownership under autoscaling and the GPU rollout strategy (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from modelserve import api
from modelserve.builders import replicas
from modelserve.builders.deployment import build_deployment
from modelserve.settings import Settings

pytestmark = pytest.mark.unit


def make(**spec: Any) -> api.ModelDeployment:
    spec.setdefault("model", {"storageUri": "gs://models/resnet"})
    return api.parse({"metadata": {"name": "resnet", "namespace": "ml", "uid": "u"}, "spec": spec})


AUTO = {"autoscaling": {"minReplicas": 3, "maxReplicas": 6}}


def test_an_autoscaled_deployment_is_created_at_min_replicas_but_applied_without_a_count() -> None:
    md = make(**AUTO)
    dep = build_deployment(md, Settings())
    assert "replicas" not in dep["spec"]
    assert replicas.creation_body(md, dep)["spec"]["replicas"] == 3
    # Fixed counts and suspend set spec.replicas themselves.
    for spec in ({"replicas": 2}, {**AUTO, "suspend": True}):
        fixed = make(**spec)
        body = build_deployment(fixed, Settings())
        assert replicas.creation_body(fixed, body) == body


def test_the_seed_holds_the_live_count_and_at_least_the_minimum() -> None:
    md = make(**AUTO)
    assert replicas.seed_body(md, {"spec": {"replicas": 5}}) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "resnet", "namespace": "ml"},
        "spec": {"replicas": 5},
    }
    seed = replicas.seed_body(md, {"spec": {"replicas": 0}})  # resumed from suspend
    assert seed is not None and seed["spec"]["replicas"] == 3
    # The count is claimed at the resourceVersion it was read at, never over a newer one.
    read = {"metadata": {"resourceVersion": "41"}, "spec": {"replicas": 4}}
    assert replicas.seed_body(md, read)["metadata"]["resourceVersion"] == "41"  # type: ignore[index]
    assert replicas.seed_body(make(replicas=2), {"spec": {"replicas": 5}}) is None
    assert replicas.seed_body(make(**AUTO, suspend=True), {"spec": {"replicas": 5}}) is None


@pytest.mark.parametrize(
    ("spec", "live", "want"),
    [
        (AUTO, 1, 3),  # the HPA has yet to raise it: not ready at 1
        (AUTO, 5, 5),
        (AUTO, None, 3),
        ({**AUTO, "suspend": True}, 0, 0),
        ({"replicas": 2}, 2, 2),
        ({}, None, 1),
    ],
)
def test_ready_requires_at_least_min_replicas(spec: dict[str, Any], live: int | None, want: int) -> None:
    deployment = {"spec": {} if live is None else {"replicas": live}}
    assert replicas.desired_replicas(make(**spec), deployment) == want


def test_gpu_pods_roll_one_at_a_time_without_a_surge_pod() -> None:
    gpu = build_deployment(make(gpu={"count": 1}, replicas=3), Settings())
    assert gpu["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
    }
    cpu = build_deployment(make(replicas=3), Settings())
    assert "strategy" not in cpu["spec"]  # Kubernetes' default surge: CPU is rarely the scarce one
