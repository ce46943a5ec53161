"""Handing a Deployment's replica count to its autoscaler without ever resetting it (the I/O half
of builders/replicas.py): create at minReplicas, and before an apply that leaves spec.replicas out,
claim the live count under a second field manager while our apply still owns it."""

from __future__ import annotations

from typing import Any

from modelserve import api
from modelserve.builders import replicas
from modelserve.childcache import ChildCache
from modelserve.kube import Invalid, Kube, Transient


def hold_replicas(
    kube: Kube,
    cache: ChildCache,
    md: api.ModelDeployment,
    desired: dict[str, Any],
    live: dict[str, Any] | None,
) -> dict[str, Any]:
    """With autoscaling: create at minReplicas, and never let an apply reset the live count
    (see builders/replicas.py)."""
    if "replicas" in desired["spec"]:
        # A rollout's plan sets the count: a seed (at least minReplicas) would raise the stable
        # over the plan's split for a moment, and the canary would shrink to fit the budget.
        return desired
    if live is None:
        return replicas.creation_body(md, desired)
    seed = replicas.seed_body(md, live)
    if seed is None:
        return desired  # nothing to hand over: the count is not ours to lose, or we set it
    try:
        try:
            _claim(kube, cache, seed)
        except Transient as exc:
            if exc.status != 409:
                raise
            # Our copy is behind (the Deployment controller's status writes move the
            # resourceVersion too): claim again at the count as it is now (if it is still ours
            # to hand over); a second 409 is retried with the reconcile.
            fresh = kube.get("Deployment", md.namespace, desired["metadata"]["name"])
            if fresh is None:
                return replicas.creation_body(md, desired)
            seed = replicas.seed_body(md, fresh)
            if seed is not None:
                _claim(kube, cache, seed)
        return desired
    except Invalid:
        # Deleted meanwhile: a partial apply cannot create it; the apply that follows does.
        return replicas.creation_body(md, desired)


def _claim(kube: Kube, cache: ChildCache, seed: dict[str, Any]) -> None:
    cache.put(kube.apply(seed, field_manager=replicas.SEED_FIELD_MANAGER))
