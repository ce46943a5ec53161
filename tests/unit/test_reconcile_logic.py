"""reconcile.py: subset comparison, manifest hashes, the child cache and the Reconciler's orchestration.

The Reconciler runs against `FakeKube`, an in-memory stand-in for `modelserve.kube.Kube` that records
every call and adds what an API server adds (uid, resourceVersion, defaults, managedFields). Only the
orchestration is under test here; the real API behaviour is covered by tests/integration.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from modelserve import naming
from modelserve.builders import CHILD_KINDS
from modelserve.childcache import APPLIED_HASH_ANNOTATION, ChildCache, is_subset, manifest_hash, with_hash
from modelserve.kube import Invalid, Kube, KubeError, NamespaceTerminating, Transient
from modelserve.reconcile import Outcome, Reconciler
from modelserve.settings import Settings
from modelserve.status import Reason

pytestmark = pytest.mark.unit

UID = "7c1f9a52-0d4e-4b8e-9a0e-3f1d2c4b5a60"
Obj = dict[str, Any]
ObjKey = tuple[str, str, str]
Calls = list[tuple[str, str, str]]  # (verb, kind, name); an alias: FakeKube.list shadows `list`


# --- is_subset, hashes -----------------------------------------------------------------------------


def test_is_subset_ignores_fields_the_server_added() -> None:
    desired = {"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "tfserving"}]}}}}
    live = {
        "metadata": {"uid": "u", "resourceVersion": "12", "managedFields": [{"manager": "x"}]},
        "spec": {
            "replicas": 2,
            "progressDeadlineSeconds": 600,
            "template": {
                "spec": {
                    "dnsPolicy": "ClusterFirst",
                    "containers": [{"name": "tfserving", "imagePullPolicy": "IfNotPresent"}],
                }
            },
        },
        "status": {"readyReplicas": 2},
    }
    assert is_subset(desired, live)
    assert not is_subset(live, desired)


def test_is_subset_sees_changed_and_missing_values() -> None:
    live = {"spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}}}}
    assert not is_subset({"spec": {"replicas": 3}}, live)
    assert not is_subset({"spec": {"paused": False}}, live)
    assert not is_subset({"spec": {"selector": {"matchLabels": {"a": "c"}}}}, live)
    assert not is_subset({"spec": {"selector": {"matchLabels": {"a": "b", "c": "d"}}}}, live)
    assert not is_subset({"spec": {"replicas": {"nested": 1}}}, live)
    assert not is_subset({"spec": 1}, live)


def test_is_subset_lists_must_have_the_same_length() -> None:
    live = {"ports": [{"name": "grpc", "port": 8500, "protocol": "TCP"}, {"name": "http", "port": 8501}]}
    assert is_subset({"ports": [{"name": "grpc", "port": 8500}, {"name": "http"}]}, live)
    assert not is_subset({"ports": [{"name": "grpc", "port": 8500}]}, live)
    three = [{"name": "grpc"}, {"name": "http"}, {"name": "extra"}]
    assert not is_subset({"ports": three}, live)
    assert not is_subset({"ports": [{"name": "http"}, {"name": "grpc"}]}, live)  # order matters
    assert not is_subset({"ports": []}, {"ports": {}})
    assert is_subset({"args": []}, {"args": []})


def test_is_subset_numbers_and_strings_compare_by_text() -> None:
    # int-or-string fields: we write 8501, the server may hand back "8501" (and vice versa).
    assert is_subset({"targetPort": 8501}, {"targetPort": "8501"})
    assert is_subset({"targetPort": "8501"}, {"targetPort": 8501})
    assert is_subset({"cpu": 0.5}, {"cpu": "0.5"})
    assert not is_subset({"targetPort": 8501}, {"targetPort": "http"})
    assert not is_subset({"targetPort": 8501}, {"targetPort": 8500})
    assert not is_subset({"optional": None}, {"optional": False})
    assert is_subset({"x": None}, {"x": None})


def test_manifest_hash_is_stable_and_independent_of_key_order() -> None:
    a = {"metadata": {"name": "n", "labels": {"x": "1", "y": "2"}}, "spec": {"a": [1, 2], "b": True}}
    b = {"spec": {"b": True, "a": [1, 2]}, "metadata": {"labels": {"y": "2", "x": "1"}, "name": "n"}}
    assert manifest_hash(a) == manifest_hash(b) == manifest_hash(copy.deepcopy(a))
    assert len(manifest_hash(a)) == 16
    assert manifest_hash(a) != manifest_hash({**a, "spec": {"a": [2, 1], "b": True}})


def test_with_hash_annotates_and_changes_when_a_key_is_removed() -> None:
    full: Obj = {
        "metadata": {"name": "n", "annotations": {"keep": "me"}},
        "spec": {"nodeSelector": {"gpu": "a100"}, "replicas": 1},
    }
    trimmed = {"metadata": {"name": "n", "annotations": {"keep": "me"}}, "spec": {"replicas": 1}}
    hashed = with_hash(full)
    assert hashed["metadata"]["annotations"] == {"keep": "me", APPLIED_HASH_ANNOTATION: manifest_hash(full)}
    bare = {"metadata": {"name": "n"}}
    assert with_hash(bare)["metadata"] == {
        "name": "n",
        "annotations": {APPLIED_HASH_ANNOTATION: manifest_hash(bare)},
    }
    assert full["metadata"]["annotations"] == {"keep": "me"}  # the input is not modified
    # Removing a key leaves the trimmed manifest a subset of the live object; only the hash tells.
    live = with_hash(full)
    assert is_subset(trimmed, live)
    assert not is_subset(with_hash(trimmed), live)
    assert is_subset(with_hash(full), live)


# --- ChildCache ------------------------------------------------------------------------------------


def cm(rv: str, data: str = "x", name: str = "resnet-tfserving") -> Obj:
    return {
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "ml", "resourceVersion": rv},
        "data": {"v": data},
    }


def test_child_cache_keeps_the_newest_resource_version() -> None:
    cache = ChildCache()
    cache.put(cm("100", "new"))
    cache.put(cm("99", "old"))  # a late watch event
    assert cache.get("ConfigMap", "ml", "resnet-tfserving") == cm("100", "new")
    cache.put(cm("101", "newer"))
    assert cache.get("ConfigMap", "ml", "resnet-tfserving") == cm("101", "newer")
    cache.put(cm("1000", "numeric, not text order"))
    cache.put(cm("999", "stale"))
    assert cache.get("ConfigMap", "ml", "resnet-tfserving") == cm("1000", "numeric, not text order")
    assert cache.get("ConfigMap", "other", "resnet-tfserving") is None
    assert cache.get("Service", "ml", "resnet-tfserving") is None
    assert len(cache) == 1


def test_child_cache_forgets_a_deleted_child_so_a_recreated_one_counts() -> None:
    cache = ChildCache()
    cache.put(cm("5"))
    cache.forget("ConfigMap", "ml", "resnet-tfserving")
    assert cache.get("ConfigMap", "ml", "resnet-tfserving") is None
    assert len(cache) == 0
    cache.put(cm("3"))  # recreated by someone: even an older-looking version counts
    assert cache.get("ConfigMap", "ml", "resnet-tfserving") == cm("3")


# --- FakeKube --------------------------------------------------------------------------------------


class FakeKube(Kube):
    """An API server in a dict. `calls` records (verb, kind, name) of every request."""

    def __init__(self, *, monitoring_crd: bool = True) -> None:  # no API client: nothing leaves the test
        self.objects: dict[ObjKey, Obj] = {}
        self.calls: list[tuple[str, str, str]] = []
        self.events: list[tuple[str, str, str]] = []
        self.refuse: dict[str, str] = {}  # kind -> message of a 422 on apply
        self.terminating = False  # the namespace is being deleted: every apply is refused
        self.fail_status: KubeError | None = None
        self.monitoring_crd = monitoring_crd
        self._rv = itertools.count(100)
        self._uids = itertools.count(1)

    def next_rv(self) -> str:
        return str(next(self._rv))

    # What a ModelDeployment looks like once created.
    def create_md(self, spec: Obj, name: str = "resnet", generation: int = 1) -> Obj:
        obj: Obj = {
            "apiVersion": "modelserve.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {
                "name": name,
                "namespace": "ml",
                "uid": UID,
                "generation": generation,
                "resourceVersion": self.next_rv(),
                "creationTimestamp": "2025-01-01T00:00:00Z",
                "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update"}],
            },
            "spec": spec,
        }
        self.objects[("ModelDeployment", "ml", name)] = obj
        return copy.deepcopy(obj)

    def update_spec(self, spec: Obj, name: str = "resnet") -> Obj:
        obj = self.objects[("ModelDeployment", "ml", name)]
        obj["spec"] = spec
        obj["metadata"]["generation"] += 1
        obj["metadata"]["resourceVersion"] = self.next_rv()
        return copy.deepcopy(obj)

    def body(self, name: str = "resnet") -> Obj:
        """The ModelDeployment as the watch would deliver it now."""
        return copy.deepcopy(self.objects[("ModelDeployment", "ml", name)])

    def live(self, kind: str, name: str = "resnet") -> Obj:
        return copy.deepcopy(self.objects[(kind, "ml", name)])

    def put(self, obj: Obj, *, uid: str | None = None) -> Obj:
        """Creates or replaces an object behind the operator's back."""
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        meta.setdefault("uid", uid or f"child-{next(self._uids)}")
        meta["resourceVersion"] = self.next_rv()
        self.objects[(obj["kind"], meta["namespace"], meta["name"])] = obj
        return copy.deepcopy(obj)

    def mutate(self, kind: str, change: Callable[[Obj], None], name: str = "resnet") -> Obj:
        obj = copy.deepcopy(self.objects[(kind, "ml", name)])
        change(obj)
        return self.put(obj)

    def roll_out(self, ready: int | None = None, name: str = "resnet") -> Obj:
        """What the Deployment controller and kubelets do: pods on the new template become ready."""

        def done(dep: Obj) -> None:
            count = dep["spec"]["replicas"] if ready is None else ready
            dep["status"] = {
                "observedGeneration": dep["metadata"]["generation"],
                "replicas": dep["spec"]["replicas"],
                "updatedReplicas": dep["spec"]["replicas"],
                "readyReplicas": count,
                "availableReplicas": count,
            }

        return self.mutate("Deployment", done, name)

    # --- the Kube interface ---

    def apply(
        self, manifest: Obj, *, field_manager: str = naming.FIELD_MANAGER, dry_run: bool = False
    ) -> Obj:
        kind, meta = manifest["kind"], manifest["metadata"]
        seed = field_manager != naming.FIELD_MANAGER
        self.calls.append(("dry-run" if dry_run else "seed" if seed else "apply", kind, meta["name"]))
        if self.terminating:
            raise NamespaceTerminating(
                403, "Forbidden", f"unable to create new content in namespace {meta['namespace']}"
            )
        if kind in self.refuse:
            raise Invalid(422, "Invalid", self.refuse[kind])
        if dry_run:
            return copy.deepcopy(manifest)
        key = (kind, meta["namespace"], meta["name"])
        current = self.objects.get(key)
        if seed and current is None:  # a partial apply cannot create an object
            raise Invalid(422, "Invalid", "spec.selector: Required value")
        precondition = meta.get("resourceVersion")
        if precondition and current and current["metadata"]["resourceVersion"] != precondition:
            raise Transient(409, "Conflict", "the object has been modified; please apply your changes")
        live = _merge(copy.deepcopy(current) if current else {}, copy.deepcopy(manifest))
        _server_defaults(live, current)
        live_meta = live["metadata"]
        live_meta["uid"] = current["metadata"]["uid"] if current else f"child-{next(self._uids)}"
        live_meta["resourceVersion"] = self.next_rv()
        live_meta["creationTimestamp"] = "2025-01-01T00:00:01Z"
        live_meta["managedFields"] = [{"manager": naming.FIELD_MANAGER, "operation": "Apply"}]
        if kind == "Deployment":
            self._own_replicas(live, current, manifest, field_manager)
            generation = current["metadata"]["generation"] if current else 1
            if current and current["spec"] != live["spec"]:
                generation += 1
            live_meta["generation"] = generation
            live.setdefault("status", {"observedGeneration": generation - 1})
        self.objects[key] = live
        return copy.deepcopy(live)

    @staticmethod
    def _own_replicas(live: Obj, current: Obj | None, manifest: Obj, manager: str) -> None:
        """Server-side apply's ownership of spec.replicas: an apply that sets another value takes it
        (we always force), the same value shares it, and leaving it out lets it go; a field nobody
        owns any more is removed (the Deployment falls back to 1 replica)."""
        owners = _replica_owners(current)
        was = (current or {}).get("spec", {}).get("replicas")
        if "replicas" in manifest.get("spec", {}):
            if manifest["spec"]["replicas"] != was:
                owners = [(manager, "Apply")]
            elif (manager, "Apply") not in owners:
                owners = [*owners, (manager, "Apply")]
        elif (manager, "Apply") in owners:
            owners = [o for o in owners if o != (manager, "Apply")]
            if not owners:
                live["spec"]["replicas"] = 1
        live["metadata"]["managedFields"] += [
            {"manager": m, "operation": op, "fieldsV1": {"f:spec": {"f:replicas": {}}}} for m, op in owners
        ]

    def scale(self, replicas: int, name: str = "resnet", manager: str = "kube-controller-manager") -> Obj:
        """What the HPA controller does: an update of the scale subresource, which takes spec.replicas
        from every other manager."""

        def scaled(dep: Obj) -> None:
            dep["spec"]["replicas"] = replicas
            dep["metadata"]["managedFields"] = [
                e for e in dep["metadata"]["managedFields"] if "fieldsV1" not in e
            ] + [
                {
                    "manager": manager,
                    "operation": "Update",
                    "subresource": "scale",
                    "fieldsV1": {"f:spec": {"f:replicas": {}}},
                }
            ]

        return self.mutate("Deployment", scaled, name)

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        self.calls.append(("get", kind, name))
        obj = self.objects.get((kind, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def list(
        self,
        kind: str,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]:
        self.calls.append(("list", kind, label_selector or ""))
        wanted = dict(part.split("=", 1) for part in (label_selector or "").split(",") if part)
        return [
            copy.deepcopy(obj)
            for (k, ns, _), obj in sorted(self.objects.items())
            if k == kind
            and namespace in (None, ns)
            and all(obj["metadata"].get("labels", {}).get(lk) == lv for lk, lv in wanted.items())
        ]

    def delete(self, kind: str, namespace: str, name: str, uid: str) -> None:
        self.calls.append(("delete", kind, name))
        obj = self.objects.get((kind, namespace, name))
        if obj is not None and obj["metadata"]["uid"] == uid:
            del self.objects[(kind, namespace, name)]

    def patch_status(self, namespace: str, name: str, status: Obj) -> Obj:
        self.calls.append(("patch_status", "ModelDeployment", name))
        if self.fail_status is not None:
            raise self.fail_status
        obj = self.objects[("ModelDeployment", namespace, name)]
        obj["status"] = copy.deepcopy(status)
        obj["metadata"]["resourceVersion"] = self.next_rv()
        return copy.deepcopy(obj)

    def record_event(self, md: Obj, event_type: str, reason: str, message: str) -> None:
        self.calls.append(("post_event", "Event", md["metadata"]["name"]))
        self.events.append((event_type, reason, message))

    def has_resource(self, api_version: str, plural: str) -> bool:
        self.calls.append(("has_resource", api_version, plural))
        return self.monitoring_crd and plural == "servicemonitors"

    # --- helpers for assertions ---

    def writes(self) -> Calls:
        return [c for c in self.calls if c[0] not in ("get", "list", "has_resource")]

    def reset(self) -> None:
        self.calls.clear()
        self.events.clear()


def _replica_owners(obj: Obj | None) -> list[tuple[str, str]]:
    return [
        (e["manager"], e["operation"])
        for e in ((obj or {}).get("metadata") or {}).get("managedFields") or []
        if "f:replicas" in ((e.get("fieldsV1") or {}).get("f:spec") or {})
    ]


def _merge(live: Obj, applied: Obj) -> Obj:
    for key, value in applied.items():
        if isinstance(value, dict) and isinstance(live.get(key), dict):
            live[key] = _merge(live[key], value)
        else:
            live[key] = value
    return live


def _server_defaults(obj: Obj, current: Obj | None) -> None:
    spec = obj.setdefault("spec", {}) if obj["kind"] != "ConfigMap" else {}
    if obj["kind"] == "Deployment":
        if "replicas" not in spec:  # with autoscaling: the HPA's count, or 1
            spec["replicas"] = (current or {}).get("spec", {}).get("replicas", 1)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault("revisionHistoryLimit", 10)
        pod = spec["template"]["spec"]
        pod.setdefault("dnsPolicy", "ClusterFirst")
        pod.setdefault("restartPolicy", "Always")
        pod.setdefault("schedulerName", "default-scheduler")
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            container.setdefault("imagePullPolicy", "IfNotPresent")
            container.setdefault("terminationMessagePath", "/dev/termination-log")
    elif obj["kind"] == "Service":
        spec.setdefault("clusterIP", "10.96.0.42")
        spec.setdefault("clusterIPs", ["10.96.0.42"])
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports", []):
            port.setdefault("protocol", "TCP")
    elif obj["kind"] == "HorizontalPodAutoscaler":
        obj.setdefault("status", {"currentReplicas": 0, "desiredReplicas": 0})


# --- Reconciler ------------------------------------------------------------------------------------

SPEC: Obj = {"model": {"storageUri": "gs://models/resnet"}, "replicas": 2}
CHILDREN = ["ConfigMap", "Service", "Deployment", "PodDisruptionBudget"]


class Clock:
    def __init__(self) -> None:
        self.ticks = itertools.count()

    def __call__(self) -> str:
        return f"2025-01-01T00:{next(self.ticks):02d}:00Z"


def reconciler(kube: FakeKube, cache: ChildCache | None = None) -> Reconciler:
    return Reconciler(
        kube,
        Settings(),
        cache if cache is not None else ChildCache(),
        lambda: kube.monitoring_crd,
        record_event=kube.record_event,
        now=Clock(),
    )


def applied(kube: FakeKube) -> list[str]:
    return [kind for verb, kind, _ in kube.calls if verb == "apply"]


def ready(kube: FakeKube) -> tuple[str, str]:
    cond = next(c for c in kube.body()["status"]["conditions"] if c["type"] == "Ready")
    return cond["status"], cond["reason"]


def test_first_reconcile_applies_children_in_order_and_writes_status() -> None:
    kube = FakeKube()
    r = reconciler(kube)
    outcome = r.reconcile(kube.create_md(SPEC))
    # No poll: the Deployment controller's first status update arrives as a watch event.
    assert outcome == Outcome("progressing", Reason.ROLLING_OUT, requeue_after=None)
    # A ModelDeployment without any status yet has no children of its own: no reads before the
    # applies, nothing to delete, and no pods of a Deployment its controller has not even seen.
    assert kube.calls == [
        ("apply", "ConfigMap", "resnet-tfserving"),
        ("apply", "Service", "resnet"),
        ("apply", "Deployment", "resnet"),
        ("apply", "PodDisruptionBudget", "resnet"),
        ("patch_status", "ModelDeployment", "resnet"),
    ]
    dep = kube.live("Deployment")
    assert dep["metadata"]["ownerReferences"][0]["uid"] == UID
    assert dep["metadata"]["annotations"][APPLIED_HASH_ANNOTATION]
    assert ready(kube) == ("False", Reason.ROLLING_OUT)
    assert kube.body()["status"]["observedGeneration"] == 1
    assert kube.events == []  # a new object starting up is no news


def test_nothing_is_written_when_live_children_match() -> None:
    kube = FakeKube()
    cache = ChildCache()
    r = reconciler(kube, cache)
    r.reconcile(kube.create_md(SPEC))
    cache.put(kube.roll_out())  # the watch event of the Deployment controller's update
    assert r.reconcile(kube.body()) == Outcome("ready", Reason.READY)
    assert ready(kube) == ("True", Reason.READY)

    # Warm cache: not even a read.
    kube.reset()
    assert r.reconcile(kube.body()) == Outcome("ready", Reason.READY)
    assert kube.calls == []

    # A restarted operator (empty cache, nothing remembered): one read per child, no write.
    kube.reset()
    assert reconciler(kube).reconcile(kube.body()) == Outcome("ready", Reason.READY)
    assert kube.writes() == []
    # Every child kind but KEDA's (its CRD is not installed in this fake cluster) and the activator
    # route (only autoscaled models have one).
    skipped = ("ScaledObject", "EndpointSlice")
    assert sorted(kind for _, kind, _ in kube.calls) == sorted(
        k.kind for k in CHILD_KINDS if k.kind not in skipped
    )
    assert {verb for verb, _, _ in kube.calls} == {"get"}


def test_a_changed_spec_applies_only_the_children_that_differ() -> None:
    kube = FakeKube()
    cache = ChildCache()
    r = reconciler(kube, cache)
    r.reconcile(kube.create_md(SPEC))
    cache.put(kube.roll_out())
    r.reconcile(kube.body())
    kube.reset()
    r.reconcile(kube.update_spec({**SPEC, "replicas": 3}))
    assert applied(kube) == ["Deployment"]
    assert kube.live("Deployment")["spec"]["replicas"] == 3
    assert kube.live("Deployment")["metadata"]["generation"] == 2


def test_a_removed_key_is_applied_although_live_is_still_a_superset() -> None:
    kube = FakeKube()
    cache = ChildCache()
    r = reconciler(kube, cache)
    pinned = {**SPEC, "scheduling": {"nodeSelector": {"pool": "inference"}}}
    r.reconcile(kube.create_md(pinned))
    assert kube.live("Deployment")["spec"]["template"]["spec"]["nodeSelector"] == {"pool": "inference"}
    kube.reset()
    r.reconcile(kube.update_spec(SPEC))
    assert applied(kube) == ["Deployment"]


def test_a_foreign_write_to_an_owned_field_is_undone() -> None:
    kube = FakeKube()
    cache = ChildCache()
    r = reconciler(kube, cache)
    r.reconcile(kube.create_md(SPEC))
    cache.put(kube.roll_out())
    r.reconcile(kube.body())

    def set_image(dep: Obj) -> None:
        dep["spec"]["template"]["spec"]["containers"][0]["image"] = "docker.io/someone/else:latest"

    cache.put(kube.mutate("Deployment", set_image))  # kubectl set image; hash annotation unchanged
    kube.reset()
    r.reconcile(kube.body())
    assert applied(kube) == ["Deployment"]
    image = kube.live("Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == Settings().cpu_image

    # A foreign field we do not own (an annotation another tool adds) is left alone.
    def annotate(svc: Obj) -> None:
        svc["metadata"]["annotations"]["example.com/owner"] = "team-a"

    cache.put(kube.mutate("Service", annotate))
    kube.reset()
    r.reconcile(kube.body())
    assert applied(kube) == []


def test_a_child_no_longer_desired_is_deleted_when_we_control_it() -> None:
    kube = FakeKube()
    cache = ChildCache()
    r = reconciler(kube, cache)
    autoscaled = {"model": SPEC["model"], "autoscaling": {"minReplicas": 2, "maxReplicas": 4}}
    r.reconcile(kube.create_md(autoscaled))
    hpa_uid = kube.live("HorizontalPodAutoscaler")["metadata"]["uid"]
    kube.reset()
    r.reconcile(kube.update_spec(SPEC))
    assert ("delete", "HorizontalPodAutoscaler", "resnet") in kube.calls
    assert ("HorizontalPodAutoscaler", "ml", "resnet") not in kube.objects
    record = r.records.get(("ml", "resnet"))
    assert record is not None and "HorizontalPodAutoscaler/resnet" in record.absent
    assert cache.get("HorizontalPodAutoscaler", "ml", "resnet") is None
    assert hpa_uid.startswith("child-")
    # Known absent: the next reconcile neither reads nor deletes it again.
    kube.reset()
    r.reconcile(kube.body())
    assert not [c for c in kube.calls if c[1] == "HorizontalPodAutoscaler"]


@pytest.mark.parametrize(
    "owners",
    [
        [],
        [{"apiVersion": "modelserve.dev/v1alpha1", "kind": "ModelDeployment", "name": "resnet",
          "uid": "someone-else", "controller": True}],
        [{"apiVersion": "modelserve.dev/v1alpha1", "kind": "ModelDeployment", "name": "resnet",
          "uid": UID, "controller": False}],
    ],
    ids=["no-owner", "other-controller", "not-controller"],
)  # fmt: skip
def test_a_child_we_do_not_control_is_never_deleted(owners: list[Obj]) -> None:
    kube = FakeKube()
    r = reconciler(kube)
    r.reconcile(kube.create_md(SPEC))
    foreign = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "resnet", "namespace": "ml", "ownerReferences": owners},
        "spec": {"minReplicas": 1, "maxReplicas": 3},
    }
    kube.put(foreign)
    kube.reset()
    reconciler(kube).reconcile(kube.body())  # a restarted operator: nothing cached, so it reads
    assert ("get", "HorizontalPodAutoscaler", "resnet") in kube.calls
    assert not [c for c in kube.calls if c[0] == "delete"]
    assert ("HorizontalPodAutoscaler", "ml", "resnet") in kube.objects


def test_a_refused_child_is_an_invalid_spec_without_requeue() -> None:
    kube = FakeKube()
    message = 'Deployment.apps "resnet" is invalid: spec.template.spec.priorityClassName: Not found'
    kube.refuse["Deployment"] = message
    # Autoscaled and monitored: the HPA and the ServiceMonitor would come after the Deployment.
    spec = {
        "model": SPEC["model"],
        "autoscaling": {"minReplicas": 2, "maxReplicas": 4},
        "monitoring": {"enabled": True},
    }
    outcome = reconciler(kube).reconcile(kube.create_md(spec))
    assert outcome == Outcome("invalid", Reason.INVALID_SPEC, requeue_after=None)
    assert applied(kube) == ["ConfigMap", "Service", "Deployment"]  # nothing after the refusal
    assert not [c for c in kube.calls if c[1] in ("HorizontalPodAutoscaler", "ServiceMonitor", "Pod")]
    status = kube.body()["status"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == ("False", Reason.INVALID_SPEC)
    assert conditions["Ready"]["message"] == f"Deployment resnet was refused (422 Invalid): {message}"
    assert conditions["DeploymentReady"]["status"] == "Unknown"
    assert status["observedGeneration"] == 1
    assert kube.events == [
        ("Warning", Reason.INVALID_SPEC, f"Deployment resnet was refused (422 Invalid): {message}")
    ]


def test_an_unparseable_body_is_an_invalid_spec() -> None:
    kube = FakeKube()
    body = kube.create_md({"model": {"storageUri": "ftp://models/resnet"}, "replicas": 2}, generation=4)
    outcome = reconciler(kube).reconcile(body)
    assert outcome == Outcome("invalid", Reason.INVALID_SPEC)
    assert applied(kube) == []
    status = kube.body()["status"]
    assert status["observedGeneration"] == 4
    (cond,) = status["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == ("Ready", "False", Reason.INVALID_SPEC)
    assert cond["message"].startswith("spec.model.storageUri: String should match pattern")
    assert [(t, r) for t, r, _ in kube.events] == [("Warning", Reason.INVALID_SPEC)]
    # The same body again writes nothing more.
    kube.reset()
    reconciler(kube).reconcile(kube.body())
    assert kube.writes() == []


def test_status_is_not_rewritten_when_unchanged_and_events_follow_ready_transitions() -> None:
    kube = FakeKube()
    cache = ChildCache()
    r = reconciler(kube, cache)
    r.reconcile(kube.create_md(SPEC))
    assert kube.events == []  # Ready False, RollingOut: a new object starting up is no news

    kube.reset()
    r.reconcile(kube.body())  # nothing changed
    assert kube.writes() == []

    kube.reset()
    cache.put(kube.roll_out(ready=1))  # still rolling out, but the message changes
    r.reconcile(kube.body())
    assert [c[0] for c in kube.writes()] == ["patch_status"]
    assert kube.events == []

    kube.reset()
    cache.put(kube.roll_out())
    assert r.reconcile(kube.body()) == Outcome("ready", Reason.READY)
    assert kube.events == [("Normal", Reason.READY, "every replica serves the model")]

    kube.reset()
    r.reconcile(kube.body())
    assert kube.writes() == []

    # Suspend: a Normal event, and the operator counts it as done.
    kube.reset()
    outcome = r.reconcile(kube.update_spec({**SPEC, "suspend": True}))
    assert applied(kube) == ["Deployment"]
    assert kube.live("Deployment")["spec"]["replicas"] == 0
    assert outcome.result == "ready"
    assert [(t, reason) for t, reason, _ in kube.events] == [("Normal", Reason.SUSPENDED)]


def test_a_stale_body_older_than_our_status_write_causes_no_second_write() -> None:
    kube = FakeKube()
    r = reconciler(kube)
    stale = kube.create_md(SPEC)  # no status: delivered before our write came back
    r.reconcile(stale)
    assert [c[0] for c in kube.writes()] == ["apply"] * len(CHILDREN) + ["patch_status"]
    kube.reset()
    r.reconcile(stale)
    assert kube.writes() == []  # status compared with our own last write, not the stale body
    # Once forgotten (the ModelDeployment was deleted and recreated), the body is all there is.
    r.records.forget(("ml", "resnet"))
    kube.reset()
    r.reconcile(stale)
    assert [c[0] for c in kube.writes()] == ["patch_status"]


def test_our_written_status_is_let_go_once_the_watch_delivers_it() -> None:
    kube = FakeKube()
    r = reconciler(kube)
    stale = kube.create_md(SPEC)
    r.reconcile(stale)
    record = r.records.get(("ml", "resnet"))
    assert record is not None and record.written is not None
    delivered = kube.body()  # the watch brings our write back: same resourceVersion, our status
    kube.reset()
    r.reconcile(delivered)
    assert record.written is None  # the body is current now; no copy of the status is kept
    assert kube.writes() == []
    # (The controller never hands back an older body after a newer one: it keeps the newest.)


def test_status_write_of_a_deleted_model_deployment_is_ignored_other_errors_propagate() -> None:
    kube = FakeKube()
    kube.fail_status = KubeError(404, "NotFound", 'modeldeployments "resnet" not found')
    body = kube.create_md(SPEC)
    assert reconciler(kube).reconcile(body).result == "progressing"
    assert kube.events == []
    kube.fail_status = Transient(409, "Conflict", "the object has been modified")
    with pytest.raises(Transient):
        reconciler(kube).reconcile(body)


def test_transient_apply_errors_propagate_for_a_quiet_retry_then_are_reported() -> None:
    class Throttled(FakeKube):
        throttled = True

        def apply(
            self, manifest: Obj, *, field_manager: str = naming.FIELD_MANAGER, dry_run: bool = False
        ) -> Obj:
            if self.throttled:
                self.calls.append(("apply", manifest["kind"], manifest["metadata"]["name"]))
                raise Transient(429, "TooManyRequests", "slow down")
            return super().apply(manifest, field_manager=field_manager, dry_run=dry_run)

    kube = Throttled()
    r = reconciler(kube)
    body = kube.create_md(SPEC)
    for _ in range(2):  # one blip is no news: the controller retries, nothing is written
        with pytest.raises(Transient):
            r.reconcile(body)
    assert "status" not in kube.body()
    assert r.reconcile(body) == Outcome("error", Reason.APPLY_FAILED, requeue_after=2.0)
    ready = {c["type"]: c for c in kube.body()["status"]["conditions"]}["Ready"]
    assert ready["reason"] == Reason.APPLY_FAILED
    assert ready["message"] == "ConfigMap resnet-tfserving was refused (429 TooManyRequests): slow down"
    assert kube.events == [("Warning", Reason.APPLY_FAILED, ready["message"])]
    kube.throttled = False
    assert r.reconcile(kube.body()).result == "progressing"  # recovered: the failure is cleared
    record = r.records.get(("ml", "resnet"))
    assert record is not None and record.transient_apply_failures == 0
    ready = {c["type"]: c for c in kube.body()["status"]["conditions"]}["Ready"]
    assert ready["reason"] == Reason.CREATING or ready["reason"] == Reason.ROLLING_OUT


def test_a_quota_refusal_is_reported_at_once_and_retried_with_a_backoff() -> None:
    class Quota(FakeKube):
        def apply(
            self, manifest: Obj, *, field_manager: str = naming.FIELD_MANAGER, dry_run: bool = False
        ) -> Obj:
            if manifest["kind"] == "Service":
                raise KubeError(403, "Forbidden", 'services "resnet" is forbidden: exceeded quota: q')
            return super().apply(manifest, field_manager=field_manager, dry_run=dry_run)

    kube = Quota()
    outcome = reconciler(kube).reconcile(kube.create_md(SPEC))
    assert outcome == Outcome("error", Reason.QUOTA_EXCEEDED, requeue_after=2.0)
    ready = {c["type"]: c for c in kube.body()["status"]["conditions"]}["Ready"]
    assert ready["message"] == (
        'Service resnet was refused (403 Forbidden): services "resnet" is forbidden: exceeded quota: q'
    )
    assert [(t, r) for t, r, _ in kube.events] == [("Warning", Reason.QUOTA_EXCEEDED)]


def test_service_monitor_waits_for_its_crd() -> None:
    kube = FakeKube(monitoring_crd=False)
    cache = ChildCache()
    r = reconciler(kube, cache)
    monitored = {**SPEC, "monitoring": {"enabled": True}}
    r.reconcile(kube.create_md(monitored))
    assert not [c for c in kube.calls if c[1] == "ServiceMonitor"]
    cache.put(kube.roll_out())
    r.reconcile(kube.body())
    conditions = {c["type"]: (c["status"], c["reason"]) for c in kube.body()["status"]["conditions"]}
    assert conditions["MonitoringReady"] == ("False", Reason.CRD_NOT_INSTALLED)
    assert conditions["Ready"] == ("True", Reason.READY)

    kube.monitoring_crd = True
    kube.reset()
    r.reconcile(kube.body())
    assert applied(kube) == ["ServiceMonitor"]
    assert ready(kube) == ("True", Reason.READY)
    conditions = {c["type"]: (c["status"], c["reason"]) for c in kube.body()["status"]["conditions"]}
    assert conditions["MonitoringReady"] == ("True", Reason.CREATED)


def test_pods_are_listed_only_while_an_observed_rollout_is_unfinished() -> None:
    kube = FakeKube()
    cache = ChildCache()
    r = reconciler(kube, cache)
    r.reconcile(kube.create_md({**SPEC, "gpu": {"count": 1}}))
    kube.put(
        {
            "kind": "Pod",
            "metadata": {
                "name": "resnet-6b7c-abcde",
                "namespace": "ml",
                "labels": {naming.SELECTOR_LABEL: "resnet"},
            },
            "status": {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
                    }
                ],
            },
        }
    )
    # The Deployment controller has not observed the Deployment yet: its pods cannot tell anything.
    kube.reset()
    r.reconcile(kube.body())
    assert not [c for c in kube.calls if c[0] == "list"]

    cache.put(kube.roll_out(ready=0))  # observed, pods created, none ready
    kube.reset()
    outcome = r.reconcile(kube.body())
    assert ("list", "Pod", "modelserve.dev/deployment=resnet") in kube.calls
    assert outcome == Outcome("progressing", Reason.INSUFFICIENT_GPU, requeue_after=5.0)
    assert [(t, reason) for t, reason, _ in kube.events] == [("Warning", Reason.INSUFFICIENT_GPU)]

    cache.put(kube.roll_out())
    kube.reset()
    r.reconcile(kube.body())
    assert not [c for c in kube.calls if c[0] == "list"]
    assert [(t, reason) for t, reason, _ in kube.events] == [("Normal", Reason.READY)]


def _deployment_writes(kube: FakeKube) -> list[tuple[str, str, str]]:
    return [c for c in kube.calls if c[1:] == ("Deployment", "resnet") and c[0] in ("seed", "get", "apply")]


AUTO: Obj = {
    "model": {"storageUri": "gs://models/resnet"},
    "autoscaling": {"minReplicas": 3, "maxReplicas": 6},
}
CHANGED: Obj = {**AUTO, "serving": {"env": [{"name": "A", "value": "1"}]}}


def test_autoscaled_deployment_is_created_at_min_and_the_count_is_handed_over_before_an_apply() -> None:
    kube = FakeKube()
    cache = ChildCache()
    reconciler(kube, cache).reconcile(kube.create_md(AUTO))
    assert kube.live("Deployment")["spec"]["replicas"] == 3
    assert ("seed", "Deployment", "resnet") not in kube.calls  # one write at creation
    # Nothing scaled it yet: our creating apply owns the count, and an apply without it would drop
    # it (the Deployment would fall back to 1). The claim hands it over first.
    kube.calls.clear()
    reconciler(kube, cache).reconcile(kube.update_spec(CHANGED))
    assert _deployment_writes(kube) == [("seed", "Deployment", "resnet"), ("apply", "Deployment", "resnet")]
    assert kube.live("Deployment")["spec"]["replicas"] == 3
    # From then on our applies do not own it: the next spec change claims nothing.
    kube.calls.clear()
    reconciler(kube, cache).reconcile(
        kube.update_spec({**AUTO, "serving": {"env": [{"name": "A", "value": "2"}]}})
    )
    assert _deployment_writes(kube) == [("apply", "Deployment", "resnet")]
    assert kube.live("Deployment")["spec"]["replicas"] == 3


def test_once_the_autoscaler_owns_the_count_the_operator_never_writes_it() -> None:
    kube = FakeKube()
    cache = ChildCache()
    reconciler(kube, cache).reconcile(kube.create_md(AUTO))
    cache.put(kube.scale(5))  # the HPA controller scales up: spec.replicas is its own now
    kube.calls.clear()
    reconciler(kube, cache).reconcile(kube.update_spec(CHANGED))
    assert _deployment_writes(kube) == [("apply", "Deployment", "resnet")], "no claim: not ours"
    live = kube.live("Deployment")
    assert live["spec"]["replicas"] == 5
    assert _replica_owners(live) == [("kube-controller-manager", "Update")]


def test_the_count_is_never_claimed_over_a_scale_the_cache_has_not_seen_yet() -> None:
    kube = FakeKube()
    cache = ChildCache()
    reconciler(kube, cache).reconcile(kube.create_md(AUTO))
    # The autoscaler scales to 6; its watch event has not reached the operator's cache yet, which
    # still says our creating apply owns the count at 3.
    kube.scale(6)
    kube.calls.clear()
    reconciler(kube, cache).reconcile(kube.update_spec(CHANGED))
    # The claim at the stale count is refused (409); read again, the count is the autoscaler's:
    # nothing to claim, and the apply leaves it alone.
    assert _deployment_writes(kube) == [
        ("seed", "Deployment", "resnet"),
        ("get", "Deployment", "resnet"),
        ("apply", "Deployment", "resnet"),
    ]
    assert kube.live("Deployment")["spec"]["replicas"] == 6, "the autoscaler's count survived"


def test_a_refused_pass_through_struct_is_found_by_dry_run_before_anything_is_applied() -> None:
    kube = FakeKube()
    message = (
        'HorizontalPodAutoscaler.autoscaling "resnet" is invalid: spec.metrics[0].type: Unsupported value'
    )
    kube.refuse["HorizontalPodAutoscaler"] = message
    spec = {"model": SPEC["model"], "autoscaling": {"maxReplicas": 4, "metrics": [{"type": "Bogus"}]}}
    outcome = reconciler(kube).reconcile(kube.create_md(spec))
    assert outcome == Outcome("invalid", Reason.INVALID_SPEC, requeue_after=None)
    assert applied(kube) == []  # no Deployment runs without its autoscaler
    assert ("dry-run", "HorizontalPodAutoscaler", "resnet") in kube.calls
    ready = {c["type"]: c for c in kube.body()["status"]["conditions"]}["Ready"]
    assert ready["message"] == f"HorizontalPodAutoscaler resnet was refused (422 Invalid): {message}"
    # Without pass-through structs nothing is dry-run: no extra requests for ordinary specs.
    plain = FakeKube()
    reconciler(plain).reconcile(plain.create_md(SPEC))
    assert not [c for c in plain.calls if c[0] == "dry-run"]


def test_a_namespace_being_deleted_stops_the_reconciles_of_its_model_deployments() -> None:
    kube = FakeKube()
    cache = ChildCache()
    r = reconciler(kube, cache)
    r.reconcile(kube.create_md(SPEC))
    kube.terminating = True
    for kind, namespace, name in [k for k in kube.objects if k[0] != "ModelDeployment"]:
        del kube.objects[(kind, namespace, name)]  # the namespace controller deletes the children
        cache.forget(kind, namespace, name)
    kube.calls.clear()
    assert r.reconcile(kube.body()) == Outcome("skipped", "NamespaceTerminating")
    assert len([c for c in kube.calls if c[0] == "apply"]) == 1
    kube.calls.clear()
    assert r.reconcile(kube.body()) == Outcome("skipped", "NamespaceTerminating")
    assert kube.calls == []  # no request at all afterwards


def test_a_model_deployment_being_deleted_is_not_reconciled() -> None:
    kube = FakeKube()
    body = kube.create_md(SPEC)
    body["metadata"]["deletionTimestamp"] = "2025-01-01T00:01:00Z"
    assert reconciler(kube).reconcile(body) == Outcome("skipped", "Deleting")
    assert kube.calls == []


def test_a_typed_patch_error_is_an_invalid_spec_at_once() -> None:
    # Server-side apply answers an unknown field inside a pass-through struct with a 500.
    class Typed(FakeKube):
        def apply(
            self, manifest: Obj, *, field_manager: str = naming.FIELD_MANAGER, dry_run: bool = False
        ) -> Obj:
            if manifest["kind"] == "Deployment":
                message = "failed to create typed patch object: .spec.template.spec.affinity.x: not declared"
                raise Invalid(500, "InternalError", message)
            return super().apply(manifest, field_manager=field_manager, dry_run=dry_run)

    kube = Typed()
    spec = {**SPEC, "scheduling": {"affinity": {"x": True}}}
    outcome = reconciler(kube).reconcile(kube.create_md(spec))
    assert (outcome.result, outcome.reason) == ("invalid", Reason.INVALID_SPEC)
    assert applied(kube) == []  # found by the dry run: nothing of the spec was applied


def test_a_write_refused_by_the_lease_fence_is_not_an_apply_failure() -> None:
    from modelserve.kube import NotLeader

    class Fenced(FakeKube):
        def apply(
            self, manifest: Obj, *, field_manager: str = naming.FIELD_MANAGER, dry_run: bool = False
        ) -> Obj:
            raise NotLeader("apply configmaps refused: this replica does not hold the leader lease")

    kube = Fenced()
    r = reconciler(kube)
    body = kube.create_md(SPEC)
    for _ in range(5):  # never counted toward ApplyFailed, never reported
        with pytest.raises(NotLeader):
            r.reconcile(body)
    record = r.records.get(("ml", "resnet"))
    assert record is not None and record.transient_apply_failures == 0
    assert "status" not in kube.body()
