"""spec.disruption: how many serving pods voluntary disruptions may take, and how a pod stops."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from modelserve.api.base import _Model, cel, rules

# A percentage of the replicas, as PodDisruptionBudgets take it: 0% to 100%.
PERCENT = r"^(100|[1-9]?[0-9])%$"
# Stopping a pod: leave the Service's endpoints first, then stop TF Serving.
DEFAULT_DRAIN_SECONDS = 10


class Disruption(_Model):
    """Voluntary disruptions (node drains, cluster-autoscaler scale-down) and graceful shutdown.

    A PodDisruptionBudget `<name>` is created while the ModelDeployment runs two or more replicas
    (spec.replicas, or autoscaling.minReplicas): without one, a drain may take every replica at once.
    With one replica there is none, since a budget that allows no eviction would block every drain."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel(
                "!(has(self.maxUnavailable) && has(self.minAvailable))",
                "set disruption.maxUnavailable or disruption.minAvailable, not both",
                field_path=".minAvailable",
            ),
        )
    )

    max_unavailable: (
        Annotated[int, Field(ge=1, le=1000)] | Annotated[str, Field(max_length=4, pattern=PERCENT)] | None
    ) = None
    """Most serving pods a voluntary disruption may take at once: a count (at least 1) or a
    percentage such as 25%. Defaults to 1 when minAvailable is not set either."""
    min_available: (
        Annotated[int, Field(ge=0, le=1000)] | Annotated[str, Field(max_length=4, pattern=PERCENT)] | None
    ) = None
    """Fewest ready serving pods voluntary disruptions must leave: a count or a percentage. A value
    at or above the replica count blocks drains of nodes running them."""
    drain_seconds: Annotated[int, Field(ge=0, le=3600)] = DEFAULT_DRAIN_SECONDS
    """Seconds a stopping pod keeps serving after it left the Service's endpoints, before TF Serving
    is asked to stop: time for proxies and load balancers to notice and for requests in flight to
    finish. The pod's termination grace period is this plus time for TF Serving to exit."""


__all__ = ["DEFAULT_DRAIN_SECONDS", "Disruption"]
