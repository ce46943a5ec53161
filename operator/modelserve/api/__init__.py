"""The ModelDeployment API (modelserve.dev/v1alpha1): the single source of truth.

`crd/` turns these models into the CustomResourceDefinition in `crds/`. Everything the API server
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

# The public names: what the operator, the CRD generator and the tests use. Patterns, CEL helpers and
# the base model stay in their modules (import them from modelserve.api.base where needed).
from modelserve.api.base import (
    API_VERSION,
    CATEGORIES,
    GROUP,
    KIND,
    MAX_NAME_LENGTH,
    PLURAL,
    QUANTITY,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
)
from modelserve.api.cache import ModelCache
from modelserve.api.disruption import Disruption
from modelserve.api.model import (
    AllPolicy,
    Batching,
    EnvVar,
    LatestPolicy,
    ModelSource,
    Serving,
    SpecificPolicy,
    VersionPolicy,
)
from modelserve.api.resource import (
    Condition,
    ConditionStatus,
    Endpoints,
    ModelDeployment,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    parse,
)
from modelserve.api.rollout import (
    ROLLOUT_ACTION_ANNOTATION as ROLLOUT_ACTION_ANNOTATION,
)
from modelserve.api.rollout import (
    Analysis as Analysis,
)
from modelserve.api.rollout import (
    CustomCheck as CustomCheck,
)
from modelserve.api.rollout import (
    GatewayAPI as GatewayAPI,
)
from modelserve.api.rollout import (
    Rollout as Rollout,
)
from modelserve.api.rollout import (
    RolloutStatus as RolloutStatus,
)
from modelserve.api.workload import (
    GPU_RESOURCE_PREFIXES,
    Autoscaling,
    Gpu,
    LabelMap,
    LatencyTarget,
    Monitoring,
    NetworkPolicyClient,
    NetworkPolicySettings,
    PrometheusTarget,
    Quantity,
    ResourceName,
    Resources,
    Scheduling,
    ServiceSettings,
    ServiceType,
    Toleration,
)

__all__ = [
    "API_VERSION",
    "CATEGORIES",
    "GPU_RESOURCE_PREFIXES",
    "GROUP",
    "KIND",
    "MAX_NAME_LENGTH",
    "PLURAL",
    "QUANTITY",
    "SHORT_NAMES",
    "SINGULAR",
    "VERSION",
    "AllPolicy",
    "Autoscaling",
    "Batching",
    "Condition",
    "ConditionStatus",
    "Disruption",
    "Endpoints",
    "EnvVar",
    "Gpu",
    "LabelMap",
    "LatencyTarget",
    "LatestPolicy",
    "ModelCache",
    "ModelDeployment",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "ModelSource",
    "Monitoring",
    "NetworkPolicyClient",
    "NetworkPolicySettings",
    "PrometheusTarget",
    "Quantity",
    "ResourceName",
    "Resources",
    "Scheduling",
    "ServiceSettings",
    "ServiceType",
    "Serving",
    "SpecificPolicy",
    "Toleration",
    "VersionPolicy",
    "parse",
]
