"""The chart renders, lints, and every rendered set is accepted by the real API server; bad values are
refused by values.schema.json; the chart's CRDs and dist/install.yaml match their sources."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from e2e_kit import (
    CHART,
    INVALID_VALUES,
    VALUES,
    documents,
    ensure_prometheus_rule_crd,
    ensure_service_monitor_crd,
    fresh_namespaces,
    helm,
)

from kit import CRD_DIR, REPO, Cluster

# The OpenShift values ship with the chart; they are checked like every test values file.
VALUES_FILES = [*sorted(VALUES.glob("*.yaml")), CHART / "values-openshift.yaml"]
INVALID_FILES = sorted(INVALID_VALUES.glob("*.yaml"))


def _render(cluster: Cluster, namespace: str, *args: str, activator: bool = False) -> list[dict[str, Any]]:
    """The chart's documents: the operator's (default) or the activator's (its own Deployment,
    Service, ServiceAccount and RBAC, labelled app.kubernetes.io/component: activator)."""
    docs = documents(helm(cluster, "template", "rel", str(CHART), "--namespace", namespace, *args).stdout)
    return [d for d in docs if _is_activator(d) == activator]


def _is_activator(doc: dict[str, Any]) -> bool:
    return bool(
        ((doc.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/component") == "activator"
    )


def test_chart_crds_are_the_generated_crds() -> None:
    ours = {p.name: p.read_bytes() for p in sorted((CHART / "crds").glob("*.yaml"))}
    generated = {p.name: p.read_bytes() for p in sorted(CRD_DIR.glob("*.yaml"))}
    assert ours == generated, "charts/modelserve-operator/crds differs from crds/: run `make dist`"


def test_crd_chart_renders_exactly_the_generated_crds(cluster: Cluster) -> None:
    crd_chart = REPO / "charts" / "modelserve-operator-crds"
    rendered = documents(helm(cluster, "template", "crds", str(crd_chart)).stdout)
    generated = [d for p in sorted(CRD_DIR.glob("*.yaml")) for d in documents(p.read_text())]
    for doc in rendered:
        assert doc["metadata"].pop("annotations") == {"helm.sh/resource-policy": "keep"}
    assert rendered == generated, "charts/modelserve-operator-crds differs from crds/: run `make dist`"
    unkept = documents(helm(cluster, "template", "crds", str(crd_chart), "--set", "keep=false").stdout)
    assert unkept == generated


def test_crd_chart_lints_strict(cluster: Cluster) -> None:
    proc = helm(cluster, "lint", "--strict", str(REPO / "charts" / "modelserve-operator-crds"))
    assert "0 chart(s) failed" in proc.stdout


def test_dist_install_yaml_is_current(cluster: Cluster) -> None:
    rendered = subprocess.run(
        ["bash", str(REPO / "dist" / "render.sh")], capture_output=True, text=True, check=True, timeout=300
    ).stdout
    current = (REPO / "dist" / "install.yaml").read_text()
    assert rendered == current, "dist/install.yaml is stale: run `make dist`"
    kinds = [d["kind"] for d in documents(current)]
    assert kinds[:2] == ["CustomResourceDefinition", "Namespace"], kinds
    assert "Pod" not in kinds, "the helm test pod does not belong in the plain manifest"


@pytest.mark.parametrize("values", [None, *VALUES_FILES], ids=lambda v: v.name if v else "no-values")
def test_helm_lint_strict(cluster: Cluster, values: Path | None) -> None:
    args = ["-f", str(values)] if values else []
    proc = helm(cluster, "lint", "--strict", str(CHART), *args)
    assert "0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize("values", VALUES_FILES, ids=lambda v: v.name)
def test_rendered_values_are_accepted_by_the_api_server(cluster: Cluster, values: Path) -> None:
    """Server-side dry-run: schemas, admission and RBAC escalation checks of the real API server."""
    ensure_service_monitor_crd(cluster)
    ensure_prometheus_rule_crd(cluster)
    with fresh_namespaces(cluster, "e2e-render", "e2e-team-a", "e2e-team-b") as (ns, team_a, team_b):
        # watchNamespaces name namespaces that must exist: map them to this test's fresh ones.
        override = (
            ["--set-json", f'watchNamespaces=["{team_a}","{team_b}"]']
            if "watchNamespaces" in (values.read_text())
            else []
        )
        manifest = helm(
            cluster, "template", "rel", str(CHART), "--namespace", ns, "-f", str(values), *override
        ).stdout
        assert documents(manifest), f"{values.name} rendered nothing"
        proc = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=manifest, check=False)
        assert proc.returncode == 0, (
            f"{values.name}: the API server refused the rendered manifest:\n{proc.stderr}"
        )
        assert "created (server dry run)" in proc.stdout


@pytest.mark.parametrize("values", INVALID_FILES, ids=lambda v: v.name)
def test_invalid_values_are_refused_with_a_clear_message(cluster: Cluster, values: Path) -> None:
    expected = values.read_text().splitlines()[0].removeprefix("# expect: ")
    for command in (["template", "rel", str(CHART)], ["lint", "--strict", str(CHART)]):
        proc = helm(cluster, *command, "-f", str(values), check=False)
        assert proc.returncode != 0, f"helm {command[0]} accepted {values.name}"
        output = proc.stderr + proc.stdout
        assert "values don't meet the specifications of the schema" in output, output
        assert expected in output, output


def _rules(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{d['kind']}/{d['metadata'].get('namespace', '')}", rule)
        for d in docs
        if d["kind"] in ("ClusterRole", "Role")
        for rule in d.get("rules") or []
    ]


@pytest.mark.parametrize("values", VALUES_FILES, ids=lambda v: v.name)
def test_rbac_has_no_wildcards_secrets_exec_or_rbac_verbs(cluster: Cluster, values: Path) -> None:
    for where, rule in _rules(_render(cluster, "ops", "-f", str(values))):
        for key in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule.get(key, []), f"{where}: wildcard in {key}: {rule}"
        assert not rule.get("nonResourceURLs"), f"{where}: {rule}"
        # Names only pin the operator's own Lease (the leader-election Role).
        assert not rule.get("resourceNames") or rule["resources"] == ["leases"], f"{where}: {rule}"
        resources = set(rule["resources"])
        assert not resources & {
            "secrets",
            "pods/exec",
            "pods/attach",
            "pods/portforward",
            "serviceaccounts/token",
        }
        assert not set(rule["verbs"]) & {"escalate", "bind", "impersonate", "deletecollection"}, rule
        if "update" in rule["verbs"]:
            assert rule["resources"] == ["modeldeployments/finalizers"] or (
                rule["resources"] == ["leases"] and len(rule.get("resourceNames") or []) == 1
            ), f"{where}: {rule}"
        if "pods" in resources:
            # Only read: listed, and watched for the shared cache's sync pods (handlers.SYNC_POD_SELECTOR).
            assert rule["verbs"] == ["list", "watch"], f"{where}: pods are only read: {rule}"
        if "modeldeployments" in resources:
            assert set(rule["verbs"]) == {"list", "watch"}, f"{where}: the spec is never written: {rule}"
        if rule["apiGroups"] == ["apiextensions.k8s.io"]:
            assert set(rule["verbs"]) == {"list", "watch"}, f"{where}: CRDs are only read: {rule}"


def test_namespaced_mode_has_roles_per_namespace_and_a_small_cluster_role(cluster: Cluster) -> None:
    docs = _render(cluster, "ops", "--set-json", 'watchNamespaces=["ml-a","ml-b"]')
    roles = {d["metadata"]["namespace"] for d in docs if d["kind"] == "Role" and not _leader_role(d)}
    bindings = {
        d["metadata"]["namespace"] for d in docs if d["kind"] == "RoleBinding" and not _leader_role(d)
    }
    assert roles == bindings == {"ml-a", "ml-b"}
    (cluster_role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    cluster_resources = sorted(r for rule in cluster_role["rules"] for r in rule["resources"])
    assert cluster_resources == ["customresourcedefinitions", "namespaces"]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=ml-a" in args and "--namespace=ml-b" in args and "--all-namespaces" not in args


def _leader_role(doc: dict[str, Any]) -> bool:
    return bool(doc["metadata"]["name"].endswith("-leader-election"))


def test_cluster_wide_mode_needs_no_namespace_list(cluster: Cluster) -> None:
    docs = _render(cluster, "ops")
    assert not [d for d in docs if d["kind"] in ("Role", "RoleBinding") and not _leader_role(d)]
    (cluster_role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    resources = {r for rule in cluster_role["rules"] for r in rule["resources"]}
    assert "namespaces" not in resources and "modeldeployments" in resources


def test_operator_deployment_follows_the_values(cluster: Cluster) -> None:
    docs = _render(cluster, "ops", "-f", str(VALUES / "custom.yaml"))
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "modelserve-controller"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["image"].endswith("@sha256:" + "0123456789abcdef" * 4)
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["resources"]["requests"] == {"cpu": "200m", "memory": "256Mi"}
    assert container["args"] == [
        "run",
        "--all-namespaces",
        "--cpu-image=registry.example.com/ml/tfserving:2.19.1-modelserve.1",
        "--gpu-image=registry.example.com/ml/tfserving:2.19.1-gpu-modelserve.1",
        "--resync-seconds=120",
        "--workers=16",
        "--metrics-port=8080",
        "--metrics-address=0.0.0.0",
        "--health-port=9091",
        "--json-logs",
        "--verbose",
        "--leader-election",
        "--lease-name=modelserve",
        "--lease-duration-seconds=10",
        "--renew-deadline-seconds=7",
        "--retry-period-seconds=2",
    ]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    refs = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"] if "valueFrom" in e}
    assert refs == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELSERVE_WATCH_STALL_SECONDS"] == "900"
    assert not [d for d in docs if d["kind"] == "Pod"], "tests.enabled=false renders no test pod"


def _granted(docs: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    granted: dict[tuple[str, str], set[str]] = {}
    for _, rule in _rules(docs):
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    return granted


def test_rbac_grants_exactly_what_the_operator_uses(cluster: Cluster) -> None:
    """Kept in step with modelserve.kube: a new child kind there fails here until the chart grants it,
    and a grant nothing uses fails too."""
    from modelserve import api, kube

    child_verbs = {"get", "list", "watch", "create", "patch", "delete"}
    expected: dict[tuple[str, str], set[str]] = {
        ("coordination.k8s.io", "leases"): {"create", "get", "update"},
        (api.GROUP, api.PLURAL): {"list", "watch"},
        (api.GROUP, f"{api.PLURAL}/status"): {"patch"},
        (api.GROUP, f"{api.PLURAL}/finalizers"): {"update"},
        ("", "pods"): {"list", "watch"},
        ("", "events"): {"create", "list"},
        ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
    }
    for kind, resource in kube.RESOURCES.items():
        if kind not in ("Pod", "Event", api.KIND):
            group = "" if resource.api_version == "v1" else resource.api_version.split("/")[0]
            expected[(group, resource.plural)] = child_verbs
    # A canary rollout's HTTPRoute is applied and deleted, never watched (rollout/children.py).
    expected[("gateway.networking.k8s.io", "httproutes")] = {"get", "create", "patch", "delete"}
    assert _granted(_render(cluster, "ops")) == expected

    namespaced = _render(cluster, "ops", "--set-json", 'watchNamespaces=["ml-a"]')
    assert _granted(namespaced) == {**expected, ("", "namespaces"): {"list", "watch"}}


def test_two_replicas_lead_by_lease_spread_over_nodes_with_a_budget(cluster: Cluster) -> None:
    docs = _render(cluster, "ops")
    (role,) = [d for d in docs if d["kind"] == "Role"]
    assert role["metadata"]["namespace"] == "ops"  # its own namespace only
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["rel-modelserve-operator"],
            "verbs": ["get", "update"],
        },
    ]
    (binding,) = [d for d in docs if d["kind"] == "RoleBinding"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert [c["topologyKey"] for c in pod["topologySpreadConstraints"]] == [
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    ]
    assert {c["whenUnsatisfiable"] for c in pod["topologySpreadConstraints"]} == {"ScheduleAnyway"}
    (pdb,) = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]

    single = _render(cluster, "ops", "--set", "replicaCount=1", "--set", "leaderElection.enabled=false")
    assert not [d for d in single if d["kind"] in ("PodDisruptionBudget", "Role", "RoleBinding")]
    (deployment,) = [d for d in single if d["kind"] == "Deployment"]
    assert "--no-leader-election" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]


def test_several_replicas_without_leader_election_are_refused(cluster: Cluster) -> None:
    proc = helm(cluster, "template", "x", str(CHART), "--set", "leaderElection.enabled=false", check=False)
    assert proc.returncode != 0
    assert "replicaCount > 1 needs leaderElection.enabled" in proc.stderr


def test_observability_pack_renders_behind_its_values(cluster: Cluster) -> None:
    assert not [
        d for d in _render(cluster, "ops") if d["kind"] in ("PrometheusRule", "NetworkPolicy", "ConfigMap")
    ], "off by default"
    docs = _render(cluster, "ops", "-f", str(VALUES / "observability.yaml"))
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    alerts = [r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
    assert alerts and all(a["labels"]["team"] == "ml-platform" and a["labels"]["severity"] for a in alerts)
    dashboards = [
        d for d in docs if d["kind"] == "ConfigMap" and "grafana_dashboard" in d["metadata"]["labels"]
    ]
    assert sorted(k for d in dashboards for k in d["data"]) == sorted(
        p.name for p in (CHART / "dashboards").glob("*.json")
    )
    assert all(d["metadata"]["annotations"] == {"grafana_folder": "modelserve"} for d in dashboards)
    (policy,) = [d for d in docs if d["kind"] == "NetworkPolicy"]
    metrics_rule, health_rule = policy["spec"]["ingress"]
    assert metrics_rule["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}} in (
        metrics_rule["from"]
    )
    assert health_rule == {"ports": [{"port": 8081, "protocol": "TCP"}]}
    (monitor,) = [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name", "alerts select job=modelserve-operator"
    proc = helm(
        cluster, "template", "rel", str(CHART), "--set", "metrics.networkPolicy.enabled=true", check=False
    )
    assert proc.returncode != 0 and "needs metrics.networkPolicy.from" in proc.stderr


def test_the_activator_runs_two_replicas_and_only_reads_besides_its_wake_leases(cluster: Cluster) -> None:
    docs = _render(cluster, "ops", activator=True)
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["containers"][0]["args"][0] == "activator"
    (service,) = [d for d in docs if d["kind"] == "Service"]
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {
        "grpc": 8500,
        "http": 8501,
        "scaler": 9091,
        "metrics": 9090,
    }
    assert [d["kind"] for d in docs if d["kind"] == "PodDisruptionBudget"] == ["PodDisruptionBudget"]
    (cluster_role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    assert all(set(rule["verbs"]) == {"list", "watch"} for rule in cluster_role["rules"])
    (role,) = [d for d in docs if d["kind"] == "Role"]
    assert role["metadata"]["namespace"] == "ops"
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["list", "watch", "create", "patch"],
        }
    ]
    # The operator points scale-to-zero models' Services at this Service.
    (operator,) = [d for d in _render(cluster, "ops") if d["kind"] == "Deployment"]
    env = {e["name"]: e.get("value") for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODELSERVE_ACTIVATOR_SERVICE"] == service["metadata"]["name"]
    assert env["MODELSERVE_ACTIVATOR_NAMESPACE"] == "ops"
