"""The API server's refusals as the kinds the reconciler acts on (pure): `Invalid` (the spec produced
something the server refuses: permanent until the spec changes), `Transient` (conflicts,
throttling, 5xx, timeouts: retry soon), `NotFound`, `NamespaceTerminating`, and `NotLeader` (a
write this replica held back itself). kube.py raises them; everything imports them from there."""

from __future__ import annotations

import json
from typing import Any, Final


class KubeError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


class Invalid(KubeError):  # noqa: N818
    """422/400: the object is refused as written; retrying the same spec cannot help."""


class Transient(KubeError):  # noqa: N818
    """409/429/5xx/timeouts: retry soon."""


class NotFound(KubeError):  # noqa: N818  (reads as the HTTP status it is)
    pass


class NamespaceTerminating(KubeError):  # noqa: N818  (reads as the API server's cause)
    """403: nothing new may be created in a namespace that is being deleted."""


class NotLeader(Transient):
    """A write refused before it was sent: this replica does not hold the leader lease (with margin).

    Transient, so a reconcile interrupted by a lost lease is retried, which then waits in the queue
    until this replica leads again."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "NotLeader", message)


# Server-side apply answers a manifest that does not fit the child's schema (an unknown field inside a
# pass-through struct such as spec.scheduling.affinity) with a 500 carrying this message. The request is
# at fault, not the server: retrying cannot help, so it is Invalid (found by the security tests).
TYPED_PATCH_ERROR: Final = "failed to create typed patch object"


def error_from_answer(
    status_code: int | None, http_reason: str | None, payload: bytes | str | None
) -> KubeError:
    """The refusal an HTTP answer (status, reason phrase, JSON Status body) stands for."""
    message = http_reason or ""
    reason = ""
    causes: list[Any] = []
    try:
        body = json.loads(payload or "{}")
        message = body.get("message") or message
        reason = body.get("reason") or ""
        causes = list((body.get("details") or {}).get("causes") or [])
    except (TypeError, ValueError, AttributeError):
        pass
    status = int(status_code or 0)
    if status == 404:
        return NotFound(status, reason, message)
    if status == 403 and any(
        isinstance(c, dict) and c.get("reason") == "NamespaceTerminating" for c in causes
    ):
        return NamespaceTerminating(status, reason, message)
    if status in (400, 422) or (status == 500 and TYPED_PATCH_ERROR in message):
        return Invalid(status, reason, message)
    if status in (409, 429) or status >= 500 or status == 0:
        return Transient(status, reason, message)
    return KubeError(status, reason, message)
