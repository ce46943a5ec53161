"""The contract between the operator and the shared serving image, defined once.

The operator's builders render pods from these names; the serving image's entrypoint, fetcher and
readiness check read the same names. Both sides import this module (stdlib only, so the image can
ship it without the operator's dependencies), and tests on both sides check against it.
"""

from __future__ import annotations

from typing import Final

# Ports and paths TF Serving listens on.
GRPC_PORT: Final = 8500
REST_PORT: Final = 8501
GRPC_PORT_NAME: Final = "grpc"
REST_PORT_NAME: Final = "http"
METRICS_PATH: Final = "/monitoring/prometheus/metrics"
# `sync` exports what it last did (degraded, failures, versions on disk) for Prometheus here: in
# per-pod mode the only place a store outage shows, since the sidecar's readiness would take a pod
# that still serves out of the Service.
SYNC_METRICS_PORT: Final = 8502
SYNC_METRICS_PORT_NAME: Final = "sync-metrics"
SYNC_METRICS_PATH: Final = "/metrics"

# The `<name>-tfserving` ConfigMap is mounted read-only here; its keys are these file names.
CONFIG_DIR: Final = "/etc/modelserve"
MODEL_CONFIG_FILE: Final = "models.config"
MONITORING_CONFIG_FILE: Final = "monitoring.config"
BATCHING_CONFIG_FILE: Final = "batching.config"
# TF Serving re-reads the model config file this often, so label and policy changes need no restart.
MODEL_CONFIG_POLL_SECONDS: Final = 10

# The model fetcher writes the model into this emptyDir; TF Serving's base path is MODEL_ROOT/<model name>.
MODEL_ROOT: Final = "/models"
# Credentials from `credentialsSecret` are mounted here, into the fetch init container only.
CREDENTIALS_DIR: Final = "/var/run/secrets/modelserve/storage"
# Scratch space for TF Serving and the fetcher (the root filesystem is read-only).
TMP_DIR: Final = "/tmp"

# Environment variables read by the serving image.
ENV_STORAGE_URI: Final = "MODELSERVE_STORAGE_URI"
ENV_MODEL_NAME: Final = "MODELSERVE_MODEL_NAME"
ENV_MODEL_ROOT: Final = "MODELSERVE_MODEL_ROOT"
ENV_CONFIG_DIR: Final = "MODELSERVE_CONFIG_DIR"
ENV_CREDENTIALS_DIR: Final = "MODELSERVE_CREDENTIALS_DIR"
ENV_ENABLE_BATCHING: Final = "MODELSERVE_ENABLE_BATCHING"
ENV_ENABLE_WARMUP: Final = "MODELSERVE_ENABLE_WARMUP"
ENV_STORAGE_CHECKSUM: Final = "MODELSERVE_STORAGE_SHA256"
# `sync`: seconds between polls of the store (0: fetch once, then only keep the process alive).
ENV_POLL_SECONDS: Final = "MODELSERVE_POLL_SECONDS"
# `sync`: "sidecar" (one pod's emptyDir, TF Serving on localhost) or "cache" (the shared cache claim).
ENV_SYNC_MODE: Final = "MODELSERVE_SYNC_MODE"
ENV_SYNC_STATE_FILE: Final = "MODELSERVE_SYNC_STATE_FILE"
ENV_SYNC_METRICS_PORT: Final = "MODELSERVE_SYNC_METRICS_PORT"  # 0 or unset: no metrics endpoint
SYNC_MODE_SIDECAR: Final = "sidecar"
SYNC_MODE_CACHE: Final = "cache"
DEFAULT_POLL_SECONDS: Final = 60
# What `sync` last did, for its probes (`sync-status`); per container (the tmp emptyDir), never on
# the shared cache, so a restarted or second sync never reads another one's word.
SYNC_STATE_FILE: Final = "/tmp/modelserve-sync.json"
# Staging directories live on the model volume (so publishing is a rename) but outside any base path.
STAGING_PREFIX: Final = ".staging-"

# The image's single executable and its subcommands (container command, init container, probe).
EXECUTABLE: Final = "modelserve-serving"
CMD_SERVE: Final = "serve"
CMD_FETCH: Final = "fetch"
CMD_READY: Final = "ready"
# preStop hook: keeps the pod serving while it leaves the Service's endpoints (`drain --seconds N`).
CMD_DRAIN: Final = "drain"
CMD_SYNC: Final = "sync"  # native sidecar (per pod) or the <name>-model-sync Deployment (cache)
CMD_SYNC_STATUS: Final = "sync-status"  # startup/readiness probe of `sync`

# Where a failing container writes its one-line reason; kubelet copies it into the pod status, and
# the operator reports it as `ModelFetchFailed: <reason>`.
TERMINATION_MESSAGE_PATH: Final = "/dev/termination-log"

# Exit codes of the image's commands.
EXIT_OK: Final = 0
EXIT_USAGE: Final = 2  # bad configuration or arguments: retrying will not help
EXIT_FETCH_FAILED: Final = 3  # the model could not be fetched (after retries for transient errors)
EXIT_BAD_LAYOUT: Final = 4  # fetched, but not a TF Serving layout (numeric version folders)
EXIT_NOT_READY: Final = 1  # readiness check: some served version is not AVAILABLE
# `sync` in cache mode: the store could not be reached for a whole poll (after retries); the cache
# keeps what it holds. Exiting hands the backoff to kubelet and the reason to the operator.
EXIT_SYNC_DEGRADED: Final = 5

# Non-root user of the image (restricted Pod Security Standard).
RUN_AS_USER: Final = 1000
RUN_AS_GROUP: Final = 1000

# Storage URI schemes the fetcher understands. `pvc://<claim>/<path>` is mounted, not copied.
STORAGE_SCHEMES: Final = ("gs", "s3", "http", "https", "pvc")
PVC_MOUNT_DIR: Final = "/mnt/models"
# An http(s) storageUri is downloaded as an archive of one of these kinds (by suffix, any case).
ARCHIVE_SUFFIXES: Final = (".tar.gz", ".tgz", ".tar", ".zip")
