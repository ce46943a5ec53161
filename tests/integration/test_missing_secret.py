"""A credentialsSecret that does not exist is SecretNotFound within seconds, and Ready once it is
created, read the way the operator reads it on a real cluster: from the kubelet's FailedMount Event
of a pod that cannot start (the operator has no access to Secrets).

kwok runs no kubelet and would report every pod Running, so this test schedules the pods onto a node
kwok does not manage and plays that node's kubelet itself (`StandInKubelet`, a test stand-in named
as such): a pod whose Secret volume is missing stays Pending with its containers waiting and gets the
kubelet's FailedMount Event, word for word; once the Secret exists the pod runs and turns Ready. The
scheduler, the ReplicaSet and Deployment controllers, the API server and the operator are real."""

from __future__ import annotations

import json

import pytest

from kit import Cluster, condition, model_deployment, wait_condition, wait_event, wait_until
from kubelet_kit import TAINT, StandInKubelet

pytestmark = pytest.mark.integration


@pytest.mark.usefixtures("operator")
def test_a_missing_credentials_secret_is_secret_not_found_until_it_exists(
    cluster: Cluster, namespace: str, kubelet: StandInKubelet
) -> None:
    spec = {
        "model": {"storageUri": "s3://models/resnet", "credentialsSecret": "s3-creds"},
        "scheduling": {
            "nodeSelector": {"kubernetes.io/hostname": kubelet.node},
            "tolerations": [{"key": TAINT, "operator": "Equal", "value": namespace, "effect": "NoSchedule"}],
        },
    }
    cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", "-",
                    input=json.dumps(model_deployment("creds", spec)))

    def reason() -> str | None:
        kubelet.sync()
        md = cluster.kubectl_json("get", "mdep", "creds", "-n", namespace)
        ready = condition(md, "Ready") or {}
        return str(ready.get("reason")) if ready.get("reason") == "SecretNotFound" else None

    wait_until(reason, timeout=30, what="Ready reason SecretNotFound")
    md = cluster.kubectl_json("get", "mdep", "creds", "-n", namespace)
    message = str((condition(md, "Ready") or {}).get("message"))
    assert 'secret "s3-creds" not found' in message and "MountVolume.SetUp failed" in message
    assert md["status"]["observedGeneration"] == md["metadata"]["generation"]
    wait_event(cluster, namespace, "creds", "SecretNotFound", type_="Warning", timeout=20)

    cluster.kubectl("create", "secret", "generic", "s3-creds", "-n", namespace,
                    "--from-literal=AWS_ACCESS_KEY_ID=x", "--from-literal=AWS_SECRET_ACCESS_KEY=y")

    def ready() -> bool:
        kubelet.sync()
        md = cluster.kubectl_json("get", "mdep", "creds", "-n", namespace)
        return (condition(md, "Ready") or {}).get("status") == "True"

    wait_until(ready, timeout=90, what="Ready once the Secret exists")
    wait_condition(cluster, namespace, "creds", "Ready", "True", timeout=10)
    wait_event(cluster, namespace, "creds", "Ready", type_="Normal", timeout=20)
