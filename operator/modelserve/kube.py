"""The only module that talks to the API server.

Thin and synchronous (the official client is blocking; the reconciler runs it in worker threads).
API errors are mapped (kube_errors.py) to the kinds the reconciler acts on: `Invalid` (the spec
produced something the server refuses: permanent until the spec changes), `Transient` (conflicts,
throttling, 5xx, timeouts: retry soon) and everything else, which propagates.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from modelserve import __version__, api, builders, naming
from modelserve.events import PendingEvent
from modelserve.kube_errors import (
    TYPED_PATCH_ERROR,
    Invalid,
    KubeError,
    NamespaceTerminating,
    NotFound,
    NotLeader,
    Transient,
    error_from_answer,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resource:
    api_version: str
    kind: str
    plural: str

    def collection_path(self, namespace: str) -> str:
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        return f"{prefix}/namespaces/{namespace}/{self.plural}"

    def path(self, namespace: str, name: str) -> str:
        return f"{self.collection_path(namespace)}/{name}"


POD: Final = Resource("v1", "Pod", "pods")
LEASE: Final = Resource("coordination.k8s.io/v1", "Lease", "leases")
EVENT: Final = Resource("v1", "Event", "events")
HTTP_ROUTE: Final = Resource("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes")
MODEL_DEPLOYMENT: Final = Resource(api.API_VERSION, api.KIND, api.PLURAL)
# Every child kind comes from the one table in builders; the operator also reads pods (and their
# FailedMount events) and writes status of its ModelDeployments. Leases are for leader election only
# (see leader.py).
RESOURCES: Final = {
    **{k.kind: Resource(k.api_version, k.kind, k.plural) for k in builders.CHILD_KINDS},
    POD.kind: POD,
    EVENT.kind: EVENT,
    HTTP_ROUTE.kind: HTTP_ROUTE,
    MODEL_DEPLOYMENT.kind: MODEL_DEPLOYMENT,
}
MUTATING_VERBS: Final = frozenset({"apply", "create", "update", "patch", "delete"})


# JSON escapes a character beyond the BMP as a surrogate pair (\ud83d\ude00), which the API server's
# YAML decoder of apply patches refuses ("invalid Unicode character escape"); YAML's own 8-digit
# escape says the same. The lookbehind skips an escaped backslash followed by literal "ud83d".
_SURROGATE_PAIR: Final = re.compile(r"(?<!\\)((?:\\\\)*)\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})")


def _astral(match: re.Match[str]) -> str:
    high, low = int(match.group(2), 16), int(match.group(3), 16)
    return f"{match.group(1)}\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08x}"


def apply_body(manifest: dict[str, Any]) -> bytes:
    """A server-side apply body: JSON (which is YAML), with every non-ASCII character escaped in a form
    the YAML decoder accepts, so emoji in an annotation or env value never fail an apply (found by
    the hypothesis tests). DEL is escaped too: YAML forbids it raw."""
    text = json.dumps(manifest, ensure_ascii=True, separators=(",", ":")).replace("\x7f", "\\u007f")
    return _SURROGATE_PAIR.sub(_astral, text).encode("ascii")


def load_api_client(
    kubeconfig: str | None = None, pool_size: int = 16, identity: str = ""
) -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the kubeconfig (KUBECONFIG or the argument)."""
    configuration = client.Configuration()
    try:
        if kubeconfig:
            raise config.ConfigException("kubeconfig given")
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        # The client reads KUBECONFIG once, at import; read it now so a changed environment counts.
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig or os.environ.get("KUBECONFIG"), client_configuration=configuration
        )
    configuration.connection_pool_maxsize = pool_size
    api_client = client.ApiClient(configuration)
    # Named in audit logs and API server metrics, apart from kopf's own watch traffic.
    # The identity tells two replicas apart in the audit log (the fencing test reads it).
    api_client.user_agent = f"modelserve-operator/{__version__}" + (f" ({identity})" if identity else "")
    return api_client


class Kube:
    """Server-side apply, reads, deletes, status patches and events, counted by verb, resource and
    response code."""

    def __init__(
        self,
        api_client: client.ApiClient,
        on_request: Callable[[str, str, str], None] | None = None,
        may_write: Callable[[], bool] | None = None,
        on_refused: Callable[[str, str], None] | None = None,
        on_late: Callable[[str, str], None] | None = None,
    ) -> None:
        self._api = api_client
        self._on_request = on_request
        # The fence: asked right before every write is sent (the lease's own requests excepted).
        # None means always (a single operator without leader election, the tests' fakes).
        self.may_write = may_write
        self._on_refused = on_refused
        # A write that passed the fence but whose answer came after the lease margin ran out: the
        # process was paused (or the request was slow) between the check and the bytes leaving, so it
        # may have reached the server after another replica took over. No client-side check can close
        # that window (client-go's leader election says the same); it is counted and logged instead.
        self._on_late = on_late
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str]] = Counter()

    def _call(
        self,
        verb: str,
        resource: str,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: object = None,
        content_type: str = "application/json",
        fenced: bool = True,
        timeout: float = 30,
    ) -> Any:
        with self._lock:
            self.requests[(verb, resource)] += 1
        code = "<error>"  # no HTTP answer (connection refused, timeout), as client-go labels it
        try:
            response, data = self._send(
                verb,
                resource,
                method,
                path,
                query=query,
                body=body,
                content_type=content_type,
                fenced=fenced,
                timeout=timeout,
            )
            code = str(response.status)
        except ApiException as exc:
            code = str(exc.status or code)
            raise error_from_answer(exc.status, exc.reason, exc.body) from exc
        except NotLeader:
            code = "fenced"  # never sent
            raise
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Transient(0, "ConnectionError", str(exc)) from exc
        finally:
            if self._on_request and code != "fenced":
                self._on_request(verb, resource, code)
        if response.status >= 400:
            raise error_from_answer(response.status, response.reason, data)
        return json.loads(data) if data else {}

    def _fence_closed(self, fenced: bool, verb: str) -> bool:
        return fenced and verb in MUTATING_VERBS and self.may_write is not None and not self.may_write()

    def _send(
        self,
        verb: str,
        resource: str,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None,
        body: object,
        content_type: str,
        fenced: bool,
        timeout: float,
    ) -> tuple[Any, bytes]:
        method, url, headers, payload, _ = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        if self._fence_closed(fenced, verb):
            # Checked after serialising, as late as possible before the bytes leave.
            if self._on_refused:
                self._on_refused(verb, resource)
            raise NotLeader(f"{verb} {resource} refused: this replica does not hold the leader lease")
        response = self._api.call_api(
            method, url, header_params=headers, body=payload, _request_timeout=timeout
        )
        if self._fence_closed(fenced, verb):
            log.warning(
                "%s %s was sent while this replica led but answered after its lease margin ran out: "
                "it may have reached the API server after another replica took over",
                verb,
                resource,
            )
            if self._on_late:
                self._on_late(verb, resource)
        return response, response.read()  # type: ignore[no-untyped-call]

    # --- children ----------------------------------------------------------------------------------

    def apply(
        self, manifest: dict[str, Any], *, field_manager: str = naming.FIELD_MANAGER, dry_run: bool = False
    ) -> dict[str, Any]:
        """Server-side apply, by default under our main field manager; we win conflicts over fields
        we declare. With dry_run the API server validates and admits it without storing anything."""
        res = RESOURCES[manifest["kind"]]
        meta = manifest["metadata"]
        query = [("fieldManager", field_manager), ("force", "true")] + (
            [("dryRun", "All")] if dry_run else []
        )
        return dict(
            self._call(
                "apply",
                res.plural,
                "PATCH",
                res.path(meta["namespace"], meta["name"]),
                query=query,
                body=apply_body(manifest),
                content_type="application/apply-patch+yaml",
            )
        )

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        res = RESOURCES[kind]
        try:
            return dict(self._call("get", res.plural, "GET", res.path(namespace, name)))
        except NotFound:
            return None

    def list(
        self,
        kind: str,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        res = RESOURCES[kind]
        if namespace:
            path = res.collection_path(namespace)
        else:
            prefix = "/api/v1" if res.api_version == "v1" else f"/apis/{res.api_version}"
            path = f"{prefix}/{res.plural}"
        query = [("labelSelector", label_selector)] if label_selector else []
        if field_selector:
            query.append(("fieldSelector", field_selector))
        result = self._call("list", res.plural, "GET", path, query=query)
        return list(result.get("items") or [])

    def delete(self, kind: str, namespace: str, name: str, uid: str) -> None:
        """Deletes exactly the object we looked at (uid precondition); gone already is fine."""
        res = RESOURCES[kind]
        body = {"preconditions": {"uid": uid}, "propagationPolicy": "Background"}
        with contextlib.suppress(NotFound):
            self._call("delete", res.plural, "DELETE", res.path(namespace, name), body=body)

    # --- the ModelDeployment -----------------------------------------------------------------------

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        # A merge patch of the whole status: conditions is a list, so it is replaced as a whole,
        # which is what we want (we compute every condition each time).
        path = MODEL_DEPLOYMENT.path(namespace, name) + "/status"
        return dict(
            self._call(
                "patch",
                "modeldeployments/status",
                "PATCH",
                path,
                body={"status": status},
                content_type="application/merge-patch+json",
            )
        )

    def post_event(self, pending: PendingEvent, component: str = naming.FIELD_MANAGER) -> None:
        involved = pending.involved
        at = pending.at.strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{involved['name']}.", "namespace": involved["namespace"]},
            "involvedObject": {"apiVersion": api.API_VERSION, "kind": api.KIND, **involved},
            "type": pending.event_type,
            "reason": pending.reason,
            "message": pending.message[:1024],
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": component,
            "firstTimestamp": at,
            "lastTimestamp": at,
            "count": 1,
        }
        try:
            self._call(
                "create", "events", "POST", f"/api/v1/namespaces/{involved['namespace']}/events", body=event
            )
        except KubeError as exc:  # events are best effort: never fail a reconcile over one
            # A namespace being deleted takes its Events with it: nothing worth a warning.
            log.log(
                logging.DEBUG if isinstance(exc, NamespaceTerminating) else logging.WARNING,
                "could not post event %s on %s/%s: %s",
                pending.reason,
                involved["namespace"],
                involved["name"],
                exc,
            )

    # --- leader election (never fenced: renewing is how the fence stays open) ------------------------

    def get_lease(self, namespace: str, name: str, timeout: float) -> dict[str, Any] | None:
        try:
            return dict(
                self._call(
                    "get", LEASE.plural, "GET", LEASE.path(namespace, name), fenced=False, timeout=timeout
                )
            )
        except NotFound:
            return None

    def create_lease(self, lease: dict[str, Any], timeout: float) -> dict[str, Any]:
        namespace = lease["metadata"]["namespace"]
        return dict(
            self._call(
                "create",
                LEASE.plural,
                "POST",
                LEASE.collection_path(namespace),
                body=lease,
                fenced=False,
                timeout=timeout,
            )
        )

    def update_lease(self, lease: dict[str, Any], timeout: float) -> dict[str, Any]:
        """PUT with the resourceVersion read before: a concurrent change answers 409 (Transient)."""
        meta = lease["metadata"]
        return dict(
            self._call(
                "update",
                LEASE.plural,
                "PUT",
                LEASE.path(meta["namespace"], meta["name"]),
                body=lease,
                fenced=False,
                timeout=timeout,
            )
        )

    # --- discovery ---------------------------------------------------------------------------------

    def has_resource(self, api_version: str, plural: str) -> bool:
        """Whether the API server serves `plural` in `api_version` (for optional CRDs)."""
        try:
            result = self._call("get", "discovery", "GET", f"/apis/{api_version}")
        except (NotFound, KubeError):
            return False
        return any(r.get("name") == plural for r in result.get("resources") or [])


__all__ = [
    "TYPED_PATCH_ERROR",
    "Invalid",
    "Kube",
    "KubeError",
    "NamespaceTerminating",
    "NotFound",
    "NotLeader",
    "Transient",
]
