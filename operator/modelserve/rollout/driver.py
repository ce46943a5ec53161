"""Reads what the rollout machine needs (the two Deployments, their pods, Prometheus) for the reconciler.

One `prepare()` per reconcile of a ModelDeployment with spec.rollout: observe, run the analysis when
a step's window is open, plan, and return the children to apply plus what the status needs. The
reconciler applies the children as it does any others; `finish()` adds status.rollout and the
rollout conditions to the status it computed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from modelserve import api, naming
from modelserve.builders import Child
from modelserve.kube import Kube
from modelserve.rollout import analysis, children, conditions, machine, prometheus, revision
from modelserve.settings import Settings

log = logging.getLogger(__name__)

GATEWAY_PROBE_SECONDS: Final = 60.0
TERMINAL_POD_PHASES: Final = ("Succeeded", "Failed")
IN_ROLLOUT: Final = (machine.PROGRESSING, machine.PAUSED, machine.PROMOTING)

# (kind, name) -> the child as last seen in the ModelDeployment's namespace (read when unknown).
LiveGetter = Callable[[str, str], dict[str, Any] | None]


@dataclass
class Run:
    """One reconcile's rollout: the plan, the children to apply and the pods seen."""

    md: api.ModelDeployment
    plan: machine.Plan
    children: list[Child]
    pods: tuple[dict[str, Any], ...]
    canary: dict[str, Any] | None

    def observed_deployment(self, stable: dict[str, Any] | None) -> dict[str, Any] | None:
        """Stable and canary as one Deployment, so the ordinary status counts both tracks."""
        return merged_deployment(stable, self.canary)

    def hpa_stand_in(self) -> dict[str, Any] | None:
        """While the plan holds the replica count, the autoscaler is removed; status says so."""
        if self.plan.autoscaler_owns_stable or self.md.spec.autoscaling is None:
            return None
        total = self.plan.status.get("totalReplicas")
        message = f"held at {total} replicas during the rollout; autoscaling resumes after it"
        return {"status": {"conditions": [{"type": "ScalingActive", "status": "False", "message": message}]}}

    def finish(self, status: dict[str, Any], previous: dict[str, Any], now: str) -> dict[str, Any]:
        out = dict(status)
        rollout = dict(self.plan.status)
        if "message" in rollout:
            rollout["message"] = str(rollout["message"])[:4096]
        # Status is written as a merge patch: a field the plan dropped (the last step's stepReadyAt, a
        # field gone from stableSpec) must be sent as null to be removed.
        out["rollout"] = with_nulls(dict(previous.get("rollout") or {}), rollout)
        out["conditions"] = [
            *[c for c in status.get("conditions") or [] if c.get("type") not in conditions.TYPES],
            *conditions.rollout_conditions(
                self.plan.status, list(previous.get("conditions") or []), self.md.generation, now
            ),
        ]
        return out


def with_nulls(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`new` as a JSON merge patch over `old`: keys of old missing from new become null (nested maps too)."""
    out: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        nested = isinstance(value, dict) and isinstance(before, dict)
        out[key] = with_nulls(before, value) if nested and isinstance(before, dict) else value
    for key in old:
        out.setdefault(key, None)
    return out


def merged_deployment(stable: dict[str, Any] | None, canary: dict[str, Any] | None) -> dict[str, Any] | None:
    if stable is None or canary is None:
        return stable
    s_spec, c_spec = stable.get("spec") or {}, canary.get("spec") or {}
    s_st, c_st = stable.get("status") or {}, canary.get("status") or {}

    def total(key: str) -> int:
        return int(s_st.get(key) or 0) + int(c_st.get(key) or 0)

    current = all(
        int((d.get("status") or {}).get("observedGeneration") or 0)
        >= int(d["metadata"].get("generation") or 0)
        for d in (stable, canary)
    )
    return {
        "metadata": {**stable["metadata"], "generation": 1},
        "spec": {**s_spec, "replicas": int(s_spec.get("replicas") or 0) + int(c_spec.get("replicas") or 0)},
        "status": {
            "observedGeneration": 1 if current else 0,
            "replicas": total("replicas"),
            "readyReplicas": total("readyReplicas"),
            "updatedReplicas": total("updatedReplicas"),
            "availableReplicas": total("availableReplicas"),
            "conditions": [*(s_st.get("conditions") or []), *(c_st.get("conditions") or [])],
        },
    }


def _track(dep: dict[str, Any] | None, pods: list[dict[str, Any]]) -> machine.Track:
    live = sum(1 for p in pods if (p.get("status") or {}).get("phase") not in TERMINAL_POD_PHASES)
    if dep is None:
        return machine.Track(exists=False, pods=live)
    st = dep.get("status") or {}
    current = int(st.get("observedGeneration") or 0) >= int(dep["metadata"].get("generation") or 0)
    ready = min(int(st.get("readyReplicas") or 0), int(st.get("updatedReplicas") or 0)) if current else 0
    return machine.Track(
        exists=True, replicas=int((dep.get("spec") or {}).get("replicas") or 0), ready=ready, pods=live
    )


class RolloutDriver:
    def __init__(self, kube: Kube, settings: Settings) -> None:
        self.kube = kube
        self.settings = settings
        self._gateway: tuple[float, bool] | None = None

    def gateway_api_installed(self) -> bool:
        now = time.monotonic()
        if self._gateway is None or now - self._gateway[0] > GATEWAY_PROBE_SECONDS:
            self._gateway = (now, self.kube.has_resource(children.GATEWAY_API_VERSION, "httproutes"))
        return self._gateway[1]

    def total_replicas(
        self,
        md: api.ModelDeployment,
        previous: dict[str, Any],
        stable: dict[str, Any] | None,
        canary: machine.Track,
    ) -> int:
        if md.spec.suspend:
            return 0
        scaling = md.spec.autoscaling
        if scaling is None:
            return md.spec.replicas if md.spec.replicas is not None else 1
        held = previous.get("phase") in IN_ROLLOUT or canary.pods > 0
        if held and previous.get("totalReplicas"):
            return int(previous["totalReplicas"])
        live = int(((stable or {}).get("spec") or {}).get("replicas") or 0)
        return max(scaling.min_replicas, min(scaling.max_replicas, live or scaling.min_replicas))

    def prepare(
        self, md: api.ModelDeployment, previous: dict[str, Any], live: LiveGetter, now: datetime | None = None
    ) -> Run:
        assert md.spec.rollout is not None
        now = now or datetime.now(UTC)
        stable_dep = live("Deployment", md.name)
        canary_dep = live("Deployment", children.canary_name(md))
        pods = self.kube.list("Pod", md.namespace, naming.label_selector(md))
        canary_pods = [p for p in pods if _labels(p).get(children.TRACK_LABEL) == children.CANARY_TRACK]
        stable_pods = [p for p in pods if _labels(p).get(children.TRACK_LABEL) != children.CANARY_TRACK]
        canary = _track(canary_dep, canary_pods)
        world = machine.World(
            rollout=md.spec.rollout,
            revision=revision.revision(md),
            rolled_spec=revision.rolled_spec(md),
            previous=previous,
            total=self.total_replicas(md, previous, stable_dep, canary),
            stable=_track(stable_dep, stable_pods),
            canary=canary,
            now=now,
            action=(md.metadata.get("annotations") or {}).get(api.ROLLOUT_ACTION_ANNOTATION),
        )
        window = machine.analysis_window(world)
        verdict = self.analyse(md, window) if window is not None else None
        plan = machine.plan(world, verdict)
        built = children.rollout_children(
            md, self.settings, plan, gateway_api_installed=self.gateway_api_installed()
        )
        return Run(md=md, plan=plan, children=built, pods=tuple(pods), canary=canary_dep)

    def analyse(self, md: api.ModelDeployment, window: int) -> analysis.Verdict:
        rollout = md.spec.rollout
        assert rollout is not None
        checks = analysis.checks(md, rollout.analysis, max(window, analysis.MIN_WINDOW_SECONDS))
        step_seconds = analysis.duration_seconds(rollout.step_duration)
        url = rollout.analysis.prometheus_url or self.settings.prometheus_url
        if not url:
            missing = [
                analysis.Outcome(
                    c,
                    None,
                    "no Prometheus: set the operator's --prometheus-url "
                    "or spec.rollout.analysis.prometheusURL",
                )
                for c in checks[:1]
            ]
            return analysis.judge(missing, window_seconds=window, step_seconds=step_seconds)
        outcomes: list[analysis.Outcome] = []
        for check in checks:
            try:
                outcomes.append(analysis.Outcome(check, prometheus.query_value(url, check.query)))
            except prometheus.PrometheusError as exc:
                outcomes.append(analysis.Outcome(check, None, str(exc)))
                break  # Prometheus is down or the query is broken: the rest would say the same
        verdict = analysis.judge(outcomes, window_seconds=window, step_seconds=step_seconds)
        log.info(
            "rollout analysis of %s/%s over %ss: %s (%s)",
            md.namespace,
            md.name,
            window,
            verdict.verdict,
            verdict.message,
        )
        return verdict


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})
