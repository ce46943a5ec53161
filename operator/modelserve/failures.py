"""Why a child could not be applied, or why its pods cannot start, as a condition reason (pure).

The API server's refusal of a child and the kubelet's or scheduler's complaint about a pod each map
to one reason of `status.Reason`; the message keeps the API server's (or kubelet's) own words, so
`kubectl get mdep` and the Event name the quota, the policy or the missing object.
"""

from __future__ import annotations

import re
from typing import Final

# Reason strings (re-exported by status.Reason; kept here so this module stays a leaf).
QUOTA_EXCEEDED: Final = "QuotaExceeded"
ADMISSION_DENIED: Final = "AdmissionDenied"
APPLY_FORBIDDEN: Final = "ApplyForbidden"
APPLY_CONFLICT: Final = "ApplyConflict"
APPLY_FAILED: Final = "ApplyFailed"
INVALID_SPEC: Final = "InvalidSpec"
SECRET_NOT_FOUND: Final = "SecretNotFound"
CONFIG_MAP_NOT_FOUND: Final = "ConfigMapNotFound"
CLAIM_NOT_FOUND: Final = "ClaimNotFound"

# Transient refusals (409, 429, 5xx, no answer) are retried quietly this many times in a row before
# they are reported: one API server blip must not flip Ready and post a Warning.
QUIET_RETRIES: Final = 3

# An admission webhook's refusal: `admission webhook "x" denied the request: ...` (Kyverno, Gatekeeper
# and others); a ValidatingAdmissionPolicy's: `ValidatingAdmissionPolicy 'p' with binding 'b' denied
# request: ...`. Either may come with 400, 403 or 422 (the policy chooses).
_ADMISSION: Final = re.compile(
    r"admission webhook .* denied the request|ValidatingAdmissionPolicy .* denied request"
)


def apply_reason(status: int, message: str) -> str:
    """The reason for an API server's refusal of a child apply (HTTP status and message)."""
    if _ADMISSION.search(message):
        return ADMISSION_DENIED
    if status == 403 and "exceeded quota" in message:
        return QUOTA_EXCEEDED
    if status == 403:
        return APPLY_FORBIDDEN  # RBAC, a terminating namespace, other admission plugins
    if status in (400, 422):
        return INVALID_SPEC
    if status == 409:
        return APPLY_CONFLICT
    return APPLY_FAILED


def transient(status: int) -> bool:
    """Refusals that may pass on their own: retried quietly first (see QUIET_RETRIES)."""
    return status in (0, 409, 429) or status >= 500


# The kubelet's words for a missing object a pod refers to: container config errors
# (`secret "x" not found`, `configmap "x" not found`, `couldn't find key k in Secret ns/x`) and
# FailedMount events (`MountVolume.SetUp failed for volume "v" : secret "x" not found`); the
# scheduler's for a claim (`persistentvolumeclaim "x" not found`).
_MISSING: Final = (
    (re.compile(r'secret "[^"]+" not found|couldn\'t find key \S+ in Secret', re.I), SECRET_NOT_FOUND),
    (
        re.compile(r'configmap "[^"]+" not found|couldn\'t find key \S+ in ConfigMap', re.I),
        CONFIG_MAP_NOT_FOUND,
    ),
    (re.compile(r'persistentvolumeclaim "[^"]+" not found', re.I), CLAIM_NOT_FOUND),
)


def missing_reference(message: str) -> str | None:
    """SecretNotFound, ConfigMapNotFound or ClaimNotFound when the message says so, else None."""
    for pattern, reason in _MISSING:
        if pattern.search(message):
            return reason
    return None
