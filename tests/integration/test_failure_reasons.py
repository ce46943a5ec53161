"""A child the API server refuses is a status reason and an Event on the ModelDeployment, retried with
a backoff, and cleared once the cause is gone: a ResourceQuota, a ValidatingAdmissionPolicy (the
real in-tree admission plugin); and pods that cannot start name what is missing: a
PersistentVolumeClaim that does not exist, a GPU product no node has."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from kit import Cluster, condition, model_deployment, wait_condition, wait_event, wait_until

pytestmark = pytest.mark.integration

MODEL = {"storageUri": "gs://models/half_plus_two"}


def apply(cluster: Cluster, namespace: str, manifest: dict[str, Any]) -> None:
    cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=json.dumps(manifest))


def ready_message(md: dict[str, Any]) -> str:
    return str((condition(md, "Ready") or {}).get("message"))


@pytest.mark.usefixtures("operator")
def test_a_service_quota_is_quota_exceeded_until_the_quota_is_raised(
    cluster: Cluster, namespace: str
) -> None:
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "services"},
        "spec": {"hard": {"services": "0"}},
    }
    apply(cluster, namespace, quota)
    # The quota admits nothing until its controller has computed the usage ("status unknown").
    wait_until(
        lambda: (
            cluster.kubectl_json("get", "resourcequota", "services", "-n", namespace)
            .get("status", {})
            .get("hard")
        ),
        timeout=30,
        what="the quota's status",
    )
    apply(cluster, namespace, model_deployment("quota", {"model": MODEL}))
    md = wait_condition(cluster, namespace, "quota", "Ready", "False", reason="QuotaExceeded", timeout=20)
    assert "Service quota was refused (403 Forbidden)" in ready_message(md)
    assert "exceeded quota: services" in ready_message(md)
    event = wait_event(cluster, namespace, "quota", "QuotaExceeded", type_="Warning", timeout=20)
    assert "exceeded quota" in event["message"]

    cluster.kubectl(
        "patch",
        "resourcequota",
        "services",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"hard": {"services": "4"}}}),
    )
    wait_condition(cluster, namespace, "quota", "Ready", "True", timeout=90)
    wait_event(cluster, namespace, "quota", "Ready", type_="Normal", timeout=20)


@pytest.fixture
def denying_policy(cluster: Cluster, namespace: str) -> Iterator[str]:
    """A ValidatingAdmissionPolicy refusing every Deployment in the test's namespace."""
    name = f"deny-deployments-{namespace}"[:63]
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["apps"],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["deployments"],
                    }
                ]
            },
            "validations": [{"expression": "false", "message": "deployments are frozen here"}],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    for obj in (policy, binding):
        cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(obj))
    probe = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "probe", "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": "probe"}},
            "template": {
                "metadata": {"labels": {"app": "probe"}},
                "spec": {"containers": [{"name": "c", "image": "example.invalid/probe:1"}]},
            },
        },
    }
    # The policy takes effect a moment after it is stored: wait until a dry run is refused.
    wait_until(
        lambda: (
            "frozen"
            in cluster.kubectl(
                "create", "--dry-run=server", "-f", "-", input=json.dumps(probe), check=False
            ).stderr
        ),
        timeout=30,
        what="the ValidatingAdmissionPolicy to take effect",
    )
    yield name
    cluster.kubectl("delete", "validatingadmissionpolicybinding", name, "--ignore-not-found", check=False)
    cluster.kubectl("delete", "validatingadmissionpolicy", name, "--ignore-not-found", check=False)


@pytest.mark.usefixtures("operator")
def test_a_denying_admission_policy_is_admission_denied_until_it_is_removed(
    cluster: Cluster, namespace: str, denying_policy: str
) -> None:
    apply(cluster, namespace, model_deployment("policed", {"model": MODEL}))
    md = wait_condition(cluster, namespace, "policed", "Ready", "False", reason="AdmissionDenied", timeout=20)
    assert "Deployment policed was refused" in ready_message(md)
    assert f"ValidatingAdmissionPolicy '{denying_policy}'" in ready_message(md)
    assert "deployments are frozen here" in ready_message(md)
    assert md["status"]["observedGeneration"] == md["metadata"]["generation"]
    wait_event(cluster, namespace, "policed", "AdmissionDenied", type_="Warning", timeout=20)

    cluster.kubectl("delete", "validatingadmissionpolicybinding", denying_policy)
    wait_condition(cluster, namespace, "policed", "Ready", "True", timeout=90)
    wait_event(cluster, namespace, "policed", "Ready", type_="Normal", timeout=20)


@pytest.mark.usefixtures("operator")
def test_a_claim_that_does_not_exist_is_claim_not_found(cluster: Cluster, namespace: str) -> None:
    apply(cluster, namespace, model_deployment("noclaim", {"model": {"storageUri": "pvc://no-such-claim/m"}}))
    md = wait_condition(cluster, namespace, "noclaim", "Ready", "False", reason="ClaimNotFound", timeout=30)
    assert 'persistentvolumeclaim "no-such-claim" not found' in ready_message(md)
    wait_event(cluster, namespace, "noclaim", "ClaimNotFound", type_="Warning", timeout=20)


@pytest.mark.usefixtures("operator")
def test_a_gpu_product_no_node_has_is_no_matching_gpu_node(cluster: Cluster, namespace: str) -> None:
    spec = {"model": MODEL, "gpu": {"count": 1, "product": "NVIDIA-H200-NOWHERE"}}
    apply(cluster, namespace, model_deployment("rare", spec))
    md = wait_condition(cluster, namespace, "rare", "Ready", "False", reason="NoMatchingGPUNode", timeout=60)
    assert "nvidia.com/gpu.product=NVIDIA-H200-NOWHERE" in ready_message(md)
    wait_event(cluster, namespace, "rare", "NoMatchingGPUNode", type_="Warning", timeout=20)
