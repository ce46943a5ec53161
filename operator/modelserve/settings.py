"""Operator settings: from command-line flags, falling back to MODELSERVE_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from ipaddress import IPv4Address
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, IPvAnyAddress, field_validator, model_validator

# Built from serving-image/ (`make image image-gpu`): <TF Serving version>-<operator version>[-gpu]; a unit
# test keeps the TF Serving version equal to the Dockerfile's base image.
DEFAULT_CPU_IMAGE: Final = "ghcr.io/modelserve/serving:2.21.0-0.1.0"
DEFAULT_GPU_IMAGE: Final = "ghcr.io/modelserve/serving:2.21.0-0.1.0-gpu"
# The activator's ports (its REST and gRPC ports are TF Serving's, so a Service's ports map 1:1).
ACTIVATOR_SCALER_PORT: Final = 9091
ACTIVATOR_METRICS_PORT: Final = 9090


class Settings(BaseModel):
    """Everything the operator can be told at start-up."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu_image: str = DEFAULT_CPU_IMAGE
    """Serving image for ModelDeployments without GPUs."""
    gpu_image: str = DEFAULT_GPU_IMAGE
    """Serving image for ModelDeployments with spec.gpu."""
    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means the whole cluster."""
    resync_seconds: Annotated[float, Field(gt=0)] = 300.0
    """How often every ModelDeployment is re-applied to undo drift nobody reported."""
    json_logs: bool = False
    """Log one JSON object per line."""
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 8080
    """Port of the Prometheus /metrics endpoint (0 turns it off)."""
    metrics_address: IPvAnyAddress = IPv4Address("0.0.0.0")
    """Address /metrics listens on: 0.0.0.0 for Prometheus to scrape the pod, 127.0.0.1 behind a proxy."""
    health_port: Annotated[int, Field(ge=0, le=65535)] = 8081
    """Port of the /healthz liveness endpoint (0 turns it off)."""
    watch_stall_seconds: Annotated[float, Field(gt=0)] = 600.0
    """/healthz fails when no watch event or resync arrived for this long."""
    serving_fixed_ids: bool = True
    """Serving pods run as the image's UID/GID 1000 with fsGroup 1000; off for OpenShift (restricted-v2)."""
    workers: Annotated[int, Field(ge=1, le=64)] = 8
    """ModelDeployments reconciled at once (each reconcile runs in a thread: the client blocks)."""
    retry_delay_seconds: Annotated[float, Field(gt=0)] = 2.0
    """Delay before retrying a conflict, throttling or server error (instead of kopf's 60 s)."""
    leader_election: bool = True
    """Take a coordination.k8s.io Lease before writing anything; replicas without it stand by."""
    lease_name: Annotated[str, Field(min_length=1, max_length=253)] = "modelserve-operator"
    """Name of the leader Lease."""
    lease_namespace: str = ""
    """Namespace of the leader Lease; empty: POD_NAMESPACE, else the first watched namespace, else
    `default`."""
    lease_duration_seconds: Annotated[float, Field(gt=0)] = 10.0
    """How long a standby waits after the last renewal it saw before taking the lease. Shorter than
    client-go's 15 s so that a failover (this plus up to two retry periods plus a reconcile) stays
    under 15 s; the fence keeps the lease duration minus the renew deadline (3 s) as its margin."""
    renew_deadline_seconds: Annotated[float, Field(gt=0)] = 7.0
    """A leader that could not renew for this long stops writing (before the lease can expire for
    the others)."""
    retry_period_seconds: Annotated[float, Field(gt=0)] = 2.0
    """How often the leader renews and a standby tries to acquire."""
    identity: str = ""
    """This replica's name in the Lease; empty: POD_NAME, else hostname and a random suffix."""

    @model_validator(mode="after")
    def _lease_timing(self) -> Settings:
        # The fence only holds if the leader stops before the others may start, and renews often
        # enough to keep leading (client-go refuses the same settings).
        if not self.lease_duration_seconds > self.renew_deadline_seconds > self.retry_period_seconds:
            raise ValueError(
                "lease timing: need lease_duration_seconds > renew_deadline_seconds > "
                f"retry_period_seconds, got {self.lease_duration_seconds} / "
                f"{self.renew_deadline_seconds} / {self.retry_period_seconds}"
            )
        return self

    # --- autoscaling on load (docs/autoscaling.md) ---
    prometheus_url: str = ""
    """Prometheus that scrapes the models (KEDA queries it for load targets, the rollout analysis for
    its checks); empty: load targets are refused in status (PrometheusNotConfigured), and a rollout
    without spec.rollout.analysis.prometheusURL cannot pass a step."""
    sync_health_seconds: Annotated[float, Field(gt=0)] = 30.0
    """With prometheus_url: how often the leader asks it (one cluster-wide query) whether the model
    sync sidecars of models without a cache reach the store (ModelSyncDegraded)."""
    rate_window: Annotated[str, Field(pattern=r"^[0-9]+(s|m)$")] = "1m"
    """Range of rate() in the queries for requests per second and latency."""
    keda_polling_seconds: Annotated[int, Field(ge=1, le=3600)] = 15
    """How often KEDA evaluates the triggers (its pollingInterval)."""
    activator_namespace: str = "modelserve-system"
    """Namespace of the activator's Service (the chart sets the release namespace)."""
    activator_service: str = "modelserve-activator"
    """The activator's Service: its ready endpoints receive a model's traffic while it has no pod."""
    activator_scaler_address: str = ""
    """host:port of the activator's KEDA external scaler; default <service>.<namespace>.svc:9091."""

    @property
    def scaler_address(self) -> str:
        return self.activator_scaler_address or (
            f"{self.activator_service}.{self.activator_namespace}.svc:{ACTIVATOR_SCALER_PORT}"
        )

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split_namespaces(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(ns.strip() for ns in value.split(",") if ns.strip())
        return value


ENV_PREFIX: Final = "MODELSERVE_"


def from_env(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Settings from MODELSERVE_<FIELD> variables, with explicit overrides (flags) taking precedence."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for field in Settings.model_fields:
        key = ENV_PREFIX + field.upper()
        if key in environ:
            values[field] = environ[key]
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings.model_validate(values)
