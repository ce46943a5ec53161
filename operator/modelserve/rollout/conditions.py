"""The rollout's conditions, from status.rollout (pure).

- RolloutProgressing: True while a canary is stepping, paused or being promoted.
- RolledBack: True after a rollback, until the spec changes; the message names the failing check.
"""

from __future__ import annotations

from typing import Any, Final

from modelserve.rollout import machine

ROLLOUT_PROGRESSING: Final = "RolloutProgressing"
ROLLED_BACK: Final = "RolledBack"
TYPES: Final = (ROLLOUT_PROGRESSING, ROLLED_BACK)


def _conditions(rollout: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    phase = rollout.get("phase")
    message = str(rollout.get("message") or "")
    if phase in (machine.PROGRESSING, machine.PAUSED, machine.PROMOTING):
        reason = {
            machine.PROGRESSING: "Progressing",
            machine.PAUSED: "Paused",
            machine.PROMOTING: "Promoting",
        }[phase]
        progressing = ("True", reason, message)
    elif phase == machine.ROLLED_BACK:
        progressing = ("False", "RolledBack", message)
    else:
        progressing = ("False", "Stable", "no rollout in progress")
    if phase == machine.ROLLED_BACK:
        rolled_back = ("True", str(rollout.get("reason") or machine.ANALYSIS_FAILED), message)
    else:
        rolled_back = ("False", "NotRolledBack", "")
    return [(ROLLOUT_PROGRESSING, *progressing), (ROLLED_BACK, *rolled_back)]


def rollout_conditions(
    rollout: dict[str, Any], previous: list[dict[str, Any]], generation: int, now: str
) -> list[dict[str, Any]]:
    """lastTransitionTime moves only when a condition's status flips (like the other conditions)."""
    before = {c.get("type"): c for c in previous}
    out = []
    for type_, status, reason, message in _conditions(rollout):
        old = before.get(type_)
        since = old.get("lastTransitionTime") if old and old.get("status") == status else None
        out.append(
            {
                "type": type_,
                "status": status,
                "reason": reason,
                "message": message[:32768],
                "lastTransitionTime": since or now,
                "observedGeneration": generation,
            }
        )
    return out
