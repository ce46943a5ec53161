"""Rollout faults on the local cluster: a canary whose pods never become Ready, and the operator
SIGKILLed mid-rollout (docs/rollouts.md#faults).

A `Sampler` thread reads the namespace through the API every few hundred milliseconds for the whole
test: the Service's EndpointSlices (an endpoint marked ready must be a Ready pod, never a canary pod
that is not), the Deployments (never more than one canary), the stable's ready count and
status.rollout, so a bad moment between two of the test's own polls is still seen.

Why the never-Ready canary is scheduled nowhere rather than held by a kwok Stage: the shared test
cluster's kwok manages every node with its built-in pod-ready stage (no Stage CRDs), so any pod bound
to a node turns Ready; enabling Stage CRDs would change the cluster every other test runs on. A
canary whose new spec selects nodes no node matches (a typo'd node pool, a GPU type the cluster does
not have) stays Pending and never Ready, which is the fault the progress deadline is for.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from test_rollout import (  # the fixture is used by name
    apply,
    canary_exporter,
    deployment,
    rollout_operator,  # noqa: F401
    rollout_status,
    spec,
    wait_phase,
)

from kit import Cluster, condition, get_or_none, wait_condition, wait_event, wait_until
from prometheus_kit import Exporter, Prometheus
from reliability_kit import OperatorProcess

pytestmark = pytest.mark.integration

NOWHERE = {"modelserve.dev/test-pool": "does-not-exist"}  # no node carries this label


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


@dataclass
class Sampler:
    """Samples the namespace in a thread until stopped; every problem seen is kept with its time."""

    api: Any  # kubernetes.client.ApiClient
    namespace: str
    name: str
    samples: int = 0
    problems: list[str] = field(default_factory=list)
    min_stable_ready: int | None = None
    ready_endpoints: list[int] = field(default_factory=list)  # per sample: endpoints marked ready
    canary_endpoints_ready: int = 0  # samples in which a canary pod was a ready endpoint
    max_canaries: int = 0
    canary_uids: set[str] = field(default_factory=set)
    canary_templates: set[str] = field(default_factory=set)
    # (monotonic time, status.rollout) each time it changed
    history: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sample(self) -> None:
        from kubernetes import client

        core, apps = client.CoreV1Api(self.api), client.AppsV1Api(self.api)
        slices = client.DiscoveryV1Api(self.api).list_namespaced_endpoint_slice(
            self.namespace, label_selector=f"kubernetes.io/service-name={self.name}"
        )
        # Pods after slices: a pod the slice calls ready was Ready when the slice was written; if it
        # is unready now (and not going away), traffic goes to an unready pod.
        pods = {p.metadata.name: p for p in core.list_namespaced_pod(self.namespace).items}
        now = time.strftime("%H:%M:%S")
        ready_refs = set()
        for sl in slices.items:
            for ep in sl.endpoints or []:
                ref = ep.target_ref.name if ep.target_ref else "?"
                if not (ep.conditions and ep.conditions.ready):
                    continue
                ready_refs.add(ref)
                pod = pods.get(ref)
                if pod is not None and pod.metadata.deletion_timestamp is None and not _ready(pod):
                    self.problems.append(f"{now}: endpoint {ep.addresses} of unready pod {ref} is ready")
        self.ready_endpoints.append(len(ready_refs))
        if any(ref.startswith(f"{self.name}-canary-") for ref in ready_refs):
            self.canary_endpoints_ready += 1
        deps = apps.list_namespaced_deployment(self.namespace).items
        canaries = [d for d in deps if (d.metadata.labels or {}).get("modelserve.dev/track") == "canary"]
        self.max_canaries = max(self.max_canaries, len(canaries))
        for d in canaries:
            self.canary_uids.add(d.metadata.uid)
        for pod in pods.values():
            labels = pod.metadata.labels or {}
            if labels.get("modelserve.dev/track") == "canary" and pod.metadata.deletion_timestamp is None:
                self.canary_templates.add(labels.get("pod-template-hash", "?"))
        stable = next((d for d in deps if d.metadata.name == self.name), None)
        if stable is not None and self.history:  # counted from the first status seen
            ready = int((stable.status.ready_replicas if stable.status else 0) or 0)
            self.min_stable_ready = (
                ready if self.min_stable_ready is None else min(self.min_stable_ready, ready)
            )
        md = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
            "modelserve.dev", "v1alpha1", self.namespace, "modeldeployments", self.name
        )
        rollout = dict((md.get("status") or {}).get("rollout") or {})
        rollout.pop("analysis", None)  # changes every few seconds; the steps are what matter here
        if not self.history or self.history[-1][1] != rollout:
            self.history.append((time.monotonic(), rollout))
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._sample()
            except Exception as exc:  # an API hiccup is not a finding; the next sample retries
                if "NotFound" not in repr(exc) and "404" not in repr(exc):
                    self.problems.append(f"sampling failed: {exc!r}"[:300])
            self._stop.wait(0.2)

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def phases(self) -> list[str]:
        return [str(st.get("phase")) for _, st in self.history]

    def steps_since(self, since: float) -> list[tuple[str, int | None, str | None]]:
        return [
            (str(st.get("phase")), st.get("step"), st.get("stepStartedAt"))
            for t, st in self.history
            if t >= since
        ]


@pytest.mark.usefixtures("rollout_operator")
def test_a_canary_whose_pods_never_turn_ready_rolls_back_at_the_deadline(
    cluster: Cluster, namespace: str, kube_api: object
) -> None:
    deadline = 12
    apply(cluster, namespace, "stuck", spec([1], progressDeadlineSeconds=deadline))
    wait_condition(cluster, namespace, "stuck", "Ready", "True", timeout=120)
    wait_phase(cluster, namespace, "stuck", "Stable")
    bad = spec([1], progressDeadlineSeconds=deadline)
    bad["scheduling"] = {"nodeSelector": NOWHERE}

    with Sampler(kube_api, namespace, "stuck") as sampler:
        # The Service's endpoints may trail the Deployment's ready count by a moment: start from 4.
        wait_until(lambda: sampler.ready_endpoints[-1:] == [4], timeout=30, what="4 ready endpoints sampled")
        before = len(sampler.ready_endpoints) - 1
        apply(cluster, namespace, "stuck", bad)
        started = time.monotonic()
        progressing = wait_phase(cluster, namespace, "stuck", "Progressing", timeout=60, step=1)
        md = get_or_none(cluster, namespace, "modeldeployment", "stuck")
        assert condition(md, "RolloutProgressing")["status"] == "True"  # type: ignore[index]
        wait_until(
            lambda: (
                "waiting for canary pods" in str(rollout_status(cluster, namespace, "stuck").get("message"))
            ),
            timeout=30,
            what="status saying the step waits for canary pods",
        )
        rolled = wait_phase(cluster, namespace, "stuck", "RolledBack", timeout=deadline + 60)
        took = time.monotonic() - started
        wait_until(
            lambda: deployment(cluster, namespace, "stuck-canary") is None, timeout=60, what="the canary gone"
        )
        wait_until(
            lambda: (
                (d := deployment(cluster, namespace, "stuck")) is not None
                and d["spec"]["replicas"] == 4
                and d.get("status", {}).get("readyReplicas") == 4
            ),
            timeout=90,
            what="the stable back at 4 ready replicas",
        )
        wait_until(
            lambda: sampler.ready_endpoints[-1:] == [4], timeout=30, what="the Service back at 4 endpoints"
        )

    assert progressing["stepWeight"] == 25
    assert deadline - 2 <= took < deadline + 30, (
        f"rolled back {took:.0f}s after the change; deadline {deadline}s"
    )
    assert rolled["reason"] == "ProgressDeadlineExceeded", rolled
    # The message names why: the step waited for canary pods that never became ready.
    assert (
        f"within {deadline}s" in rolled["message"]
        and "waiting for canary pods (0/1 ready)" in rolled["message"]
    ), rolled["message"]
    md = wait_condition(cluster, namespace, "stuck", "RolledBack", "True", reason="ProgressDeadlineExceeded")
    assert "waiting for canary pods" in condition(md, "RolledBack")["message"]  # type: ignore[index]
    assert condition(md, "RolloutProgressing")["status"] == "False"  # type: ignore[index]
    event = wait_event(cluster, namespace, "stuck", "RolledBack", type_="Warning")
    assert "ProgressDeadlineExceeded" in event["message"] and "canary pods" in event["message"], event
    # The stable served throughout: never below the 3 of 4 that a 25% step leaves it, no endpoint
    # ever pointed at a pod that was not Ready, and there was one canary Deployment at most.
    assert sampler.samples > 20, sampler.samples
    assert sampler.problems == [], sampler.problems
    assert sampler.min_stable_ready is not None and sampler.min_stable_ready >= 3, sampler.min_stable_ready
    assert sampler.max_canaries == 1, sampler.max_canaries
    assert sampler.canary_endpoints_ready == 0
    during = sampler.ready_endpoints[before:]
    assert during[0] == 4 and min(during) >= 3, during
    assert "Promoting" not in sampler.phases(), sampler.phases()
    # The rollback restores the stable spec and leaves the user's spec alone.
    assert rolled["stableSpec"].get("scheduling") in (None, {}), rolled["stableSpec"].get("scheduling")
    live = get_or_none(cluster, namespace, "modeldeployment", "stuck") or {}
    assert live["spec"]["scheduling"] == {"nodeSelector": NOWHERE}


@pytest.fixture
def operator_process(
    crds_installed: Cluster, namespace: str, prometheus: Prometheus, tmp_path: Path
) -> Iterator[OperatorProcess]:
    """The operator as its own process (started by the test), so SIGKILL is a real crash."""
    op = OperatorProcess(
        kubeconfig=crds_installed.kubeconfig,
        namespace=namespace,
        log_path=tmp_path / "operator.log",
        env={"MODELSERVE_RETRY_DELAY_SECONDS": "0.5", "MODELSERVE_PROMETHEUS_URL": prometheus.url},
    )
    yield op
    op.stop()
    print(f"\n===== operator log (last lines) =====\n{op.log_tail(80)}")


def test_the_operator_sigkilled_mid_rollout_resumes_at_the_same_step(
    cluster: Cluster,
    namespace: str,
    kube_api: object,
    exporters: Callable[..., Exporter],
    operator_process: OperatorProcess,
) -> None:
    op = operator_process
    op.start()
    op.wait_serving()
    steps = {"steps": [25, 50, 75, 100], "stepDuration": "6s"}
    apply(cluster, namespace, "crash", spec([1], **steps))
    wait_phase(cluster, namespace, "crash", "Stable", timeout=120)
    canary_exporter(exporters, namespace, "crash", rps=30, error_ratio=0.0, latency_ms=20)

    with Sampler(kube_api, namespace, "crash") as sampler:
        wait_until(lambda: sampler.samples > 0, timeout=30, what="the first sample")
        apply(cluster, namespace, "crash", spec([2], **steps))
        # Kill it inside step 2's analysis window: the step and its clocks are only in status.
        at_kill = wait_until(
            lambda: (
                (st := rollout_status(cluster, namespace, "crash")).get("step") == 2
                and st.get("stepReadyAt")
                and st
            ),
            timeout=120,
            interval=0.1,
            what="step 2's window open",
        )
        op.kill()
        killed_at = time.monotonic()
        assert not op.running()
        # Nobody moves the rollout while the operator is dead.
        frozen = rollout_status(cluster, namespace, "crash")
        assert (frozen["step"], frozen["stepStartedAt"]) == (2, at_kill["stepStartedAt"]), frozen
        op.start()
        op.wait_serving()
        promoted = wait_until(
            lambda: (
                (st := rollout_status(cluster, namespace, "crash")).get("phase") == "Stable"
                and st["stableSpec"]["model"]["versionPolicy"] == {"specific": {"versions": [2]}}
                and st
            ),
            timeout=150,
            what="the canary promoted after the restart",
            describe=lambda: json.dumps(rollout_status(cluster, namespace, "crash"), indent=1),
        )
        wait_until(
            lambda: deployment(cluster, namespace, "crash-canary") is None, timeout=60, what="the canary gone"
        )

    after = sampler.steps_since(killed_at)
    progressing = [(step, started) for phase, step, started in after if phase == "Progressing"]
    # Resumed at step 2 with step 2's own clock (not restarted from step 1, not a new step 2), then 3, 4.
    assert progressing and progressing[0] == (2, at_kill["stepStartedAt"]), after
    assert [s for s, _ in progressing] == sorted(s for s, _ in progressing), after
    assert {s for s, _ in progressing} == {2, 3, 4}, after
    step3 = next(started for s, started in progressing if s == 3)
    assert step3 is not None and step3 > str(at_kill["stepStartedAt"]), after
    # Step 2 was judged by the restarted operator: step 3 began only after the restart.
    first_step3 = next(t for t, st in sampler.history if st.get("step") == 3)
    assert first_step3 > killed_at, "step 3 began before the kill"
    assert promoted["analysis"]["verdict"] == "Pass"
    assert op.starts == 2 and op.tracebacks() == [], op.tracebacks()
    for _, st in sampler.history:
        assert st.get("step", 1) >= 1 and st.get("phase") != "RolledBack", st
    assert sampler.samples > 20, sampler.samples
    assert sampler.problems == [], sampler.problems
    # One canary Deployment, never recreated, with one pod template (no second canary rolled in).
    assert sampler.max_canaries == 1 and len(sampler.canary_uids) == 1, sampler.canary_uids
    assert len(sampler.canary_templates) == 1, sampler.canary_templates
    assert sampler.canary_endpoints_ready > 0, "the canary never served: the endpoint check saw nothing"
    started_events = cluster.kubectl_json(
        "get", "events", "-n", namespace, "--field-selector", "involvedObject.name=crash"
    )["items"]
    reasons = [e["reason"] for e in started_events]
    assert "RolloutRestarted" not in reasons and reasons.count("RolloutStarted") == 1, reasons
    wait_event(cluster, namespace, "crash", "Promoted")
