"""The shared model cache (pure): the claim `<name>-model-cache` and the `<name>-model-sync`
Deployment that keeps it holding exactly the served versions.

One sync pod per ModelDeployment, whatever the replica count: it alone holds the storage
credentials and talks to the store, so N replicas cost one download per version. Its readiness
(startup: first fill done; readiness: every served version on disk and the store reachable) is
what the operator reports as CacheReady. Strategy Recreate: two sync pods must never write the
same claim at once, and a ReadWriteOnce claim could not be attached to both anyway.
"""

from __future__ import annotations

from typing import Any, Final

from modelserve import api, contract, naming
from modelserve.builders import model_source, placement, pod_identity
from modelserve.builders.containers import pod_security_context
from modelserve.settings import Settings

CLAIM_KIND: Final = "PersistentVolumeClaim"


def build_model_cache_claim(md: api.ModelDeployment, settings: Settings) -> dict[str, Any] | None:
    """The claim the operator creates for spec.model.cache.size (None for claimName or no cache).

    Owned by the ModelDeployment, so deleting it deletes the claim; whether the data survives is
    the StorageClass's reclaimPolicy (Retain keeps the volume, Released). Use claimName for a
    cache that outlives the ModelDeployment.
    """
    cache = md.spec.model.cache
    if cache is None or cache.claim_name or not model_source.cached(md) or cache.size is None:
        return None
    spec: dict[str, Any] = {
        "accessModes": [cache.effective_access_mode],
        "resources": {"requests": {"storage": cache.size}},
    }
    if cache.storage_class_name:
        spec["storageClassName"] = cache.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": CLAIM_KIND,
        "metadata": naming.child_metadata(md, naming.model_cache_claim_name(md)),
        "spec": spec,
    }


def build_model_sync_deployment(md: api.ModelDeployment, settings: Settings) -> dict[str, Any] | None:
    if not model_source.cached(md):
        return None
    container = model_source.sync_container(md, settings, mode=contract.SYNC_MODE_CACHE)
    # Not the GPU image: the sync copies files and the GPU variant is several GiB more to pull.
    if not md.spec.serving.image:
        container["image"] = settings.cpu_image
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(),
        "containers": [container],
        "volumes": model_source.sync_volumes(md),
        "terminationGracePeriodSeconds": 30,
        **placement.sync_pod_placement(md),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": naming.child_metadata(md, naming.model_sync_name(md)),
        "spec": {
            # Suspended: nothing serves, nothing needs syncing; the claim keeps what it holds.
            "replicas": 0 if md.spec.suspend else 1,
            "selector": {"matchLabels": naming.model_sync_selector_labels(md)},
            "strategy": {"type": "Recreate"},
            "revisionHistoryLimit": 2,
            "template": pod_identity.apply_to_sync(
                md, {"metadata": {"labels": naming.model_sync_labels(md)}, "spec": pod}
            ),
        },
    }
