"""The watches that feed the activator's registry: ModelDeployments that scale to zero, their
Services (cluster IPs) and their pods (ready addresses). Each runs in a thread of its own (the
Kubernetes client blocks) and hands every change to the asyncio loop."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from modelserve import api, naming
from modelserve.activator.state import WAKE_LABEL, WAKE_NAME_ANNOTATION, WAKE_NAMESPACE_ANNOTATION, Registry

log = logging.getLogger(__name__)

MANAGED: Final = f"{naming.MANAGED_BY_LABEL}={naming.MANAGED_BY}"
WATCH_SECONDS: Final = 300
RETRY_SECONDS: Final = 2.0

Obj = dict[str, Any]


def _condition(obj: Obj, type_: str) -> Obj:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == type_), {})


def status_note(md: Obj) -> str:
    """Why the model does not serve, in the words of its status (for a 503 body)."""
    for type_ in ("DeploymentReady", "Ready"):
        cond = _condition(md, type_)
        if cond.get("status") == "False":
            return f"{cond.get('reason', '')}: {cond.get('message', '')}".strip(": ")
    return ""


def scales_to_zero(md: Obj) -> bool:
    autoscaling = (md.get("spec") or {}).get("autoscaling") or {}
    return bool(autoscaling.get("minReplicas", 1) == 0)


def pod_ip_if_ready(pod: Obj) -> str | None:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    if meta.get("deletionTimestamp") or _condition(pod, "Ready").get("status") != "True":
        return None
    return status.get("podIP") or None


def watch_events(
    list_fn: Callable[..., Any], kwargs: dict[str, Any], version: str
) -> Iterator[tuple[str, Obj]]:
    """One watch request from `version`: (type, object) per event, each line parsed once as JSON.

    Not the client's `Watch.stream`, which also builds a client model (V1Pod ...) of every object:
    on the pod watch that is milliseconds of this process's GIL per event, paid before the handler
    learns that a pod is ready, and nothing here reads those models. An expired version (an ERROR
    event with code 410) is raised as ApiException(410), as `Watch.stream` does with a timeout."""
    response = list_fn(
        **kwargs,
        watch=True,
        resource_version=version,
        timeout_seconds=WATCH_SECONDS,
        _preload_content=False,
    )
    try:
        for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
            if not line:
                continue
            event = json.loads(line)
            obj = event.get("object") or {}
            if event.get("type") == "ERROR":
                raise ApiException(
                    status=obj.get("code"), reason=f"{obj.get('reason')}: {obj.get('message')}"
                )
            yield event.get("type", ""), obj
    finally:
        response.close()
        response.release_conn()


class Watches:
    def __init__(
        self,
        api_client: client.ApiClient,
        registry: Registry,
        loop: asyncio.AbstractEventLoop,
        namespace: str,
    ):
        self.registry = registry
        self.namespace = namespace
        self.coordination = client.CoordinationV1Api(api_client)
        self.loop = loop
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.stop = threading.Event()
        self.synced = threading.Event()
        self._synced: set[str] = set()
        self._threads: list[threading.Thread] = []

    # --- event handlers (run on the loop) --------------------------------------------------------

    def _on_model(self, event: str, md: Obj) -> None:
        meta = md.get("metadata") or {}
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        if event == "DELETED" or not scales_to_zero(md):
            self.registry.remove_model(ns, name)
            return
        model_name = ((md.get("spec") or {}).get("model") or {}).get("name") or name
        self.registry.upsert_model(ns, name, model_name, status_note(md))

    def _on_lease(self, event: str, lease: Obj) -> None:
        annotations = (lease.get("metadata") or {}).get("annotations") or {}
        ns, name = annotations.get(WAKE_NAMESPACE_ANNOTATION), annotations.get(WAKE_NAME_ANNOTATION)
        renewed = (lease.get("spec") or {}).get("renewTime")
        if event == "DELETED" or not ns or not name or not renewed:
            return
        try:
            at = datetime.fromisoformat(renewed.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return
        self.registry.set_wake(ns, name, at)

    def _on_service(self, event: str, svc: Obj) -> None:
        meta = svc.get("metadata") or {}
        ip = None if event == "DELETED" else (svc.get("spec") or {}).get("clusterIP")
        self.registry.set_service_ip(meta.get("namespace", ""), meta.get("name", ""), ip)

    def _on_pod(self, event: str, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        owner = (meta.get("labels") or {}).get(naming.SELECTOR_LABEL)
        if owner:
            ip = None if event == "DELETED" else pod_ip_if_ready(pod)
            self.registry.set_pod(meta.get("namespace", ""), owner, meta.get("name", ""), ip)

    # --- threads ---------------------------------------------------------------------------------

    def start(self) -> None:
        sources: list[tuple[str, Callable[..., Any], dict[str, Any], Callable[[str, Obj], None]]] = [
            (
                "modeldeployments",
                self.custom.list_cluster_custom_object,
                {"group": api.GROUP, "version": api.VERSION, "plural": api.PLURAL},
                self._on_model,
            ),
            (
                "services",
                self.core.list_service_for_all_namespaces,
                {"label_selector": MANAGED},
                self._on_service,
            ),
            ("pods", self.core.list_pod_for_all_namespaces, {"label_selector": MANAGED}, self._on_pod),
            (
                "leases",
                self.coordination.list_namespaced_lease,
                {"namespace": self.namespace, "label_selector": f"{WAKE_LABEL}=true"},
                self._on_lease,
            ),
        ]
        for what, list_fn, kwargs, handler in sources:
            thread = threading.Thread(
                target=self._run, args=(what, list_fn, kwargs, handler), name=f"watch-{what}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _deliver(self, handler: Callable[[str, Obj], None], event: str, obj: Obj) -> None:
        self.loop.call_soon_threadsafe(handler, event, obj)

    def _mark_synced(self, what: str) -> None:
        self._synced.add(what)
        if len(self._synced) == 4:
            self.loop.call_soon_threadsafe(self.synced.set)

    def _run(
        self,
        what: str,
        list_fn: Callable[..., Any],
        kwargs: dict[str, Any],
        handler: Callable[[str, Obj], None],
    ) -> None:
        while not self.stop.is_set():
            try:
                response = list_fn(**kwargs, _preload_content=False)
                listed = json.loads(response.data)
                version = listed["metadata"]["resourceVersion"]
                for item in listed.get("items") or []:
                    self._deliver(handler, "ADDED", item)
                self._mark_synced(what)
                while not self.stop.is_set():
                    for kind, obj in watch_events(list_fn, kwargs, version):
                        version = (obj.get("metadata") or {}).get("resourceVersion", version)
                        if kind in ("ADDED", "MODIFIED", "DELETED"):
                            self._deliver(handler, kind, obj)
                        if self.stop.is_set():
                            break
            except ApiException as exc:
                if exc.status != 410:  # 410 Gone: the version expired, list again
                    log.warning("watch of %s failed: %s %s", what, exc.status, exc.reason)
                    time.sleep(RETRY_SECONDS)
            except Exception as exc:  # the API server restarts, connections drop: list again
                log.warning("watch of %s failed: %r", what, exc)
                time.sleep(RETRY_SECONDS)

    # --- writes ----------------------------------------------------------------------------------

    def request_wake(self, namespace: str, name: str) -> None:
        """Tells every activator replica (and so the one KEDA asks) that this model is wanted: a Lease
        in the activator's own namespace, applied (created or renewed) in one request."""
        lease = f"wake-{namespace}.{name}"[:253]
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": lease,
                "namespace": self.namespace,
                "labels": {WAKE_LABEL: "true"},
                "annotations": {WAKE_NAMESPACE_ANNOTATION: namespace, WAKE_NAME_ANNOTATION: name},
            },
            "spec": {"renewTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")},
        }
        try:
            self.coordination.patch_namespaced_lease(
                lease,
                self.namespace,
                body,
                field_manager="modelserve-activator",
                force=True,
                _content_type="application/apply-patch+yaml",
            )
        except ApiException as exc:
            log.warning("could not record a wake of %s/%s: %s %s", namespace, name, exc.status, exc.reason)
