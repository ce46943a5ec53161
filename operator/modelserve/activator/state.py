"""What the activator knows: the scale-to-zero models, their ready pods, and who waits for them.

Owned by the asyncio loop: the watch threads hand updates over with `loop.call_soon_threadsafe`, so
nothing here needs a lock.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

# A wake asked for by one activator replica is a Lease in the activator's namespace (never a write to
# the user's objects): name wake-<uid-less key>, labelled, annotated with the model, renewTime = when.
WAKE_LABEL: Final = "modelserve.dev/wake"
WAKE_NAMESPACE_ANNOTATION: Final = "modelserve.dev/model-namespace"
WAKE_NAME_ANNOTATION: Final = "modelserve.dev/model-name"


@dataclass
class Model:
    namespace: str
    name: str
    model_name: str
    service: str
    cluster_ip: str | None = None
    # Why the model is not serving, from its Ready condition ("InsufficientGPU: 0/4 nodes ...").
    status_note: str = ""
    # A wake asked for by any activator replica (the annotation), as a Unix time.
    wake_requested_at: float | None = None
    pods: dict[str, str] = field(default_factory=dict)  # ready pod name -> IP
    held: int = 0
    # One future per held request, all resolved in one pass when a pod is ready (or the activator
    # stops): a release costs one callback per request, no task per request.
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    _next: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    def release(self) -> None:
        """Wakes every held request of this model at once."""
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def pick_pod(self) -> str | None:
        if not self.pods:
            return None
        ips = sorted(self.pods.values())
        return ips[next(self._next) % len(ips)]


class Registry:
    """Models by key and by the names a client may use to reach them."""

    def __init__(self, on_wanted: Callable[[Model], None] | None = None) -> None:
        self.models: dict[tuple[str, str], Model] = {}
        # Ready pods seen before their model (watch order is not guaranteed): (ns, model) -> pods.
        self._pods: dict[tuple[str, str], dict[str, str]] = {}
        self._wakes: dict[tuple[str, str], float] = {}
        self.on_wanted = on_wanted or (lambda model: None)
        # Called with an address no ready pod has any more (the proxies drop their connections).
        self.on_address_gone: Callable[[str], None] = lambda ip: None

    # --- updates from the watches ---------------------------------------------------------------

    def set_wake(self, namespace: str, name: str, at: float) -> None:
        """Another replica (or this one) asked for a replica of this model at `at`."""
        self._wakes[(namespace, name)] = at
        model = self.models.get((namespace, name))
        if model is not None and model.wake_requested_at != at:
            model.wake_requested_at = at
            self.on_wanted(model)

    def upsert_model(
        self,
        namespace: str,
        name: str,
        model_name: str,
        status_note: str,
        wake_requested_at: float | None = None,
    ) -> Model:
        model = self.models.get((namespace, name))
        if model is None:
            model = Model(namespace=namespace, name=name, model_name=model_name, service=name)
            model.pods = self._pods.get((namespace, name), {})
            self._pods[(namespace, name)] = model.pods
            self.models[model.key] = model
        model.model_name = model_name
        model.status_note = status_note
        self._sync_ready(model)
        wake = wake_requested_at or self._wakes.get(model.key)
        if wake and wake != model.wake_requested_at:
            model.wake_requested_at = wake
            self.on_wanted(model)
        return model

    def remove_model(self, namespace: str, name: str) -> None:
        self.models.pop((namespace, name), None)

    def set_service_ip(self, namespace: str, name: str, cluster_ip: str | None) -> None:
        model = self.models.get((namespace, name))
        if model is not None:
            model.cluster_ip = cluster_ip or None

    def set_pod(self, namespace: str, owner: str, pod: str, ip: str | None) -> None:
        """A pod's readiness changed: `ip` when it is ready to serve, else None."""
        pods = self._pods.setdefault((namespace, owner), {})
        old = pods.pop(pod, None)
        if ip:
            pods[pod] = ip
        model = self.models.get((namespace, owner))
        if model is not None:
            self._sync_ready(model)
        if old and old != ip and not any(old in p.values() for p in self._pods.values()):
            self.on_address_gone(old)

    @staticmethod
    def _sync_ready(model: Model) -> None:
        if model.pods:
            model.release()

    # --- lookups from requests ------------------------------------------------------------------

    def by_host(self, host: str) -> Model | None:
        """The model a Host (or :authority) names: <svc>.<ns>[.svc[.cluster.local]], the Service's
        cluster IP, or a bare <svc> when only one namespace has it."""
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host.strip("[]").rsplit("]:", 1)[0]
        name = name.strip("[]").rstrip(".").lower()
        for suffix in (".svc.cluster.local", ".svc"):
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        if "." in name and not name.replace(".", "").isdigit():
            svc, _, ns = name.partition(".")
            return self.models.get((ns, svc))
        matches = [m for m in self.models.values() if name in (m.cluster_ip, m.service)]
        return matches[0] if len(matches) == 1 else None

    def by_model_name(self, model_name: str, namespace: str | None = None) -> Model | None:
        matches = [
            m
            for m in self.models.values()
            if m.model_name == model_name and (namespace is None or m.namespace == namespace)
        ]
        return matches[0] if len(matches) == 1 else None

    def wanted(self, model: Model, hold_seconds: float, now: float | None = None) -> bool:
        """Whether the model needs a replica: requests are held here, or another replica asked."""
        now = time.time() if now is None else now
        fresh = model.wake_requested_at is not None and now - model.wake_requested_at < hold_seconds
        return model.held > 0 or fresh
