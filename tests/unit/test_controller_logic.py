"""controller.py: watch health, retry backoff, and how watch events feed the queue and the state."""

from __future__ import annotations

import asyncio
import copy
import random
from typing import Any

import pytest

from modelserve.controller import MAX_BACKOFF, Controller, WatchHealth
from modelserve.kube import Kube, KubeError, Transient
from modelserve.reconcile import Outcome
from modelserve.records import Key, Records
from modelserve.settings import Settings
from modelserve.workqueue import WorkQueue

pytestmark = pytest.mark.unit

Obj = dict[str, Any]


# --- WatchHealth -----------------------------------------------------------------------------------

A: Key = ("ml", "resnet")
B: Key = ("ml", "bert")


def health_of(*keys: Key) -> WatchHealth:
    records = Records()
    for key in keys:
        records.ensure(key)
    return WatchHealth(stall_seconds=60, records=records)


def event(health: WatchHealth, key: Key, rv: str) -> None:
    health.on_event(health.records.ensure(key), rv)


def test_watch_health_is_fine_when_events_match_the_list() -> None:
    health = health_of()
    event(health, A, "10")
    event(health, B, "11")
    health.on_list({A: "10", B: "11"}, now=1000.0)
    assert health.lagging() == {}
    assert health.problem(now=1_000_000.0) is None


def test_watch_health_reports_a_stall_only_after_the_allowed_time() -> None:
    health = health_of(A, B)  # B appeared through the LIST only (the resync makes its record)
    event(health, A, "10")
    health.on_list({A: "12", B: "7"}, now=1000.0)  # A changed and B appeared without an event
    assert health.lagging() == {A: 1000.0, B: 1000.0}
    assert health.problem(now=1060.0) is None
    health.on_list({A: "12", B: "7"}, now=1050.0)  # still lagging: the first sighting counts
    assert health.lagging() == {A: 1000.0, B: 1000.0}
    problem = health.problem(now=1061.0)
    assert problem == "watch stalled: 2 ModelDeployments changed without an event (e.g. ml/resnet)"


def test_watch_health_recovers_through_an_event_or_a_matching_list() -> None:
    health = health_of(A, B)
    health.on_list({A: "12", B: "7"}, now=1000.0)
    event(health, A, "12")  # the watch caught up
    assert health.lagging() == {B: 1000.0}
    assert health.problem(now=2000.0) == (
        "watch stalled: 1 ModelDeployments changed without an event (e.g. ml/bert)"
    )
    event(health, B, "7")
    health.on_list({A: "12", B: "7"}, now=2000.0)
    assert health.problem(now=5000.0) is None


def test_watch_health_state_goes_with_the_record() -> None:
    health = health_of(A, B)
    health.on_list({A: "12", B: "7"}, now=1000.0)
    health.records.forget(A)  # A was deleted meanwhile
    assert health.lagging() == {B: 1000.0}
    health.on_list({}, now=1020.0)
    assert health.lagging() == {}
    assert health.problem(now=9999.0) is None


# --- a Controller on fakes -------------------------------------------------------------------------


class FakeKube(Kube):
    def __init__(self, items: list[Obj] | None = None, monitoring_crd: bool = False) -> None:
        self.items = items or []
        self.monitoring_crd = monitoring_crd
        self.calls: list[tuple[str, ...]] = []

    def list(self, kind: str, namespace: str | None, label_selector: str | None = None) -> list[Obj]:
        self.calls.append(("list", kind, namespace or ""))
        return [copy.deepcopy(i) for i in self.items if namespace in (None, i["metadata"]["namespace"])]

    def has_resource(self, api_version: str, plural: str) -> bool:
        self.calls.append(("has_resource", api_version, plural))
        return self.monitoring_crd


class RecordingQueue(WorkQueue[Key]):
    def __init__(self) -> None:
        super().__init__(self._never, workers=1)
        self.added: list[Key] = []
        self.forgotten: list[Key] = []

    @staticmethod
    async def _never(key: Key) -> float | None:
        raise AssertionError(f"nothing is processed here: {key}")

    def add(self, key: Key, delay: float = 0.0) -> None:
        self.added.append(key)

    def forget(self, key: Key) -> None:
        self.forgotten.append(key)


def make_controller(kube: FakeKube | None = None, **settings: Any) -> tuple[Controller, RecordingQueue]:
    settings.setdefault("leader_election", False)
    controller = Controller(kube or FakeKube(), Settings(**settings))
    queue = RecordingQueue()
    controller.queue = queue
    return controller, queue


def body_of(controller: Controller, key: Key) -> Obj:
    record = controller.records.get(key)
    assert record is not None and record.body is not None
    return record.body


def md(name: str = "resnet", rv: str = "10", namespace: str = "ml") -> Obj:
    return {
        "apiVersion": "modelserve.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "resourceVersion": rv},
        "spec": {"model": {"storageUri": "gs://models/resnet"}},
    }


def child(kind: str, name: str, owners: list[Obj], rv: str = "50") -> Obj:
    return {
        "kind": kind,
        "metadata": {"name": name, "namespace": "ml", "resourceVersion": rv, "ownerReferences": owners},
    }


def owner(name: str, *, controller: bool = True, kind: str = "ModelDeployment") -> Obj:
    return {
        "apiVersion": "modelserve.dev/v1alpha1" if kind == "ModelDeployment" else "apps/v1",
        "kind": kind,
        "name": name,
        "uid": f"uid-{name}",
        "controller": controller,
    }


def test_retry_backoff_doubles_up_to_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "uniform", lambda low, high: 1.0)
    controller, _ = make_controller(retry_delay_seconds=2.0)
    record_a, record_b = controller.records.ensure(A), controller.records.ensure(B)
    delays = [controller._retry(record_a, A, "Transient", "409 Conflict") for _ in range(9)]
    assert delays == [2.0, 4.0, 8.0, 16.0, 32.0, MAX_BACKOFF, MAX_BACKOFF, MAX_BACKOFF, MAX_BACKOFF]
    assert record_a.failures == 9
    # Another key starts from the beginning.
    assert controller._retry(record_b, B, "Transient", "429") == 2.0
    # Very many failures neither overflow nor exceed the cap.
    record_a.failures = 10_000
    assert controller._retry(record_a, A, "Error", "x") == MAX_BACKOFF


def test_retry_backoff_is_jittered_around_the_exponential(monkeypatch: pytest.MonkeyPatch) -> None:
    bounds: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        bounds.append((low, high))
        return high

    monkeypatch.setattr(random, "uniform", uniform)
    controller, _ = make_controller(retry_delay_seconds=0.5)
    record = controller.records.ensure(A)
    assert controller._retry(record, A, "Transient", "x") == pytest.approx(0.6)
    assert controller._retry(record, A, "Transient", "x") == pytest.approx(1.2)
    assert bounds == [(0.8, 1.2), (0.8, 1.2)]


def test_process_retries_api_errors_and_resets_after_success(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "uniform", lambda low, high: 1.0)
    controller, _ = make_controller(retry_delay_seconds=1.0)
    controller.on_model_deployment("ADDED", md())
    results: list[Exception | Outcome] = [
        Transient(409, "Conflict", "the object has been modified"),
        KubeError(403, "Forbidden", "no"),
        RuntimeError("bug"),
        Outcome("progressing", "RollingOut", requeue_after=5.0),
        Transient(503, "ServiceUnavailable", "etcd"),
        Outcome("ready", "Ready"),
    ]
    seen: list[Obj] = []

    def reconcile(body: Obj, record: object = None) -> Outcome:
        seen.append(body)
        result = results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result

    monkeypatch.setattr(controller.reconciler, "reconcile", reconcile)

    async def go() -> list[float | None]:
        return [await controller._process(A) for _ in range(6)]

    assert asyncio.run(go()) == [1.0, 2.0, 4.0, 5.0, 1.0, None]
    assert seen == [md()] * 6
    record = controller.records.get(A)
    assert record is not None
    assert (record.failures, record.progress_polls, record.ready) == (0, 0, "True")


def test_process_of_an_unknown_key_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    controller, _ = make_controller()

    def reconcile(body: Obj, record: object = None) -> Outcome:
        raise AssertionError("no body, no reconcile")

    monkeypatch.setattr(controller.reconciler, "reconcile", reconcile)
    assert asyncio.run(controller._process(A)) is None


def test_child_events_enqueue_the_controlling_model_deployment() -> None:
    controller, queue = make_controller()
    dep = child(
        "Deployment",
        "resnet",
        [owner("other", controller=False), owner("rs", kind="ReplicaSet"), owner("resnet")],
    )
    controller.on_child("MODIFIED", dep)
    assert queue.added == [A]
    assert controller.cache.get("Deployment", "ml", "resnet") == dep

    controller.on_child("ADDED", child("ConfigMap", "bert-tfserving", [owner("bert")]))
    assert queue.added == [A, B]


@pytest.mark.parametrize(
    "owners",
    [[], [owner("resnet", controller=False)], [owner("resnet", kind="ReplicaSet")]],
    ids=["no-owner", "not-controller", "other-kind"],
)
def test_child_events_without_a_controlling_model_deployment_enqueue_nothing(owners: list[Obj]) -> None:
    controller, queue = make_controller()
    controller.on_child("ADDED", child("Service", "resnet", owners))
    assert queue.added == []
    assert controller.cache.get("Service", "ml", "resnet") is not None  # still cached


def sync_pod(model: str | None, namespace: str = "ml") -> Obj:
    labels = {"modelserve.dev/model-sync": model} if model is not None else {}
    return {
        "kind": "Pod",
        "metadata": {
            "name": f"{model}-model-sync-5d4f-x7k2q",
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [owner(f"{model}-model-sync-5d4f", kind="ReplicaSet")],
        },
    }


def test_a_sync_pod_event_enqueues_its_known_model_and_caches_nothing() -> None:
    controller, queue = make_controller()
    controller.on_model_deployment("ADDED", md())
    queue.added.clear()
    controller.on_sync_pod(sync_pod("resnet"))
    assert queue.added == [A]
    assert controller.cache.get("Pod", "ml", "resnet-model-sync-5d4f-x7k2q") is None
    # A pod of a model this operator does not know (deleted, another namespace), or unlabelled.
    controller.on_sync_pod(sync_pod("bert"))
    controller.on_sync_pod(sync_pod("resnet", namespace="other"))
    controller.on_sync_pod(sync_pod(None))
    assert queue.added == [A]


def test_a_deleted_child_is_forgotten_and_its_owner_reconciled() -> None:
    controller, queue = make_controller()
    svc = child("Service", "resnet", [owner("resnet")])
    controller.on_child("ADDED", svc)
    controller.on_child("DELETED", svc)
    assert controller.cache.get("Service", "ml", "resnet") is None
    assert queue.added == [A, A]


def test_model_deployment_events_store_the_body_and_enqueue() -> None:
    controller, queue = make_controller()
    controller.on_model_deployment("ADDED", md(rv="10"))
    controller.on_model_deployment("MODIFIED", md(rv="11"))
    record = controller.records.get(A)
    assert record is not None
    assert record.body == md(rv="11")
    assert queue.added == [A, A]
    assert record.seen_rv == "11"


def test_a_deleted_model_deployment_forgets_every_piece_of_state() -> None:
    controller, queue = make_controller()
    controller.on_model_deployment("ADDED", md())
    controller.on_model_deployment("ADDED", md("bert"))
    record = controller.records.get(A)
    assert record is not None
    record.failures, record.ready, record.written, record.absent = 3, "False", (10, {}), {"HPA"}
    controller.on_model_deployment("DELETED", md())
    assert controller.records.keys() == [B]  # one record held everything, one forget dropped it
    assert queue.forgotten == [A]
    assert queue.added == [A, B]  # the delete itself enqueues nothing


def test_forgetting_model_deployments_and_children_starts_a_trim_wave() -> None:
    controller, _ = make_controller()
    assert not controller.trimmer.due()
    controller.on_model_deployment("ADDED", md())
    controller.trimmer.settle = 0  # due as soon as something was forgotten
    assert not controller.trimmer.due()  # nothing forgotten yet
    controller.on_model_deployment("DELETED", md())
    assert controller.trimmer.due()
    controller.on_child("DELETED", child("Service", "resnet", [owner("resnet")]))
    assert controller.trimmer.due()


def test_a_child_event_clears_its_kind_from_the_owners_absent_marks() -> None:
    controller, _ = make_controller()
    controller.on_model_deployment("ADDED", md())
    record = controller.records.get(A)
    assert record is not None
    record.absent = {"HorizontalPodAutoscaler/resnet", "NetworkPolicy/resnet"}
    controller.on_child("ADDED", child("HorizontalPodAutoscaler", "resnet", [owner("resnet")]))
    assert record.absent == {"NetworkPolicy/resnet"}


def test_the_monitoring_crd_appearing_enqueues_everything_once() -> None:
    controller, queue = make_controller()
    controller.on_model_deployment("ADDED", md())
    controller.on_model_deployment("ADDED", md("bert"))
    queue.added.clear()
    controller.on_monitoring_crd(False)  # unchanged: nothing to do
    assert queue.added == []
    controller.on_monitoring_crd(True)
    assert sorted(queue.added) == sorted([A, B])
    assert controller.reconciler.monitoring_crd_installed() is True
    controller.on_monitoring_crd(True)
    assert len(queue.added) == 2


def test_resync_keeps_the_newest_body_and_enqueues_every_listed_key() -> None:
    listed_old = md(rv="9")
    listed_new = md("bert", rv="30")
    del listed_new["apiVersion"], listed_new["kind"]  # list items may come without them
    kube = FakeKube([listed_old, listed_new, md("other", namespace="elsewhere")], monitoring_crd=True)
    controller, queue = make_controller(kube, namespaces="ml")
    controller.on_model_deployment("ADDED", md(rv="10"))
    controller.on_model_deployment("ADDED", md("bert", rv="20"))
    queue.added.clear()

    asyncio.run(controller.resync())

    assert kube.calls == [
        ("list", "ModelDeployment", "ml"),
        ("has_resource", "monitoring.coreos.com/v1", "servicemonitors"),
        ("has_resource", "keda.sh/v1alpha1", "scaledobjects"),
    ]
    assert body_of(controller, A)["metadata"]["resourceVersion"] == "10"  # the watch's is newer
    assert body_of(controller, B) == {**md("bert", rv="30")}
    assert queue.added == [A, B]
    assert controller.health.lagging().keys() == {A, B}  # the list saw versions no event did
    assert controller.reconciler.monitoring_crd_installed() is True


def test_resync_forgets_a_model_deployment_whose_deleted_event_was_lost() -> None:
    kube = FakeKube([md("bert", rv="30")])
    controller, queue = make_controller(kube, namespaces="ml")
    controller.on_model_deployment("ADDED", md(rv="10"))  # deleted later; its DELETED never came
    controller.on_model_deployment("ADDED", md("bert", rv="20"))

    asyncio.run(controller.resync())

    assert A not in controller.records
    assert A in queue.forgotten
    assert body_of(controller, B)["metadata"]["resourceVersion"] == "30"


def test_resync_keeps_a_body_that_arrived_during_the_list(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = FakeKube([])
    controller, queue = make_controller(kube, namespaces="ml")
    controller.on_model_deployment("ADDED", md(rv="10"))
    original = kube.list

    def list_while_an_event_arrives(
        kind: str, namespace: str | None, label_selector: str | None = None
    ) -> list[Obj]:
        controller.on_model_deployment("ADDED", md(rv="40"))  # recreated while the LIST ran
        return original(kind, namespace, label_selector)

    monkeypatch.setattr(kube, "list", list_while_an_event_arrives)
    asyncio.run(controller.resync())

    assert body_of(controller, A)["metadata"]["resourceVersion"] == "40"
    assert A not in queue.forgotten


def test_ready_gauge_follows_reconciles_and_deletes(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelserve import metrics

    def gauge() -> dict[str, float]:
        return {v: metrics.MODEL_DEPLOYMENTS.labels(ready=v)._value.get() for v in ("True", "False")}

    controller, _ = make_controller()
    assert gauge() == {"True": 0, "False": 0}
    outcomes = {
        A: [Outcome("progressing", "RollingOut"), Outcome("ready", "Ready"), Outcome("ready", "Ready")],
        B: [Outcome("invalid", "InvalidSpec")],
    }
    monkeypatch.setattr(
        controller.reconciler,
        "reconcile",
        lambda body, record=None: outcomes[(body["metadata"]["namespace"], body["metadata"]["name"])].pop(0),
    )
    controller.on_model_deployment("ADDED", md())
    controller.on_model_deployment("ADDED", md("bert"))

    async def process(key: Key) -> None:
        await controller._process(key)

    asyncio.run(process(A))
    assert gauge() == {"True": 0, "False": 1}
    asyncio.run(process(B))
    asyncio.run(process(A))
    asyncio.run(process(A))
    assert gauge() == {"True": 1, "False": 1}
    controller.on_model_deployment("DELETED", md())
    assert gauge() == {"True": 0, "False": 1}
    make_controller()  # a new controller (a restart in the same process) counts from zero
    assert gauge() == {"True": 0, "False": 0}


def test_per_object_ready_gauge_names_each_model_deployment_and_goes_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from modelserve import metrics

    def ready(key: Key) -> float | None:
        return metrics.REGISTRY.get_sample_value(
            "modelserve_modeldeployment_ready", {"namespace": key[0], "modeldeployment": key[1]}
        )

    controller, _ = make_controller()
    outcomes = [Outcome("progressing", "RollingOut"), Outcome("ready", "Ready")]
    monkeypatch.setattr(controller.reconciler, "reconcile", lambda body, record=None: outcomes.pop(0))
    controller.on_model_deployment("ADDED", md())
    assert ready(A) is None  # not reconciled yet: no series
    asyncio.run(controller._process(A))
    assert ready(A) == 0
    asyncio.run(controller._process(A))
    assert ready(A) == 1
    controller.on_model_deployment("DELETED", md())
    assert ready(A) is None
