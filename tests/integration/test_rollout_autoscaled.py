"""A canary rollout of an autoscaled ModelDeployment (docs/rollouts.md): the HPA's total is split,
never fought.

While a rollout runs, the operator holds the replica total the HPA had reached and splits it between
the stable and the canary Deployments; the HPA is removed for that time (two writers of the stable's
spec.replicas would fight) and AutoscalerReady says the count is held. After promotion the HPA comes
back and owns the stable's replicas again: the test makes it scale on simulated CPU (kwok's pod usage
annotations, read by metrics-server) and checks from managedFields that no operator field manager
holds spec.replicas. The canary's metrics come from the stand-in exporter (see test_rollout.py).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from test_rollout import (  # the fixture is used by name
    apply,
    canary_exporter,
    config_versions,
    rollout_operator,  # noqa: F401
    rollout_status,
)

from autoscaling_kit import replica_writers, replicas
from kit import Cluster, condition, get_or_none, wait_condition, wait_until
from prometheus_kit import Exporter

pytestmark = pytest.mark.integration

NAME = "scaled"
MIN, MAX = 3, 4
IN_ROLLOUT = ("Progressing", "Paused", "Promoting")
OPERATOR = "modelserve-operator"  # the operator's managers: modelserve-operator, modelserve-operator-replicas


def spec(version: int) -> dict[str, Any]:
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 0}, "scaleUp": {"stabilizationWindowSeconds": 0}}
    return {
        "model": {"storageUri": "gs://models/resnet", "versionPolicy": {"specific": {"versions": [version]}}},
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
        "autoscaling": {
            "minReplicas": MIN,
            "maxReplicas": MAX,
            "targetCPUUtilization": 50,
            "behavior": behavior,
        },
        "rollout": {
            "steps": [25, 50, 100],
            "stepDuration": "4s",
            "analysis": {"minRequestCount": 20, "maxErrorRatio": 0.05, "maxP99LatencyMs": 500},
        },
    }


@dataclass(frozen=True)
class Sample:
    stable: int | None  # spec.replicas; None: no stable Deployment
    canary: int | None  # None: no canary Deployment
    hpa: bool
    stable_writers: frozenset[str]
    canary_writers: frozenset[str]
    phase: str | None
    total: int | None  # status.rollout.totalReplicas
    autoscaler_message: str


class Sampler:
    """Polls the Deployments, the HPA and the ModelDeployment together, as fast as kubectl answers."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            proc = self.cluster.kubectl(
                "get",
                "deployments,hpa,modeldeployments",
                "-n",
                self.namespace,
                "-o",
                "json",
                "--show-managed-fields",
                check=False,
            )
            if proc.returncode == 0:
                items = json.loads(proc.stdout)["items"]
                self.samples.append(self._sample(items))
            self._stop.wait(0.1)

    @staticmethod
    def _sample(items: list[dict[str, Any]]) -> Sample:
        by = {(i["kind"], i["metadata"]["name"]): i for i in items}
        stable = by.get(("Deployment", NAME))
        canary = by.get(("Deployment", f"{NAME}-canary"))
        md = by.get(("ModelDeployment", NAME)) or {}
        rollout = (md.get("status") or {}).get("rollout") or {}
        return Sample(
            stable=None if stable is None else int(stable["spec"].get("replicas") or 0),
            canary=None if canary is None else int(canary["spec"].get("replicas") or 0),
            hpa=("HorizontalPodAutoscaler", NAME) in by,
            stable_writers=frozenset(replica_writers(stable) if stable else ()),
            canary_writers=frozenset(replica_writers(canary) if canary else ()),
            phase=rollout.get("phase"),
            total=rollout.get("totalReplicas"),
            autoscaler_message=str((condition(md, "AutoscalerReady") or {}).get("message") or ""),
        )

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def dedup(values: list[Any]) -> list[Any]:
    return [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]


def annotate_cpu(cluster: Cluster, namespace: str, cpu: str) -> None:
    cluster.kubectl(
        "annotate", "pods", "-n", namespace, "--all", f"kwok.x-k8s.io/usage-cpu={cpu}", "--overwrite"
    )


def assert_split_never_fought(samples: list[Sample]) -> None:
    """What the sampler saw from the spec change to the HPA's return."""
    during = [s for s in samples if s.phase in IN_ROLLOUT or s.canary is not None]
    assert during, "no sample saw the rollout"
    splits = dedup([(s.stable, s.canary) for s in samples])

    # The total is the HPA's count when the rollout began, held for the whole rollout.
    assert {s.total for s in samples if s.phase in IN_ROLLOUT} == {MIN}, splits
    # Split, never more than the total (maxExtraReplicas is 0), and every step seen in order.
    for s in samples:
        assert (s.stable or 0) + (s.canary or 0) <= MIN, (s, splits)
    steps = [x for x in splits if x in ((2, 1), (1, 2), (0, 3))]
    assert steps[:1] == [(2, 1)] and (1, 2) in steps and steps.index((1, 2)) < steps.index((0, 3)), splits
    assert splits[-1] == (MIN, None), splits

    # Never fought: the HPA went away once and came back once, never while a canary existed.
    assert dedup([s.hpa for s in samples]) == [True, False, True], dedup([(s.hpa, s.phase) for s in samples])
    assert not [s for s in samples if s.hpa and s.canary is not None], "an HPA and a canary at once"
    for s in during:
        assert all(w.startswith(OPERATOR) for w in s.stable_writers | s.canary_writers), s
    # The stable only shrinks while the canary grows, and only grows back at promotion: one valley.
    stable = dedup([s.stable for s in samples if s.stable is not None])
    low = stable.index(min(stable))
    assert stable[: low + 1] == sorted(stable[: low + 1], reverse=True), stable
    assert stable[low:] == sorted(stable[low:]), stable

    # The canary only grows through the steps and only shrinks at promotion: one peak. (A seed
    # claim raising the stable to minReplicas mid-rollout once made the canary shrink to fit.)
    canary = dedup([s.canary for s in samples if s.canary is not None])
    top = canary.index(max(canary))
    assert canary[: top + 1] == sorted(canary[: top + 1]), canary
    assert canary[top:] == sorted(canary[top:], reverse=True), canary

    # Status said the autoscaler was held, with the total.
    held = [s.autoscaler_message for s in during if "held at" in s.autoscaler_message]
    assert held, dedup([s.autoscaler_message for s in samples])
    assert f"held at {MIN} replicas during the rollout; autoscaling resumes after it" in held[0], held[0]


@pytest.mark.usefixtures("rollout_operator")
def test_an_autoscaled_rollout_splits_the_held_total_and_hands_replicas_back_to_the_hpa(
    cluster: Cluster, namespace: str, exporters: Callable[..., Exporter]
) -> None:
    apply(cluster, namespace, NAME, spec(1))
    wait_condition(cluster, namespace, NAME, "Ready", "True", timeout=120)
    first = wait_until(
        lambda: (st := rollout_status(cluster, namespace, NAME)).get("phase") == "Stable" and st,
        timeout=60,
        what="the first revision stable",
    )
    assert get_or_none(cluster, namespace, "hpa", NAME) is not None
    annotate_cpu(cluster, namespace, "10m")  # idle: the HPA stays at minReplicas
    assert replicas(cluster, namespace, NAME)[0] == MIN
    canary_exporter(exporters, namespace, NAME, rps=30, error_ratio=0.0, latency_ms=20)

    with Sampler(cluster, namespace) as sampler:
        apply(cluster, namespace, NAME, spec(2))
        done = wait_until(
            lambda: (
                (st := rollout_status(cluster, namespace, NAME)).get("phase") == "Stable"
                and st.get("stableRevision") != first["stableRevision"]
                and st
            ),
            timeout=180,
            what="the canary promoted",
            describe=lambda: json.dumps(rollout_status(cluster, namespace, NAME), indent=1),
        )
        wait_until(
            lambda: (
                get_or_none(cluster, namespace, "deployment", f"{NAME}-canary") is None
                and get_or_none(cluster, namespace, "hpa", NAME) is not None
            ),
            timeout=60,
            what="the canary gone and the HPA back",
        )
        wait_condition(cluster, namespace, NAME, "Ready", "True", timeout=120)
        # One more sample after the hand-back, so the sequences below end in the final state.
        seen = len(sampler.samples)
        wait_until(lambda: len(sampler.samples) > seen + 1, timeout=30, what="a sample after the hand-back")

    assert_split_never_fought(sampler.samples)

    # Promoted: the stable serves version 2, its spec is the canary's.
    assert done["analysis"]["verdict"] == "Pass"
    assert done["stableSpec"]["model"]["versionPolicy"] == {"specific": {"versions": [2]}}
    assert "versions: 2" in config_versions(cluster, namespace, f"{NAME}-tfserving")
    md = get_or_none(cluster, namespace, "modeldeployment", NAME)
    assert "held at" not in (condition(md, "AutoscalerReady") or {}).get("message", "")

    # Afterwards the HPA owns the stable's replicas again: busy pods scale it to maxReplicas, and no
    # operator field manager holds spec.replicas.
    hpa = get_or_none(cluster, namespace, "hpa", NAME)
    assert hpa is not None and hpa["spec"]["scaleTargetRef"]["name"] == NAME

    def scaled_up() -> bool:
        annotate_cpu(cluster, namespace, "900m")
        return replicas(cluster, namespace, NAME)[0] == MAX

    wait_until(scaled_up, timeout=180, interval=3, what="the HPA to scale the stable after the rollout")
    dep = cluster.kubectl_json("get", "deployment", NAME, "-n", namespace, "--show-managed-fields")
    writers = replica_writers(dep)
    assert not any(w.startswith(OPERATOR) for w in writers), writers
    assert any(w.startswith("kube-controller-manager") for w in writers), writers
    # The operator's reconciles of the scale-up leave the HPA's count alone.
    wait_condition(cluster, namespace, NAME, "Ready", "True", timeout=120)
    assert rollout_status(cluster, namespace, NAME)["phase"] == "Stable"
    assert replicas(cluster, namespace, NAME)[0] == MAX
