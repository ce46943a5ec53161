"""Other writers on the operator's children: a changed env value of ours is reverted, an env var
added by someone else is left alone (server-side apply cannot own it) without an apply loop, and
`kubectl rollout restart`, foreign labels and annotations on the Deployment are kept.
(Image, scale under autoscaling and deletion are covered in tests/integration/test_reconcile.py.)"""

from __future__ import annotations

import json
from typing import Any

import pytest

from kit import Cluster, get_or_none, model_deployment, wait_condition, wait_until

pytestmark = pytest.mark.integration

SPEC = {
    "model": {"storageUri": "gs://models/half_plus_two"},
    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
    "serving": {"env": [{"name": "TZ", "value": "UTC"}]},
}


def env_of(cluster: Cluster, namespace: str) -> dict[str, Any]:
    dep = get_or_none(cluster, namespace, "deployment", "writers") or {}
    containers = dep.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}]
    return {e["name"]: e.get("value") for e in containers[0].get("env") or []}


@pytest.mark.usefixtures("operator")
def test_env_reverted_foreign_additions_and_restarts_kept(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(model_deployment("writers", SPEC)))
    wait_condition(cluster, namespace, "writers", "Ready", "True", timeout=90)

    cluster.kubectl("set", "env", "-n", namespace, "deployment/writers", "TZ=Europe/Paris")
    wait_until(lambda: env_of(cluster, namespace).get("TZ") == "UTC", timeout=30, what="our TZ value back")

    cluster.kubectl("set", "env", "-n", namespace, "deployment/writers", "SIDECAR_HINT=1")
    cluster.kubectl("label", "-n", namespace, "deployment/writers", "cost-center=42")
    cluster.kubectl("annotate", "-n", namespace, "deployment/writers", "example.com/owner=alice")
    cluster.kubectl("rollout", "restart", "-n", namespace, "deployment/writers")
    wait_condition(cluster, namespace, "writers", "Ready", "True", timeout=90)
    dep = get_or_none(cluster, namespace, "deployment", "writers")
    assert dep is not None
    env = env_of(cluster, namespace)
    assert (env["TZ"], env["SIDECAR_HINT"]) == ("UTC", "1")
    assert dep["metadata"]["labels"]["cost-center"] == "42"
    assert dep["metadata"]["annotations"]["example.com/owner"] == "alice"
    assert "kubectl.kubernetes.io/restartedAt" in dep["spec"]["template"]["metadata"]["annotations"]

    # No fight: a spec change still lands, and afterwards the Deployment stops changing.
    spec = {**SPEC, "serving": {"env": [{"name": "TZ", "value": "UTC"}, {"name": "LEVEL", "value": "2"}]}}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(model_deployment("writers", spec)))
    wait_until(lambda: env_of(cluster, namespace).get("LEVEL") == "2", timeout=30, what="the spec change")
    wait_condition(cluster, namespace, "writers", "Ready", "True", timeout=90)
    generation = (get_or_none(cluster, namespace, "deployment", "writers") or {})["metadata"]["generation"]
    cluster.kubectl("annotate", "-n", namespace, "mdep/writers", "example.com/poke=1")  # one more reconcile
    wait_until(
        lambda: (
            (get_or_none(cluster, namespace, "mdep", "writers") or {})
            .get("metadata", {})
            .get("annotations", {})
            .get("example.com/poke")
        ),
        timeout=10,
        what="the poke",
    )
    dep = get_or_none(cluster, namespace, "deployment", "writers") or {}
    assert dep["metadata"]["generation"] == generation
    assert env_of(cluster, namespace)["SIDECAR_HINT"] == "1"
