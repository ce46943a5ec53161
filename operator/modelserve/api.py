"""The ModelDeployment API (modelserve.dev/v1alpha1): the single source of truth.

`crd.py` turns these models into the CustomResourceDefinition in `crds/`. Everything the API server
must enforce lives here as JSON-schema bounds or CEL rules (`x-kubernetes-validations`) with messages
a person can act on, because there is no admission webhook: a bad spec is refused at `kubectl apply`.

Conventions:
- Python names are snake_case; the wire names are camelCase (pydantic aliases).
- `CEL` attaches rules to a model (`json_schema_extra`); `rules()` builds the list.
- Kubernetes structs we pass through unchanged (affinity, HPA metrics, ...) are
  `x-kubernetes-preserve-unknown-fields` objects: the API server validates them when the operator
  applies the child that carries them, and a failure there surfaces as `Ready=False, InvalidSpec`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP: Final = "modelserve.dev"
VERSION: Final = "v1alpha1"
KIND: Final = "ModelDeployment"
PLURAL: Final = "modeldeployments"
SINGULAR: Final = "modeldeployment"
SHORT_NAMES: Final = ("mdep",)
CATEGORIES: Final = ("modelserve",)
API_VERSION: Final = f"{GROUP}/{VERSION}"

# metadata.name becomes the Service name (a DNS-1035 label, at most 63 characters) and the value of
# the selector label; `<name>-tfserving` must stay a valid label too, so names are at most 53.
MAX_NAME_LENGTH: Final = 53
NAME_PATTERN: Final = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
NAME_PATTERN_DNS_LABEL: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"  # namespace names (RFC 1123 label)

# Regular expressions shared by fields and CEL rules.
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
QUALIFIED_NAME = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"  # optional DNS prefix
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
DURATION = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
QUANTITY = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"  # number
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"  # suffix
)
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
VERSION_LABEL = r"^[a-zA-Z0-9_]+$"
MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
EXTRA_ARG = r"^--[a-z][a-z0-9_]*=.*$"

# Storage URIs: object stores, HTTP(S) archives, or a path inside a PersistentVolumeClaim.
STORAGE_URI = (
    r"^(gs://[a-z0-9][-a-z0-9_.]{1,220}[a-z0-9](/.*)?"
    r"|s3://[a-z0-9][-a-z0-9.]{1,61}[a-z0-9](/.*)?"
    r"|https?://[^/\s]+/\S*"
    r"|pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?(/\S*)?)$"
)

# Flags the serving entrypoint sets itself; extraArgs may not override them.
RESERVED_FLAGS: Final = (
    "port",
    "rest_api_port",
    "model_config_file",
    "model_config_file_poll_wait_seconds",
    "monitoring_config_file",
    "batching_parameters_file",
    "enable_batching",
    "model_name",
    "model_base_path",
    "enable_model_warmup",
)


def cel(rule: str, message: str, field_path: str | None = None, reason: str | None = None) -> dict[str, str]:
    """One `x-kubernetes-validations` entry."""
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    if reason:
        entry["reason"] = reason
    return entry


def rules(*entries: dict[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(entries)}


PRESERVE: Final[dict[str, Any]] = {"x-kubernetes-preserve-unknown-fields": True}


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
        frozen=True,
    )


# --- model -----------------------------------------------------------------------------------------


class LatestPolicy(_Model):
    """Serve the newest `count` numbered versions found under storageUri."""

    count: Annotated[int, Field(ge=1, le=100)] = 1
    """How many of the newest versions to serve at once (1 to 100)."""


class AllPolicy(_Model):
    """Serve every numbered version found under storageUri."""


class SpecificPolicy(_Model):
    """Serve exactly the listed versions."""

    versions: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1, max_length=64)]
    """Version numbers to serve: the names of numbered folders under storageUri (at most 64)."""


class VersionPolicy(_Model):
    """Which model versions TF Serving loads. Set exactly one of latest, all or specific."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel(
                "[has(self.latest), has(self.all), has(self.specific)].filter(x, x).size() == 1",
                "versionPolicy must set exactly one of latest, all or specific",
            )
        )
    )

    latest: LatestPolicy | None = None
    """Serve the newest N versions."""
    all: AllPolicy | None = None
    """Serve every version present."""
    specific: SpecificPolicy | None = None
    """Serve exactly these versions."""


DEFAULT_VERSION_POLICY: Final = {"latest": {"count": 1}}


class ModelSource(_Model):
    """The model to serve and where its numbered version folders live."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel(
                "!has(self.versionLabels) || !has(self.versionPolicy) || "
                "!has(self.versionPolicy.specific) || "
                "self.versionLabels.all(k, self.versionLabels[k] in self.versionPolicy.specific.versions)",
                "every version in versionLabels must be listed in versionPolicy.specific.versions",
                field_path=".versionLabels",
            ),
            cel(
                "!has(self.credentialsSecret) || !self.storageUri.startsWith('pvc://')",
                "credentialsSecret cannot be used with a pvc:// storageUri: the volume is mounted directly",
                field_path=".credentialsSecret",
            ),
        )
    )

    name: Annotated[str | None, Field(max_length=63, pattern=MODEL_NAME)] = None
    """TF Serving model name, used in request paths (/v1/models/<name>). Defaults to metadata.name."""
    storage_uri: Annotated[str, Field(max_length=2048, pattern=STORAGE_URI)]
    """Where the model's numbered version folders (1/, 2/, ...) live: gs://bucket/path, s3://bucket/path,
    an http(s):// URL of a .tar.gz or .zip archive, or pvc://<claim>/<path> inside a PersistentVolumeClaim
    of the same namespace."""
    credentials_secret: Annotated[str | None, Field(max_length=253, pattern=DNS_SUBDOMAIN)] = None
    """Name of a Secret in the same namespace holding storage credentials; mounted only into the model
    fetch init container. See serving-image/README.md for its keys."""
    # No default in the CRD: a stored {latest: {count: 1}} would stay beside the `specific` or `all` a
    # later kubectl apply (client- or server-side) adds, and the exactly-one rule would refuse the
    # change. Absent means DEFAULT_VERSION_POLICY, applied here.
    version_policy: Annotated[VersionPolicy, Field(json_schema_extra={"default": None})] = VersionPolicy(
        latest=LatestPolicy(count=1)
    )
    """Which versions to serve. Defaults to the newest one (latest, count 1)."""
    version_labels: Annotated[
        dict[Annotated[str, Field(max_length=63)], Annotated[int, Field(ge=0)]] | None,
        Field(
            max_length=16,
            json_schema_extra=rules(
                cel(
                    "self.all(k, k.matches('" + VERSION_LABEL + "'))",
                    "versionLabels keys may contain only letters, digits and underscores",
                )
            ),
        ),
    ] = None
    """Labels pointing at served versions, for example {stable: 1, canary: 2}; clients request
    /v1/models/<name>/labels/<label>. Moving a label reloads TF Serving's config without restarting pods."""


# --- serving ---------------------------------------------------------------------------------------


class Batching(_Model):
    """TF Serving server-side batching (BatchingParameters)."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel(
                "!has(self.allowedBatchSizes) || self.allowedBatchSizes[self.allowedBatchSizes.size() - 1]"
                " == self.maxBatchSize",
                "the last of allowedBatchSizes must equal maxBatchSize",
                field_path=".allowedBatchSizes",
            ),
            cel(
                "!has(self.allowedBatchSizes) || self.allowedBatchSizes.all(s, s <= self.maxBatchSize)",
                "allowedBatchSizes may not exceed maxBatchSize",
                field_path=".allowedBatchSizes",
            ),
        )
    )

    max_batch_size: Annotated[int, Field(ge=1, le=65536)] = 32
    """Largest batch TF Serving forms."""
    batch_timeout_micros: Annotated[int, Field(ge=0, le=10_000_000)] = 1000
    """How long to wait for a batch to fill, in microseconds."""
    max_enqueued_batches: Annotated[int, Field(ge=1, le=1_000_000)] = 100
    """Queue length in batches before requests are refused."""
    num_batch_threads: Annotated[int | None, Field(ge=1, le=1024)] = None
    """Threads processing batches. Defaults to the number of CPUs TF Serving sees."""
    # min_length=1: the CEL rule indexes the last element, which an empty list does not have.
    allowed_batch_sizes: Annotated[
        list[Annotated[int, Field(ge=1, le=65536)]] | None, Field(min_length=1, max_length=32)
    ] = None
    """Batch sizes to pad to, increasing; the last must equal maxBatchSize."""
    pad_variable_length_inputs: bool = False
    """Pad inputs of different lengths so they can be batched."""


class EnvVar(_Model):
    """An environment variable of the serving container."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel("!(has(self.value) && has(self.valueFrom))", "set value or valueFrom, not both"),
            cel(
                "!self.name.startsWith('MODELSERVE_')",
                "names starting with MODELSERVE_ are reserved for the operator",
                field_path=".name",
            ),
        )
    )

    name: Annotated[str, Field(min_length=1, max_length=128, pattern=ENV_NAME)]
    """Variable name."""
    value: Annotated[str | None, Field(max_length=4096)] = None
    """Literal value."""
    value_from: Annotated[dict[str, Any] | None, Field(json_schema_extra=PRESERVE)] = None
    """A Kubernetes EnvVarSource (secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef)."""


class Serving(_Model):
    """How TF Serving runs."""

    image: Annotated[str | None, Field(max_length=512, pattern=r"^\S+$")] = None
    """Serving image override. By default the operator's shared image, GPU variant when gpu is set."""
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    """Image pull policy of the serving containers."""
    batching: Batching | None = None
    """Server-side batching; off when absent."""
    warmup: bool = False
    """Replay the model's assets.extra/tf_serving_warmup_requests before reporting ready."""
    extra_args: Annotated[
        list[Annotated[str, Field(max_length=256, pattern=EXTRA_ARG)]] | None,
        Field(
            max_length=32,
            json_schema_extra=rules(
                cel(
                    "self.all(a, !(" + " || ".join(f"a.startsWith('--{f}=')" for f in RESERVED_FLAGS) + "))",
                    "extraArgs may not set flags the operator manages: "
                    + ", ".join(f"--{f}" for f in RESERVED_FLAGS),
                )
            ),
        ),
    ] = None
    """Extra tensorflow_model_server flags, each --flag=value."""
    env: Annotated[list[EnvVar] | None, Field(max_length=64)] = None
    """Extra environment variables of the serving container."""


# --- scale -----------------------------------------------------------------------------------------


class Autoscaling(_Model):
    """A HorizontalPodAutoscaler (autoscaling/v2) owning the replica count."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel(
                "self.minReplicas <= self.maxReplicas",
                "autoscaling.minReplicas must not exceed autoscaling.maxReplicas",
                field_path=".minReplicas",
            )
        )
    )

    min_replicas: Annotated[int, Field(ge=1, le=1000)] = 1
    """Fewest replicas."""
    max_replicas: Annotated[int, Field(ge=1, le=1000)]
    """Most replicas."""
    target_cpu_utilization: Annotated[int | None, Field(ge=1, le=100, alias="targetCPUUtilization")] = None
    """Average CPU utilization to aim for, percent of requests. Defaults to 80 when no target is set."""
    target_memory_utilization: Annotated[int | None, Field(ge=1, le=100)] = None
    """Average memory utilization to aim for, percent of requests."""
    metrics: Annotated[
        list[Annotated[dict[str, Any], Field(json_schema_extra=PRESERVE)]] | None, Field(max_length=16)
    ] = None
    """Further HPA v2 MetricSpecs, passed through unchanged."""
    behavior: Annotated[dict[str, Any] | None, Field(json_schema_extra=PRESERVE)] = None
    """HPA v2 scaling behavior, passed through unchanged."""


# --- resources and scheduling ----------------------------------------------------------------------


def _quantity_str(value: object) -> object:
    # The CRD declares quantities int-or-string (as Kubernetes does), so `cpu: 2` reaches the
    # operator as an int; pydantic does not coerce numbers to str, so normalise here.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


# Field before BeforeValidator: the other order drops `pattern` from the JSON schema (and the CRD).
Quantity = Annotated[
    str,
    Field(max_length=64, pattern=QUANTITY, json_schema_extra={"x-kubernetes-int-or-string": True}),
    BeforeValidator(_quantity_str),
]
ResourceName = Annotated[str, Field(max_length=253)]


class Resources(_Model):
    """CPU and memory of the serving container (GPUs go in spec.gpu)."""

    requests: Annotated[dict[ResourceName, Quantity] | None, Field(max_length=16)] = None
    """Requested resources, for example {cpu: 500m, memory: 1Gi}."""
    limits: Annotated[dict[ResourceName, Quantity] | None, Field(max_length=16)] = None
    """Resource limits."""


class Gpu(_Model):
    """GPUs per replica; adds the GPU resource, product node selector and GPU taint toleration."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel(
                "!has(self.migProfile) || self.resourceName == 'nvidia.com/gpu'",
                "set either migProfile or a custom resourceName, not both",
                field_path=".migProfile",
            )
        )
    )

    count: Annotated[int, Field(ge=1, le=16)] = 1
    """GPUs per replica (requests equal limits)."""
    resource_name: Annotated[str, Field(max_length=253, pattern=QUALIFIED_NAME)] = "nvidia.com/gpu"
    """Extended resource name of the device plugin."""
    product: Annotated[str | None, Field(max_length=63, pattern=LABEL_VALUE)] = None
    """Required value of the node label nvidia.com/gpu.product, for example NVIDIA-A100-SXM4-80GB."""
    mig_profile: Annotated[str | None, Field(max_length=32, pattern=r"^[1-9]g\.[0-9]+gb(\.me)?$")] = None
    """A MIG slice such as 1g.10gb: requests nvidia.com/mig-<profile> instead of whole GPUs."""


class Toleration(_Model):
    """A Kubernetes toleration."""

    key: Annotated[str | None, Field(max_length=253)] = None
    """Taint key; empty with operator Exists tolerates everything."""
    operator: Literal["Exists", "Equal"] | None = None
    """Exists or Equal (the default)."""
    value: Annotated[str | None, Field(max_length=63)] = None
    """Taint value for Equal."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect; empty matches all."""
    toleration_seconds: int | None = None
    """How long a NoExecute taint is tolerated."""


class Scheduling(_Model):
    """Where serving pods may run."""

    node_selector: Annotated[
        dict[Annotated[str, Field(max_length=253)], Annotated[str, Field(max_length=63)]] | None,
        Field(max_length=32),
    ] = None
    """Node labels the pods require."""
    tolerations: Annotated[list[Toleration] | None, Field(max_length=32)] = None
    """Taints the pods tolerate (the GPU taint is tolerated automatically when gpu is set)."""
    affinity: Annotated[dict[str, Any] | None, Field(json_schema_extra=PRESERVE)] = None
    """A Kubernetes Affinity, passed through unchanged."""
    priority_class_name: Annotated[str | None, Field(max_length=253, pattern=DNS_SUBDOMAIN)] = None
    """PriorityClass of the pods."""
    topology_spread_constraints: Annotated[
        list[Annotated[dict[str, Any], Field(json_schema_extra=PRESERVE)]] | None, Field(max_length=8)
    ] = None
    """Kubernetes TopologySpreadConstraints, passed through unchanged."""


# --- monitoring and service ------------------------------------------------------------------------


class Monitoring(_Model):
    """A Prometheus Operator ServiceMonitor scraping TF Serving's metrics."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel(
                "!has(self.scrapeTimeout) || !has(self.interval) || "
                "duration(self.scrapeTimeout) <= duration(self.interval)",
                # Name the default: setting only `interval: 5s` trips over scrapeTimeout's 10s default.
                "monitoring.scrapeTimeout (default 10s) must not exceed monitoring.interval",
                field_path=".scrapeTimeout",
            )
        )
    )

    enabled: bool = False
    """Create a ServiceMonitor (needs the Prometheus Operator's CRD)."""
    interval: Annotated[str, Field(max_length=16, pattern=DURATION)] = "30s"
    """Scrape interval."""
    scrape_timeout: Annotated[str, Field(max_length=16, pattern=DURATION)] = "10s"
    """Scrape timeout; at most interval."""
    labels: Annotated[
        dict[Annotated[str, Field(max_length=253)], Annotated[str, Field(max_length=63)]] | None,
        Field(max_length=16),
    ] = None
    """Extra labels on the ServiceMonitor, for a Prometheus serviceMonitorSelector."""


class ServiceType(StrEnum):
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"


class ServiceSettings(_Model):
    """The Service in front of the serving pods."""

    type: ServiceType = ServiceType.CLUSTER_IP
    """Service type."""
    annotations: Annotated[
        dict[Annotated[str, Field(max_length=253)], Annotated[str, Field(max_length=4096)]] | None,
        Field(max_length=32),
    ] = None
    """Annotations of the Service, for example for a load balancer."""


# --- network policy --------------------------------------------------------------------------------

LabelMap = Annotated[
    dict[Annotated[str, Field(max_length=253)], Annotated[str, Field(max_length=63)]] | None,
    Field(max_length=16),
]


class NetworkPolicyClient(_Model):
    """Pods allowed to call the model. Within one entry every condition must hold; entries are
    alternatives. An entry without namespaces or namespaceLabels means the ModelDeployment's namespace."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel(
                "!(has(self.namespaces) && has(self.namespaceLabels))",
                "set namespaces or namespaceLabels in one allowedClients entry, not both",
                field_path=".namespaceLabels",
            )
        )
    )

    namespaces: Annotated[
        list[Annotated[str, Field(max_length=63, pattern=NAME_PATTERN_DNS_LABEL)]] | None,
        Field(min_length=1, max_length=32),
    ] = None
    """Names of the client namespaces."""
    namespace_labels: LabelMap = None
    """Labels of the client namespaces (instead of their names)."""
    pod_labels: LabelMap = None
    """Labels of the client pods; every pod of the selected namespaces when absent."""


class NetworkPolicySettings(_Model):
    """A NetworkPolicy admitting traffic to the serving pods only from the listed clients, and only on
    the gRPC (8500) and REST (8501) ports; every other ingress to the pods is denied. Needs a network
    plugin that enforces NetworkPolicies. A Prometheus scraping the pods must be listed as a client."""

    allowed_clients: Annotated[list[NetworkPolicyClient], Field(max_length=32)] = []
    """Who may connect; an empty list admits nobody."""


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
    conditions: Annotated[
        list[Condition] | None,
        Field(
            max_length=16,
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        ),
    ] = None
    """Ready (the roll-up), Available, Progressing, DeploymentReady, ServiceReady, AutoscalerReady,
    MonitoringReady, Suspended."""


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
