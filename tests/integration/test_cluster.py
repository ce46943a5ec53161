"""The local control plane is genuine: versions, scheduling of GPUs, GC, Pod Security, CEL."""

from __future__ import annotations

import json

import pytest

from kit import Cluster, pinned_versions, wait_until

pytestmark = pytest.mark.integration


def test_server_and_client_report_the_pinned_release(cluster: Cluster) -> None:
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    expected = pinned_versions()["KUBE_VERSION"]
    if cluster.bin_dir:  # our kubectl, built from source
        assert version["clientVersion"]["gitVersion"] == expected
    if cluster.local:
        assert version["serverVersion"]["gitVersion"] == expected
    else:  # kind or a real cluster: at least the oldest release the operator supports
        assert int(version["serverVersion"]["minor"].rstrip("+")) >= 34


def test_fleet_has_two_cpu_and_two_gpu_nodes_of_different_products(cluster: Cluster) -> None:
    nodes = cluster.kubectl_json("get", "nodes")["items"]
    gpu = [n for n in nodes if n["metadata"]["labels"].get("nvidia.com/gpu.present") == "true"]
    cpu = [n for n in nodes if n not in gpu]
    assert len(cpu) >= 2 and len(gpu) >= 2
    assert len({n["metadata"]["labels"]["nvidia.com/gpu.product"] for n in gpu}) >= 2
    for node in gpu:
        assert node["status"]["allocatable"]["nvidia.com/gpu"] == "4"
        assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"} in node["spec"]["taints"]


def _gpu_deployment(name: str, gpus: int, product: str) -> str:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "nodeSelector": {"nvidia.com/gpu.product": product},
                        "tolerations": [
                            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
                        ],
                        "containers": [
                            {
                                "name": "main",
                                "image": "registry.invalid/gpu-test:1",
                                "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                            }
                        ],
                    },
                },
            },
        }
    )


def test_scheduler_places_gpu_pods_on_the_requested_product(cluster: Cluster, namespace: str) -> None:
    product = "NVIDIA-H100-80GB-HBM3"
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_gpu_deployment("fits", 1, product))
    cluster.kubectl("wait", "-n", namespace, "--for=condition=Available", "deployment/fits", "--timeout=90s")
    pods = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", "app=fits")["items"]
    assert len(pods) == 1
    node = cluster.kubectl_json("get", "node", pods[0]["spec"]["nodeName"])
    assert node["metadata"]["labels"]["nvidia.com/gpu.product"] == product
    assert pods[0]["status"]["phase"] == "Running"


def test_too_many_gpus_stay_pending_with_a_scheduler_event(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=_gpu_deployment("greedy", 5, "NVIDIA-A100-SXM4-80GB")
    )

    def failed_scheduling() -> str | None:
        events = cluster.kubectl_json(
            "get", "events", "-n", namespace, "--field-selector", "reason=FailedScheduling"
        )
        messages = [e["message"] for e in events["items"]]
        return next((m for m in messages if "Insufficient nvidia.com/gpu" in m), None)

    message = wait_until(failed_scheduling, timeout=60, what="a FailedScheduling event")
    assert "Insufficient nvidia.com/gpu" in message
    pods = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", "app=greedy")["items"]
    assert pods and all(p["status"]["phase"] == "Pending" for p in pods)


def test_deleting_an_owner_garbage_collects_its_dependent(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("create", "configmap", "owner", "-n", namespace)
    owner = cluster.kubectl_json("get", "configmap", "owner", "-n", namespace)
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
            ],
        },
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(dependent))
    assert cluster.kubectl("get", "configmap", "dependent", "-n", namespace, check=False).returncode == 0
    cluster.kubectl("delete", "configmap", "owner", "-n", namespace)
    wait_until(
        lambda: (
            cluster.kubectl("get", "configmap", "dependent", "-n", namespace, check=False).returncode != 0
        ),
        timeout=60,
        what="the garbage collector to delete the dependent",
    )


def test_restricted_namespace_refuses_a_privileged_pod(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged"},
        "spec": {
            "containers": [
                {"name": "main", "image": "registry.invalid/x:1", "securityContext": {"privileged": True}}
            ]
        },
    }
    proc = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(pod), check=False)
    assert proc.returncode != 0
    assert "violates PodSecurity" in proc.stderr and "restricted" in proc.stderr
    assert "privileged" in proc.stderr


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.clustertest.modelserve.dev"},
    "spec": {
        "group": "clustertest.modelserve.dev",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}},
                                "x-kubernetes-validations": [
                                    {"rule": "self.min <= self.max", "message": "min must not exceed max"}
                                ],
                            }
                        },
                    }
                },
            }
        ],
    },
}


def test_crd_validation_rule_refuses_a_violating_object(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(WIDGET_CRD))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/widgets.clustertest.modelserve.dev"
    )
    good = {
        "apiVersion": "clustertest.modelserve.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "ok"},
        "spec": {"min": 1, "max": 2},
    }
    bad = {**good, "metadata": {"name": "bad"}, "spec": {"min": 3, "max": 2}}
    wait_until(
        lambda: (
            cluster.kubectl(
                "apply", "-n", namespace, "-f", "-", input=json.dumps(good), check=False
            ).returncode
            == 0
        ),
        timeout=30,
        what="the new CRD to serve objects",
    )
    proc = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(bad), check=False)
    assert proc.returncode != 0
    assert "min must not exceed max" in proc.stderr
