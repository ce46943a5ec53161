"""status.compute_status: observed children + generation -> conditions, reasons and fields (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from modelserve import api, naming
from modelserve.status import (
    CONDITION_ORDER,
    Observed,
    Reason,
    compute_status,
    failure_status,
    ready_condition,
)

pytestmark = pytest.mark.unit

T0 = "2025-01-01T00:00:00Z"
T1 = "2025-01-01T00:01:00Z"
T2 = "2025-01-01T00:02:00Z"

GPU_SHORTAGE = (
    "0/4 nodes are available: 2 Insufficient nvidia.com/gpu, 2 node(s) had untolerated taint "
    "{node-role.kubernetes.io/control-plane: }. preemption: 0/4 nodes are available: "
    "2 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."
)
NO_MATCHING_NODE = (
    "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. preemption: "
    "0/3 nodes are available: 3 Preemption is not helpful for scheduling."
)


def make(name: str = "resnet", generation: int = 3, **spec: Any) -> api.ModelDeployment:
    spec.setdefault("model", {"storageUri": "gs://models/resnet"})
    return api.parse(
        {
            "apiVersion": "modelserve.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": "ml", "uid": "uid-1", "generation": generation},
            "spec": spec,
        }
    )


def deployment(
    *,
    replicas: int | None = 2,
    ready: int = 2,
    updated: int = 2,
    total: int | None = None,
    generation: int = 4,
    observed_generation: int = 4,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A Deployment as the API server returns it (zero counts are omitted from status, as there)."""
    total = updated if total is None else total
    status: dict[str, Any] = {"observedGeneration": observed_generation}
    for key, value in (("replicas", total), ("updatedReplicas", updated), ("readyReplicas", ready)):
        if value:
            status[key] = value
    if ready:
        status["availableReplicas"] = ready
    status["conditions"] = (
        conditions
        if conditions is not None
        else [
            {
                "type": "Available",
                "status": "True" if ready else "False",
                "reason": "MinimumReplicasAvailable" if ready else "MinimumReplicasUnavailable",
                "message": "Deployment has minimum availability.",
                "lastUpdateTime": T0,
                "lastTransitionTime": T0,
            },
            {
                "type": "Progressing",
                "status": "True",
                "reason": "NewReplicaSetAvailable",
                "message": 'ReplicaSet "resnet-5d8f7c9b6" has successfully progressed.',
                "lastUpdateTime": T0,
                "lastTransitionTime": T0,
            },
        ]
    )
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {naming.SELECTOR_LABEL: "resnet"}},
        "progressDeadlineSeconds": 600,
        "revisionHistoryLimit": 10,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "resnet",
            "namespace": "ml",
            "uid": "dep-uid",
            "resourceVersion": "4711",
            "generation": generation,
            "annotations": {"deployment.kubernetes.io/revision": "2"},
        },
        "spec": spec,
        "status": status,
    }


def service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "resnet", "namespace": "ml", "resourceVersion": "4700"},
        "spec": {"clusterIP": "10.96.12.7", "type": "ClusterIP"},
        "status": {"loadBalancer": {}},
    }


def hpa(conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"currentReplicas": 2, "desiredReplicas": 2}
    if conditions is not None:
        status["conditions"] = conditions
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "resnet", "namespace": "ml", "resourceVersion": "4720"},
        "spec": {"minReplicas": 2, "maxReplicas": 10},
        "status": status,
    }


def hpa_condition(type_: str, status: str, reason: str, message: str) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": T0,
    }


def service_monitor() -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "resnet", "namespace": "ml", "resourceVersion": "4730"},
        "spec": {},
    }


def pod(
    name: str = "resnet-5d8f7c9b6-x2k4p",
    *,
    conditions: list[dict[str, Any]] | None = None,
    init_statuses: list[dict[str, Any]] | None = None,
    statuses: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Pending", "qosClass": "Burstable"}
    if conditions is not None:
        status["conditions"] = conditions
    if init_statuses is not None:
        status["initContainerStatuses"] = init_statuses
    if statuses is not None:
        status["containerStatuses"] = statuses
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "ml", "labels": {naming.SELECTOR_LABEL: "resnet"}},
        "spec": {"nodeName": "gpu-node-1"} if not conditions else {},
        "status": status,
    }


def unschedulable(name: str, message: str) -> dict[str, Any]:
    return pod(
        name,
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastProbeTime": None,
                "lastTransitionTime": T0,
            }
        ],
    )


def container_status(
    name: str, *, state: dict[str, Any], last_state: dict[str, Any] | None = None, restarts: int = 0
) -> dict[str, Any]:
    return {
        "name": name,
        "image": "ghcr.io/modelserve/serving:2.21.0-0.1.0",
        "imageID": "",
        "ready": False,
        "restartCount": restarts,
        "started": False,
        "state": state,
        "lastState": last_state or {},
    }


def waiting(name: str, reason: str, message: str = "") -> dict[str, Any]:
    state: dict[str, Any] = {"reason": reason}
    if message:
        state["message"] = message
    return container_status(name, state={"waiting": state})


def fetch_failed(message: str | None, *, exit_code: int = 1, crash_looping: bool = False) -> dict[str, Any]:
    terminated: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": "Error" if exit_code else "Completed",
        "startedAt": T0,
        "finishedAt": T1,
        "containerID": "containerd://abc",
    }
    if message is not None:
        terminated["message"] = message
    if crash_looping:
        return container_status(
            naming.FETCH_CONTAINER,
            state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed"}},
            last_state={"terminated": terminated},
            restarts=3,
        )
    return container_status(naming.FETCH_CONTAINER, state={"terminated": terminated})


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def summary(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def rolling_out(*pods: dict[str, Any]) -> Observed:
    return Observed(service=service(), deployment=deployment(ready=0, updated=2, total=2), pods=tuple(pods))


def healthy(**changes: Any) -> Observed:
    values: dict[str, Any] = {"service": service(), "deployment": deployment()}
    values.update(changes)
    return Observed(**values)


# --- the deployment and the roll-up ----------------------------------------------------------------


def test_creating_when_no_child_exists_yet() -> None:
    status = compute_status(make(), Observed(), None, T0)
    assert [c["type"] for c in status["conditions"]] == list(CONDITION_ORDER)
    assert summary(status) == {
        "Ready": ("False", Reason.CREATING),
        "Available": ("False", Reason.CREATING),
        "Progressing": ("True", Reason.CREATING),
        "DeploymentReady": ("False", Reason.CREATING),
        "ServiceReady": ("False", Reason.CREATING),
        "AutoscalerReady": ("True", Reason.NOT_REQUESTED),
        "MonitoringReady": ("True", Reason.DISABLED),
        "Suspended": ("False", Reason.NOT_SUSPENDED),
    }
    cond = conditions(status)
    assert cond["Ready"]["message"] == "DeploymentReady: the Deployment does not exist yet"
    assert cond["Available"]["message"] == "no replica is serving"
    assert status["replicas"] == status["readyReplicas"] == status["updatedReplicas"] == 0


def test_service_missing_blocks_ready_after_a_rolled_out_deployment() -> None:
    status = compute_status(make(), Observed(deployment=deployment()), None, T0)
    assert summary(status)["ServiceReady"] == ("False", Reason.CREATING)
    assert summary(status)["DeploymentReady"] == ("True", Reason.ROLLED_OUT)
    assert summary(status)["Ready"] == ("False", Reason.CREATING)
    assert conditions(status)["Ready"]["message"] == "ServiceReady: the Service does not exist yet"


def test_rolling_out_while_replicas_become_ready() -> None:
    obs = Observed(service=service(), deployment=deployment(ready=1, updated=2))
    status = compute_status(make(replicas=2), obs, None, T0)
    cond = conditions(status)
    assert summary(status)["DeploymentReady"] == ("False", Reason.ROLLING_OUT)
    assert cond["DeploymentReady"]["message"] == "1/2 replicas ready, 2/2 updated"
    assert summary(status)["Progressing"] == ("True", Reason.ROLLING_OUT)
    assert cond["Progressing"]["message"] == "1/2 replicas ready, 2/2 updated"
    # One replica already serves: Available while the roll-up still waits for the rollout.
    assert summary(status)["Available"] == ("True", Reason.READY)
    assert cond["Available"]["message"] == "1 replicas serving"
    assert summary(status)["Ready"] == ("False", Reason.ROLLING_OUT)
    assert cond["Ready"]["message"] == "DeploymentReady: 1/2 replicas ready, 2/2 updated"
    assert (status["replicas"], status["readyReplicas"], status["updatedReplicas"]) == (2, 1, 2)


def test_rolling_out_while_old_pods_remain_or_the_controller_lags() -> None:
    # Surge: 3 pods, 2 of them on the new template.
    surge = Observed(service=service(), deployment=deployment(ready=3, updated=2, total=3))
    assert summary(compute_status(make(), surge, None, T0))["DeploymentReady"] == (
        "False",
        Reason.ROLLING_OUT,
    )
    # The Deployment controller has not seen the newest spec yet: its counts describe the old one.
    lagging = Observed(service=service(), deployment=deployment(generation=5, observed_generation=4))
    assert summary(compute_status(make(), lagging, None, T0))["DeploymentReady"] == (
        "False",
        Reason.ROLLING_OUT,
    )


def test_rolled_out_is_ready() -> None:
    status = compute_status(make(replicas=2), healthy(), None, T0)
    cond = conditions(status)
    assert summary(status) == {
        "Ready": ("True", Reason.READY),
        "Available": ("True", Reason.READY),
        "Progressing": ("False", Reason.ROLLED_OUT),
        "DeploymentReady": ("True", Reason.ROLLED_OUT),
        "ServiceReady": ("True", Reason.CREATED),
        "AutoscalerReady": ("True", Reason.NOT_REQUESTED),
        "MonitoringReady": ("True", Reason.DISABLED),
        "Suspended": ("False", Reason.NOT_SUSPENDED),
    }
    assert cond["Ready"]["message"] == "every replica serves the model"
    assert cond["DeploymentReady"]["message"] == "2/2 replicas ready"
    assert cond["Progressing"]["message"] == ""
    assert cond["Available"]["message"] == "2 replicas serving"


def test_desired_replicas_fall_back_to_the_spec_when_the_deployment_has_none() -> None:
    # With autoscaling the manifest omits spec.replicas; until the server defaults it, minReplicas counts.
    md = make(autoscaling={"minReplicas": 3, "maxReplicas": 5})
    obs = Observed(service=service(), deployment=deployment(replicas=None, ready=2, updated=2), hpa=hpa())
    status = compute_status(md, obs, None, T0)
    assert conditions(status)["DeploymentReady"]["message"] == "2/3 replicas ready, 2/3 updated"


def test_progress_deadline_exceeded_from_the_deployment_condition() -> None:
    message = 'ReplicaSet "resnet-7c9d5b8f4" has timed out progressing.'
    dep = deployment(
        ready=1,
        updated=1,
        total=2,
        conditions=[
            {
                "type": "Available",
                "status": "True",
                "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.",
            },
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": message,
            },
        ],
    )
    # Pod trouble is there too, but the Deployment's own verdict comes first.
    obs = Observed(service=service(), deployment=dep, pods=(unschedulable("p1", NO_MATCHING_NODE),))
    status = compute_status(make(), obs, None, T0)
    cond = conditions(status)
    assert summary(status)["DeploymentReady"] == ("False", Reason.PROGRESS_DEADLINE_EXCEEDED)
    assert cond["DeploymentReady"]["message"] == message
    assert summary(status)["Progressing"] == ("False", Reason.PROGRESS_DEADLINE_EXCEEDED)
    assert cond["Progressing"]["message"] == message
    assert summary(status)["Ready"] == ("False", Reason.PROGRESS_DEADLINE_EXCEEDED)
    assert cond["Ready"]["message"] == f"DeploymentReady: {message}"


# --- pod trouble -----------------------------------------------------------------------------------


def test_insufficient_gpu_from_the_scheduler_message() -> None:
    md = make(gpu={"count": 1, "product": "NVIDIA-A100-SXM4-80GB"})
    status = compute_status(md, rolling_out(unschedulable("resnet-a", GPU_SHORTAGE)), None, T0)
    cond = conditions(status)
    assert summary(status)["DeploymentReady"] == ("False", Reason.INSUFFICIENT_GPU)
    assert cond["DeploymentReady"]["message"] == (
        f"no node with nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB has 1 free nvidia.com/gpu: "
        f"{GPU_SHORTAGE} (pod resnet-a)"
    )
    assert summary(status)["Ready"] == ("False", Reason.INSUFFICIENT_GPU)
    assert summary(status)["Available"] == ("False", Reason.INSUFFICIENT_GPU)
    assert summary(status)["Progressing"] == ("False", Reason.INSUFFICIENT_GPU)
    assert cond["Progressing"]["message"] == cond["DeploymentReady"]["message"]


def test_insufficient_mig_slices_are_a_gpu_shortage() -> None:
    message = "0/2 nodes are available: 2 Insufficient nvidia.com/mig-1g.10gb."
    md = make(gpu={"count": 1, "migProfile": "1g.10gb"})
    status = compute_status(md, rolling_out(unschedulable("p", message)), None, T0)
    assert summary(status)["DeploymentReady"] == ("False", Reason.INSUFFICIENT_GPU)


def test_insufficient_custom_gpu_resource_is_a_gpu_shortage() -> None:
    message = "0/2 nodes are available: 2 Insufficient amd.com/gpu."
    md = make(gpu={"count": 1, "resourceName": "amd.com/gpu"})
    status = compute_status(md, rolling_out(unschedulable("p", message)), None, T0)
    assert summary(status)["DeploymentReady"] == ("False", Reason.INSUFFICIENT_GPU)


def test_unschedulable_for_other_scheduler_messages() -> None:
    status = compute_status(make(), rolling_out(unschedulable("p", NO_MATCHING_NODE)), None, T0)
    assert summary(status)["DeploymentReady"] == ("False", Reason.UNSCHEDULABLE)
    assert conditions(status)["DeploymentReady"]["message"] == f"{NO_MATCHING_NODE} (pod p)"
    cpu_short = "0/3 nodes are available: 3 Insufficient cpu."
    status = compute_status(make(), rolling_out(unschedulable("p", cpu_short)), None, T0)
    assert summary(status)["DeploymentReady"] == ("False", Reason.UNSCHEDULABLE)


def test_a_gpu_taint_in_the_message_is_not_a_gpu_shortage() -> None:
    # A CPU model whose only nodes are tainted GPU nodes: the fix is a toleration or CPU nodes.
    message = (
        "0/2 nodes are available: 2 node(s) had untolerated taint {nvidia.com/gpu: present}. "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    )
    status = compute_status(make(), rolling_out(unschedulable("p", message)), None, T0)
    assert summary(status)["DeploymentReady"] == ("False", Reason.UNSCHEDULABLE)


def test_scheduled_pods_and_missing_messages() -> None:
    scheduled = pod("p", conditions=[{"type": "PodScheduled", "status": "True", "lastTransitionTime": T0}])
    status = compute_status(make(), rolling_out(scheduled), None, T0)
    assert summary(status)["DeploymentReady"] == ("False", Reason.ROLLING_OUT)
    no_message = pod("p", conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}])
    status = compute_status(make(), rolling_out(no_message), None, T0)
    assert conditions(status)["DeploymentReady"]["message"] == (
        "the scheduler found no node for the pod (pod p)"
    )


def test_pod_names_are_sorted_and_at_most_three() -> None:
    pods = [unschedulable(f"resnet-{c}", NO_MATCHING_NODE) for c in "edcba"]
    status = compute_status(make(), rolling_out(*pods), None, T0)
    assert conditions(status)["DeploymentReady"]["message"] == (
        f"{NO_MATCHING_NODE} (pod resnet-a, resnet-b, resnet-c)"
    )


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"])
def test_image_pull_failed_on_the_serving_container(reason: str) -> None:
    message = 'Back-off pulling image "reg.example/tfserving:nope"'
    bad = pod(
        "p",
        init_statuses=[container_status(naming.FETCH_CONTAINER, state={"running": {"startedAt": T0}})],
        statuses=[waiting(naming.SERVING_CONTAINER, reason, message)],
    )
    status = compute_status(make(), rolling_out(bad), None, T0)
    assert summary(status)["DeploymentReady"] == ("False", Reason.IMAGE_PULL_FAILED)
    assert conditions(status)["DeploymentReady"]["message"] == f"{message} (pod p)"


def test_image_pull_failed_on_the_init_container_without_a_message() -> None:
    bad = pod(
        "p",
        init_statuses=[waiting(naming.FETCH_CONTAINER, "ErrImagePull")],
        statuses=[waiting(naming.SERVING_CONTAINER, "PodInitializing")],
    )
    status = compute_status(make(), rolling_out(bad), None, T0)
    assert summary(status)["DeploymentReady"] == ("False", Reason.IMAGE_PULL_FAILED)
    assert conditions(status)["DeploymentReady"]["message"] == "ErrImagePull (pod p)"


def test_model_fetch_failed_reports_the_last_line_of_the_termination_message() -> None:
    message = (
        "fetching gs://models/resnet into /models/resnet\n"
        "listing gs://models/resnet\n"
        "gs://models/resnet: 403 Forbidden: caller does not have storage.objects.list access\n"
    )
    bad = pod(
        "p",
        init_statuses=[fetch_failed(message)],
        statuses=[waiting(naming.SERVING_CONTAINER, "PodInitializing")],
    )
    status = compute_status(make(), rolling_out(bad), None, T0)
    assert summary(status)["DeploymentReady"] == ("False", Reason.MODEL_FETCH_FAILED)
    assert conditions(status)["DeploymentReady"]["message"] == (
        "gs://models/resnet: 403 Forbidden: caller does not have storage.objects.list access (pod p)"
    )
    assert summary(status)["Ready"] == ("False", Reason.MODEL_FETCH_FAILED)


def test_model_fetch_failed_while_the_fetcher_crash_loops() -> None:
    # After a few failures the kubelet backs off: the reason is in lastState, and it is a fetch
    # failure rather than a generic crash loop.
    bad = pod("p", init_statuses=[fetch_failed("no versions under s3://b/m", crash_looping=True)])
    status = compute_status(make(), rolling_out(bad), None, T0)
    assert summary(status)["DeploymentReady"] == ("False", Reason.MODEL_FETCH_FAILED)
    assert conditions(status)["DeploymentReady"]["message"] == "no versions under s3://b/m (pod p)"


def test_model_fetch_failed_without_a_termination_message() -> None:
    bad = pod("p", init_statuses=[fetch_failed(None)])
    status = compute_status(make(), rolling_out(bad), None, T0)
    assert conditions(status)["DeploymentReady"]["message"] == "Error (pod p)"
    blank = pod("p", init_statuses=[fetch_failed("   \n")])
    status = compute_status(make(), rolling_out(blank), None, T0)
    assert conditions(status)["DeploymentReady"]["message"] == "model fetch failed (pod p)"


def test_a_successful_fetch_is_no_trouble() -> None:
    done = pod("p", init_statuses=[fetch_failed("fetched 2 versions", exit_code=0)])
    status = compute_status(make(), rolling_out(done), None, T0)
    assert summary(status)["DeploymentReady"] == ("False", Reason.ROLLING_OUT)


def test_crash_loop_of_the_serving_container() -> None:
    message = "back-off 5m0s restarting failed container=tfserving pod=p_ml(uid)"
    bad = pod("p", statuses=[waiting(naming.SERVING_CONTAINER, "CrashLoopBackOff", message)])
    status = compute_status(make(), rolling_out(bad), None, T0)
    assert summary(status)["DeploymentReady"] == ("False", Reason.CRASH_LOOP)
    assert conditions(status)["DeploymentReady"]["message"] == f"{message} (pod p)"
    silent = pod("p", statuses=[waiting(naming.SERVING_CONTAINER, "CrashLoopBackOff")])
    status = compute_status(make(), rolling_out(silent), None, T0)
    assert conditions(status)["DeploymentReady"]["message"] == "container keeps crashing (pod p)"


def test_the_failure_a_person_must_fix_first_wins() -> None:
    crash = pod("a-crash", statuses=[waiting(naming.SERVING_CONTAINER, "CrashLoopBackOff")])
    fetch = pod("b-fetch", init_statuses=[fetch_failed("denied")])
    pull = pod("c-pull", statuses=[waiting(naming.SERVING_CONTAINER, "ImagePullBackOff")])
    cpu = unschedulable("d-cpu", NO_MATCHING_NODE)
    gpu = unschedulable("e-gpu", GPU_SHORTAGE)
    expected = [
        ((crash, fetch, pull, cpu, gpu), Reason.INSUFFICIENT_GPU),
        ((crash, fetch, pull, cpu), Reason.UNSCHEDULABLE),
        ((crash, fetch, pull), Reason.IMAGE_PULL_FAILED),
        ((crash, fetch), Reason.MODEL_FETCH_FAILED),
        ((crash,), Reason.CRASH_LOOP),
    ]
    for pods, reason in expected:
        status = compute_status(make(), rolling_out(*pods), None, T0)
        assert summary(status)["DeploymentReady"] == ("False", reason), pods


def test_pod_trouble_is_ignored_once_rolled_out() -> None:
    # A leftover pending pod of an old ReplicaSet does not make a finished rollout fail.
    obs = healthy(pods=(unschedulable("old", GPU_SHORTAGE),))
    assert summary(compute_status(make(), obs, None, T0))["Ready"] == ("True", Reason.READY)


# --- autoscaler ------------------------------------------------------------------------------------

AUTOSCALED: dict[str, Any] = {"autoscaling": {"minReplicas": 2, "maxReplicas": 10}}


def test_autoscaler_not_requested_without_autoscaling() -> None:
    status = compute_status(make(), healthy(hpa=hpa()), None, T0)
    assert summary(status)["AutoscalerReady"] == ("True", Reason.NOT_REQUESTED)
    assert conditions(status)["AutoscalerReady"]["message"] == "autoscaling is off"


def test_autoscaler_creating_blocks_ready() -> None:
    status = compute_status(make(**AUTOSCALED), healthy(), None, T0)
    assert summary(status)["AutoscalerReady"] == ("False", Reason.CREATING)
    assert summary(status)["Ready"] == ("False", Reason.CREATING)
    assert conditions(status)["Ready"]["message"] == (
        "AutoscalerReady: the HorizontalPodAutoscaler does not exist yet"
    )


def test_autoscaler_ready_before_the_hpa_reports_conditions() -> None:
    status = compute_status(make(**AUTOSCALED), healthy(hpa=hpa()), None, T0)
    assert summary(status)["AutoscalerReady"] == ("True", Reason.CREATED)
    assert conditions(status)["AutoscalerReady"]["message"] == ""
    assert summary(status)["Ready"] == ("True", Reason.READY)


def test_autoscaler_unable_to_scale_fails() -> None:
    message = 'the HPA controller was unable to get the target\'s current scale: deployments/scale "x"'
    obs = healthy(
        hpa=hpa(
            [
                hpa_condition("AbleToScale", "False", "FailedGetScale", message),
                hpa_condition("ScalingActive", "False", "FailedGetResourceMetric", "no metrics"),
            ]
        )
    )
    status = compute_status(make(**AUTOSCALED), obs, None, T0)
    assert summary(status)["AutoscalerReady"] == ("False", Reason.AUTOSCALER_FAILED)
    assert conditions(status)["AutoscalerReady"]["message"] == message
    assert summary(status)["Ready"] == ("False", Reason.AUTOSCALER_FAILED)
    assert conditions(status)["Ready"]["message"] == f"AutoscalerReady: {message}"


def test_autoscaler_without_metrics_stays_ready_and_says_so() -> None:
    message = (
        "the HPA was unable to compute the replica count: failed to get cpu utilization: "
        "unable to get metrics for resource cpu: no metrics returned from resource metrics API"
    )
    obs = healthy(
        hpa=hpa(
            [
                hpa_condition("AbleToScale", "True", "SucceededGetScale", "the HPA controller was able"),
                hpa_condition("ScalingActive", "False", "FailedGetResourceMetric", message),
            ]
        )
    )
    status = compute_status(make(**AUTOSCALED), obs, None, T0)
    assert summary(status)["AutoscalerReady"] == ("True", Reason.CREATED)
    assert conditions(status)["AutoscalerReady"]["message"] == f"not scaling yet: {message}"
    assert summary(status)["Ready"] == ("True", Reason.READY)


def test_autoscaler_scaling_active() -> None:
    obs = healthy(
        hpa=hpa(
            [
                hpa_condition("AbleToScale", "True", "ReadyForNewScale", "recommended size matches"),
                hpa_condition("ScalingActive", "True", "ValidMetricFound", "the HPA was able"),
                hpa_condition("ScalingLimited", "False", "DesiredWithinRange", "within range"),
            ]
        )
    )
    status = compute_status(make(**AUTOSCALED), obs, None, T0)
    assert summary(status)["AutoscalerReady"] == ("True", Reason.CREATED)
    assert conditions(status)["AutoscalerReady"]["message"] == ""


# --- monitoring ------------------------------------------------------------------------------------

MONITORED: dict[str, Any] = {"monitoring": {"enabled": True}}


def test_monitoring_disabled() -> None:
    status = compute_status(make(), healthy(monitoring_crd_installed=False), None, T0)
    assert summary(status)["MonitoringReady"] == ("True", Reason.DISABLED)
    assert conditions(status)["MonitoringReady"]["message"] == "monitoring is off"


def test_monitoring_crd_not_installed_keeps_the_model_ready() -> None:
    status = compute_status(make(**MONITORED), healthy(monitoring_crd_installed=False), None, T0)
    assert summary(status)["MonitoringReady"] == ("False", Reason.CRD_NOT_INSTALLED)
    assert "monitoring.coreos.com/v1" in conditions(status)["MonitoringReady"]["message"]
    assert summary(status)["Ready"] == ("True", Reason.READY)


def test_monitoring_creating_and_created() -> None:
    status = compute_status(make(**MONITORED), healthy(), None, T0)
    assert summary(status)["MonitoringReady"] == ("False", Reason.CREATING)
    assert summary(status)["Ready"] == ("True", Reason.READY)
    status = compute_status(make(**MONITORED), healthy(service_monitor=service_monitor()), None, T0)
    assert summary(status)["MonitoringReady"] == ("True", Reason.CREATED)
    assert conditions(status)["MonitoringReady"]["message"] == (
        "scraped at :8501/monitoring/prometheus/metrics"
    )


# --- suspend ---------------------------------------------------------------------------------------


def test_suspended_scaled_to_zero() -> None:
    md = make(suspend=True, **AUTOSCALED)
    obs = Observed(service=service(), deployment=deployment(replicas=0, ready=0, updated=0))
    status = compute_status(md, obs, None, T0)
    cond = conditions(status)
    assert summary(status) == {
        "Ready": ("False", Reason.SUSPENDED),
        "Available": ("False", Reason.SUSPENDED),
        "Progressing": ("False", Reason.SUSPENDED),
        "DeploymentReady": ("True", Reason.SUSPENDED),
        "ServiceReady": ("True", Reason.CREATED),
        "AutoscalerReady": ("True", Reason.SUSPENDED),
        "MonitoringReady": ("True", Reason.DISABLED),
        "Suspended": ("True", Reason.SUSPENDED),
    }
    assert cond["DeploymentReady"]["message"] == "scaled to zero"
    assert cond["Suspended"]["message"] == "scaled to zero; every object is kept"
    assert cond["Ready"]["message"] == "suspended: scaled to zero, every object kept"
    assert status["readyReplicas"] == 0


def test_suspended_while_pods_still_scale_down() -> None:
    md = make(suspend=True)
    obs = Observed(service=service(), deployment=deployment(replicas=0, ready=2, updated=0, total=2))
    status = compute_status(md, obs, None, T0)
    assert summary(status)["Ready"] == ("False", Reason.SUSPENDED)
    assert summary(status)["Suspended"] == ("True", Reason.SUSPENDED)
    assert summary(status)["DeploymentReady"] == ("False", Reason.ROLLING_OUT)
    assert conditions(status)["DeploymentReady"]["message"] == "2/0 replicas ready, 0/0 updated"


# --- failures --------------------------------------------------------------------------------------


def test_failure_makes_ready_false_and_the_rest_unknown() -> None:
    message = "Deployment resnet was refused: spec.template.spec.containers[0].image: Required value"
    obs = healthy(failure=(Reason.INVALID_SPEC, message))
    status = compute_status(make(suspend=True), obs, None, T0)
    cond = conditions(status)
    assert cond["Ready"]["status"] == "False"
    for type_ in CONDITION_ORDER[1:-1]:
        assert (cond[type_]["status"], cond[type_]["reason"], cond[type_]["message"]) == (
            "Unknown",
            Reason.INVALID_SPEC,
            message,
        ), type_
    assert (cond["Ready"]["reason"], cond["Ready"]["message"]) == (Reason.INVALID_SPEC, message)
    # What is certain is still reported.
    assert summary(status)["Suspended"] == ("True", Reason.SUSPENDED)
    assert status["readyReplicas"] == 2


def test_long_messages_are_truncated_to_the_schema_limit() -> None:
    obs = Observed(failure=(Reason.INVALID_SPEC, "x" * 40000))
    status = compute_status(make(), obs, None, T0)
    assert {len(c["message"]) for c in status["conditions"][:-1]} == {32768}


def test_failure_status_of_an_unparseable_body() -> None:
    body = {
        "metadata": {"name": "resnet", "namespace": "ml", "generation": 7},
        "spec": {"model": {}},
        "status": {
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "Creating", "lastTransitionTime": T0},
            ]
        },
    }
    status = failure_status(body, Reason.INVALID_SPEC, "spec.model.storageUri: Field required", T1)
    assert status == {
        "observedGeneration": 7,
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "InvalidSpec",
                "message": "spec.model.storageUri: Field required",
                "lastTransitionTime": T0,  # still False: the transition time stays
                "observedGeneration": 7,
            }
        ],
    }
    fresh = failure_status({"metadata": {"name": "x"}}, Reason.INVALID_SPEC, "bad", T1)
    assert fresh["observedGeneration"] == 0
    assert fresh["conditions"][0]["lastTransitionTime"] == T1


def test_ready_condition() -> None:
    status = compute_status(make(), healthy(), None, T0)
    ready = ready_condition(status)
    assert ready is not None
    assert (ready["type"], ready["status"]) == ("Ready", "True")
    assert ready_condition(None) is None
    assert ready_condition({}) is None
    assert ready_condition({"conditions": [{"type": "Available", "status": "True"}]}) is None


# --- transitions, generations and fields -----------------------------------------------------------


def test_last_transition_time_moves_only_when_a_status_flips() -> None:
    md = make()
    first = compute_status(md, rolling_out(unschedulable("p", GPU_SHORTAGE)), None, T0)
    assert summary(first)["Ready"] == ("False", Reason.INSUFFICIENT_GPU)
    # Same statuses, different reason and message: the transition time stays.
    second = compute_status(md, rolling_out(unschedulable("p", NO_MATCHING_NODE)), first, T1)
    assert summary(second)["Ready"] == ("False", Reason.UNSCHEDULABLE)
    assert conditions(second)["Ready"]["message"] != conditions(first)["Ready"]["message"]
    assert {c["type"]: c["lastTransitionTime"] for c in second["conditions"]} == {
        t: T0 for t in CONDITION_ORDER
    }
    # An unchanged world gives an identical status, so nothing would be written.
    assert compute_status(md, rolling_out(unschedulable("p", NO_MATCHING_NODE)), second, T2) == second

    third = compute_status(md, healthy(), second, T2)
    times = {c["type"]: c["lastTransitionTime"] for c in third["conditions"]}
    assert times == {
        "Ready": T2,
        "Available": T2,
        "Progressing": T0,  # False while failing, False once rolled out
        "DeploymentReady": T2,
        "ServiceReady": T0,
        "AutoscalerReady": T0,
        "MonitoringReady": T0,
        "Suspended": T0,
    }


def test_observed_generation_on_status_and_every_condition() -> None:
    status = compute_status(make(generation=9), healthy(), None, T0)
    assert status["observedGeneration"] == 9
    assert {c["observedGeneration"] for c in status["conditions"]} == {9}
    newer = compute_status(make(generation=10), healthy(), status, T1)
    assert newer["observedGeneration"] == 10
    assert {c["observedGeneration"] for c in newer["conditions"]} == {10}
    assert {c["lastTransitionTime"] for c in newer["conditions"]} == {T0}


def test_fields_for_printer_columns_and_the_scale_subresource() -> None:
    md = make(
        "resnet",
        model={
            "storageUri": "gs://models/resnet",
            "name": "resnet50",
            "versionPolicy": {"latest": {"count": 2}},
        },
        gpu={"count": 2, "product": "NVIDIA-A100-SXM4-80GB"},
    )
    status = compute_status(md, healthy(), None, T0)
    assert status["selector"] == "modelserve.dev/deployment=resnet"
    assert status["endpoints"] == {
        "rest": "http://resnet.ml.svc:8501/v1/models/resnet50",
        "grpc": "resnet.ml.svc:8500",
    }
    assert status["modelName"] == "resnet50"
    assert status["modelVersions"] == "latest 2"
    assert status["gpu"] == "2x NVIDIA-A100-SXM4-80GB"
    assert (status["replicas"], status["readyReplicas"], status["updatedReplicas"]) == (2, 2, 2)
    # The status is valid against the API's own model of it.
    api.ModelDeploymentStatus.model_validate(status)


def test_fields_default_model_name_versions_and_no_gpu() -> None:
    md = make(
        "ranker",
        model={
            "storageUri": "gs://models/ranker",
            "versionPolicy": {"specific": {"versions": [1, 2]}},
        },
    )
    status = compute_status(md, healthy(), None, T0)
    assert status["modelName"] == "ranker"
    assert status["modelVersions"] == "1,2"
    assert status["endpoints"]["rest"] == "http://ranker.ml.svc:8501/v1/models/ranker"
    assert "gpu" not in status
    all_versions = make(model={"storageUri": "gs://models/ranker", "versionPolicy": {"all": {}}})
    assert compute_status(all_versions, healthy(), None, T0)["modelVersions"] == "all"
    mig = make(gpu={"migProfile": "1g.10gb", "product": "NVIDIA-A100-SXM4-80GB"})
    assert compute_status(mig, healthy(), None, T0)["gpu"] == (
        "1x nvidia.com/mig-1g.10gb on NVIDIA-A100-SXM4-80GB"
    )


def test_pods_refused_at_admission_report_pod_create_failed() -> None:
    message = 'pods "resnet-7c9d5b8f4-" is forbidden: no PriorityClass with name absent-class was found'
    dep = deployment(
        ready=0,
        updated=0,
        total=0,
        conditions=[
            {
                "type": "Progressing",
                "status": "True",
                "reason": "ReplicaSetUpdated",
                "message": "progressing",
            },
            {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": message},
        ],
    )
    status = compute_status(make(), Observed(service=service(), deployment=dep), None, T0)
    assert summary(status)["DeploymentReady"] == ("False", Reason.POD_CREATE_FAILED)
    assert summary(status)["Ready"] == ("False", Reason.POD_CREATE_FAILED)
    assert conditions(status)["Ready"]["message"].endswith(message)


def test_a_gpu_pod_waiting_for_a_terminating_pod_of_its_own_is_rolling_out() -> None:
    # GPU rollouts replace pods in place: the new pod waits for the old one's GPU.
    md = make(gpu={"count": 1})
    old = pod("resnet-old")
    old["metadata"]["deletionTimestamp"] = T0
    status = compute_status(md, rolling_out(unschedulable("resnet-new", GPU_SHORTAGE), old), None, T0)
    assert summary(status)["Ready"] == ("False", Reason.ROLLING_OUT)
    # Once the old pod is gone, the same shortage is a shortage.
    status = compute_status(md, rolling_out(unschedulable("resnet-new", GPU_SHORTAGE)), None, T0)
    assert summary(status)["Ready"] == ("False", Reason.INSUFFICIENT_GPU)


def test_ready_needs_min_replicas_even_when_the_deployment_says_fewer() -> None:
    # The HPA has yet to raise a Deployment at 1 to minReplicas 3: 1/1 ready is not Ready.
    md = make(autoscaling={"minReplicas": 3, "maxReplicas": 5})
    obs = Observed(
        service=service(), deployment=deployment(replicas=1, ready=1, updated=1, total=1), hpa=hpa()
    )
    status = compute_status(md, obs, None, T0)
    assert summary(status)["Ready"] == ("False", Reason.ROLLING_OUT)
    assert conditions(status)["DeploymentReady"]["message"] == "1/3 replicas ready, 1/3 updated"
