"""Where the model lives (pure): the source URI, the model volume and its mounts, the sync
container, the cache claim. The Deployment builders ask this module and nothing else about it.

Three ways a pod gets its versions:
- fetched (gs://, s3://, http(s) archives), no cache: the `model-sync` native sidecar (an init
  container with restartPolicy Always) fills the pod's emptyDir and keeps it holding exactly the
  served versions; TF Serving starts once its startup probe says the first fetch is done;
- fetched, with spec.model.cache: the `<name>-model-sync` Deployment fills one shared claim, which
  serving pods mount read-only: they download nothing and hold no credentials;
- pvc://<claim>/<path>: the claim is mounted read-only as it is; the sidecar only checks the layout.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any, Final

from modelserve import api, contract, naming
from modelserve.builders.containers import (
    container_security_context,
    env,
    mount,
    serving_image,
    with_pull_policy,
)
from modelserve.settings import Settings

PVC_SCHEME: Final = "pvc://"
PVC_VOLUME: Final = "model-pvc"
SECRET_MODE: Final = 0o440  # readable by the pod's fsGroup, not world

# Small and fixed: a native sidecar's requests add to the pod's for its whole life (effective
# request = max(largest init container, sum of app containers and sidecars)), and copying objects
# to disk needs little CPU. The memory limit leaves room for fsspec's buffers of 8 concurrent
# transfers and for archive extraction (streamed, so independent of the archive's size). Never a GPU.
SYNC_RESOURCES: Final = {
    "requests": {"cpu": "100m", "memory": "256Mi"},
    "limits": {"memory": "1Gi"},
}
# The first fetch of a large model may take long: startup allows two hours before kubelet restarts
# the sync (which would start the fetch over).
SYNC_STARTUP_PERIOD_SECONDS: Final = 5
SYNC_STARTUP_FAILURE_THRESHOLD: Final = 1440


@dataclass(frozen=True)
class PvcSource:
    """A `pvc://<claim>/<path>` storage URI: the claim is mounted read-only at PVC_MOUNT_DIR."""

    claim: str
    local_path: str


def pvc_source(md: api.ModelDeployment) -> PvcSource | None:
    """The claim and in-pod path of a pvc:// storage URI, or None for fetched URIs.

    The path is resolved as if the claim were the root (`..` stops there), so it can never point
    outside the mounted volume. Builders never raise: a reconcile must not fail on a spec the API
    server admitted, and a wrong path surfaces as ModelFetchFailed ("does not exist").
    """
    uri = md.spec.model.storage_uri
    if not uri.startswith(PVC_SCHEME):
        return None
    claim, _, path = uri[len(PVC_SCHEME) :].partition("/")
    relative = posixpath.normpath("/" + path).lstrip("/")
    local = f"{contract.PVC_MOUNT_DIR}/{relative}" if relative else contract.PVC_MOUNT_DIR
    return PvcSource(claim=claim, local_path=local)


def base_path(md: api.ModelDeployment) -> str:
    """Where TF Serving finds the numbered version folders inside the pod (the cache claim is
    mounted at the same MODEL_ROOT as the emptyDir, so the path does not depend on the cache)."""
    pvc = pvc_source(md)
    if pvc is not None:
        return pvc.local_path
    return f"{contract.MODEL_ROOT}/{md.model_name}"


def cached(md: api.ModelDeployment) -> bool:
    return md.spec.model.cache is not None and pvc_source(md) is None


def cache_claim(md: api.ModelDeployment) -> str | None:
    """The claim holding the shared cache: an existing one (claimName) or the one we create."""
    cache = md.spec.model.cache
    if cache is None or not cached(md):
        return None
    return cache.claim_name or naming.model_cache_claim_name(md)


def _config_volume(md: api.ModelDeployment) -> dict[str, Any]:
    return {"name": naming.CONFIG_VOLUME, "configMap": {"name": naming.config_map_name(md)}}


def _credentials_volume(md: api.ModelDeployment) -> list[dict[str, Any]]:
    secret = md.spec.model.credentials_secret
    if not secret:
        return []
    return [{"name": naming.CREDENTIALS_VOLUME, "secret": {"secretName": secret, "defaultMode": SECRET_MODE}}]


def serving_volumes(md: api.ModelDeployment) -> list[dict[str, Any]]:
    """Volumes of a serving pod. With the cache: the claim read-only and no credentials at all."""
    claim = cache_claim(md)
    model: dict[str, Any] = (
        {"name": naming.MODEL_VOLUME, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        if claim
        else {"name": naming.MODEL_VOLUME, "emptyDir": {}}
    )
    out = [_config_volume(md), model, {"name": naming.TMP_VOLUME, "emptyDir": {}}]
    pvc = pvc_source(md)
    if pvc is not None:
        out.append({"name": PVC_VOLUME, "persistentVolumeClaim": {"claimName": pvc.claim, "readOnly": True}})
    if claim is None:
        out += _credentials_volume(md)
    return out


def serving_mounts(md: api.ModelDeployment) -> list[dict[str, Any]]:
    """Mounts of the TF Serving container: the model read-only, whichever volume holds it."""
    mounts = [
        mount(naming.CONFIG_VOLUME, contract.CONFIG_DIR, read_only=True),
        mount(naming.MODEL_VOLUME, contract.MODEL_ROOT, read_only=True),
        mount(naming.TMP_VOLUME, contract.TMP_DIR, read_only=False),
    ]
    if pvc_source(md) is not None:
        mounts.append(mount(PVC_VOLUME, contract.PVC_MOUNT_DIR, read_only=True))
    return mounts


def _sync_status_probe(*, ready: bool) -> dict[str, Any]:
    command = [contract.EXECUTABLE, contract.CMD_SYNC_STATUS, *(["--ready"] if ready else [])]
    return {"exec": {"command": command}}


def sync_container(md: api.ModelDeployment, settings: Settings, *, mode: str) -> dict[str, Any]:
    """`modelserve-serving sync`: the only container that sees the storage credentials. Its one-line
    failure reason goes to the termination message (ModelFetchFailed / CacheFetchFailed)."""
    pvc = pvc_source(md)
    sidecar = mode == contract.SYNC_MODE_SIDECAR
    mounts = [
        mount(naming.CONFIG_VOLUME, contract.CONFIG_DIR, read_only=True),
        mount(naming.MODEL_VOLUME, contract.MODEL_ROOT, read_only=False),
        mount(naming.TMP_VOLUME, contract.TMP_DIR, read_only=False),
    ]
    if pvc is not None:
        mounts.append(mount(PVC_VOLUME, contract.PVC_MOUNT_DIR, read_only=True))
    if md.spec.model.credentials_secret:
        mounts.append(mount(naming.CREDENTIALS_VOLUME, contract.CREDENTIALS_DIR, read_only=True))
    container: dict[str, Any] = {
        "name": naming.SYNC_CONTAINER,
        "image": serving_image(md, settings),
        "command": [contract.EXECUTABLE, contract.CMD_SYNC],
        "env": [
            env(contract.ENV_STORAGE_URI, pvc.local_path if pvc else md.spec.model.storage_uri),
            env(contract.ENV_MODEL_NAME, md.model_name),
            env(contract.ENV_MODEL_ROOT, contract.MODEL_ROOT),
            # The policy is read from the mounted model config at every poll: a change reaches
            # running pods without a restart, and a missing `specific` version fails with a reason.
            env(contract.ENV_CONFIG_DIR, contract.CONFIG_DIR),
            # Always set; a missing directory means "no credentials" (workload identity).
            env(contract.ENV_CREDENTIALS_DIR, contract.CREDENTIALS_DIR),
            env(contract.ENV_POLL_SECONDS, str(md.spec.model.poll_seconds)),
            env(contract.ENV_SYNC_MODE, mode),
            env(contract.ENV_SYNC_METRICS_PORT, str(contract.SYNC_METRICS_PORT)),
        ],
        "ports": [
            {
                "name": contract.SYNC_METRICS_PORT_NAME,
                "containerPort": contract.SYNC_METRICS_PORT,
                "protocol": "TCP",
            }
        ],
        "volumeMounts": mounts,
        "resources": {k: dict(v) for k, v in SYNC_RESOURCES.items()},
        "startupProbe": {
            **_sync_status_probe(ready=False),
            "periodSeconds": SYNC_STARTUP_PERIOD_SECONDS,
            "timeoutSeconds": 5,
            "failureThreshold": SYNC_STARTUP_FAILURE_THRESHOLD,
        },
        "securityContext": container_security_context(),
        "terminationMessagePath": contract.TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if sidecar:
        # A native sidecar: started before TF Serving, which waits for its startup probe, and kept
        # running beside it (Kubernetes >= 1.29 by default, stable in 1.33).
        container["restartPolicy"] = "Always"
    else:
        # The cache's sync pod serves nothing: its readiness means "the cache holds every served
        # version and the last poll reached the store", which the operator reads as CacheReady.
        container["readinessProbe"] = {
            **_sync_status_probe(ready=True),
            "periodSeconds": 5,
            "timeoutSeconds": 5,
            "failureThreshold": 1,
        }
    return with_pull_policy(md, container)


def sync_sidecar(md: api.ModelDeployment) -> bool:
    """Each serving pod runs its own `sync` (no cache): its metrics are scraped through the Service."""
    return not cached(md)


def sync_metrics_service_ports(md: api.ModelDeployment) -> list[dict[str, Any]]:
    """The model Service's port for the sync sidecar's metrics (none when a cache holds the model:
    the sync Deployment's state is read by the operator, CacheReady and ModelSyncDegraded)."""
    if not sync_sidecar(md):
        return []
    return [
        {
            "name": contract.SYNC_METRICS_PORT_NAME,
            "port": contract.SYNC_METRICS_PORT,
            "targetPort": contract.SYNC_METRICS_PORT_NAME,
            "protocol": "TCP",
            "appProtocol": "http",
        }
    ]


def serving_init_containers(md: api.ModelDeployment, settings: Settings) -> list[dict[str, Any]]:
    """The sync sidecar, unless a cache holds the model (then the pod downloads nothing)."""
    if cached(md):
        return []
    return [sync_container(md, settings, mode=contract.SYNC_MODE_SIDECAR)]


def serving_affinity(md: api.ModelDeployment) -> dict[str, Any] | None:
    """A ReadWriteOnce cache attaches to one node: the (single) serving pod joins the sync pod there."""
    cache = md.spec.model.cache
    if not cached(md) or cache is None or cache.claim_name or cache.effective_access_mode != "ReadWriteOnce":
        return None
    return {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchLabels": naming.model_sync_selector_labels(md)},
                    "topologyKey": "kubernetes.io/hostname",
                }
            ]
        }
    }


def sync_volumes(md: api.ModelDeployment) -> list[dict[str, Any]]:
    """Volumes of the cache's sync pod: the claim read-write, the config and the credentials."""
    claim = cache_claim(md)
    return [
        _config_volume(md),
        {"name": naming.MODEL_VOLUME, "persistentVolumeClaim": {"claimName": claim}},
        {"name": naming.TMP_VOLUME, "emptyDir": {}},
        *_credentials_volume(md),
    ]
