"""Refused child applies and missing referenced objects as condition reasons (pure)."""

from __future__ import annotations

import pytest
from test_status import T0, conditions, make, pod, rolling_out, summary, unschedulable, waiting

from modelserve import failures
from modelserve.status import Observed, Reason, compute_status

pytestmark = pytest.mark.unit

QUOTA = (
    'services "resnet" is forbidden: exceeded quota: services, requested: services=1, used: services=1, '
    "limited: services=1"
)
VAP = (
    "deployments.apps \"resnet\" is forbidden: ValidatingAdmissionPolicy 'no-gpus' with binding "
    "'no-gpus' denied request: failed expression: object.spec.replicas <= 2"
)
WEBHOOK = 'admission webhook "validate.kyverno.svc-fail" denied the request: policy require-labels failed'
RBAC = (
    'deployments.apps "resnet" is forbidden: User "system:serviceaccount:x:y" cannot patch resource '
    '"deployments" in API group "apps" in the namespace "ml"'
)


@pytest.mark.parametrize(
    ("status", "message", "reason"),
    [
        (403, QUOTA, Reason.QUOTA_EXCEEDED),
        (422, VAP, Reason.ADMISSION_DENIED),
        (403, VAP, Reason.ADMISSION_DENIED),
        (400, WEBHOOK, Reason.ADMISSION_DENIED),
        (403, WEBHOOK, Reason.ADMISSION_DENIED),
        (403, RBAC, Reason.APPLY_FORBIDDEN),
        (
            403,
            "unable to create new content in namespace ml because it is being terminated",
            Reason.APPLY_FORBIDDEN,
        ),
        (
            422,
            'Deployment.apps "resnet" is invalid: spec.template.spec.affinity: Invalid value',
            Reason.INVALID_SPEC,
        ),
        (409, "Operation cannot be fulfilled on deployments.apps", Reason.APPLY_CONFLICT),
        (500, "etcdserver: request timed out", Reason.APPLY_FAILED),
        (503, "the server is currently unable to handle the request", Reason.APPLY_FAILED),
        (429, "too many requests", Reason.APPLY_FAILED),
    ],
)
def test_every_refusal_has_its_reason(status: int, message: str, reason: str) -> None:
    assert failures.apply_reason(status, message) == reason


def test_only_conflicts_throttling_and_server_errors_are_transient() -> None:
    codes = (0, 400, 403, 409, 422, 429, 500, 503)
    assert [s for s in codes if failures.transient(s)] == [0, 409, 429, 500, 503]


def test_an_apply_failure_is_the_ready_reason_with_the_api_servers_message() -> None:
    md = make()
    message = f"Service resnet was refused (403 Forbidden): {QUOTA}"
    status = compute_status(md, Observed(failure=(Reason.QUOTA_EXCEEDED, message)), None, T0)
    ready = conditions(status)["Ready"]
    assert (ready["status"], ready["reason"], ready["message"]) == ("False", Reason.QUOTA_EXCEEDED, message)
    assert ready["observedGeneration"] == md.generation == status["observedGeneration"]


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ('secret "s3-creds" not found', Reason.SECRET_NOT_FOUND),
        ("couldn't find key AWS_REGION in Secret ml/s3-creds", Reason.SECRET_NOT_FOUND),
        ('configmap "settings" not found', Reason.CONFIG_MAP_NOT_FOUND),
    ],
)
def test_create_container_config_error_names_the_missing_object(message: str, reason: str) -> None:
    p = pod("resnet-a", statuses=[waiting("tfserving", "CreateContainerConfigError", message)])
    status = compute_status(make(), rolling_out(p), None, T0)
    assert summary(status)["Ready"] == ("False", reason)
    assert message in conditions(status)["DeploymentReady"]["message"]


def failed_mount(pod_name: str, message: str) -> dict[str, object]:
    return {
        "kind": "Event",
        "reason": "FailedMount",
        "type": "Warning",
        "message": message,
        "involvedObject": {"kind": "Pod", "name": pod_name, "namespace": "ml"},
        "source": {"component": "kubelet", "host": "node-1"},
    }


def test_a_failed_mount_of_a_missing_secret_is_secret_not_found() -> None:
    message = 'MountVolume.SetUp failed for volume "storage-credentials" : secret "s3-creds" not found'
    stuck = pod("resnet-a", statuses=[waiting("tfserving", "ContainerCreating")])
    obs = Observed(
        service=rolling_out().service,
        deployment=rolling_out().deployment,
        pods=(stuck,),
        pod_events=(failed_mount("resnet-a", message), failed_mount("other-pod", 'secret "x" not found')),
    )
    status = compute_status(make(), obs, None, T0)
    assert summary(status)["Ready"] == ("False", Reason.SECRET_NOT_FOUND)
    assert conditions(status)["DeploymentReady"]["message"] == f"{message} (pod resnet-a)"


def test_an_event_of_a_pod_that_is_not_ours_is_ignored() -> None:
    stuck = pod("resnet-a", statuses=[waiting("tfserving", "ContainerCreating")])
    obs = Observed(
        service=rolling_out().service,
        deployment=rolling_out().deployment,
        pods=(stuck,),
        pod_events=(failed_mount("other-pod", 'secret "x" not found'),),
    )
    assert summary(compute_status(make(), obs, None, T0))["Ready"] == ("False", Reason.ROLLING_OUT)


def test_a_missing_claim_from_the_scheduler_is_claim_not_found() -> None:
    message = '0/4 nodes are available: persistentvolumeclaim "models" not found. preemption: 0/4 nodes'
    status = compute_status(make(), rolling_out(unschedulable("resnet-a", message)), None, T0)
    assert summary(status)["Ready"] == ("False", Reason.CLAIM_NOT_FOUND)


def test_no_node_of_the_gpu_product_is_no_matching_gpu_node() -> None:
    message = (
        "0/4 nodes are available: 4 node(s) didn't match Pod's node affinity/selector. preemption: "
        "0/4 nodes are available: 4 Preemption is not helpful for scheduling."
    )
    md = make(gpu={"count": 1, "product": "NVIDIA-H200"})
    status = compute_status(md, rolling_out(unschedulable("resnet-a", message)), None, T0)
    assert summary(status)["Ready"] == ("False", Reason.NO_MATCHING_GPU_NODE)
    text = conditions(status)["DeploymentReady"]["message"]
    assert "nvidia.com/gpu.product=NVIDIA-H200" in text and message in text


def test_a_gpu_shortage_names_the_resource_count_and_product() -> None:
    message = "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
    md = make(gpu={"count": 4, "product": "NVIDIA-A100-SXM4-80GB"})
    status = compute_status(md, rolling_out(unschedulable("resnet-a", message)), None, T0)
    assert summary(status)["Ready"] == ("False", Reason.INSUFFICIENT_GPU)
    assert conditions(status)["DeploymentReady"]["message"].startswith(
        "no node with nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB has 4 free nvidia.com/gpu: "
    )
