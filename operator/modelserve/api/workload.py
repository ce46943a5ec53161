"""spec.autoscaling, resources, gpu, scheduling, monitoring, service and networkPolicy."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import BeforeValidator, ConfigDict, Field

from modelserve.api.base import (
    DNS_SUBDOMAIN,
    DURATION,
    LABEL_VALUE,
    NAME_PATTERN_DNS_LABEL,
    PRESERVE,
    QUALIFIED_NAME,
    QUANTITY,
    _Model,
    cel,
    cel_string,
    rules,
)

# --- scale -----------------------------------------------------------------------------------------


class LatencyTarget(_Model):
    """A latency percentile computed from TF Serving's request_latency histogram
    (:tensorflow:serving:request_latency_bucket) across all replicas."""

    percentile: Literal[50, 90, 95, 99] = 99
    """Which percentile: 50, 90, 95 or 99."""
    milliseconds: Annotated[int, Field(ge=1, le=600000)]
    """Latency to hold the percentile at, in milliseconds; replicas are added while it is above."""


class PrometheusTarget(_Model):
    """A PromQL query whose result is held at a target (KEDA's prometheus scaler)."""

    # The schema's fractional minimum is not enough: the API server checks a whole-number value
    # against the minimum truncated to an integer (0 passes `minimum: 0.001`).
    model_config = ConfigDict(
        json_schema_extra=rules(
            cel("self.target >= 0.001", "prometheus[].target must be greater than 0", field_path=".target")
        )
    )

    name: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$")]
    """Names the metric in the autoscaler (lowercase letters, digits and '-')."""
    query: Annotated[str, Field(min_length=1, max_length=4096)]
    """A PromQL expression returning one sample, for example
    sum(rate(my_queue_depth{model="resnet"}[1m]))."""
    target: Annotated[float, Field(ge=0.001, le=1e9)]
    """The value to hold the query at."""
    target_type: Literal["AverageValue", "Value"] = "AverageValue"
    """AverageValue: the target is per replica (the query is a total, like a request rate);
    Value: the query's value itself is held at the target (like a latency)."""


class Autoscaling(_Model):
    """Replicas follow CPU or memory (a HorizontalPodAutoscaler), or serving load and scale to zero
    (a KEDA ScaledObject, which owns the HPA it creates). See docs/autoscaling.md."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel(
                "self.minReplicas <= self.maxReplicas",
                "autoscaling.minReplicas must not exceed autoscaling.maxReplicas",
                field_path=".minReplicas",
            ),
            cel(
                "!has(self.targetRequestsPerSecond) || self.targetRequestsPerSecond >= 0.01",
                "autoscaling.targetRequestsPerSecond must be greater than 0 (at least 0.01 per replica)",
                field_path=".targetRequestsPerSecond",
            ),
            cel(
                "self.minReplicas != 0 || has(self.idleWindow)",
                "autoscaling.idleWindow is required with minReplicas: 0: how long a model must go "
                "without requests before it scales to zero, for example 5m",
                field_path=".idleWindow",
            ),
            cel(
                "self.minReplicas != 0 || has(self.targetRequestsPerSecond) || has(self.targetLatency) "
                "|| has(self.prometheus)",
                "autoscaling.minReplicas: 0 needs a load target (targetRequestsPerSecond, targetLatency "
                "or prometheus): CPU and memory cannot tell that a model is idle",
                field_path=".minReplicas",
            ),
            cel(
                "!has(self.metrics) || !(self.minReplicas == 0 || has(self.targetRequestsPerSecond) "
                "|| has(self.targetLatency) || has(self.prometheus))",
                "autoscaling.metrics (raw HPA MetricSpecs) cannot be combined with load targets or "
                "minReplicas: 0 (those run on KEDA); express them as autoscaling.prometheus queries",
                field_path=".metrics",
            ),
            cel(
                "!has(self.idleWindow) || (duration(self.idleWindow) >= duration('10s') "
                "&& duration(self.idleWindow) <= duration('24h'))",
                "autoscaling.idleWindow must be between 10s and 24h",
                field_path=".idleWindow",
            ),
        )
    )

    min_replicas: Annotated[int, Field(ge=0, le=1000)] = 1
    """Fewest replicas; 0 scales the model to zero after idleWindow without requests (needs a load
    target and KEDA; the activator holds the first request while a replica starts)."""
    max_replicas: Annotated[int, Field(ge=1, le=1000)]
    """Most replicas."""
    target_cpu_utilization: Annotated[int | None, Field(ge=1, le=100, alias="targetCPUUtilization")] = None
    """Average CPU utilization to aim for, percent of requests. Defaults to 80 when no target is set
    (not for GPU models, which must name a target)."""
    target_memory_utilization: Annotated[int | None, Field(ge=1, le=100)] = None
    """Average memory utilization to aim for, percent of requests."""
    target_requests_per_second: Annotated[float | None, Field(ge=0.01, le=1000000)] = None
    """Requests per second per replica to aim for, from TF Serving's
    :tensorflow:serving:request_count (needs Prometheus scraping the model and KEDA)."""
    target_latency: LatencyTarget | None = None
    """A latency percentile to hold, from TF Serving's request_latency histogram (needs Prometheus
    and KEDA)."""
    prometheus: Annotated[list[PrometheusTarget] | None, Field(min_length=1, max_length=4)] = None
    """Custom PromQL queries with targets (needs Prometheus and KEDA)."""
    idle_window: Annotated[str | None, Field(max_length=16, pattern=DURATION)] = None
    """With minReplicas: 0, how long without requests before scaling to zero, for example 5m
    (KEDA's cooldownPeriod); 10s to 24h."""
    metrics: Annotated[
        list[Annotated[dict[str, Any], Field(json_schema_extra=PRESERVE)]] | None, Field(max_length=16)
    ] = None
    """Further HPA v2 MetricSpecs, passed through unchanged (plain HPA only)."""
    behavior: Annotated[dict[str, Any] | None, Field(json_schema_extra=PRESERVE)] = None
    """HPA v2 scaling behavior, passed through unchanged (also to the HPA KEDA creates)."""

    @property
    def load_targets(self) -> bool:
        """Whether any target needs Prometheus (and so KEDA)."""
        return bool(self.target_requests_per_second or self.target_latency or self.prometheus)

    @property
    def uses_keda(self) -> bool:
        """Load targets and scale to zero run on KEDA; CPU/memory alone keep a plain HPA."""
        return self.load_targets or self.min_replicas == 0


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

# Extended resources of the GPU device plugins (NVIDIA whole GPUs, time-sliced `nvidia.com/gpu.shared`
# and MIG slices, AMD, Intel). spec.gpu is the one place a GPU count is stated: the same resource in
# spec.resources would be a second count, and a copy of it on another container reserves GPUs twice.
GPU_RESOURCE_PREFIXES: Final = ("nvidia.com/gpu", "nvidia.com/mig-", "amd.com/gpu", "gpu.intel.com/")
_NOT_GPU = "self.all(k, !(" + " || ".join(f"k.startsWith('{p}')" for p in GPU_RESOURCE_PREFIXES) + "))"


def _no_gpu_rule(field: str) -> dict[str, Any]:
    return rules(
        cel(
            _NOT_GPU,
            f"resources.{field} may not name a GPU resource ("
            + ", ".join(p + ("*" if p.endswith(("-", "/")) else "") for p in GPU_RESOURCE_PREFIXES)
            + "): set GPUs in spec.gpu (count, resourceName, migProfile)",
        )
    )


class Resources(_Model):
    """CPU and memory of the serving container (GPUs go in spec.gpu)."""

    requests: Annotated[
        dict[ResourceName, Quantity] | None, Field(max_length=16, json_schema_extra=_no_gpu_rule("requests"))
    ] = None
    """Requested resources, for example {cpu: 500m, memory: 1Gi}. No GPU resources: see spec.gpu."""
    limits: Annotated[
        dict[ResourceName, Quantity] | None, Field(max_length=16, json_schema_extra=_no_gpu_rule("limits"))
    ] = None
    """Resource limits. No GPU resources: see spec.gpu."""


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


def _duration_ok(field: str) -> str:
    return f"(has(self.{field}) && self.{field} != '' && self.{field}.matches({cel_string(DURATION)}))"


class Monitoring(_Model):
    """A Prometheus Operator ServiceMonitor scraping TF Serving's metrics."""

    # Each rule first checks the pattern: CEL rules run even when a pattern already failed, and
    # duration() of "30" is an internal type conversion error rather than a message.
    model_config = ConfigDict(
        json_schema_extra=rules(
            cel(
                f"!{_duration_ok('interval')} || duration(self.interval) > duration('0s')",
                "monitoring.interval must be longer than 0s",
                field_path=".interval",
            ),
            cel(
                f"!{_duration_ok('scrapeTimeout')} || duration(self.scrapeTimeout) > duration('0s')",
                "monitoring.scrapeTimeout must be longer than 0s",
                field_path=".scrapeTimeout",
            ),
            cel(
                f"!{_duration_ok('scrapeTimeout')} || !{_duration_ok('interval')} || "
                "duration(self.scrapeTimeout) <= duration(self.interval)",
                # Name the default: setting only `interval: 5s` trips over scrapeTimeout's 10s default.
                "monitoring.scrapeTimeout (default 10s) must not exceed monitoring.interval",
                field_path=".scrapeTimeout",
            ),
        )
    )

    enabled: bool = False
    """Create a ServiceMonitor (needs the Prometheus Operator's CRD)."""
    interval: Annotated[str, Field(min_length=1, max_length=16, pattern=DURATION)] = "30s"
    """Scrape interval, a Prometheus duration such as 30s or 1m30s (units h, m, s, ms in that order)."""
    scrape_timeout: Annotated[str, Field(min_length=1, max_length=16, pattern=DURATION)] = "10s"
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
