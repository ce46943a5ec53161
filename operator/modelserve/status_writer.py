"""Writes a ModelDeployment's status when it changed, and the Events its transitions deserve.

The status is patched only when the computed one differs from the stored one (the copy we last
wrote counts until the watch delivers it), so an unchanged world makes no request. The Events are
decided by pure functions of the old and new status: Ready's transitions, and the cache's (whose
trouble often leaves Ready as it is).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from modelserve import cache_status, status
from modelserve.childcache import resource_version
from modelserve.kube import Kube, KubeError
from modelserve.records import Record

# (type, reason, message) of one Event.
Event = tuple[str, str, str]
# Queues an Event (type, reason, message) on a ModelDeployment without waiting for it to be posted.
RecordEvent = Callable[[dict[str, Any], str, str, str], None]


def ready_transition_events(old: dict[str, Any], new: dict[str, Any]) -> list[Event]:
    before = status.ready_condition(old) or {}
    after = status.ready_condition(new) or {}
    if (before.get("status"), before.get("reason")) == (after.get("status"), after.get("reason")):
        return []
    if not before and after.get("reason") in status.TRANSIENT_REASONS:
        return []  # a new object starting up is no news; its first Ready (or failure) is
    healthy = after.get("status") == "True" or after.get("reason") in (
        status.Reason.SUSPENDED,
        *status.TRANSIENT_REASONS,
        status.Reason.SCALED_TO_ZERO,
    )
    message = str(after.get("message") or after.get("reason") or "")
    return [("Normal" if healthy else "Warning", str(after.get("reason")), message)]


def cache_transition_events(old: dict[str, Any], new: dict[str, Any]) -> list[Event]:
    """A Warning when the model sync loses the store or the cache fails, Normal when it recovers:
    the replicas may well keep serving (Ready stays True), so Ready's Event would say nothing."""
    out: list[Event] = []
    for type_, bad in ((cache_status.MODEL_SYNC_DEGRADED, "True"), (cache_status.CACHE_READY, "False")):
        before = _condition(old, type_)
        after = _condition(new, type_)
        if after is None or (before or {}).get("reason") == after.get("reason"):
            continue
        failing = after.get("status") == bad and after.get("reason") not in status.TRANSIENT_REASONS
        if not failing and (before is None or before.get("status") != bad):
            continue  # neither news of trouble nor of a recovery from it
        message = f"{type_}: {after.get('message') or after.get('reason')}"
        out.append(("Warning" if failing else "Normal", str(after.get("reason")), message))
    return out


class StatusWriter:
    def __init__(self, kube: Kube, record_event: RecordEvent) -> None:
        self.kube = kube
        self.record_event = record_event

    def current(self, body: dict[str, Any], record: Record) -> dict[str, Any]:
        """The stored status: the copy we last wrote until the watch has delivered it."""
        written = record.written
        if written is not None and written[0] <= resource_version(body):
            # The watch has delivered our write (or something newer): the copy has done its job.
            # Keeping it would hold a status per ModelDeployment (12 MiB at 2,000, by memray).
            record.written = written = None
        if written is not None:
            return written[1]
        return dict(body.get("status") or {})

    def write(
        self, body: dict[str, Any], record: Record, new_status: dict[str, Any], events: Iterable[Event] = ()
    ) -> None:
        """Patches the status if it changed, then posts its transitions' Events and `events` (a
        rollout's steps and decisions, once the status that records them is written)."""
        old_status = self.current(body, record)
        if _same_status(old_status, new_status):
            return
        meta = body["metadata"]
        try:
            response = self.kube.patch_status(meta["namespace"], meta["name"], new_status)
        except KubeError as exc:
            if exc.status == 404:
                return  # deleted meanwhile
            raise
        record.written = (resource_version(response), dict(response.get("status") or {}))
        for event_type, reason, message in (
            *ready_transition_events(old_status, new_status),
            *cache_transition_events(old_status, new_status),
            *events,
        ):
            self.record_event(body, event_type, reason, message)


def _condition(st: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in st.get("conditions") or [] if c.get("type") == type_), None)


def _same_status(old: dict[str, Any], new: dict[str, Any]) -> bool:
    # Fields we do not write (from older operator versions) are ignored.
    return all(old.get(k) == v for k, v in new.items())
