"""The operator on the real control plane: children, propagation, drift, deletion, restart."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kit import Cluster, get_or_none, model_deployment, wait_condition, wait_event, wait_until

pytestmark = pytest.mark.integration

MODEL = {"storageUri": "gs://models/half_plus_two"}


def apply(cluster: Cluster, namespace: str, manifest: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))


def patch_spec(cluster: Cluster, namespace: str, name: str, patch: dict[str, Any]) -> None:
    cluster.kubectl("patch", "mdep", name, "-n", namespace, "--type=merge", "-p", json.dumps({"spec": patch}))


def child(cluster: Cluster, namespace: str, kind: str, name: str) -> dict[str, Any]:
    obj = get_or_none(cluster, namespace, kind, name)
    assert obj is not None, f"{kind} {name} missing"
    return obj


@pytest.mark.usefixtures("operator")
def test_create_builds_every_child_and_reports_ready(cluster: Cluster, namespace: str) -> None:
    apply(cluster, namespace, model_deployment("echo", {"model": MODEL, "replicas": 2}))
    md = wait_condition(cluster, namespace, "echo", "Ready", "True", timeout=90)

    uid = md["metadata"]["uid"]
    for kind, name in (("configmap", "echo-tfserving"), ("service", "echo"), ("deployment", "echo")):
        obj = child(cluster, namespace, kind, name)
        refs = obj["metadata"]["ownerReferences"]
        assert refs == [
            {
                "apiVersion": "modelserve.dev/v1alpha1",
                "kind": "ModelDeployment",
                "name": "echo",
                "uid": uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        labels = obj["metadata"]["labels"]
        assert labels["modelserve.dev/deployment"] == "echo"
        assert labels["app.kubernetes.io/managed-by"] == "modelserve-operator"
        assert not any(k.startswith("kopf.") for k in obj["metadata"].get("annotations") or {})
    assert get_or_none(cluster, namespace, "hpa", "echo") is None

    deployment = child(cluster, namespace, "deployment", "echo")
    assert deployment["spec"]["selector"] == {"matchLabels": {"modelserve.dev/deployment": "echo"}}
    assert deployment["status"]["readyReplicas"] == 2
    config = child(cluster, namespace, "configmap", "echo-tfserving")["data"]["models.config"]
    assert 'name: "echo"' in config and "latest" in config

    status = md["status"]
    assert status["readyReplicas"] == 2 and status["replicas"] == 2
    assert status["selector"] == "modelserve.dev/deployment=echo"
    assert status["endpoints"] == {
        "rest": f"http://echo.{namespace}.svc:8501/v1/models/echo",
        "grpc": f"echo.{namespace}.svc:8500",
    }
    types = {c["type"]: c["status"] for c in status["conditions"]}
    assert types["DeploymentReady"] == types["ServiceReady"] == types["Available"] == "True"
    assert types["Suspended"] == "False"
    assert wait_event(cluster, namespace, "echo", "Ready", type_="Normal")["source"]["component"] == (
        "modelserve-operator"
    )


@pytest.mark.usefixtures("operator")
def test_version_label_change_touches_only_the_configmap(cluster: Cluster, namespace: str) -> None:
    model = {
        **MODEL,
        "versionPolicy": {"specific": {"versions": [1, 2]}},
        "versionLabels": {"stable": 1, "canary": 2},
    }
    apply(cluster, namespace, model_deployment("ranker", {"model": model}))
    wait_condition(cluster, namespace, "ranker", "Ready", "True", timeout=90)
    before = child(cluster, namespace, "deployment", "ranker")

    patch_spec(cluster, namespace, "ranker", {"model": {"versionLabels": {"stable": 2, "canary": 2}}})
    wait_until(
        lambda: (
            'key: "stable"\n      value: 2'
            in child(cluster, namespace, "configmap", "ranker-tfserving")["data"]["models.config"]
        ),
        timeout=30,
        what="the model config to move the stable label",
    )
    wait_condition(cluster, namespace, "ranker", "Ready", "True")
    after = child(cluster, namespace, "deployment", "ranker")
    assert after["metadata"]["generation"] == before["metadata"]["generation"], "pods were rolled"
    assert after["spec"]["template"] == before["spec"]["template"]


@pytest.mark.usefixtures("operator")
def test_spec_updates_propagate_to_every_child(cluster: Cluster, namespace: str) -> None:
    apply(cluster, namespace, model_deployment("grow", {"model": MODEL, "replicas": 1}))
    wait_condition(cluster, namespace, "grow", "Ready", "True", timeout=90)
    generation = child(cluster, namespace, "deployment", "grow")["metadata"]["generation"]

    # Resources and the model source roll pods.
    patch_spec(
        cluster,
        namespace,
        "grow",
        {
            "resources": {"requests": {"cpu": "2", "memory": "3Gi"}},
            "model": {"storageUri": "s3://models/other"},
        },
    )

    def rolled() -> dict[str, Any] | None:
        dep = child(cluster, namespace, "deployment", "grow")
        container = dep["spec"]["template"]["spec"]["containers"][0]
        return dep if container["resources"]["requests"].get("memory") == "3Gi" else None

    dep = wait_until(rolled, timeout=30, what="new resources on the Deployment")
    assert dep["metadata"]["generation"] > generation
    init = dep["spec"]["template"]["spec"]["initContainers"][0]
    assert {"name": "MODELSERVE_STORAGE_URI", "value": "s3://models/other"} in init["env"]

    # Service type and annotations.
    patch_spec(cluster, namespace, "grow", {"service": {"type": "NodePort", "annotations": {"team": "ml"}}})
    wait_until(
        lambda: child(cluster, namespace, "service", "grow")["spec"]["type"] == "NodePort",
        timeout=30,
        what="the Service to become NodePort",
    )
    assert child(cluster, namespace, "service", "grow")["metadata"]["annotations"]["team"] == "ml"

    # Autoscaling on: an HPA appears and the Deployment's replicas are no longer ours.
    patch_spec(
        cluster, namespace, "grow", {"replicas": None, "autoscaling": {"minReplicas": 2, "maxReplicas": 4}}
    )
    hpa = wait_until(lambda: get_or_none(cluster, namespace, "hpa", "grow"), timeout=30, what="the HPA")
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 4
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "grow"}
    managed = cluster.kubectl_json("get", "deployment", "grow", "-n", namespace, "--show-managed-fields")[
        "metadata"
    ]["managedFields"]
    ours = [m for m in managed if m["manager"] == "modelserve-operator" and m["operation"] == "Apply"]
    assert ours and all("f:replicas" not in json.dumps(m["fieldsV1"].get("f:spec", {})) for m in ours)

    # Autoscaling off again: the HPA we created is deleted.
    patch_spec(cluster, namespace, "grow", {"autoscaling": None, "replicas": 1})
    wait_until(
        lambda: get_or_none(cluster, namespace, "hpa", "grow") is None, timeout=30, what="the HPA to go"
    )
    wait_condition(cluster, namespace, "grow", "Ready", "True", timeout=60)


@pytest.mark.usefixtures("operator")
def test_other_writers_scale_kept_image_reverted_deletion_recreated(cluster: Cluster, namespace: str) -> None:
    spec = {"model": MODEL, "autoscaling": {"minReplicas": 1, "maxReplicas": 5}}
    apply(cluster, namespace, model_deployment("drift", spec))
    wait_condition(cluster, namespace, "drift", "Ready", "True", timeout=90)
    image = child(cluster, namespace, "deployment", "drift")["spec"]["template"]["spec"]["containers"][0][
        "image"
    ]

    # A foreign image edit is put back.
    cluster.kubectl("set", "image", "-n", namespace, "deployment/drift", "tfserving=registry.invalid/evil:1")
    wait_until(
        lambda: (
            child(cluster, namespace, "deployment", "drift")["spec"]["template"]["spec"]["containers"][0][
                "image"
            ]
            == image
        ),
        timeout=30,
        what="the operator to revert the image",
    )

    # Scaling by another manager under autoscaling is left alone, even after the operator reconciled
    # again (the image revert above proves it reacts to Deployment events within seconds).
    cluster.kubectl("scale", "-n", namespace, "deployment/drift", "--replicas=3")
    cluster.kubectl("set", "image", "-n", namespace, "deployment/drift", "tfserving=registry.invalid/evil:2")
    wait_until(
        lambda: (
            child(cluster, namespace, "deployment", "drift")["spec"]["template"]["spec"]["containers"][0][
                "image"
            ]
            == image
        ),
        timeout=30,
        what="the operator to reconcile after the scale",
    )
    assert child(cluster, namespace, "deployment", "drift")["spec"]["replicas"] == 3

    # Labels and annotations added by others stay.
    cluster.kubectl("label", "-n", namespace, "service/drift", "cost-center=42")
    cluster.kubectl("annotate", "-n", namespace, "service/drift", "example.com/owner=alice")

    # A deleted child comes back.
    old_uid = child(cluster, namespace, "service", "drift")["metadata"]["uid"]
    cluster.kubectl("delete", "-n", namespace, "service/drift")
    recreated = wait_until(
        lambda: (
            (s := get_or_none(cluster, namespace, "service", "drift"))
            and s["metadata"]["uid"] != old_uid
            and s
        ),
        timeout=30,
        what="the Service to be recreated",
    )
    assert recreated["metadata"]["labels"]["modelserve.dev/deployment"] == "drift"
    cluster.kubectl("label", "-n", namespace, "configmap/drift-tfserving", "cost-center=42")
    patch_spec(cluster, namespace, "drift", {"serving": {"env": [{"name": "TZ", "value": "UTC"}]}})
    wait_until(
        lambda: (
            {"name": "TZ", "value": "UTC"}
            in child(cluster, namespace, "deployment", "drift")["spec"]["template"]["spec"]["containers"][0][
                "env"
            ]
        ),
        timeout=30,
        what="the new env var",
    )
    assert (
        child(cluster, namespace, "configmap", "drift-tfserving")["metadata"]["labels"]["cost-center"] == "42"
    )

    # Removing our managed-by label takes the child out of the operator's (label-selected) watch;
    # that shows up as a DELETED event, and the label is put back long before the 5-minute resync.
    cluster.kubectl("label", "-n", namespace, "configmap/drift-tfserving", "app.kubernetes.io/managed-by-")
    wait_until(
        lambda: (
            child(cluster, namespace, "configmap", "drift-tfserving")["metadata"]["labels"].get(
                "app.kubernetes.io/managed-by"
            )
            == "modelserve-operator"
        ),
        timeout=30,
        what="the managed-by label to be put back",
    )


@pytest.mark.usefixtures("operator")
def test_deleting_the_model_deployment_collects_every_child(cluster: Cluster, namespace: str) -> None:
    spec = {"model": MODEL, "autoscaling": {"minReplicas": 1, "maxReplicas": 2}}
    apply(cluster, namespace, model_deployment("gone", spec))
    wait_condition(cluster, namespace, "gone", "Ready", "True", timeout=90)
    cluster.kubectl("delete", "mdep", "gone", "-n", namespace, "--wait=true", "--timeout=30s")
    for kind, name in (
        ("deployment", "gone"),
        ("service", "gone"),
        ("configmap", "gone-tfserving"),
        ("hpa", "gone"),
    ):
        wait_until(
            lambda k=kind, n=name: get_or_none(cluster, namespace, k, n) is None,
            timeout=60,
            what=f"{kind} {name} to be garbage-collected",
        )
    pods = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", "modelserve.dev/deployment=gone")[
        "items"
    ]
    assert all(p["metadata"].get("deletionTimestamp") for p in pods)
