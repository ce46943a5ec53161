"""helm install, helm test, helm upgrade and helm uninstall against the local cluster.

The operator image is never pulled: kwok's fake nodes run every pod they are given, so the pod is
really scheduled and marked Ready, while the operator's behaviour under the chart's RBAC is proven in
test_chart_rbac.py by running it in-process with the chart's ServiceAccount token.
"""

from __future__ import annotations

import threading
from typing import Any

from e2e_kit import (
    CHART,
    RESTRICTED,
    ensure_service_monitor_crd,
    fresh_namespaces,
    helm,
    release_cleanup,
    unique,
    wait_operator_pod_ready,
)

from kit import Cluster, get_or_none, wait_until

# Namespaced kinds the chart may create; after uninstall none may remain with the release's label.
NAMESPACED_KINDS = (
    "deployments,replicasets,pods,services,serviceaccounts,roles,rolebindings,configmaps,secrets"
)


def _release_objects(cluster: Cluster, namespace: str, release: str) -> list[str]:
    selector = f"app.kubernetes.io/instance={release}"
    names = cluster.kubectl(
        "get",
        NAMESPACED_KINDS + ",servicemonitors.monitoring.coreos.com",
        "-n",
        namespace,
        "-l",
        selector,
        "-o",
        "name",
    ).stdout.split()
    names += cluster.kubectl(
        "get", "clusterroles,clusterrolebindings", "-l", selector, "-o", "name"
    ).stdout.split()
    # Helm's own release records (secrets named sh.helm.release.v1.<release>.vN).
    names += [
        n
        for n in cluster.kubectl("get", "secrets", "-n", namespace, "-o", "name").stdout.split()
        if f"sh.helm.release.v1.{release}." in n
    ]
    return sorted(names)


def _helm_test_playing_kubelet(cluster: Cluster, namespace: str, release: str) -> str:
    """`helm test`, with this test as the kubelet kwok does not emulate for bare pods: once the hook pod
    is Running it is marked Succeeded, as the real kubelet would after its command exited 0."""
    result: dict[str, Any] = {}

    def run() -> None:
        result["proc"] = helm(cluster, "test", release, "-n", namespace, "--timeout=90s", check=False)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    pod = f"{release}-modelserve-operator-test"

    def running() -> bool:
        body = get_or_none(cluster, namespace, "pod", pod)
        return bool(body and (body.get("status") or {}).get("phase") == "Running")

    wait_until(running, timeout=60, what=f"the helm test pod {pod} Running")
    body = cluster.kubectl_json("get", "pod", pod, "-n", namespace)
    assert body["metadata"]["annotations"]["helm.sh/hook"] == "test"
    cluster.kubectl(
        "patch",
        "pod",
        pod,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"phase":"Succeeded"}}',
    )
    thread.join(timeout=120)
    proc = result["proc"]
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return str(proc.stdout)


def test_install_test_upgrade_uninstall(cluster: Cluster) -> None:
    ensure_service_monitor_crd(cluster)
    release = unique("ms")
    with (
        fresh_namespaces(cluster, "e2e-install", labels=RESTRICTED) as (namespace,),
        release_cleanup(cluster, release, namespace),
    ):
        name = f"{release}-modelserve-operator"
        install = helm(
            cluster,
            "install",
            release,
            str(CHART),
            "-n",
            namespace,
            "--wait",
            "--timeout=180s",
        )
        assert "STATUS: deployed" in install.stdout
        assert "watches every namespace" in install.stdout, "NOTES.txt"

        # Objects created, named after the release; ClusterRole and binding carry the namespace.
        for kind, obj in (
            ("serviceaccount", name),
            ("deployment", name),
            ("service", f"{name}-metrics"),
        ):
            assert get_or_none(cluster, namespace, kind, obj), f"{kind}/{obj} missing"
        cluster_name = f"{name}-{namespace}"
        binding = cluster.kubectl_json("get", "clusterrolebinding", cluster_name)
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]
        assert cluster.kubectl_json("get", "clusterrole", cluster_name)["rules"]

        # Scheduled on a kwok node and Ready, admitted under the restricted Pod Security Standard.
        pod = wait_operator_pod_ready(cluster, namespace, release)
        first_pod = pod["metadata"]["name"]
        args = pod["spec"]["containers"][0]["args"]
        assert "--all-namespaces" in args and "--json-logs" in args and "--workers=8" in args
        endpoints = cluster.kubectl_json("get", "endpoints", f"{name}-metrics", "-n", namespace)
        assert any(s.get("addresses") for s in endpoints.get("subsets") or []), (
            "metrics Service has no endpoint"
        )

        assert "Phase:          Succeeded" in _helm_test_playing_kubelet(cluster, namespace, release)

        # Upgrade with changed values: settings roll the pods (RollingUpdate), the ServiceMonitor appears.
        helm(
            cluster,
            "upgrade",
            release,
            str(CHART),
            "-n",
            namespace,
            "--wait",
            "--timeout=180s",
            "--set",
            "operator.workers=4",
            "--set",
            "operator.logFormat=text",
            "--set",
            "metrics.serviceMonitor.enabled=true",
            "--set",
            "metrics.serviceMonitor.labels.release=prom",
        )

        def rolled() -> dict[str, Any] | None:
            new = wait_operator_pod_ready(cluster, namespace, release)
            return new if new["metadata"]["name"] != first_pod else None

        new_pod = wait_until(rolled, timeout=120, what="the operator pod replaced after the upgrade")
        new_args = new_pod["spec"]["containers"][0]["args"]
        assert "--workers=4" in new_args and "--json-logs" not in new_args
        monitor = cluster.kubectl_json("get", "servicemonitors.monitoring.coreos.com", name, "-n", namespace)
        assert monitor["metadata"]["labels"]["release"] == "prom"
        assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
        history = helm(cluster, "history", release, "-n", namespace, "-o", "json").stdout
        assert '"revision":2' in history.replace(" ", "")

        # Uninstall: nothing of the release is left, cluster-scoped objects included; the CRD stays.
        helm(cluster, "uninstall", release, "-n", namespace, "--wait", "--timeout=120s")
        wait_until(
            lambda: not _release_objects(cluster, namespace, release),
            timeout=90,
            what=f"every object of {release} gone",
            describe=lambda: "\n".join(_release_objects(cluster, namespace, release)),
        )
        assert cluster.kubectl("get", "crd", "modeldeployments.modelserve.dev", check=False).returncode == 0
