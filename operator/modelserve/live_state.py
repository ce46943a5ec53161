"""What a live child's own status says (pure): rolled out, observed, controlled by whom, a pod
stuck before its containers start. The reconciler reads children through these."""

from __future__ import annotations

from typing import Any


def ready_replicas(deployment: dict[str, Any] | None) -> int:
    return int(((deployment or {}).get("status") or {}).get("readyReplicas") or 0)


def controlled_by(obj: dict[str, Any], uid: str) -> bool:
    return any(
        ref.get("controller") and ref.get("uid") == uid
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or []
    )


def stuck_before_start(pod: dict[str, Any]) -> bool:
    """Scheduled, yet no container (init or app) has started: volumes not mounted, or worse."""
    st = pod.get("status") or {}
    scheduled = any(
        c.get("type") == "PodScheduled" and c.get("status") == "True" for c in st.get("conditions") or []
    )
    statuses = (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or [])
    waiting = ("ContainerCreating", "PodInitializing")
    return (
        scheduled
        and st.get("phase") == "Pending"
        and all(((cs.get("state") or {}).get("waiting") or {}).get("reason") in waiting for cs in statuses)
    )


def generation_observed(deployment: dict[str, Any]) -> bool:
    generation = int(deployment["metadata"].get("generation") or 0)
    return int((deployment.get("status") or {}).get("observedGeneration") or 0) >= generation


def rolled_out(deployment: dict[str, Any]) -> bool:
    spec = deployment.get("spec") or {}
    st = deployment.get("status") or {}
    desired = int(spec.get("replicas", 1) or 0)
    return (
        int(st.get("observedGeneration") or 0) >= int(deployment["metadata"].get("generation") or 0)
        and int(st.get("readyReplicas") or 0) >= desired
        and int(st.get("updatedReplicas") or 0) >= desired
    )
