"""The chart's RBAC is enough and no more, and the operator never causes GitOps drift.

The chart is installed in namespaced mode; the operator then runs in this process (KopfRunner) with
nothing but a TokenRequest token of the chart's ServiceAccount, reconciles the examples through every
child kind (create, update, delete), and must never meet a 403. `kubectl auth can-i` then shows what
that identity cannot do. The cluster-wide mode gets the same treatment in test_dist_install.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from e2e_kit import (
    CHART,
    RESTRICTED,
    can_i,
    ensure_gateway_api_crds,
    ensure_service_monitor_crd,
    forbidden_lines,
    fresh_namespaces,
    helm,
    operator_as,
    release_cleanup,
    token_kubeconfig,
    unique,
    whoami,
)

from keda_kit import install_crds as install_keda_crds
from kit import REPO, Cluster, get_or_none, wait_condition, wait_until

EXAMPLES = REPO / "examples"
GITOPS_MANAGER = "gitops-sync"


def exercise_every_child_kind(cluster: Cluster, namespace: str) -> None:
    """examples/cpu.yaml through create, an update adding autoscaling, monitoring and a network policy
    (HPA, ServiceMonitor, NetworkPolicy created), and back (all deleted): every verb on every kind."""
    source = yaml.safe_load((EXAMPLES / "cpu.yaml").read_text())
    name = source["metadata"]["name"]
    ssa = ["apply", "--server-side", f"--field-manager={GITOPS_MANAGER}", "-n", namespace, "-f", "-"]
    cluster.kubectl(*ssa, input=json.dumps(source))
    wait_condition(cluster, namespace, name, "Ready", "True", timeout=90)

    grown = json.loads(json.dumps(source))
    del grown["spec"]["replicas"]
    grown["spec"]["autoscaling"] = {"minReplicas": 1, "maxReplicas": 3, "targetCPUUtilization": 70}
    grown["spec"]["monitoring"] = {"enabled": True}
    grown["spec"]["networkPolicy"] = {"allowedClients": [{"podLabels": {"app": "frontend"}}]}
    cluster.kubectl(*ssa, input=json.dumps(grown))
    wait_condition(cluster, namespace, name, "MonitoringReady", "True", timeout=90)
    wait_condition(cluster, namespace, name, "Ready", "True", timeout=90)
    assert get_or_none(cluster, namespace, "horizontalpodautoscaler", name)
    assert get_or_none(cluster, namespace, "servicemonitors.monitoring.coreos.com", name)
    wait_until(
        lambda: get_or_none(cluster, namespace, "networkpolicy", name),
        timeout=60,
        what="the NetworkPolicy",
    )

    cluster.kubectl(*ssa, input=json.dumps(source))
    wait_condition(cluster, namespace, name, "Ready", "True", timeout=90)
    wait_until(
        lambda: all(
            get_or_none(cluster, namespace, kind, name) is None
            for kind in ("horizontalpodautoscaler", "servicemonitors.monitoring.coreos.com", "networkpolicy")
        ),
        timeout=60,
        what="the HPA, ServiceMonitor and NetworkPolicy deleted once disabled",
    )


def _manager_entry(md: dict[str, Any], manager: str) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in entry.items() if k != "time"}
        for entry in md["metadata"].get("managedFields") or []
        if entry["manager"] == manager
    ]


def assert_no_drift(cluster: Cluster, namespace: str) -> None:
    """What Argo CD would see after the operator reconciled: re-applying the original manifest as its
    original field manager changes nothing, with server-side apply (Argo CD's ServerSideApply=true) and
    client-side apply (its default)."""
    ssa_path = EXAMPLES / "cpu.yaml"
    name = yaml.safe_load(ssa_path.read_text())["metadata"]["name"]
    live = cluster.kubectl_json("get", "modeldeployment", name, "-n", namespace, "--show-managed-fields")
    dry = json.loads(
        cluster.kubectl(
            "apply",
            "--server-side",
            f"--field-manager={GITOPS_MANAGER}",
            "--dry-run=server",
            "-n",
            namespace,
            "-f",
            str(ssa_path),
            "-o",
            "json",
            "--show-managed-fields",
        ).stdout
    )
    assert dry["spec"] == live["spec"]
    assert dry["metadata"]["generation"] == live["metadata"]["generation"]
    assert _manager_entry(dry, GITOPS_MANAGER) == _manager_entry(live, GITOPS_MANAGER)
    # Whatever else manages fields of the object does so through the status subresource only.
    for entry in live["metadata"]["managedFields"]:
        if entry["manager"] != GITOPS_MANAGER:
            assert entry.get("subresource") == "status", f"{entry['manager']} writes outside status: {entry}"
    diff = cluster.kubectl(
        "diff",
        "--server-side",
        f"--field-manager={GITOPS_MANAGER}",
        "-n",
        namespace,
        "-f",
        str(ssa_path),
        check=False,
    )
    assert diff.returncode == 0, f"kubectl diff --server-side found drift:\n{diff.stdout}{diff.stderr}"

    # Client-side apply (last-applied-configuration), as Argo CD does by default.
    csa_path = EXAMPLES / "versions-labels.yaml"
    csa_name = yaml.safe_load(csa_path.read_text())["metadata"]["name"]
    cluster.kubectl("apply", "-n", namespace, "-f", str(csa_path))
    wait_condition(cluster, namespace, csa_name, "Ready", "True", timeout=90)
    diff = cluster.kubectl("diff", "-n", namespace, "-f", str(csa_path), check=False)
    assert diff.returncode == 0, f"kubectl diff found drift:\n{diff.stdout}{diff.stderr}"


def assert_cannot(cluster: Cluster, user: str, checks: list[tuple[str, str, str | None]]) -> None:
    allowed = [c for c in checks if can_i(cluster, user, *c)]
    assert not allowed, f"{user} may do more than it needs: {allowed}"


def assert_can(cluster: Cluster, user: str, checks: list[tuple[str, str, str | None]]) -> None:
    refused = [c for c in checks if not can_i(cluster, user, *c)]
    assert not refused, f"{user} lacks: {refused}"


def needed(namespace: str | None) -> list[tuple[str, str, str | None]]:
    checks: list[tuple[str, str, str | None]] = [
        ("list", "modeldeployments.modelserve.dev", namespace),
        ("watch", "modeldeployments.modelserve.dev", namespace),
        ("patch", "modeldeployments.modelserve.dev/status", namespace),
        ("list", "pods", namespace),
        ("watch", "pods", namespace),  # the sync pods (handlers.SYNC_POD_SELECTOR)
        ("create", "events", namespace),
        ("list", "events", namespace),
        ("list", "customresourcedefinitions.apiextensions.k8s.io", None),
        ("watch", "customresourcedefinitions.apiextensions.k8s.io", None),
    ]
    from modelserve import api, kube

    for kind, resource in kube.RESOURCES.items():
        if kind in ("Pod", "Event", api.KIND):  # read only; granted above
            continue
        group = "" if resource.api_version == "v1" else resource.api_version.split("/")[0]
        qualified = f"{resource.plural}.{group}" if group else resource.plural
        # The rollout's HTTPRoute is no watched child: it is read, applied and deleted, never listed.
        verbs = (
            ("get", "create", "patch", "delete")
            if kind == kube.HTTP_ROUTE.kind
            else ("get", "list", "watch", "create", "patch", "delete")
        )
        checks += [(verb, qualified, namespace) for verb in verbs]
    return checks


def leader_election(operator_namespace: str, lease: str) -> list[tuple[str, str, str | None]]:
    """Its own Lease, in its own namespace: create (which cannot be limited by name), get, update."""
    return [
        ("create", "leases.coordination.k8s.io", operator_namespace),
        ("get", f"leases.coordination.k8s.io:{lease}", operator_namespace),
        ("update", f"leases.coordination.k8s.io:{lease}", operator_namespace),
    ]


def never_leases(namespace: str, operator_namespace: str, lease: str) -> list[tuple[str, str, str | None]]:
    """No Lease elsewhere, none of another component (kube-controller-manager's, a node's)."""
    return [
        ("get", f"leases.coordination.k8s.io:{lease}", namespace),
        ("create", "leases.coordination.k8s.io", namespace),
        ("update", "leases.coordination.k8s.io:kube-controller-manager", "kube-system"),
        ("get", "leases.coordination.k8s.io:other", operator_namespace),
        ("update", "leases.coordination.k8s.io:other", operator_namespace),
        ("delete", f"leases.coordination.k8s.io:{lease}", operator_namespace),
        ("list", "leases.coordination.k8s.io", operator_namespace),
        ("watch", "leases.coordination.k8s.io", operator_namespace),
        ("create", "leases.coordination.k8s.io", None),
    ]


def never(namespace: str, operator_namespace: str) -> list[tuple[str, str, str | None]]:
    """What the operator's identity must not do, wherever it runs."""
    return [
        # Secrets: none anywhere (credentialsSecret is mounted by the pods, never read by the operator).
        ("get", "secrets", namespace),
        ("list", "secrets", namespace),
        ("get", "secrets", operator_namespace),
        ("get", "secrets", "kube-system"),
        ("list", "secrets", None),
        ("watch", "secrets", None),
        # No pods of its own, no exec, attach or port-forward, no logs.
        ("create", "pods", namespace),
        ("delete", "pods", namespace),
        ("create", "pods/exec", namespace),
        ("create", "pods/attach", namespace),
        ("create", "pods/portforward", namespace),
        ("get", "pods/log", namespace),
        # No escalation: RBAC, impersonation, tokens.
        ("escalate", "clusterroles", None),
        ("bind", "clusterroles", None),
        ("create", "clusterrolebindings", None),
        ("create", "roles", namespace),
        ("create", "rolebindings", namespace),
        ("impersonate", "users", None),
        ("impersonate", "serviceaccounts", namespace),
        ("create", "serviceaccounts/token", namespace),
        ("create", "serviceaccounts", namespace),
        # Never the CRD itself, never the users' specs.
        ("delete", "customresourcedefinitions.apiextensions.k8s.io", None),
        ("create", "customresourcedefinitions.apiextensions.k8s.io", None),
        ("patch", "customresourcedefinitions.apiextensions.k8s.io", None),
        ("create", "modeldeployments.modelserve.dev", namespace),
        ("patch", "modeldeployments.modelserve.dev", namespace),
        ("update", "modeldeployments.modelserve.dev", namespace),
        ("delete", "modeldeployments.modelserve.dev", namespace),
        ("get", "modeldeployments.modelserve.dev", namespace),
        ("deletecollection", "deployments.apps", namespace),
        # Nothing cluster-level.
        ("get", "nodes", None),
        ("patch", "nodes", None),
        ("create", "namespaces", None),
        ("delete", "namespaces", None),
        ("create", "persistentvolumes", None),
        ("*", "*", None),
    ]


def test_operator_runs_under_the_chart_rbac_namespaced_mode(cluster: Cluster, tmp_path: Path) -> None:
    ensure_service_monitor_crd(cluster)
    ensure_gateway_api_crds(cluster)
    install_keda_crds(cluster)  # ScaledObjects are a child kind: its RBAC is checked like the others'
    release = unique("rbac")
    with (
        fresh_namespaces(cluster, "e2e-rbac-ops", labels=RESTRICTED) as (ops,),
        fresh_namespaces(cluster, "e2e-rbac-ml", "e2e-rbac-other") as (ml, other),
        release_cleanup(cluster, release, ops),
    ):
        helm(cluster, "install", release, str(CHART), "-n", ops, "--set-json", f'watchNamespaces=["{ml}"]')
        account = f"{release}-modelserve-operator"
        kubeconfig = token_kubeconfig(cluster, ops, account, tmp_path / "operator.kubeconfig")
        user = f"system:serviceaccount:{ops}:{account}"
        assert whoami(cluster, kubeconfig) == user

        with operator_as(kubeconfig, ml, (ops, account)) as log_lines:
            exercise_every_child_kind(cluster, ml)
            assert_no_drift(cluster, ml)
        assert not forbidden_lines(log_lines), "\n".join(forbidden_lines(log_lines))
        lease = cluster.kubectl_json("get", "lease", account, "-n", ops)
        # Held while it ran, handed back (empty holder) when it stopped.
        assert lease["spec"].get("acquireTime") and lease["spec"].get("holderIdentity") == "", lease

        assert_can(cluster, user, needed(ml))
        assert_can(cluster, user, leader_election(ops, account))
        assert_cannot(cluster, user, never_leases(ml, ops, account))
        assert_can(cluster, user, [("list", "namespaces", None), ("watch", "namespaces", None)])
        assert_cannot(cluster, user, never(ml, ops))
        # Namespaced mode: nothing in namespaces it does not watch, its own included.
        outside = [
            (verb, resource, ns)
            for ns in (other, ops)
            for verb, resource, _ in needed(ns)
            if verb in ("list", "patch") and not resource.startswith("customresourcedefinitions")
        ]
        assert_cannot(cluster, user, outside)
        assert_cannot(cluster, user, [("list", "modeldeployments.modelserve.dev", None)])
        helm(cluster, "uninstall", release, "-n", ops, "--wait")
