"""Identity and metadata of the serving pods: service account, pull secrets, labels, annotations."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from modelserve.api.base import DNS_SUBDOMAIN, LABEL_VALUE, QUALIFIED_NAME, _Model, cel, cel_string, rules

# Labels and annotations the operator sets itself: the selector label (immutable), the descriptive
# labels tools select on, and everything under modelserve.dev/ (the rollout hash).
RESERVED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
)
RESERVED_PREFIX = "modelserve.dev/"
_KEY_RULE = "self.all(k, k.matches(" + cel_string(QUALIFIED_NAME) + "))"
_RESERVED_LABEL_RULE = (
    "self.all(k, !k.startsWith('"
    + RESERVED_PREFIX
    + "') && !(k in ["
    + ", ".join(f"'{label}'" for label in RESERVED_LABELS)
    + "]))"
)


class LocalObjectReference(_Model):
    """A Secret in the ModelDeployment's namespace."""

    name: Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]
    """Name of a Secret of type kubernetes.io/dockerconfigjson."""


class PodMetadata(_Model):
    """Extra labels and annotations on the serving pods (not on the Deployment or other children)."""

    labels: Annotated[
        dict[Annotated[str, Field(max_length=316)], Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]]
        | None,
        Field(
            max_length=32,
            json_schema_extra=rules(
                cel(_KEY_RULE, "podMetadata.labels keys must be label keys ([prefix/]name)"),
                cel(
                    _RESERVED_LABEL_RULE,
                    "podMetadata.labels may not set the operator's own labels ("
                    + ", ".join(RESERVED_LABELS)
                    + f", {RESERVED_PREFIX}*): the selector and the descriptive labels are the "
                    "operator's",
                ),
            ),
        ),
    ] = None
    """Labels added to every serving pod, for example for cost allocation or a mesh; the selector
    and app.kubernetes.io labels of the operator cannot be overridden."""
    annotations: Annotated[
        dict[Annotated[str, Field(max_length=316)], Annotated[str, Field(max_length=4096)]] | None,
        Field(
            max_length=32,
            json_schema_extra=rules(
                cel(_KEY_RULE, "podMetadata.annotations keys must be annotation keys ([prefix/]name)"),
                cel(
                    "self.all(k, !k.startsWith('" + RESERVED_PREFIX + "'))",
                    f"podMetadata.annotations may not use the operator's prefix {RESERVED_PREFIX}",
                ),
            ),
        ),
    ] = None
    """Annotations added to every serving pod (for example sidecar.istio.io/inject,
    prometheus.io/*, cluster-autoscaler.kubernetes.io/safe-to-evict)."""
