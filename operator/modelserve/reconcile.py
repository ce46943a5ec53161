"""One reconcile: build the desired children, apply what differs, observe, write status if changed.

Runs in a worker thread (the Kubernetes client blocks). The work queue guarantees one reconcile per
ModelDeployment at a time. Writes happen only when something differs: a child is applied when its
desired manifest changed (hash annotation) or a foreign writer changed a field we own; status is
patched only when the computed status differs from the stored one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import pydantic

from modelserve import api, builders, failures, logs, naming, status, sync_health
from modelserve.builders import activator_route, keda, passthrough
from modelserve.childcache import ChildCache, is_subset, with_hash
from modelserve.kube import Invalid, Kube, KubeError, NamespaceTerminating, NotFound, NotLeader, Transient
from modelserve.live_state import (
    controlled_by,
    generation_observed,
    ready_replicas,
    rolled_out,
    stuck_before_start,
)
from modelserve.records import Key, Record, Records, absent_key
from modelserve.replica_handover import hold_replicas
from modelserve.rollout.children import CANARY_ROLE, absent_rollout_children
from modelserve.rollout.driver import RolloutDriver, Run
from modelserve.settings import Settings
from modelserve.status_writer import RecordEvent, StatusWriter

log = logging.getLogger(__name__)

NAMESPACE_TERMINATING: Final = "NamespaceTerminating"
DELETING: Final = "Deleting"

# First delay before re-applying a child the API server refused (the controller doubles it up to 60 s).
APPLY_RETRY_SECONDS: Final = 2.0



@dataclass(frozen=True)
class Outcome:
    """What the queue should do next with this key."""

    result: str  # ready | progressing | invalid | error | skipped (being deleted)
    reason: str
    requeue_after: float | None = None
    # False: poll at requeue_after without backing off (a rollout's clock, not trouble).
    backoff: bool = True


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Reconciler:
    def __init__(
        self,
        kube: Kube,
        settings: Settings,
        cache: ChildCache,
        monitoring_crd_installed: Callable[[], bool],
        *,
        record_event: RecordEvent,
        now: Callable[[], str] = _now,
        records: Records | None = None,
        keda_installed: Callable[[], bool] = lambda: False,
        sync_health: Callable[[Key], sync_health.Reading] | None = None,
    ) -> None:
        self.sync_health = sync_health
        self.keda_installed = keda_installed
        self.kube = kube
        self.statuses = StatusWriter(kube, record_event)
        self.settings = settings
        self.cache = cache
        self.monitoring_crd_installed = monitoring_crd_installed
        self.now = now
        # The controller's records (status we wrote, children known absent); its own when alone.
        self.records = records if records is not None else Records()
        self.rollouts = RolloutDriver(kube, settings)

    def _live(self, md: api.ModelDeployment, kind: str, name: str, record: Record) -> dict[str, Any] | None:
        """A child as last seen; read when neither the cache nor the record knows it (start-up)."""
        live = self.cache.get(kind, md.namespace, name)
        key = absent_key(kind, name)
        if live is None and key not in record.absent:
            live = self.kube.get(kind, md.namespace, name)
            if live is None:
                record.absent.add(key)
            else:
                self.cache.put(live)
        return live

    def _children(
        self, md: api.ModelDeployment, body: dict[str, Any], record: Record
    ) -> tuple[list[builders.Child], Run | None]:
        """The children to converge; with spec.rollout they follow the rollout's plan (rollout/)."""
        previous = self.statuses.current(body, record)
        if md.spec.rollout is not None:
            run = self.rollouts.prepare(
                md, dict(previous.get("rollout") or {}), lambda kind, name: self._live(md, kind, name, record)
            )
            return run.children, run
        desired = builders.desired_children(md, self.settings)
        if previous.get("rollout"):
            # spec.rollout was removed: whatever the last rollout left goes, the rest is as always.
            desired += absent_rollout_children(md)
        return desired, None

    def reconcile(self, body: dict[str, Any], record: Record | None = None) -> Outcome:
        """Reconciles `body`; `record` is its entry in the records (looked up, or made, when None)."""
        if record is None:
            meta = body["metadata"]
            record = self.records.ensure((meta["namespace"], meta["name"]))
        # Being deleted (a finalizer holds it, or its namespace is going): children re-created now
        # would only be deleted again, or refused.
        if body["metadata"].get("deletionTimestamp"):
            return Outcome("skipped", DELETING)
        doomed = record.namespace_terminating_uid
        if doomed is not None and doomed == body["metadata"].get("uid"):
            return Outcome("skipped", NAMESPACE_TERMINATING)
        try:
            md = api.parse(body)
        except pydantic.ValidationError as exc:
            # The API server's schema should have refused this; an older CRD can let it through.
            message = "; ".join(
                f"spec.{'.'.join(str(p) for p in err['loc'][1:])}: {err['msg']}" for err in exc.errors()[:5]
            )
            self.statuses.write(
                body, record, status.failure_status(body, status.Reason.INVALID_SPEC, message, self.now())
            )
            return Outcome("invalid", status.Reason.INVALID_SPEC)

        observed: dict[str, dict[str, Any] | None] = {}
        failure: tuple[str, str] | None = None
        # Before our first status write nothing of this ModelDeployment can exist yet (children of a
        # previous object with the same name carry another uid), so skip the reads that would
        # otherwise precede each apply.
        fresh = self.statuses.current(body, record).get("observedGeneration") is None
        monitoring_available = self.monitoring_crd_installed()
        desired, run = self._children(md, body, record)
        children, keda_available, prometheus_configured = self._engine_children(
            md, monitoring_available, desired
        )
        try:
            if passthrough.carries_pass_through(md):
                failure = self._dry_run(md, children, record)
            for child in children if failure is None else ():
                try:
                    observed[child.role] = self._converge(md, child, fresh, record)
                except (NamespaceTerminating, NotFound):
                    raise  # the namespace is going away: nothing to report on
                except KubeError as exc:
                    failure = self._apply_failure(child, exc, record)
                    break
        except NamespaceTerminating as exc:
            # Everything here is about to be deleted; retrying the refused create is only noise.
            record.namespace_terminating_uid = md.uid
            log.info("%s/%s: not reconciled any more: %s", md.namespace, md.name, exc.message)
            return Outcome("skipped", NAMESPACE_TERMINATING)
        if failure is None:
            record.transient_apply_failures = 0

        activator_endpoints = (
            self._activator_route(md, observed.get("Deployment"), fresh, record, keda_available)
            if failure is None
            else None
        )
        deployment, pods = self._serving(md, observed, failure, run)
        model_sync = observed.get(builders.MODEL_SYNC_ROLE)
        sync_pods: tuple[dict[str, Any], ...] = ()
        if failure is None and model_sync is not None and not rolled_out(model_sync):
            # Only a cache not yet (or no longer) complete needs the sync pod: its termination
            # message names what failed.
            sync_pods = tuple(self.kube.list("Pod", md.namespace, naming.model_sync_label_selector(md)))
        obs = status.Observed(
            pod_events=self._mount_failures(md.namespace, pods),
            config_map=observed.get("ConfigMap"),
            service=observed.get("Service"),
            deployment=deployment,
            hpa=observed.get("HorizontalPodAutoscaler") or (run.hpa_stand_in() if run else None),
            service_monitor=observed.get("ServiceMonitor"),
            pods=pods,
            cache_claim=observed.get("PersistentVolumeClaim"),
            model_sync=model_sync,
            sync_pods=sync_pods,
            monitoring_crd_installed=monitoring_available,
            scaled_object=observed.get("ScaledObject"),
            keda_hpa=self.cache.get("HorizontalPodAutoscaler", md.namespace, keda.hpa_name(md))
            if observed.get("ScaledObject")
            else None,
            keda_installed=keda_available,
            prometheus_configured=prometheus_configured,
            activator_endpoints=activator_endpoints,
            sync_health=self.sync_health((md.namespace, md.name)) if self.sync_health else None,
            failure=failure,
        )
        previous = self.statuses.current(body, record)
        new_status = self._with_rollout(run, status.compute_status(md, obs, previous, self.now()), previous)
        self.statuses.write(body, record, new_status, run.plan.events if run is not None else ())

        ready = status.ready_condition(new_status) or {}
        if failure is not None and failure[0] == status.Reason.INVALID_SPEC:
            return Outcome("invalid", failure[0])  # only a spec change helps; it is an event of its own
        if failure is not None:
            # A quota, a policy or the API server refused a child: the fix happens elsewhere, so
            # try again, backing off (2 s, 4 s, ... 60 s) until it passes.
            return Outcome("error", failure[0], requeue_after=APPLY_RETRY_SECONDS)
        if run is not None and run.plan.requeue_after is not None:
            # A rollout moves on time and on Prometheus, neither of which sends us an event.
            return Outcome("progressing", "Rollout", requeue_after=run.plan.requeue_after, backoff=False)
        if ready.get("status") == "True" or md.spec.suspend:
            return Outcome("ready", str(ready.get("reason", "")))
        if deployment is not None and not generation_observed(deployment):
            # The Deployment controller has yet to act; its status update is an event we will see.
            return Outcome("progressing", str(ready.get("reason", "")))
        # Pod-level trouble (scheduling, fetch) does not always change the Deployment, so poll
        # while progressing instead of waiting for the resync.
        return Outcome("progressing", str(ready.get("reason", "")), requeue_after=5.0)

    def _serving(
        self,
        md: api.ModelDeployment,
        observed: dict[str, dict[str, Any] | None],
        failure: tuple[str, str] | None,
        run: Run | None,
    ) -> tuple[dict[str, Any] | None, tuple[dict[str, Any], ...]]:
        """The serving Deployment as the status sees it, and the pods worth reading."""
        deployment = observed.get("Deployment")
        if run is not None:
            # Stable and canary as one; the rollout read the pods of both already.
            run.canary = observed.get(CANARY_ROLE)
            return run.observed_deployment(deployment), run.pods
        if (
            failure is None
            and deployment is not None
            and generation_observed(deployment)
            and not rolled_out(deployment)
        ):
            # Only a rollout in trouble needs the pods (scheduling, image, fetch failures); one the
            # Deployment controller has not even observed yet has no pods worth reading.
            return deployment, tuple(self.kube.list("Pod", md.namespace, naming.label_selector(md)))
        return deployment, ()

    def _with_rollout(self, run: Run | None, new: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
        """status.rollout and its conditions (rollout/driver.py), or its removal with spec.rollout."""
        if run is not None:
            return run.finish(new, previous, self.now())
        if previous.get("rollout"):
            return {**new, "rollout": None}  # a merge patch deletes it: spec.rollout is gone
        return new

    def _apply_failure(self, child: builders.Child, exc: KubeError, record: Record) -> tuple[str, str]:
        """The reason and message for a refused child; transient refusals are raised (retried
        quietly by the controller) until they happened QUIET_RETRIES times in a row."""
        if isinstance(exc, NotLeader):
            raise exc  # not the API server's refusal: this replica lost the Lease mid-reconcile
        # kube.Invalid also covers server-side apply's 500 "failed to create typed patch object" (a
        # pass-through struct with a field its schema lacks): the spec is at fault, not the server.
        invalid = isinstance(exc, Invalid)
        if failures.transient(exc.status) and not invalid:
            record.transient_apply_failures += 1
            if record.transient_apply_failures < failures.QUIET_RETRIES:
                raise exc
        reason = failures.apply_reason(exc.status, exc.message)
        if invalid and reason == failures.APPLY_FAILED:
            reason = failures.INVALID_SPEC
        code = f"{exc.status} {exc.reason}".strip() if exc.status else "no answer"
        return reason, f"{child.kind} {child.name} was refused ({code}): {exc.message}"

    def _mount_failures(self, namespace: str, pods: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
        """The kubelet's FailedMount Events, read only when a scheduled pod has not started a single
        container (a missing Secret or ConfigMap volume shows nowhere else)."""
        if not any(stuck_before_start(pod) for pod in pods):
            return ()
        return tuple(
            self.kube.list("Event", namespace, field_selector="involvedObject.kind=Pod,reason=FailedMount")
        )

    def _converge(
        self, md: api.ModelDeployment, child: builders.Child, fresh: bool, record: Record
    ) -> dict[str, Any] | None:
        live = self.cache.get(child.kind, md.namespace, child.name)
        gone = absent_key(child.kind, child.name)
        if child.manifest is None and fresh and live is None:
            record.absent.add(gone)
            return None
        if child.manifest is None:
            if live is None and gone not in record.absent:
                live = self.kube.get(child.kind, md.namespace, child.name)
                if live is None:
                    record.absent.add(gone)
            if live is not None and controlled_by(live, md.uid):
                log.info(
                    "deleting %s %s/%s: no longer desired",
                    child.kind,
                    md.namespace,
                    child.name,
                    extra=logs.about(md.namespace, md.name),
                )
                self.kube.delete(child.kind, md.namespace, child.name, live["metadata"]["uid"])
                self.cache.forget(child.kind, md.namespace, child.name)
                record.absent.add(gone)
            return None
        record.absent.discard(gone)
        desired = with_hash(child.manifest)
        if live is None and not fresh:
            # Not seen through the watch yet (start-up): one read spares a write when nothing changed.
            live = self.kube.get(child.kind, md.namespace, child.name)
            if live is not None:
                self.cache.put(live)
        if live is not None and is_subset(desired, live):
            return live
        if child.kind == "Deployment" and child.role == "Deployment":
            desired = hold_replicas(self.kube, self.cache, md, desired, live)
        applied = self.kube.apply(desired)
        self.cache.put(applied)
        return applied

    def _dry_run(
        self, md: api.ModelDeployment, children: list[builders.Child], record: Record
    ) -> tuple[str, str] | None:
        """The first refusal among the children about to change, found without changing any."""
        for child in children:
            if child.manifest is None:
                continue
            desired = with_hash(child.manifest)
            live = self.cache.get(child.kind, md.namespace, child.name)
            if live is not None and is_subset(desired, live):
                continue
            try:
                self.kube.apply(desired, dry_run=True)
            except (NamespaceTerminating, NotFound):
                raise
            except KubeError as exc:
                return self._apply_failure(child, exc, record)
        return None

    def _engine_children(
        self, md: api.ModelDeployment, monitoring_available: bool, desired: list[builders.Child]
    ) -> tuple[list[builders.Child], bool, bool]:
        """The children to apply: without the ScaledObject (and with the Deployment at its minimum)
        when KEDA cannot scale this model (no CRD, or load targets without Prometheus), without a
        ServiceMonitor whose CRD is missing, and without the activator route (built from live state
        once the Deployment is known)."""
        children = desired
        keda_available = self.keda_installed()
        prometheus_configured = bool(self.settings.prometheus_url)
        autoscaling = md.spec.autoscaling
        if (
            autoscaling is not None
            and autoscaling.uses_keda
            and (not keda_available or (autoscaling.load_targets and not prometheus_configured))
        ):
            children = keda.without_keda(md, children)
        children = [
            child
            for child in children
            if (monitoring_available or child.kind != "ServiceMonitor")
            and (keda_available or child.kind != "ScaledObject")
            and child.role != builders.ACTIVATOR_ROUTE_ROLE
        ]
        return children, keda_available, prometheus_configured

    def _activator_route(
        self,
        md: api.ModelDeployment,
        deployment: dict[str, Any] | None,
        fresh: bool,
        record: Record,
        keda_available: bool,
    ) -> int | None:
        """While a scale-to-zero model has no ready pod its Service routes to the activator; returns
        the activator's ready endpoints then (None when not routed)."""
        if keda_available and activator_route.wants_activator(md, ready_replicas(deployment)):
            return self._route_to_activator(md, fresh, record)
        if md.spec.autoscaling is not None:
            # Only an autoscaled model can have been at zero: others never cost a read here.
            self._converge(md, builders.activator_route_child(md, None), fresh, record)
        return None

    def _route_to_activator(self, md: api.ModelDeployment, fresh: bool, record: Record) -> int:
        """Points the model's Service at the activator's ready pods; returns how many there are."""
        selector = f"{activator_route.SERVICE_NAME_LABEL}={self.settings.activator_service}"
        slices = self.kube.list("EndpointSlice", self.settings.activator_namespace, selector)
        addresses = activator_route.ready_addresses(slices)
        manifest = activator_route.build_activator_slice(md, addresses) if addresses else None
        self._converge(md, builders.activator_route_child(md, manifest), fresh, record)
        return len(addresses)

__all__ = ["Key", "Outcome", "Reconciler", "Transient"]
