"""Security: what a namespace user can and cannot get through a ModelDeployment, and what the operator
itself may do.

- Serving pods of every shape, and the operator's own pod, are admitted where the `restricted` Pod
  Security Standard is enforced.
- No field of the API yields a privileged, host-namespace, hostPath or root pod: each attempt is sent
  to the API server, which refuses it (strict field validation) or prunes it (validation off), or, in
  the pass-through Kubernetes structs, the operator's child apply refuses it (InvalidSpec).
- Serving pods carry no ServiceAccount token; credentialsSecret is mounted into the fetch init
  container only.
- spec.networkPolicy becomes a NetworkPolicy, updated and deleted with the spec.
- The chart's RBAC, as `kubectl auth can-i` sees it, grants none of the escalation paths.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from kit import REPO, Cluster, get_or_none, model_deployment, wait_condition, wait_until
from modelserve.contract import CMD_SERVE, CMD_SYNC, EXECUTABLE

pytestmark = pytest.mark.integration

RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
}
MODEL = {"storageUri": "gs://models/half_plus_two"}
SMALL = {"requests": {"cpu": "10m", "memory": "16Mi"}}


def apply_md(
    cluster: Cluster, namespace: str, name: str, spec: dict[str, Any], *, validate: str = "strict"
) -> Any:
    return cluster.kubectl(
        "apply", f"--validate={validate}", "-n", namespace, "-f", "-",
        input=json.dumps(model_deployment(name, spec)), check=False,
    )  # fmt: skip


def pods_of(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    return list(
        cluster.kubectl_json("get", "pods", "-n", namespace, "-l", f"modelserve.dev/deployment={name}")[
            "items"
        ]
    )


def unprivileged_problems(pod_spec: dict[str, Any]) -> list[str]:
    """Everything in a pod spec that would let it out of its box."""
    problems = []
    for key in ("hostNetwork", "hostPID", "hostIPC", "hostUsers"):
        if pod_spec.get(key) is (key != "hostUsers"):
            problems.append(f"{key}={pod_spec.get(key)}")
    problems += [f"hostPath volume {v['name']}" for v in pod_spec.get("volumes") or [] if "hostPath" in v]
    pod_sc = pod_spec.get("securityContext") or {}
    if pod_sc.get("runAsNonRoot") is not True or pod_sc.get("runAsUser") in (0, None):
        problems.append(f"pod securityContext {pod_sc}")
    if pod_spec.get("automountServiceAccountToken") is not False:
        problems.append("ServiceAccount token mounted")
    for c in (pod_spec.get("initContainers") or []) + (pod_spec.get("containers") or []):
        sc = c.get("securityContext") or {}
        if sc.get("privileged") or sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{c['name']}: privileged or escalation {sc}")
        if sc.get("runAsUser") == 0 or sc.get("runAsNonRoot") is False:
            problems.append(f"{c['name']}: root {sc}")
        if (sc.get("capabilities") or {}).get("add") or (sc.get("capabilities") or {}).get("drop") != ["ALL"]:
            problems.append(f"{c['name']}: capabilities {sc.get('capabilities')}")
    return problems


# --- restricted Pod Security Standard ----------------------------------------------------------------

SHAPES: dict[str, dict[str, Any]] = {
    "plain": {"model": MODEL, "resources": SMALL},
    "gpu": {"model": MODEL, "gpu": {"count": 1, "product": "NVIDIA-A100-SXM4-80GB"}, "resources": SMALL},
    "credentials": {"model": {**MODEL, "credentialsSecret": "storage"}, "resources": SMALL},
    "everything": {
        "model": {
            "storageUri": "s3://models-bucket/resnet",
            "versionPolicy": {"specific": {"versions": [1, 2]}},
            "versionLabels": {"stable": 1, "canary": 2},
        },
        "serving": {
            "batching": {"maxBatchSize": 8, "allowedBatchSizes": [4, 8]},
            "warmup": True,
            "extraArgs": ["--tensorflow_intra_op_parallelism=2"],
            "env": [
                {"name": "TZ", "value": "UTC"},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "storage", "key": "token"}}},
            ],
        },
        "autoscaling": {"minReplicas": 1, "maxReplicas": 3, "targetCPUUtilization": 60},
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "1Gi"}},
        "scheduling": {
            "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
            "topologySpreadConstraints": [
                {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway"}
            ],
        },
        "networkPolicy": {"allowedClients": [{"podLabels": {"app": "web"}}]},
    },
}


@pytest.mark.usefixtures("operator")
def test_serving_pods_of_every_shape_run_under_restricted(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("label", "namespace", namespace, *(f"{k}={v}" for k, v in RESTRICTED.items()))
    cluster.kubectl(
        "create", "secret", "generic", "storage", "-n", namespace,
        "--from-literal=token=t", "--from-literal=service-account.json={}",
    )  # fmt: skip
    for name, spec in SHAPES.items():
        proc = apply_md(cluster, namespace, name, spec)
        assert proc.returncode == 0, proc.stderr
        assert "violate" not in proc.stderr  # no PodSecurity warning either
    for name in SHAPES:
        wait_condition(cluster, namespace, name, "Ready", "True", timeout=120)
        pods = pods_of(cluster, namespace, name)
        assert pods, name
        for pod in pods:
            assert not unprivileged_problems(pod["spec"]), (name, unprivileged_problems(pod["spec"]))
    events = cluster.kubectl_json("get", "events", "-n", namespace)["items"]
    assert not [e for e in events if e["reason"] == "FailedCreate"], "a pod was refused"


def test_operator_pod_of_the_chart_is_admitted_under_restricted(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("label", "namespace", namespace, *(f"{k}={v}" for k, v in RESTRICTED.items()))
    proc = _helm(
        cluster, "template", "modelserve", str(REPO / "charts" / "modelserve-operator"), "-n", namespace
    )
    deployment = next(d for d in yaml.safe_load_all(proc) if d and d["kind"] == "Deployment")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "operator", "labels": deployment["spec"]["template"]["metadata"].get("labels")},
        "spec": {**deployment["spec"]["template"]["spec"], "serviceAccountName": "default"},
    }
    result = cluster.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(pod), check=False
    )
    assert result.returncode == 0, result.stderr
    assert "violate" not in result.stderr
    assert not [p for p in unprivileged_problems(pod["spec"]) if "token" not in p]


def _helm(cluster: Cluster, *args: str) -> str:
    import subprocess

    proc = subprocess.run(["helm", *args], env=cluster.env(), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# --- no field escapes ---------------------------------------------------------------------------------

BASE = {"model": MODEL, "resources": SMALL}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(base))
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


HOST_PATH = [{"name": "host", "hostPath": {"path": "/"}}]
# (id, spec fragment, the key path a user hopes reaches the pod, inside a pass-through Kubernetes struct?)
ATTEMPTS: list[tuple[str, dict[str, Any], tuple[str, ...], bool]] = [
    ("hostNetwork", {"hostNetwork": True}, ("hostNetwork",), False),
    ("hostPID", {"hostPID": True}, ("hostPID",), False),
    ("hostIPC", {"hostIPC": True}, ("hostIPC",), False),
    ("privileged", {"privileged": True}, ("privileged",), False),
    ("securityContext", {"securityContext": {"runAsUser": 0}}, ("securityContext",), False),
    ("podSecurityContext", {"podSecurityContext": {"runAsUser": 0}}, ("podSecurityContext",), False),
    ("volumes", {"volumes": HOST_PATH}, ("volumes",), False),
    ("template", {"template": {"spec": {"hostNetwork": True}}}, ("template",), False),
    ("serving.securityContext", {"serving": {"securityContext": {"privileged": True}}},
     ("serving", "securityContext"), False),
    ("serving.runAsUser", {"serving": {"runAsUser": 0}}, ("serving", "runAsUser"), False),
    ("serving.volumes", {"serving": {"volumes": HOST_PATH}}, ("serving", "volumes"), False),
    ("serving.volumeMounts", {"serving": {"volumeMounts": [{"name": "host", "mountPath": "/host"}]}},
     ("serving", "volumeMounts"), False),
    ("serving.capabilities", {"serving": {"capabilities": {"add": ["SYS_ADMIN"]}}},
     ("serving", "capabilities"), False),
    ("serving.command", {"serving": {"command": ["/bin/sh", "-c", "id"]}}, ("serving", "command"), False),
    ("gpu.privileged", {"gpu": {"count": 1, "privileged": True}}, ("gpu", "privileged"), False),
    ("resources.hostPath", {"resources": {"hostPath": "/"}}, ("resources", "hostPath"), False),
    ("scheduling.hostNetwork", {"scheduling": {"hostNetwork": True}}, ("scheduling", "hostNetwork"), False),
    # Pass-through structs keep unknown fields in the ModelDeployment; the child apply must not.
    ("affinity.hostNetwork", {"scheduling": {"affinity": {"hostNetwork": True}}},
     ("scheduling", "affinity", "hostNetwork"), True),
    ("topologySpread.privileged",
     {"scheduling": {"topologySpreadConstraints": [
         {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "privileged": True}]}},
     ("scheduling", "topologySpreadConstraints"), True),
    ("env.valueFrom.hostPath",
     {"serving": {"env": [{"name": "X", "valueFrom": {"hostPath": {"path": "/etc/shadow"}}}]}},
     ("serving", "env"), True),
]  # fmt: skip


def _has_path(obj: Any, path: tuple[str, ...]) -> bool:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return False
        obj = obj[key]
    return True


@pytest.fixture
def escape_namespace(namespace: str) -> str:
    """Not restricted: the pod spec the operator renders is checked itself, not what PSS would stop."""
    return namespace


@pytest.mark.usefixtures("operator")
def test_no_field_of_the_api_yields_an_escaped_pod(cluster: Cluster, escape_namespace: str) -> None:
    ns = escape_namespace
    results = {}
    for index, (attempt, fragment, path, passthrough) in enumerate(ATTEMPTS):
        name = f"escape-{index:02d}"
        spec = _merge(BASE, fragment)
        strict = apply_md(cluster, ns, name, spec)
        if passthrough:
            assert strict.returncode == 0, (attempt, strict.stderr)
        else:
            # kubectl's default: strict field validation refuses what the schema does not declare.
            assert strict.returncode != 0 and "unknown field" in strict.stderr, (attempt, strict.stderr)
            # Without validation the server accepts the object and prunes the field.
            lax = apply_md(cluster, ns, name, spec, validate="false")
            assert lax.returncode == 0, (attempt, lax.stderr)
            stored = cluster.kubectl_json("get", "mdep", name, "-n", ns)["spec"]
            assert not _has_path(stored, path), (attempt, stored)
        results[name] = attempt
    for name, attempt in results.items():
        cond = wait_until(
            lambda n=name: _ready_condition(cluster, ns, n), timeout=90, what=f"a status for {name}"
        )
        deployment = get_or_none(cluster, ns, "deployment", name)
        if deployment is not None:
            pod_spec = deployment["spec"]["template"]["spec"]
            assert not unprivileged_problems(pod_spec), (attempt, unprivileged_problems(pod_spec))
            commands = [c["command"] for c in pod_spec["initContainers"] + pod_spec["containers"]]
            assert commands == [[EXECUTABLE, CMD_SYNC], [EXECUTABLE, CMD_SERVE]], (attempt, commands)
        for pod in pods_of(cluster, ns, name):
            assert not unprivileged_problems(pod["spec"]), (attempt, unprivileged_problems(pod["spec"]))
        assert cond["status"] == "True" or cond["reason"] == "InvalidSpec", (attempt, cond)
        results[name] = f"{attempt}: Ready={cond['status']} {cond['reason']}"
    print("escape attempts:\n  " + "\n  ".join(results.values()))


def _ready_condition(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    md = get_or_none(cluster, namespace, "mdep", name)
    if not md:
        return None
    status = md.get("status") or {}
    if status.get("observedGeneration") != md["metadata"]["generation"]:
        return None
    cond = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)
    # Ready=True, or a failure that names its reason; a rollout still under way is not an answer yet.
    if cond and (cond["status"] == "True" or cond["reason"] not in ("Creating", "RollingOut")):
        return dict(cond)
    return None


# --- token, credentials, network policy ---------------------------------------------------------------


@pytest.mark.usefixtures("operator")
def test_no_token_and_credentials_only_in_the_sync_container(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("create", "secret", "generic", "storage", "-n", namespace, "--from-literal=token=t")
    proc = apply_md(cluster, namespace, "creds", SHAPES["credentials"])
    assert proc.returncode == 0, proc.stderr
    wait_condition(cluster, namespace, "creds", "Ready", "True", timeout=120)
    (pod,) = pods_of(cluster, namespace, "creds")
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    # The ServiceAccount admission plugin adds a projected token volume unless automount is off.
    assert not [v for v in spec["volumes"] if "projected" in v or v["name"].startswith("kube-api-access")]
    secret_volumes = {
        v["name"] for v in spec["volumes"] if (v.get("secret") or {}).get("secretName") == "storage"
    }
    assert len(secret_volumes) == 1
    (fetch,) = spec["initContainers"]
    (serving,) = spec["containers"]
    assert {m["name"] for m in fetch["volumeMounts"]} & secret_volumes
    assert all(m.get("readOnly") for m in fetch["volumeMounts"] if m["name"] in secret_volumes)
    assert not {m["name"] for m in serving["volumeMounts"]} & secret_volumes
    assert "storage" not in json.dumps(serving.get("env", [])) + json.dumps(serving.get("envFrom", []))


@pytest.mark.usefixtures("operator")
def test_network_policy_follows_the_spec(cluster: Cluster, namespace: str) -> None:
    from modelserve import api
    from modelserve.builders.networkpolicy import build_network_policy
    from modelserve.settings import Settings

    def desired(spec: dict[str, Any]) -> dict[str, Any]:
        md = cluster.kubectl_json("get", "mdep", "np", "-n", namespace)
        policy = build_network_policy(api.parse({**md, "spec": spec}), Settings())
        assert policy is not None
        return dict(policy["spec"])

    def live_spec() -> dict[str, Any] | None:
        obj = get_or_none(cluster, namespace, "networkpolicy", "np")
        return obj and dict(obj["spec"])

    spec = {
        **BASE,
        "networkPolicy": {"allowedClients": [{"namespaces": ["web"], "podLabels": {"app": "shop"}}]},
    }
    assert apply_md(cluster, namespace, "np", spec).returncode == 0
    wait_until(lambda: live_spec() == desired(spec), timeout=60, what="the NetworkPolicy")
    policy = get_or_none(cluster, namespace, "networkpolicy", "np")
    assert policy is not None
    md_uid = cluster.kubectl_json("get", "mdep", "np", "-n", namespace)["metadata"]["uid"]
    assert [r["uid"] for r in policy["metadata"]["ownerReferences"]] == [md_uid]
    assert policy["spec"]["ingress"][0]["ports"] == [
        {"protocol": "TCP", "port": 8500},
        {"protocol": "TCP", "port": 8501},
        {"protocol": "TCP", "port": 8502},  # the sync sidecar's metrics
    ]

    # Another writer's label on the policy stays; a changed allow-list replaces the peers.
    cluster.kubectl("label", "networkpolicy", "np", "-n", namespace, "audit.example.com/reviewed=yes")
    spec = {**BASE, "networkPolicy": {"allowedClients": [{"namespaceLabels": {"team": "ml"}}]}}
    assert apply_md(cluster, namespace, "np", spec).returncode == 0
    wait_until(lambda: live_spec() == desired(spec), timeout=60, what="the changed NetworkPolicy")
    labels = (get_or_none(cluster, namespace, "networkpolicy", "np") or {})["metadata"]["labels"]
    assert labels["audit.example.com/reviewed"] == "yes"

    # An empty allow-list admits nobody; no networkPolicy removes the object.
    spec = {**BASE, "networkPolicy": {}}
    assert apply_md(cluster, namespace, "np", spec).returncode == 0
    wait_until(lambda: live_spec() == desired(spec), timeout=60, what="the deny-all NetworkPolicy")
    assert apply_md(cluster, namespace, "np", BASE).returncode == 0
    wait_until(lambda: live_spec() is None, timeout=60, what="the NetworkPolicy to be deleted")
    wait_condition(cluster, namespace, "np", "Ready", "True", timeout=90)


# --- what the operator's identity may do --------------------------------------------------------------

# (verb, resource) the chart's ServiceAccount must be denied in any namespace: each is a way
# from "operator compromised" to "cluster compromised" or to reading what it never needs.
DENIED = [
    ("get", "secrets"),
    ("list", "secrets"),
    ("watch", "secrets"),
    ("create", "pods"),
    ("create", "pods/exec"),
    ("create", "pods/attach"),
    ("create", "pods/portforward"),
    ("create", "serviceaccounts/token"),
    ("impersonate", "serviceaccounts"),
    ("create", "roles.rbac.authorization.k8s.io"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("escalate", "roles.rbac.authorization.k8s.io"),
    ("bind", "clusterroles.rbac.authorization.k8s.io"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
    ("patch", "customresourcedefinitions.apiextensions.k8s.io"),
    ("delete", "customresourcedefinitions.apiextensions.k8s.io"),
    ("update", "modeldeployments.modelserve.dev"),
    ("patch", "modeldeployments.modelserve.dev"),
    ("delete", "modeldeployments.modelserve.dev"),
    ("create", "mutatingwebhookconfigurations.admissionregistration.k8s.io"),
    ("get", "nodes/proxy"),
    ("patch", "nodes"),
    ("delete", "namespaces"),
    ("create", "persistentvolumes"),
    ("update", "deployments/scale"),
]
# What it needs (the rest of its needs are exercised end to end by tests/e2e).
ALLOWED = [
    ("patch", "modeldeployments.modelserve.dev/status"),
    ("watch", "modeldeployments.modelserve.dev"),
    ("patch", "deployments.apps"),
    ("delete", "networkpolicies.networking.k8s.io"),
    ("create", "networkpolicies.networking.k8s.io"),
    ("list", "pods"),
    ("create", "events"),
]


@pytest.fixture
def chart_identity(cluster: Cluster, namespace: str) -> Iterator[str]:
    """The chart's RBAC in its broadest (cluster-wide) mode, bound to a ServiceAccount in `namespace`."""
    release = f"rel-{uuid.uuid4().hex[:6]}"
    rendered = _helm(
        cluster, "template", release, str(REPO / "charts" / "modelserve-operator"), "-n", namespace
    )
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    rbac = [
        d
        for d in docs
        if d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
    ]
    assert {d["kind"] for d in rbac} >= {"ServiceAccount", "ClusterRole", "ClusterRoleBinding"}
    for doc in rbac:
        doc["metadata"].setdefault("namespace", namespace)
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": rbac}),
    )
    # The operator's own ServiceAccount (the chart also makes one for the activator).
    sa = next(
        d
        for d in rbac
        if d["kind"] == "ServiceAccount" and not d["metadata"]["name"].endswith("-activator")
    )["metadata"]["name"]
    yield f"system:serviceaccount:{namespace}:{sa}"
    for doc in rbac:
        if doc["kind"].startswith("Cluster"):
            cluster.kubectl(
                "delete", doc["kind"].lower(), doc["metadata"]["name"], "--wait=false", check=False
            )


def test_operator_identity_has_no_escalation_path(
    cluster: Cluster, namespace: str, chart_identity: str
) -> None:
    def can_i(verb: str, resource: str) -> bool:
        resource, _, sub = resource.partition("/")
        args = ["auth", "can-i", verb, resource, f"--as={chart_identity}", "-n", namespace]
        proc = cluster.kubectl(*args, *([f"--subresource={sub}"] if sub else []), check=False)
        return proc.stdout.strip() == "yes"

    wait_until(
        lambda: can_i("watch", "modeldeployments.modelserve.dev"), timeout=30, what="the RBAC to apply"
    )
    matrix = {f"{v} {r}": can_i(v, r) for v, r in DENIED + ALLOWED}
    wrongly_allowed = [f"{v} {r}" for v, r in DENIED if matrix[f"{v} {r}"]]
    wrongly_denied = [f"{v} {r}" for v, r in ALLOWED if not matrix[f"{v} {r}"]]
    assert not wrongly_allowed, wrongly_allowed
    assert not wrongly_denied, wrongly_denied
