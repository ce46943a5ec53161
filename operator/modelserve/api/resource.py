"""The ModelDeployment resource: spec, status and parsing."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from modelserve.api.base import (
    API_VERSION,
    DNS_SUBDOMAIN,
    KIND,
    MAX_NAME_LENGTH,
    NAME_PATTERN,
    _Model,
    cel,
    rules,
)
from modelserve.api.disruption import Disruption
from modelserve.api.model import ModelSource, Serving
from modelserve.api.pod import LocalObjectReference, PodMetadata
from modelserve.api.rollout import Rollout, RolloutStatus
from modelserve.api.workload import (
    Autoscaling,
    Gpu,
    Monitoring,
    NetworkPolicySettings,
    Resources,
    Scheduling,
    ServiceSettings,
)

# --- the resource ----------------------------------------------------------------------------------


class ModelDeploymentSpec(_Model):
    """Desired state of a ModelDeployment."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel(
                "!(has(self.replicas) && has(self.autoscaling))",
                "set spec.replicas or spec.autoscaling, not both: "
                "with autoscaling the HPA owns the replica count",
                field_path=".replicas",
            ),
            # spec.gpu is the one place a GPU count is stated (the prefixes of the known device
            # plugins are refused in spec.resources itself; this covers a custom resourceName).
            cel(
                "!has(self.gpu) || !has(self.resources) || "
                "((!has(self.resources.requests) || !(self.gpu.resourceName in self.resources.requests)) && "
                "(!has(self.resources.limits) || !(self.gpu.resourceName in self.resources.limits)))",
                "spec.resources may not name spec.gpu.resourceName: spec.gpu.count is the GPU count",
                field_path=".resources",
            ),
            # A ReadWriteOnce volume attaches to one node: a second replica elsewhere would hang on a
            # multi-attach error instead of failing here.
            cel(
                "!has(self.model.cache) || !has(self.model.cache.accessMode) || "
                "self.model.cache.accessMode != 'ReadWriteOnce' || "
                "((!has(self.replicas) || self.replicas <= 1) && "
                "(!has(self.autoscaling) || self.autoscaling.maxReplicas <= 1))",
                "a ReadWriteOnce model cache allows one replica only: use accessMode ReadWriteMany "
                "(the default) for more replicas or autoscaling",
                field_path=".model.cache.accessMode",
            ),
            # CPU utilisation says little about GPU inference (the GPU saturates first): refused
            # rather than defaulted, because a CRD cannot warn at apply and a status note is missed.
            cel(
                "!has(self.gpu) || !has(self.autoscaling) || has(self.autoscaling.targetCPUUtilization) "
                "|| has(self.autoscaling.targetMemoryUtilization) || has(self.autoscaling.metrics) "
                "|| has(self.autoscaling.targetRequestsPerSecond) || has(self.autoscaling.targetLatency) "
                "|| has(self.autoscaling.prometheus)",
                "spec.autoscaling of a GPU model needs an explicit target: CPU utilisation does not "
                "track GPU inference load; set autoscaling.targetRequestsPerSecond (or targetLatency, "
                "prometheus, or targetCPUUtilization to scale on CPU after all)",
                field_path=".autoscaling",
            ),
            cel(
                "!has(self.rollout) || "
                "(has(self.model.versionPolicy) && has(self.model.versionPolicy.specific))",
                "with spec.rollout set, spec.model.versionPolicy must be specific (pinned versions): "
                "a canary compares one exact set of versions with another",
                field_path=".model.versionPolicy",
            ),
            cel(
                "!has(self.rollout) || !has(self.model.cache)",
                "spec.rollout cannot be combined with spec.model.cache yet: the shared cache holds the "
                "stable's versions only",
                field_path=".rollout",
            ),
        )
    )

    model: ModelSource
    """The model and its versions."""
    serving: Annotated[Serving, Field(json_schema_extra={"default": {}})] = Serving()
    """TF Serving settings."""
    replicas: Annotated[int | None, Field(ge=0, le=1000)] = None
    """Fixed replica count (default 1). Mutually exclusive with autoscaling; `kubectl scale` sets it."""
    autoscaling: Autoscaling | None = None
    """Scale with a HorizontalPodAutoscaler instead of a fixed count."""
    resources: Resources | None = None
    """CPU and memory per replica. Defaults to requests cpu 500m, memory 1Gi."""
    gpu: Gpu | None = None
    """GPUs per replica."""
    scheduling: Scheduling | None = None
    """Node selection, tolerations, affinity, priority and spreading."""
    monitoring: Annotated[Monitoring, Field(json_schema_extra={"default": {}})] = Monitoring()
    """Prometheus monitoring."""
    service: Annotated[ServiceSettings, Field(json_schema_extra={"default": {}})] = ServiceSettings()
    """The Service."""
    network_policy: NetworkPolicySettings | None = None
    """Restrict who may reach the serving ports with a NetworkPolicy; no policy when absent."""
    suspend: bool = False
    """Scale to zero while keeping every object; condition Suspended is True."""
    disruption: Annotated[Disruption, Field(json_schema_extra={"default": {}})] = Disruption()
    """PodDisruptionBudget (with two or more replicas) and graceful shutdown of serving pods."""
    service_account_name: Annotated[str | None, Field(max_length=253, pattern=DNS_SUBDOMAIN)] = None
    """ServiceAccount of the serving pods, for cloud workload identity (IRSA, GKE Workload Identity,
    Azure Workload Identity): the model sync reads the store with its identity. No Kubernetes API
    token is mounted (TF Serving never calls the API server); see docs/identity.md. Default: the
    namespace's default ServiceAccount."""
    image_pull_secrets: Annotated[list[LocalObjectReference] | None, Field(max_length=16)] = None
    """Secrets (kubernetes.io/dockerconfigjson) for pulling the serving image from a private registry."""
    pod_metadata: PodMetadata | None = None
    """Extra labels and annotations on the serving pods."""
    rollout: Rollout | None = None
    """Roll pod-restarting changes out as a metric-gated canary; absent: an ordinary rolling update."""


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(_Model):
    """A standard Kubernetes condition."""

    type: Annotated[str, Field(max_length=316)]
    """Condition type, for example Ready."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: Annotated[str, Field(max_length=1024)] = ""
    """A CamelCase reason, one per failure mode."""
    message: Annotated[str, Field(max_length=32768)] = ""
    """Details for a person."""
    last_transition_time: Annotated[str | None, Field(max_length=64)] = None
    """When status last changed (RFC 3339)."""
    observed_generation: int | None = None
    """The generation this condition was computed from."""


class Endpoints(_Model):
    """In-cluster addresses of the model."""

    rest: Annotated[str | None, Field(max_length=512)] = None
    """REST predict URL base, http://<service>.<namespace>.svc:8501/v1/models/<model>."""
    grpc: Annotated[str | None, Field(max_length=512)] = None
    """gRPC address, <service>.<namespace>.svc:8500."""


class CacheStatus(_Model):
    """What the operator observes of the shared model cache."""

    claim_name: Annotated[str | None, Field(max_length=253)] = None
    """The claim holding the cache."""
    phase: Annotated[str | None, Field(max_length=64)] = None
    """The claim's phase (Pending, Bound, Lost), for a claim the operator created."""
    capacity: Annotated[str | None, Field(max_length=64)] = None
    """The bound volume's capacity."""
    state: Annotated[str | None, Field(max_length=64)] = None
    """The CacheReady reason: CacheReady, ClaimPending, CacheFilling, CacheFetchFailed, StoreUnreachable."""


class ModelDeploymentStatus(_Model):
    """Observed state, written by the operator only."""

    observed_generation: int | None = None
    """The metadata.generation this status describes."""
    replicas: int | None = None
    """Pods of the Deployment."""
    ready_replicas: int | None = None
    """Pods ready to serve."""
    updated_replicas: int | None = None
    """Pods on the newest template."""
    selector: Annotated[str | None, Field(max_length=1024)] = None
    """Label selector of the pods, for the scale subresource."""
    endpoints: Endpoints | None = None
    """Where to send requests."""
    model_name: Annotated[str | None, Field(max_length=63)] = None
    """TF Serving model name in use."""
    model_versions: Annotated[str | None, Field(max_length=1024)] = None
    """What the version policy serves, for example 'latest 2', 'all' or '1,2'."""
    gpu: Annotated[str | None, Field(max_length=256)] = None
    """GPUs per replica, for example '1x NVIDIA-A100-SXM4-80GB'."""
    cache: CacheStatus | None = None
    """The shared model cache, with spec.model.cache."""
    last_sync_error: Annotated[str | None, Field(max_length=4096)] = None
    """The model sync's last failure, naming the object key where it is known (with spec.model.cache;
    without it a pod's sync failure is in the Ready message)."""
    conditions: Annotated[
        list[Condition] | None,
        Field(
            max_length=16,
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        ),
    ] = None
    """Ready (the roll-up), Available, Progressing, DeploymentReady, ServiceReady, AutoscalerReady,
    MonitoringReady, Suspended; with spec.model.cache also CacheReady and ModelSyncDegraded."""
    rollout: RolloutStatus | None = None
    """The canary rollout, when spec.rollout is set."""


class ModelDeployment(_Model):
    """A TensorFlow Serving deployment of one model: Deployment, Service, autoscaler, GPU scheduling and
    monitoring, reconciled by modelserve-operator."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel(
                f"self.metadata.name.size() <= {MAX_NAME_LENGTH}",
                f"metadata.name must be at most {MAX_NAME_LENGTH} characters: it names the Service and "
                "other children",
                field_path=".metadata.name",
            ),
            cel(
                "self.metadata.name.matches('" + NAME_PATTERN + "')",
                "metadata.name must start with a letter and contain only lowercase letters, digits and '-' "
                "(it names a Service)",
                field_path=".metadata.name",
            ),
        )
    )

    api_version: Literal["modelserve.dev/v1alpha1"] = "modelserve.dev/v1alpha1"
    kind: Literal["ModelDeployment"] = "ModelDeployment"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus | None = None

    @property
    def name(self) -> str:
        return str(self.metadata["name"])

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace", "default"))

    @property
    def uid(self) -> str:
        return str(self.metadata.get("uid", ""))

    @property
    def generation(self) -> int:
        return int(self.metadata.get("generation", 0))

    @property
    def model_name(self) -> str:
        return self.spec.model.name or self.name


def parse(body: dict[str, Any]) -> ModelDeployment:
    """Parses a ModelDeployment as read from the API server (status and unknown metadata ignored)."""
    data = {
        "apiVersion": body.get("apiVersion", API_VERSION),
        "kind": body.get("kind", KIND),
        "metadata": dict(body.get("metadata") or {}),
        "spec": body.get("spec") or {},
    }
    return ModelDeployment.model_validate(data)
