"""spec.model.cache: one shared claim holding the served versions, filled once by a sync Deployment."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, ConfigDict, Field

from modelserve.api.base import DNS_SUBDOMAIN, QUANTITY, _Model, cel, rules
from modelserve.api.workload import _quantity_str

READ_WRITE_MANY = "ReadWriteMany"
READ_WRITE_ONCE = "ReadWriteOnce"


class ModelCache(_Model):
    """A PersistentVolumeClaim that holds exactly the served versions, shared by every replica.

    Either size (the operator creates and owns the claim `<name>-model-cache`) or claimName (an
    existing claim, never changed or deleted by the operator)."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel(
                "has(self.size) != has(self.claimName)",
                "cache must set exactly one of size (a claim the operator creates) or claimName "
                "(an existing claim)",
            ),
            cel(
                "!has(self.claimName) || (!has(self.storageClassName) && !has(self.accessMode))",
                "cache.storageClassName and cache.accessMode apply to a claim the operator creates "
                "(cache.size), not to cache.claimName",
                field_path=".claimName",
            ),
        )
    )

    size: Annotated[
        str | None,
        Field(max_length=64, pattern=QUANTITY, json_schema_extra={"x-kubernetes-int-or-string": True}),
        BeforeValidator(_quantity_str),
    ] = None
    """Size of the claim the operator creates, for example 100Gi: room for every served version plus
    one version being fetched (see docs/models.md)."""
    storage_class_name: Annotated[str | None, Field(max_length=253, pattern=DNS_SUBDOMAIN)] = None
    """StorageClass of the created claim; the cluster default when absent."""
    access_mode: Literal["ReadWriteMany", "ReadWriteOnce"] | None = None
    """Access mode of the created claim. ReadWriteMany (the default) lets replicas on any node mount
    it; ReadWriteOnce allows a single replica only, on the node of the sync pod."""
    claim_name: Annotated[str | None, Field(max_length=253, pattern=DNS_SUBDOMAIN)] = None
    """An existing claim in the namespace to use instead (kept as it is when the ModelDeployment is
    deleted). It must allow the sync pod to write and every replica to read."""

    @property
    def effective_access_mode(self) -> str:
        return self.access_mode or READ_WRITE_MANY
