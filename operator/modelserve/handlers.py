"""kopf registrations only: watches feed the controller; nothing here decides anything.

Run with `modelserve run` (or `kopf run -m modelserve.handlers`). Settings come from MODELSERVE_*
environment variables (see settings.py), which `modelserve run` sets from its flags.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from typing import Any, Final

import kopf

from modelserve import api, builders, health, leader, metrics, naming
from modelserve import settings as settings_module
from modelserve.controller import Controller
from modelserve.kube import Kube, load_api_client

log = logging.getLogger(__name__)

# Event handlers are async on purpose: they only update memory and enqueue, so they must never
# wait behind reconciles in a thread pool.
MANAGED: dict[str, str] = {naming.MANAGED_BY_LABEL: naming.MANAGED_BY}
SERVICE_MONITOR_CRD = "servicemonitors.monitoring.coreos.com"
SCALED_OBJECT_CRD = "scaledobjects.keda.sh"
MANAGED_SELECTOR = f"{naming.MANAGED_BY_LABEL}={naming.MANAGED_BY}"
WATCH_RETRY_CAP: Final = 10.0
LIST_CHUNK_SIZE: Final = 250
WORKER_IDLE_SECONDS: Final = 0.5
# Watched child kinds: (group, version, plural) of every entry of the one table in builders.
# One watch per resource, though a kind may appear twice in the table (two Deployments).
CHILD_RESOURCES: Final = tuple(dict.fromkeys((k.group, k.version, k.plural) for k in builders.CHILD_KINDS))
# The EndpointSlice controller copies a Service's labels onto its slices; only the activator slices
# the operator itself manages are watched.
SELECTOR_OVERRIDES: Final = {
    ("discovery.k8s.io", "v1", "endpointslices"): "endpointslice.kubernetes.io/managed-by=modelserve-operator"
}
# The shared cache's sync pods, and no other pod: a sync container that keeps exiting (the store
# unreachable, a fetch failing) changes no Deployment's status, so only its pod's events bring the
# model's reconcile at once instead of at the next poll. One pod per cached model: a cheap watch.
SYNC_POD_RESOURCE: Final = ("", "v1", "pods")
SYNC_POD_SELECTOR: Final = naming.MODEL_SYNC_LABEL


class EndlessBackoffs:
    """Retry delays that never run out, fresh on every request.

    kopf 1.45 restarts a watch by itself after connection errors (the reliability tests survive a
    90 s API server or etcd outage without this), but a LIST or WATCH still answered with a 5xx or
    403 once its retries are spent (about 54 s with kopf's defaults) ends the watcher task, and
    nothing starts it again: the operator would stay blind to that resource. kopf's only own requests
    are its lists and watches (we post no kopf events), so retrying them forever is safe.
    """

    def __iter__(self) -> Iterator[float]:
        return itertools.chain((1.0, 1.0, 2.0, 3.0, 5.0), itertools.repeat(WATCH_RETRY_CAP))


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff bases: we register only event handlers, which never read them.

    kopf builds one for every event of every watched object by deep-copying the whole body
    (managedFields and status included) to diff it against the last one; the py-spy profile of a
    burst of 1,000 ModelDeployments put 18% of the operator's CPU in that copy. Nothing is stored,
    so no annotation is ever written either."""

    def build(self, *, body: kopf.Body, extra_fields: object = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    ours = settings_module.from_env()
    # Handler failures are ours to report (status + Events); keep kopf from posting its own.
    settings.posting.enabled = False
    # A watch that stops delivering is reconnected after this long without any event.
    settings.watching.inactivity_timeout = 300
    settings.watching.server_timeout = 600
    settings.networking.error_backoffs = EndlessBackoffs()
    settings.persistence.diffbase_storage = NoDiffBase()
    # Start-up memory: the initial LISTs come in pages, and only our children are listed and
    # watched at all (the label filter on the handlers below is client-side only).
    settings.watching.chunk_size = LIST_CHUNK_SIZE
    # kopf keeps a task per object alive this long after its last event, holding that event's whole
    # body; our handlers return at once, so a short idle time keeps a start-up flood of thousands
    # of objects from being held in memory all at once.
    settings.queueing.idle_timeout = WORKER_IDLE_SECONDS
    for group, version, plural in CHILD_RESOURCES:
        selector = SELECTOR_OVERRIDES.get((group, version, plural), MANAGED_SELECTOR)
        settings.watching.label_selectors[group, version, plural] = selector
    settings.watching.label_selectors[SYNC_POD_RESOURCE] = SYNC_POD_SELECTOR
    me = leader.identity(ours)
    kube = Kube(
        load_api_client(pool_size=ours.workers * 2, identity=me),
        on_request=metrics.count_request,
        on_refused=metrics.count_refused,
        on_late=metrics.count_late,
    )
    controller = Controller(kube, ours, identity=me)
    await controller.discover()
    controller.start()
    metrics.serve(ours.metrics_port, str(ours.metrics_address))
    health.serve(ours.health_port, controller.liveness_problem, lambda: controller.role)
    memo["controller"] = controller
    log.info(
        "modelserve-operator started as %s: namespaces=%s resync=%ss workers=%d leader-election=%s",
        me,
        ",".join(ours.namespaces) or "all",
        ours.resync_seconds,
        ours.workers,
        f"{leader.lease_namespace(ours)}/{ours.lease_name}" if ours.leader_election else "off",
    )


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    controller: Controller | None = memo.get("controller")
    if controller is not None:
        await controller.stop()


@kopf.on.event(api.GROUP, api.VERSION, api.PLURAL)
async def model_deployment_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo["controller"].on_model_deployment(event.get("type"), dict(event["object"]))


async def _child_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo["controller"].on_child(event.get("type"), dict(event["object"]))


for _group, _version, _plural in CHILD_RESOURCES:
    kopf.on.event(_group, _version, _plural, labels=MANAGED, id=f"child-{_plural}")(_child_event)


@kopf.on.event(*SYNC_POD_RESOURCE, labels={naming.MODEL_SYNC_LABEL: kopf.PRESENT}, id="sync-pods")
async def sync_pod_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo["controller"].on_sync_pod(dict(event["object"]))


def _is_service_monitor_crd(name: str | None, **_: Any) -> bool:
    return name == SERVICE_MONITOR_CRD


@kopf.on.event("apiextensions.k8s.io", "v1", "customresourcedefinitions", when=_is_service_monitor_crd)
async def service_monitor_crd_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    body = event["object"]
    established = any(
        c.get("type") == "Established" and c.get("status") == "True"
        for c in (body.get("status") or {}).get("conditions") or []
    )
    memo["controller"].on_monitoring_crd(event.get("type") != "DELETED" and established)


def _is_scaled_object_crd(name: str | None, **_: Any) -> bool:
    return name == SCALED_OBJECT_CRD


@kopf.on.event("apiextensions.k8s.io", "v1", "customresourcedefinitions", when=_is_scaled_object_crd)
async def scaled_object_crd_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo["controller"].on_keda_crd(event.get("type") != "DELETED" and _established(event["object"]))


def _established(body: Any) -> bool:
    return any(
        c.get("type") == "Established" and c.get("status") == "True"
        for c in (body.get("status") or {}).get("conditions") or []
    )
