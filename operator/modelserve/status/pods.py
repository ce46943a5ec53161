"""Why pods do not become ready, read from the pods and their Events (pure): one reason per failure
mode, GPU shortages named with the resource and the product label."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelserve import api, failures, naming
from modelserve.builders.gpu import gpu_resource_name
from modelserve.status.base import Reason


@dataclass
class PodTrouble:
    reason: str
    message: str
    pods: list[str] = field(default_factory=list)


def _scheduling_trouble(message: str, gpu: api.Gpu | None) -> tuple[str, str]:
    """The scheduler's refusal as a reason; GPU trouble names the resource and the product label."""
    missing = failures.missing_reference(message)
    if missing:
        return missing, message
    # The scheduler says "Insufficient <resource>" for a shortage; a GPU taint also names
    # nvidia.com/gpu ("had untolerated taint {nvidia.com/gpu: ...}") but is not a shortage.
    shortages = {"Insufficient nvidia.com/gpu", f"Insufficient {naming.MIG_RESOURCE_PREFIX}"}
    if gpu is not None:
        shortages.add(f"Insufficient {gpu_resource_name(gpu)}")
    if any(shortage in message for shortage in shortages):
        if gpu is None:
            return Reason.INSUFFICIENT_GPU, message
        product = f" with {naming.GPU_PRODUCT_LABEL}={gpu.product}" if gpu.product else ""
        return (
            Reason.INSUFFICIENT_GPU,
            f"no node{product} has {gpu.count} free {gpu_resource_name(gpu)}: {message}",
        )
    if gpu is not None and gpu.product and "didn't match Pod's node affinity/selector" in message:
        return (
            Reason.NO_MATCHING_GPU_NODE,
            f"no node with room for the pod is labelled {naming.GPU_PRODUCT_LABEL}={gpu.product}: {message}",
        )
    return Reason.UNSCHEDULABLE, message


def pod_trouble(
    pods: tuple[dict[str, Any], ...], gpu: api.Gpu | None, events: tuple[dict[str, Any], ...] = ()
) -> PodTrouble | None:
    """The most telling failure among the pods, in order of what a person must fix first."""
    found: dict[str, PodTrouble] = {}

    def note(reason: str, message: str, pod: str) -> None:
        found.setdefault(reason, PodTrouble(reason, message)).pods.append(pod)

    # A GPU rollout replaces pods in place (no surge): the new pod is short of GPUs until the old
    # one has terminated and given its GPU back. That is the rollout, not a shortage.
    terminating = [
        p["metadata"].get("name", "?") for p in pods if (p.get("metadata") or {}).get("deletionTimestamp")
    ]
    names = set()
    for pod in pods:
        name = pod.get("metadata", {}).get("name", "?")
        names.add(name)
        status = pod.get("status") or {}
        for cond in status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                message = cond.get("message") or "the scheduler found no node for the pod"
                reason, text = _scheduling_trouble(message, gpu)
                if reason == Reason.INSUFFICIENT_GPU and terminating:
                    continue
                note(reason, text, name)
        for cs in status.get("initContainerStatuses") or []:
            state = cs.get("state") or {}
            last = cs.get("lastState") or {}
            terminated = state.get("terminated") or last.get("terminated")
            # The sync sidecar restarts after a failed first fetch; once started, an old failure in
            # lastState is history, not the reason the pod is unready.
            fetcher = cs.get("name") == naming.FETCH_CONTAINER or (
                cs.get("name") == naming.SYNC_CONTAINER and not cs.get("started")
            )
            if fetcher and terminated and terminated.get("exitCode", 0) != 0:
                reason_text = (terminated.get("message") or terminated.get("reason") or "").strip()
                note(
                    Reason.MODEL_FETCH_FAILED,
                    reason_text.splitlines()[-1] if reason_text else "model fetch failed",
                    name,
                )
        for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName"):
                note(Reason.IMAGE_PULL_FAILED, waiting.get("message") or waiting["reason"], name)
            elif waiting.get("reason") == "CrashLoopBackOff" and cs.get("name") not in (
                naming.FETCH_CONTAINER,
                naming.SYNC_CONTAINER,
            ):
                note(Reason.CRASH_LOOP, waiting.get("message") or "container keeps crashing", name)
            elif waiting.get("reason") == "CreateContainerConfigError":
                # An env var from a Secret or ConfigMap (or one of its keys) that does not exist.
                message = waiting.get("message") or ""
                missing = failures.missing_reference(message)
                if missing:
                    note(missing, f"container {cs.get('name')}: {message}", name)
    for event in events:
        # The kubelet cannot mount a Secret or ConfigMap volume: the pod never starts, and only the
        # FailedMount Event says why.
        pod = (event.get("involvedObject") or {}).get("name", "")
        missing = failures.missing_reference(str(event.get("message") or ""))
        if event.get("reason") == "FailedMount" and pod in names and missing:
            note(missing, str(event.get("message")), pod)

    for reason in (
        Reason.CLAIM_NOT_FOUND,
        Reason.SECRET_NOT_FOUND,
        Reason.CONFIG_MAP_NOT_FOUND,
        Reason.INSUFFICIENT_GPU,
        Reason.NO_MATCHING_GPU_NODE,
        Reason.UNSCHEDULABLE,
        Reason.IMAGE_PULL_FAILED,
        Reason.MODEL_FETCH_FAILED,
        Reason.CRASH_LOOP,
    ):
        if reason in found:
            return found[reason]
    return None


def ready_pods(pods: tuple[dict[str, Any], ...]) -> int:
    return sum(
        1
        for pod in pods
        if not (pod.get("metadata") or {}).get("deletionTimestamp")
        and any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (pod.get("status") or {}).get("conditions") or []
        )
    )
