"""Who owns a Deployment's spec.replicas, and how an autoscaled one starts at minReplicas (pure).

With autoscaling the HPA owns the count, so the operator's applies leave spec.replicas out. Two
server-side apply rules make that subtle:
- a Deployment created without spec.replicas starts at 1 and only reaches minReplicas when the HPA
  first syncs; so the creating apply carries minReplicas (the manifest's hash does not include it);
- a later apply that leaves out a field its manager owns removes the field, and the Deployment
  falls back to 1 replica. So before every such apply a second field manager (SEED_FIELD_MANAGER)
  claims the live count; the HPA's own scale writes take the field from it as they come. That is the
  hand-over Kubernetes documents for giving replicas to an HPA ("Transferring ownership" in the
  server-side apply docs). The claim carries the resourceVersion the count was read at: if the
  autoscaler scaled in between (our cache one event behind), the API server answers 409 and the
  reconcile is retried on fresh state, so the claim never writes back an older count.
"""

from __future__ import annotations

from typing import Any, Final

from modelserve import api, naming

SEED_FIELD_MANAGER: Final = f"{naming.FIELD_MANAGER}-replicas"


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
    (at least minReplicas: a Deployment resumed from zero starts there); None when we set it."""
    if md.spec.autoscaling is None or not hpa_owns_replicas(md):
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
