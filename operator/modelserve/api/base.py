"""Names, shared patterns, CEL helpers and the base model of the ModelDeployment API."""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, ConfigDict
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
# Prometheus' duration syntax (the ServiceMonitor CRD refuses anything else: no fractions, units in
# this order), restricted to the units Go's time.ParseDuration (CEL duration()) also reads.
# Fields using it set min_length=1: the pattern alone matches the empty string.
DURATION = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$"
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


def cel_string(value: str) -> str:
    """A CEL single-quoted string literal of `value` (regular expressions keep their backslashes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


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
