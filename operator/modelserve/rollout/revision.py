"""Which part of the spec rolls the serving pods, its hash, and the ModelDeployment each track runs.

A rollout starts when this part changes: the model (source, name, served versions), the serving
settings (image, flags, batching, env), resources, GPUs, scheduling, disruption (grace period,
preStop drain) and the pods' identity and metadata. Everything else (replicas,
autoscaling, the Service, monitoring, version labels, the rollout settings themselves) applies to
both tracks in place, as it does without a rollout.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Final

from modelserve import api

# spec fields (wire names) whose change is rolled out as a canary.
ROLLED_FIELDS: Final = (
    "model",
    "serving",
    "resources",
    "gpu",
    "scheduling",
    "disruption",
    "serviceAccountName",
    "imagePullSecrets",
    "podMetadata",
)
# Moving a version label needs no new pods (TF Serving re-reads its model config): it stays in place.
IN_PLACE_MODEL_FIELDS: Final = ("versionLabels",)
REVISION_LENGTH: Final = 16


def _spec_dict(md: api.ModelDeployment) -> dict[str, Any]:
    return md.spec.model_dump(by_alias=True, exclude_none=True, mode="json")


def rolled_spec(md: api.ModelDeployment) -> dict[str, Any]:
    """The pod-rolling part of md's spec, as stored in status.rollout.stableSpec."""
    spec = _spec_dict(md)
    out: dict[str, Any] = {key: spec[key] for key in ROLLED_FIELDS if key in spec}
    out["model"] = {k: v for k, v in out["model"].items() if k not in IN_PLACE_MODEL_FIELDS}
    return out


def revision_of(rolled: dict[str, Any]) -> str:
    payload = json.dumps(rolled, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(payload).hexdigest()[:REVISION_LENGTH]


def revision(md: api.ModelDeployment) -> str:
    return revision_of(rolled_spec(md))


def served_versions(rolled: dict[str, Any]) -> set[int] | None:
    specific = ((rolled.get("model") or {}).get("versionPolicy") or {}).get("specific")
    return set(specific["versions"]) if specific else None


def with_rolled_spec(md: api.ModelDeployment, rolled: dict[str, Any]) -> api.ModelDeployment:
    """md as the track running `rolled` sees it: md's in-place settings, `rolled`'s pod-rolling ones.

    Version labels follow the versions: a label whose version this track does not serve is left out
    of its config (TF Serving refuses a label for a version it does not load)."""
    spec = _spec_dict(md)
    labels = (spec.get("model") or {}).get("versionLabels")
    for key in ROLLED_FIELDS:
        spec.pop(key, None)
    spec.update(copy.deepcopy(rolled))
    if labels:
        versions = served_versions(rolled)
        kept = {k: v for k, v in labels.items() if versions is None or v in versions}
        if kept:
            spec["model"]["versionLabels"] = kept
    return md.model_copy(update={"spec": api.ModelDeploymentSpec.model_validate(spec)})
