"""spec.model and spec.serving: what is served and how TF Serving runs."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BeforeValidator, ConfigDict, Field

from modelserve import contract
from modelserve.api.base import (
    DNS_SUBDOMAIN,
    ENV_NAME,
    EXTRA_ARG,
    MODEL_NAME,
    PRESERVE,
    QUANTITY,
    RESERVED_FLAGS,
    STORAGE_URI,
    VERSION_LABEL,
    _Model,
    cel,
    cel_string,
    rules,
)
from modelserve.api.cache import ModelCache
from modelserve.api.workload import _quantity_str

# The fetcher downloads an http(s) URL as an archive and tells the kind by its suffix (any case), in
# the path before a query string or fragment (presigned URLs).
HTTP_ARCHIVE: Final = (
    r"^https?://[^?#]*\.(?i:"
    + "|".join(s.lstrip(".").replace(".", r"\.") for s in contract.ARCHIVE_SUFFIXES)
    + r")([?#].*)?$"
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

    versions: Annotated[
        list[Annotated[int, Field(ge=0)]],
        Field(
            min_length=1,
            max_length=64,
            json_schema_extra=rules(
                cel(
                    "self.all(v, self.exists_one(w, w == v))",
                    "versionPolicy.specific.versions may list each version only once",
                )
            ),
        ),
    ]
    """Version numbers to serve, each once: the names of numbered folders under storageUri (at most 64)."""


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
                "!self.storageUri.matches('^https?://') || self.storageUri.matches("
                + cel_string(HTTP_ARCHIVE)
                + ")",
                "an http(s) storageUri must name an archive ending in "
                + ", ".join(contract.ARCHIVE_SUFFIXES)
                + " (a query string may follow)",
                field_path=".storageUri",
            ),
            cel(
                "!has(self.cache) || !self.storageUri.startsWith('pvc://')",
                "cache cannot be used with a pvc:// storageUri: the claim is already shared and mounted "
                "directly",
                field_path=".cache",
            ),
            cel(
                "!has(self.size) || (!has(self.cache) && !self.storageUri.startsWith('pvc://'))",
                "size is the per-pod emptyDir's: with a cache set cache.size, with a pvc:// storageUri "
                "the claim holds the model",
                field_path=".size",
            ),
            cel(
                "!has(self.credentialsSecret) || !self.storageUri.startsWith('pvc://')",
                "credentialsSecret cannot be used with a pvc:// storageUri: the volume is mounted directly",
                field_path=".credentialsSecret",
            ),
        )
    )

    size: Annotated[
        str | None,
        Field(max_length=64, pattern=QUANTITY, json_schema_extra={"x-kubernetes-int-or-string": True}),
        BeforeValidator(_quantity_str),
    ] = None
    """On-disk size of the served versions plus one version being fetched, for example 20Gi: the size
    limit of each pod's model emptyDir and its ephemeral-storage request, so the scheduler places the
    pod where the disk has room and a model growing past it evicts only its own pod. Not with cache
    (set cache.size) or pvc:// (the claim holds the model)."""
    poll_seconds: Annotated[int, Field(ge=0, le=86400)] = contract.DEFAULT_POLL_SECONDS
    """How often the model sync asks the store for new versions, in seconds (0: fetch once at start).
    Each poll is one listing request; see docs/models.md for why not TF Serving's 1 s."""
    cache: ModelCache | None = None
    """A shared claim holding the served versions, filled once for all replicas by the
    `<name>-model-sync` Deployment; without it every pod downloads the served versions itself."""
    name: Annotated[str | None, Field(max_length=63, pattern=MODEL_NAME)] = None
    """TF Serving model name, used in request paths (/v1/models/<name>). Defaults to metadata.name."""
    storage_uri: Annotated[str, Field(max_length=2048, pattern=STORAGE_URI)]
    """Where the model's numbered version folders (1/, 2/, ...) live: gs://bucket/path, s3://bucket/path,
    an http(s):// URL of a .tar.gz, .tgz, .tar or .zip archive (a query string may follow), or
    pvc://<claim>/<path> inside a PersistentVolumeClaim of the same namespace."""
    credentials_secret: Annotated[str | None, Field(max_length=253, pattern=DNS_SUBDOMAIN)] = None
    """Name of a Secret in the same namespace holding storage credentials; mounted only into the model
    sync container (the sidecar, or the sync Deployment with a cache). See serving-image/README.md
    for its keys; a rotated Secret is picked up at the next poll."""
    # No default in the CRD: a stored {latest: {count: 1}} would stay beside the `specific` or `all` a
    # later kubectl apply (client- or server-side) adds, and the exactly-one rule would refuse the
    # change. Absent means the latest version only, the default below.
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
            # TF Serving refuses to start otherwise ("allowed_batch_sizes entries must be monotonically
            # increasing"): a crash loop on every replica.
            cel(
                "!has(self.allowedBatchSizes) || (self.allowedBatchSizes.isSorted() && "
                "self.allowedBatchSizes.all(s, self.allowedBatchSizes.exists_one(t, t == s)))",
                "allowedBatchSizes must be strictly increasing, for example [8, 16, 32]",
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
    """Batch sizes to pad to, strictly increasing; the last must equal maxBatchSize."""
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
