"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection package does it.

Every replica watches and caches everything; only the holder of the Lease writes. A standby tries to
take the Lease every retry period and may do so once the holder has not renewed it for the lease
duration, measured on the standby's own clock from the moment it saw the last change (so clock skew
between nodes does not matter).

Fencing: the leader asks `may_write()` before sending every write (kube.py). It answers yes only
until `renew deadline` after the start of the last successful renewal. Another replica can take the
Lease no earlier than `lease duration` after it saw that renewal, which came later still: a leader
that is paused (SIGSTOP, a long GC, a partition) finds the fence closed when it wakes, before its
writes could collide with the new leader's. The margin is lease duration minus renew deadline.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelserve import metrics
from modelserve.kube import Kube, KubeError
from modelserve.settings import Settings

log = logging.getLogger(__name__)

# client-go's JitterFactor: a standby waits up to 20% longer between attempts, so replicas do not
# knock in lockstep.
JITTER: float = 0.2


def identity(settings: Settings) -> str:
    """The setting, else the pod's name (downward API), else hostname plus a random suffix."""
    return settings.identity or os.environ.get("POD_NAME") or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def lease_namespace(settings: Settings) -> str:
    """Where the Lease lives: the setting, else the pod's namespace, else the first watched one."""
    return (
        settings.lease_namespace
        or os.environ.get("POD_NAMESPACE")
        or (settings.namespaces[0] if settings.namespaces else "default")
    )


def _micro_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Timing:
    lease_duration: float
    renew_deadline: float
    retry_period: float

    @classmethod
    def of(cls, settings: Settings) -> Timing:
        return cls(
            settings.lease_duration_seconds, settings.renew_deadline_seconds, settings.retry_period_seconds
        )


class LeaderElector:
    """Acquires and renews the Lease in a thread of its own; calls back on the event loop."""

    def __init__(
        self,
        kube: Kube,
        *,
        namespace: str,
        name: str,
        identity: str,
        timing: Timing,
        on_started: Callable[[], None],
        on_stopped: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timing = timing
        self._on_started = on_started
        self._on_stopped = on_stopped
        self._clock = clock
        self._leading = False
        self._renewed_at = float("-inf")  # clock() when the last successful renewal started
        # The Lease as last seen (holder, renew time, resourceVersion) and when it last changed.
        self._observed: tuple[str, str, str] | None = None
        self._observed_at = float("-inf")
        self._task: asyncio.Task[None] | None = None
        # Lease requests never wait behind resync LISTs in the default executor.
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="leader-election")
        metrics.LEADER.set(0)

    # --- what the rest of the operator asks ------------------------------------------------------

    def may_write(self) -> bool:
        """True while this replica leads and its last renewal is younger than the renew deadline."""
        return self._leading and self._clock() < self._renewed_at + self.timing.renew_deadline

    @property
    def role(self) -> str:
        return "leader" if self.may_write() else "standby"

    # --- the loop --------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="modelserve-leader-election")

    async def stop(self, release: bool = True) -> None:
        """Stops electing; a leader closes its fence first, then hands the Lease on at once."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        was_leading = self._leading
        self._set_leading(False)
        if release and was_leading:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._thread, self._release)
        self._thread.shutdown(wait=False, cancel_futures=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                renewed = await loop.run_in_executor(self._thread, self.try_acquire_or_renew)
            except Exception:  # the loop must outlive any surprise: a dead elector is a mute operator
                log.exception("leader election attempt failed")
                renewed = False
            if renewed and not self._leading:
                self._set_leading(True)
            elif self._leading and not self.may_write():
                log.warning(
                    "leader lease %s/%s not renewed within %.0fs: stopped writing, standing by",
                    self.namespace,
                    self.name,
                    self.timing.renew_deadline,
                )
                self._set_leading(False)
            period = self.timing.retry_period
            if not self._leading:
                period *= 1 + random.uniform(0, JITTER)
            await asyncio.sleep(period)

    def _set_leading(self, leading: bool) -> None:
        if leading == self._leading:
            return
        self._leading = leading
        metrics.LEADER.set(1 if leading else 0)
        metrics.LEADER_TRANSITIONS.labels(to="leader" if leading else "standby").inc()
        log.info(
            "%s leader lease %s/%s as %s",
            "acquired" if leading else "lost",
            self.namespace,
            self.name,
            self.identity,
        )
        (self._on_started if leading else self._on_stopped)()

    # --- one attempt (in the election thread) ----------------------------------------------------

    def try_acquire_or_renew(self) -> bool:
        """One client-go style attempt; True when this replica holds the Lease afterwards."""
        started = self._clock()
        request_timeout = max(1.0, self.timing.renew_deadline / 2)
        try:
            lease = self.kube.get_lease(self.namespace, self.name, request_timeout)
            now = datetime.now(UTC)
            if lease is None:
                created = self.kube.create_lease(self._lease(None, now), request_timeout)
                self._observe(created)
                self._renewed_at = started
                return True
            self._observe(lease)
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity") or ""
            duration = float(spec.get("leaseDurationSeconds") or self.timing.lease_duration)
            if holder and holder != self.identity and self._clock() < self._observed_at + duration:
                return False  # held by another, renewed within its duration as far as we have seen
            updated = self.kube.update_lease(self._lease(lease, now), request_timeout)
        except KubeError as exc:
            log.debug("leader lease %s/%s: %s %s", self.namespace, self.name, exc.status, exc.message)
            return False
        self._observe(updated)
        self._renewed_at = started
        return True

    def _observe(self, lease: dict[str, Any]) -> None:
        spec = lease.get("spec") or {}
        seen = (
            str(spec.get("holderIdentity") or ""),
            str(spec.get("renewTime") or ""),
            str(lease.get("metadata", {}).get("resourceVersion") or ""),
        )
        if seen != self._observed:
            self._observed = seen
            self._observed_at = self._clock()

    def _lease(self, current: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
        spec = (current or {}).get("spec") or {}
        ours = spec.get("holderIdentity") == self.identity
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if current is not None:
            metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
        transitions = int(spec.get("leaseTransitions") or 0)
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": max(1, round(self.timing.lease_duration)),
                "acquireTime": spec.get("acquireTime") if ours else _micro_time(now),
                "renewTime": _micro_time(now),
                "leaseTransitions": transitions if ours or current is None else transitions + 1,
            },
        }

    def _release(self) -> None:
        """Hands the Lease on (client-go's ReleaseOnCancel): empty holder, so a standby takes it at
        its next attempt instead of after a whole lease duration."""
        try:
            lease = self.kube.get_lease(self.namespace, self.name, self.timing.retry_period)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            spec = dict(lease["spec"])
            spec.update(holderIdentity="", leaseDurationSeconds=1, renewTime=_micro_time(datetime.now(UTC)))
            self.kube.update_lease({**lease, "spec": spec}, self.timing.retry_period)
            log.info("released leader lease %s/%s", self.namespace, self.name)
        except KubeError as exc:
            log.warning("could not release leader lease %s/%s: %s", self.namespace, self.name, exc.message)


__all__ = ["LeaderElector", "Timing", "identity", "lease_namespace"]
