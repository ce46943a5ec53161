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

from modelserve.api.base import (
    API_VERSION as API_VERSION,
)
from modelserve.api.base import (
    CATEGORIES as CATEGORIES,
)
from modelserve.api.base import (
    DNS_SUBDOMAIN as DNS_SUBDOMAIN,
)
from modelserve.api.base import (
    DURATION as DURATION,
)
from modelserve.api.base import (
    ENV_NAME as ENV_NAME,
)
from modelserve.api.base import (
    EXTRA_ARG as EXTRA_ARG,
)
from modelserve.api.base import (
    GROUP as GROUP,
)
from modelserve.api.base import (
    KIND as KIND,
)
from modelserve.api.base import (
    LABEL_VALUE as LABEL_VALUE,
)
from modelserve.api.base import (
    MAX_NAME_LENGTH as MAX_NAME_LENGTH,
)
from modelserve.api.base import (
    MODEL_NAME as MODEL_NAME,
)
from modelserve.api.base import (
    NAME_PATTERN as NAME_PATTERN,
)
from modelserve.api.base import (
    NAME_PATTERN_DNS_LABEL as NAME_PATTERN_DNS_LABEL,
)
from modelserve.api.base import (
    PLURAL as PLURAL,
)
from modelserve.api.base import (
    PRESERVE as PRESERVE,
)
from modelserve.api.base import (
    QUALIFIED_NAME as QUALIFIED_NAME,
)
from modelserve.api.base import (
    QUANTITY as QUANTITY,
)
from modelserve.api.base import (
    RESERVED_FLAGS as RESERVED_FLAGS,
)
from modelserve.api.base import (
    SHORT_NAMES as SHORT_NAMES,
)
from modelserve.api.base import (
    SINGULAR as SINGULAR,
)
from modelserve.api.base import (
    STORAGE_URI as STORAGE_URI,
)
from modelserve.api.base import (
    VERSION as VERSION,
)
from modelserve.api.base import (
    VERSION_LABEL as VERSION_LABEL,
)
from modelserve.api.base import (
    _Model as _Model,
)
from modelserve.api.base import (
    cel as cel,
)
from modelserve.api.base import (
    rules as rules,
)
from modelserve.api.model import (
    DEFAULT_VERSION_POLICY as DEFAULT_VERSION_POLICY,
)
from modelserve.api.model import (
    AllPolicy as AllPolicy,
)
from modelserve.api.model import (
    Batching as Batching,
)
from modelserve.api.model import (
    EnvVar as EnvVar,
)
from modelserve.api.model import (
    LatestPolicy as LatestPolicy,
)
from modelserve.api.model import (
    ModelSource as ModelSource,
)
from modelserve.api.model import (
    Serving as Serving,
)
from modelserve.api.model import (
    SpecificPolicy as SpecificPolicy,
)
from modelserve.api.model import (
    VersionPolicy as VersionPolicy,
)
from modelserve.api.resource import (
    Condition as Condition,
)
from modelserve.api.resource import (
    ConditionStatus as ConditionStatus,
)
from modelserve.api.resource import (
    Endpoints as Endpoints,
)
from modelserve.api.resource import (
    ModelDeployment as ModelDeployment,
)
from modelserve.api.resource import (
    ModelDeploymentSpec as ModelDeploymentSpec,
)
from modelserve.api.resource import (
    ModelDeploymentStatus as ModelDeploymentStatus,
)
from modelserve.api.resource import (
    parse as parse,
)
from modelserve.api.workload import (
    GPU_RESOURCE_PREFIXES as GPU_RESOURCE_PREFIXES,
)
from modelserve.api.workload import (
    Autoscaling as Autoscaling,
)
from modelserve.api.workload import (
    Gpu as Gpu,
)
from modelserve.api.workload import (
    LabelMap as LabelMap,
)
from modelserve.api.workload import (
    Monitoring as Monitoring,
)
from modelserve.api.workload import (
    NetworkPolicyClient as NetworkPolicyClient,
)
from modelserve.api.workload import (
    NetworkPolicySettings as NetworkPolicySettings,
)
from modelserve.api.workload import (
    Quantity as Quantity,
)
from modelserve.api.workload import (
    ResourceName as ResourceName,
)
from modelserve.api.workload import (
    Resources as Resources,
)
from modelserve.api.workload import (
    Scheduling as Scheduling,
)
from modelserve.api.workload import (
    ServiceSettings as ServiceSettings,
)
from modelserve.api.workload import (
    ServiceType as ServiceType,
)
from modelserve.api.workload import (
    Toleration as Toleration,
)
from modelserve.api.workload import (
    _quantity_str as _quantity_str,
)
