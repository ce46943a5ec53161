"""dist/install.yaml with plain `kubectl apply --server-side`: the cluster-wide install, its RBAC proven
by running the operator under its ServiceAccount token, and the documented uninstall keeping the CRD.

The manifest is relocated from modelserve-system into a fresh namespace (a text substitution, as
`kustomize edit set namespace` would do) so runs never collide.
"""

from __future__ import annotations

from pathlib import Path

from e2e_kit import (
    documents,
    ensure_gateway_api_crds,
    ensure_service_monitor_crd,
    forbidden_lines,
    fresh_namespaces,
    operator_as,
    token_kubeconfig,
    wait_operator_pod_ready,
    whoami,
)
from test_chart_rbac import assert_can, assert_cannot, exercise_every_child_kind, needed, never

from kit import REPO, Cluster, wait_until

DIST = REPO / "dist" / "install.yaml"


def grant_namespace_list(cluster: Cluster, namespace: str, account: str, name: str) -> None:
    cluster.kubectl("create", "clusterrole", name, "--verb=list,watch", "--resource=namespaces")
    cluster.kubectl(
        "create",
        "clusterrolebinding",
        name,
        f"--clusterrole={name}",
        f"--serviceaccount={namespace}:{account}",
    )


def test_kubectl_apply_dist_install(cluster: Cluster, tmp_path: Path) -> None:
    ensure_service_monitor_crd(cluster)
    ensure_gateway_api_crds(cluster)
    with fresh_namespaces(cluster, "e2e-dist", "e2e-dist-ml") as (ops, ml):
        manifest = DIST.read_text().replace("modelserve-system", ops)
        kinds = {d["kind"] for d in documents(manifest)}
        assert {"CustomResourceDefinition", "Namespace", "ClusterRole", "Deployment"} <= kinds
        cluster_name = f"modelserve-operator-{ops}"
        extra = f"e2e-kopf-namespaced-run-{ops}"
        try:
            # The command docs/install.md gives (server-side: the CRD is large for last-applied).
            cluster.kubectl("apply", "--server-side", "-f", "-", input=manifest)
            namespace = cluster.kubectl_json("get", "namespace", ops)
            assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
            pod = wait_operator_pod_ready(cluster, ops, "modelserve-operator")
            assert "--all-namespaces" in pod["spec"]["containers"][0]["args"]

            account = "modelserve-operator"
            user = f"system:serviceaccount:{ops}:{account}"
            kubeconfig = token_kubeconfig(cluster, ops, account, tmp_path / "dist.kubeconfig")
            assert whoami(cluster, kubeconfig) == user

            # Cluster-wide mode: every needed verb in every namespace; still none of the forbidden.
            assert_can(cluster, user, needed(None))
            assert_can(cluster, user, needed(ml))
            assert_cannot(cluster, user, never(ml, ops))
            assert_cannot(cluster, user, [("list", "namespaces", None)])

            # The operator under that token, watching only `ml` so that it leaves other suites'
            # objects alone. Run that way, kopf lists and watches namespaces to match `ml`, which a
            # cluster-wide install rightly does not grant (its operator runs cluster-wide and never
            # does): this test alone adds exactly that, after the can-i checks above.
            grant_namespace_list(cluster, ops, account, extra)
            with operator_as(kubeconfig, ml, (ops, account)) as log_lines:
                exercise_every_child_kind(cluster, ml)
            assert not forbidden_lines(log_lines), "\n".join(forbidden_lines(log_lines))
        finally:
            cluster.kubectl(
                "delete", "clusterrole,clusterrolebinding", extra, "--ignore-not-found", check=False
            )
            # The documented uninstall: everything but the CRD (and so every ModelDeployment) goes.
            cluster.kubectl(
                "delete",
                "-f",
                "-",
                "-l",
                "app.kubernetes.io/component=operator",
                "--wait=false",
                "--ignore-not-found",
                input=manifest,
                check=False,
            )
        wait_until(
            lambda: (
                cluster.kubectl("get", "clusterrole", cluster_name, check=False).returncode != 0
                and cluster.kubectl("get", "clusterrolebinding", cluster_name, check=False).returncode != 0
            ),
            timeout=60,
            what="the ClusterRole and ClusterRoleBinding deleted",
        )
        phase = cluster.kubectl_json("get", "namespace", ops)["status"]["phase"]
        assert phase == "Terminating"
        assert cluster.kubectl("get", "crd", "modeldeployments.modelserve.dev", check=False).returncode == 0
