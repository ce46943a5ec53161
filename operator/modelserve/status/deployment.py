"""DeploymentReady: rolled out, rolling, within the disruption budget, or why not (pure)."""

from __future__ import annotations

from modelserve import api
from modelserve.builders.disruption import tolerated_unavailable
from modelserve.builders.replicas import desired_replicas
from modelserve.status.base import DEPLOYMENT_READY, Cond, Observed, Reason
from modelserve.status.pods import pod_trouble, ready_pods


def deployment_condition(md: api.ModelDeployment, obs: Observed, settled: bool = False) -> Cond:
    """`settled`: the Deployment was rolled out at this generation already (the last status said so)."""
    dep = obs.deployment
    if dep is None:
        return Cond(DEPLOYMENT_READY, False, Reason.CREATING, "the Deployment does not exist yet")
    status = dep.get("status") or {}
    desired = desired_replicas(md, dep)
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    observed_current = int(status.get("observedGeneration") or 0) >= int(
        dep["metadata"].get("generation") or 0
    )
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return Cond(DEPLOYMENT_READY, False, Reason.PROGRESS_DEADLINE_EXCEEDED, cond.get("message", ""))
    done = observed_current and updated >= desired and ready >= desired and total == updated
    if done:
        if desired == 0 and not md.spec.suspend:
            return Cond(DEPLOYMENT_READY, True, Reason.SCALED_TO_ZERO, "scaled to zero by the autoscaler")
        if desired == 0:
            return Cond(DEPLOYMENT_READY, True, Reason.SUSPENDED, "scaled to zero")
        return Cond(DEPLOYMENT_READY, True, Reason.ROLLED_OUT, f"{ready}/{desired} replicas ready")
    # The pods (read when the Deployment is short of ready replicas) may be ahead of its status: a
    # replacement can be Ready before the Deployment controller counts it.
    missing = desired - max(ready, ready_pods(obs.pods))
    # Only at a generation that was rolled out before (settled): a spec change or a scale-up is
    # never excused. (The Deployment's counts move in several steps while a pod is replaced, with
    # old and new pods counted apart for a moment, so they cannot tell a replacement from a roll.)
    if settled and observed_current and missing <= tolerated_unavailable(md, desired):
        # A drain or a lost node took pods that are being replaced, no more than the disruption
        # budget allows: still serving, as the Deployment's own Available condition would say.
        return Cond(
            DEPLOYMENT_READY,
            True,
            Reason.ROLLED_OUT,
            f"{desired - max(missing, 0)}/{desired} replicas ready"
            + (f" ({missing} being replaced, within the disruption budget)" if missing > 0 else ""),
        )
    for cond in status.get("conditions") or []:
        # The ReplicaSet cannot create pods at all: admission refused them (a PriorityClass that does
        # not exist, a quota, Pod Security); without this the rollout looked merely slow forever.
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            return Cond(DEPLOYMENT_READY, False, Reason.POD_CREATE_FAILED, cond.get("message", ""))
    trouble = pod_trouble(obs.pods, md.spec.gpu, obs.pod_events)
    if trouble:
        pods = ", ".join(sorted(trouble.pods)[:3])
        return Cond(DEPLOYMENT_READY, False, trouble.reason, f"{trouble.message} (pod {pods})")
    return Cond(
        DEPLOYMENT_READY,
        False,
        Reason.ROLLING_OUT,
        f"{ready}/{desired} replicas ready, {updated}/{desired} updated",
    )
