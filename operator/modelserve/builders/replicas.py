"""Who owns a Deployment's spec.replicas, and how an autoscaled one starts at minReplicas (pure).

With autoscaling the HPA owns the count, so the operator's applies leave spec.replicas out. Two
server-side apply rules make that subtle:
- a Deployment created without spec.replicas starts at 1 and only reaches minReplicas when the HPA
  first syncs; so the creating apply carries minReplicas (the manifest's hash does not include it);
- a later apply that leaves out a field its manager owns removes the field, and the Deployment
  falls back to 1 replica. So before such an apply, while our apply still owns the count (read
  from the live object's managedFields), a second field manager (SEED_FIELD_MANAGER) claims the
  live count; the HPA's own scale writes take the field from it as they come, and from then on
  nothing of ours writes spec.replicas. That is the
  hand-over Kubernetes documents for giving replicas to an HPA ("Transferring ownership" in the
  server-side apply docs). The claim carries the resourceVersion the count was read at: if the
  autoscaler scaled in between (our cache one event behind), the API server answers 409 and the
  reconcile is retried on fresh state, so the claim never writes back an older count.
"""

from __future__ import annotations

from typing import Any, Final

from modelserve import api, naming

SEED_FIELD_MANAGER: Final = f"{naming.FIELD_MANAGER}-replicas"


def replica_owners(managed_fields: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The managedFields entries that own spec.replicas, reduced to who and how."""
    out: list[dict[str, Any]] = []
    for entry in managed_fields:
        spec = (entry.get("fieldsV1") or {}).get("f:spec") or {}
        if "f:replicas" in spec:
            owner: dict[str, Any] = {
                k: entry[k] for k in ("manager", "operation", "subresource") if k in entry
            }
            owner["fieldsV1"] = {"f:spec": {"f:replicas": {}}}
            out.append(owner)
    return out


def apply_owns_replicas(live: dict[str, Any]) -> bool:
    """Whether our main field manager's applies own the live spec.replicas (it created the
    Deployment at minReplicas, or set a fixed count): its next apply without the field would remove
    it. True when the live object says nothing about its managers (be safe: claim the count)."""
    managed = (live.get("metadata") or {}).get("managedFields")
    if managed is None:
        return True
    return any(
        entry.get("manager") == naming.FIELD_MANAGER and entry.get("operation") == "Apply"
        for entry in replica_owners(managed)
    )


def hpa_owns_replicas(md: api.ModelDeployment) -> bool:
    return md.spec.autoscaling is not None and not md.spec.suspend


def creation_body(md: api.ModelDeployment, deployment: dict[str, Any]) -> dict[str, Any]:
    """The Deployment as first created: an autoscaled one at minReplicas."""
    if md.spec.autoscaling is None or not hpa_owns_replicas(md) or "replicas" in deployment["spec"]:
        return deployment
    spec = {"replicas": md.spec.autoscaling.min_replicas, **deployment["spec"]}
    return {**deployment, "spec": spec}


def seed_body(md: api.ModelDeployment, live: dict[str, Any]) -> dict[str, Any] | None:
    """What SEED_FIELD_MANAGER applies before an apply that leaves spec.replicas out: the live count
    (at least minReplicas: a Deployment resumed from zero starts there); None when we set it, and
    when our apply no longer owns the count (the autoscaler, or an earlier claim, holds it: the
    operator then never writes spec.replicas again while the autoscaler owns it)."""
    if md.spec.autoscaling is None or not hpa_owns_replicas(md) or not apply_owns_replicas(live):
        return None
    current = int((live.get("spec") or {}).get("replicas") or 0)
    metadata: dict[str, Any] = {"name": naming.deployment_name(md), "namespace": md.namespace}
    read_at = (live.get("metadata") or {}).get("resourceVersion")
    if read_at:
        metadata["resourceVersion"] = read_at  # a precondition: 409 if the count moved since
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {"replicas": max(current, md.spec.autoscaling.min_replicas)},
    }


def desired_replicas(md: api.ModelDeployment, deployment: dict[str, Any]) -> int:
    """How many ready replicas Ready requires: never fewer than minReplicas while the HPA owns the
    count (a Deployment at 1 that the HPA has yet to raise is not ready)."""
    if md.spec.suspend:
        return 0
    spec_replicas = (deployment.get("spec") or {}).get("replicas")
    if md.spec.autoscaling is not None:
        return max(int(spec_replicas or 0), md.spec.autoscaling.min_replicas)
    if spec_replicas is not None:
        return int(spec_replicas)
    return md.spec.replicas if md.spec.replicas is not None else 1
