"""deploy/argocd/health.lua run by a real Lua interpreter (lupa: Lua 5.1 as in Argo CD's gopher-lua,
and 5.4) against ModelDeployment status fixtures, the way Argo CD's health_test.yaml cases work."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import yaml

from kit import REPO

HEALTH_LUA = REPO / "deploy" / "argocd" / "health.lua"
CM_PATCH = REPO / "deploy" / "argocd" / "argocd-cm-patch.yaml"
KEY = "resource.customizations.health.modelserve.dev_ModelDeployment"


def _cond(type_: str, status: str, reason: str, message: str = "", generation: int = 1) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        "observedGeneration": generation,
    }


def _md(generation: int = 1, status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "modelserve.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "resnet", "namespace": "ml", "generation": generation},
        "spec": {"model": {"storageUri": "gs://models/resnet"}, **spec},
    }
    if status is not None:
        body["status"] = status
    return body


READY = _cond("Ready", "True", "Ready", "every replica serves the model")
NOT_SUSPENDED = _cond("Suspended", "False", "NotSuspended")

# (id, object, expected status, expected message)
FIXTURES: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "new-no-status",
        _md(),
        "Progressing",
        "Waiting for the modelserve operator to reconcile this ModelDeployment",
    ),
    (
        "progressing-rolling-out",
        _md(
            status={
                "observedGeneration": 1,
                "conditions": [
                    _cond("Ready", "False", "RollingOut", "DeploymentReady: 0 of 2 replicas ready"),
                    NOT_SUSPENDED,
                ],
            }
        ),
        "Progressing",
        "RollingOut: DeploymentReady: 0 of 2 replicas ready",
    ),
    (
        "healthy",
        _md(
            status={
                "observedGeneration": 1,
                "readyReplicas": 2,
                "modelVersions": "latest 2",
                "conditions": [READY, NOT_SUSPENDED],
            }
        ),
        "Healthy",
        "Ready: 2 replica(s) serving (versions: latest 2)",
    ),
    (
        "degraded-model-fetch-failed",
        _md(
            status={
                "observedGeneration": 1,
                "conditions": [
                    _cond("Ready", "False", "ModelFetchFailed", "gs://models/resnet: 403 access denied"),
                    NOT_SUSPENDED,
                ],
            }
        ),
        "Degraded",
        "ModelFetchFailed: gs://models/resnet: 403 access denied",
    ),
    (
        "degraded-insufficient-gpu",
        _md(
            status={
                "observedGeneration": 1,
                "conditions": [
                    _cond("Ready", "False", "InsufficientGPU", "0/4 nodes: 4 Insufficient nvidia.com/gpu"),
                ],
            }
        ),
        "Degraded",
        "InsufficientGPU: 0/4 nodes: 4 Insufficient nvidia.com/gpu",
    ),
    (
        "suspended",
        _md(
            suspend=True,
            status={
                "observedGeneration": 1,
                "conditions": [
                    _cond("Ready", "False", "Suspended", "suspended: scaled to zero, every object kept"),
                    _cond("Suspended", "True", "Suspended", "scaled to zero; every object is kept"),
                ],
            },
        ),
        "Suspended",
        "Suspended: scaled to zero; every object is kept",
    ),
    (
        "scaled-to-zero-is-healthy",
        _md(
            autoscaling={
                "minReplicas": 0,
                "maxReplicas": 2,
                "idleWindow": "5m",
                "targetRequestsPerSecond": 5,
            },
            status={
                "observedGeneration": 1,
                "readyReplicas": 0,
                "conditions": [
                    _cond("Ready", "True", "ScaledToZero", "scaled to zero: the next request is held"),
                    NOT_SUSPENDED,
                ],
            },
        ),
        "Healthy",
        "ScaledToZero: scaled to zero: the next request is held",
    ),
    (
        "keda-not-installed-is-degraded",
        _md(
            status={
                "observedGeneration": 1,
                "conditions": [_cond("Ready", "False", "KEDANotInstalled", "AutoscalerReady: no KEDA")],
            }
        ),
        "Degraded",
        "KEDANotInstalled: AutoscalerReady: no KEDA",
    ),
    (
        "stale-generation-despite-ready",
        _md(generation=3, status={"observedGeneration": 2, "conditions": [READY, NOT_SUSPENDED]}),
        "Progressing",
        "Waiting for the operator to observe generation 3 (status is for generation 2)",
    ),
    (
        "stale-generation-despite-degraded",
        _md(
            generation=5,
            status={
                "observedGeneration": 4,
                "conditions": [_cond("Ready", "False", "InvalidSpec", "bad", generation=4)],
            },
        ),
        "Progressing",
        "Waiting for the operator to observe generation 5 (status is for generation 4)",
    ),
    (
        "status-without-ready",
        _md(status={"observedGeneration": 1, "conditions": []}),
        "Progressing",
        "Waiting for the Ready condition",
    ),
    (
        "ready-unknown",
        _md(status={"observedGeneration": 1, "conditions": [_cond("Ready", "Unknown", "Creating")]}),
        "Progressing",
        "Creating",
    ),
    (
        "degraded-reason-the-script-does-not-know",
        _md(
            status={
                "observedGeneration": 1,
                "conditions": [_cond("Ready", "False", "SomethingNewBroke", "the new failure mode")],
            }
        ),
        "Degraded",
        "SomethingNewBroke: the new failure mode",
    ),
    (
        "degraded-without-reason-or-message",
        _md(status={"observedGeneration": 1, "conditions": [_cond("Ready", "False", "")]}),
        "Degraded",
        "Ready is False",
    ),
    (
        "progressing-creating",
        _md(status={"observedGeneration": 1, "conditions": [_cond("Ready", "False", "Creating", "Service")]}),
        "Progressing",
        "Creating: Service",
    ),
    (
        "stale-ready-condition-despite-current-status",
        _md(
            generation=4,
            status={
                "observedGeneration": 4,
                "conditions": [
                    _cond("Ready", "True", "Ready", "every replica serves the model", generation=3)
                ],
            },
        ),
        "Progressing",
        "Waiting for the operator to observe generation 4 (Ready is for generation 3)",
    ),
    (
        "stale-suspended-condition-is-not-suspended",
        _md(
            generation=2,
            status={
                "observedGeneration": 2,
                "conditions": [
                    _cond("Ready", "True", "Ready", "every replica serves the model", generation=2),
                    _cond("Suspended", "True", "Suspended", "scaled to zero", generation=1),
                ],
            },
        ),
        "Healthy",
        "Ready: 0 replica(s) serving",
    ),
    (
        "suspend-requested-not-yet-reported",
        _md(suspend=True, generation=2, status={"observedGeneration": 2, "conditions": [READY]}),
        "Suspended",
        "Suspended: scaled to zero, every object kept",
    ),
    (
        "rollout-progressing-while-ready",
        _md(status={"observedGeneration": 1, "conditions": [
            READY,
            NOT_SUSPENDED,
            _cond("RolloutProgressing", "True", "Progressing", "step 2 of 3 (50%): analysing"),
            _cond("RolledBack", "False", "NotRolledBack"),
        ]}),
        "Progressing",
        "Rollout: Progressing: step 2 of 3 (50%): analysing",
    ),
    (
        "rolled-back-is-degraded-though-stable-serves",
        _md(status={"observedGeneration": 1, "conditions": [
            READY,
            NOT_SUSPENDED,
            _cond("RolloutProgressing", "False", "RolledBack", "rolled back"),
            _cond("RolledBack", "True", "AnalysisFailed", "rolled back: errorRatio = 0.2, must be <= 0.01"),
        ]}),
        "Degraded",
        "RolledBack: AnalysisFailed: rolled back: errorRatio = 0.2, must be <= 0.01",
    ),
    (
        "rolled-back-then-spec-changed",
        _md(generation=2, status={"observedGeneration": 1, "conditions": [
            READY, _cond("RolledBack", "True", "AnalysisFailed", "rolled back")]}),
        "Progressing",
        "Waiting for the operator to observe generation 2 (status is for generation 1)",
    ),
]


def _lua_table(lua: Any, value: Any) -> Any:
    """Python JSON-like data as Lua tables (lists 1-based), the shape Argo CD hands to its checks."""
    if isinstance(value, dict):
        return lua.table_from({k: _lua_table(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([_lua_table(lua, v) for v in value])
    return value


@pytest.fixture(params=["lua51", "lua54"])
def health(request: pytest.FixtureRequest) -> Any:
    module = importlib.import_module(f"lupa.{request.param}")
    lua = module.LuaRuntime(unpack_returned_tuples=True)
    # Argo CD runs the script with `obj` as a global and takes its return value.
    check = lua.eval("function(script) return (loadstring or load)(script) end")(HEALTH_LUA.read_text())
    assert check is not None, "health.lua does not compile"
    globals_ = lua.globals()

    def run(obj: dict[str, Any]) -> dict[str, Any]:
        globals_.obj = _lua_table(lua, obj)
        result = check()
        return dict(result.items())

    assert "Lua 5." in lua.eval("_VERSION")
    return run


@pytest.mark.parametrize(
    ("obj", "status", "message"), [f[1:] for f in FIXTURES], ids=[f[0] for f in FIXTURES]
)
def test_health_check(health: Any, obj: dict[str, Any], status: str, message: str) -> None:
    assert health(obj) == {"status": status, "message": message}


def _between_markers(text: str, begin: str, end: str) -> str:
    return text[text.index(begin) + len(begin) : text.index(end)]


def test_transient_reasons_are_one_list_in_status_py_the_lua_and_the_docs() -> None:
    import re

    from modelserve import status

    lua = _between_markers(HEALTH_LUA.read_text(), "-- BEGIN TRANSIENT_REASONS", "-- END TRANSIENT_REASONS")
    in_lua = re.findall(r"^\s*([A-Za-z]+) = true,$", lua, flags=re.MULTILINE)
    docs = _between_markers(
        (REPO / "docs" / "status.md").read_text(),
        "<!-- BEGIN TRANSIENT_REASONS -->",
        "<!-- END TRANSIENT_REASONS -->",
    )
    in_docs = re.findall(r"`([A-Za-z]+)`", docs)
    want = list(status.TRANSIENT_REASONS)
    assert in_lua == want, (
        f"deploy/argocd/health.lua lists {in_lua}; modelserve.status.TRANSIENT_REASONS is {want}"
    )
    assert in_docs == want, f"docs/status.md lists {in_docs}; modelserve.status.TRANSIENT_REASONS is {want}"
    from modelserve import cache_status

    reasons = {v for k, v in vars(status.Reason).items() if k.isupper()}
    reasons |= {v for k, v in vars(cache_status).items() if k.isupper() and isinstance(v, str)}
    assert set(want) <= reasons


def test_every_reason_but_the_transient_ones_is_degraded(health: Any) -> None:
    from modelserve import status

    for name, reason in vars(status.Reason).items():
        if not name.isupper() or reason in (status.Reason.READY, status.Reason.SUSPENDED):
            continue
        obj = _md(status={"observedGeneration": 1, "conditions": [_cond("Ready", "False", reason, "m")]})
        want = "Progressing" if reason in status.TRANSIENT_REASONS else "Degraded"
        assert health(obj)["status"] == want, reason


def test_argocd_cm_patch_carries_the_same_script() -> None:
    patch = yaml.safe_load(CM_PATCH.read_text())
    assert patch["data"][KEY] == HEALTH_LUA.read_text(), "deploy/argocd/argocd-cm-patch.yaml is stale"
