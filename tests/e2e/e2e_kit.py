"""Helpers of the install-path tests: helm, fresh namespaces, ServiceAccount tokens, the operator run
under a token, `kubectl auth can-i`.

Everything cluster-scoped these tests create carries a unique name (release names and namespaces
are random, ClusterRoles are named after their namespace), and nothing deletes the ModelDeployment
CRD, so the tests can share the cluster with other suites running at the same time.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from kit import REPO, Cluster, cache_root, pinned_versions, wait_until

CHART = REPO / "charts" / "modelserve-operator"
E2E = Path(__file__).resolve().parent
VALUES = E2E / "values"
INVALID_VALUES = E2E / "values-invalid"
SERVICE_MONITOR_CRD = "servicemonitors.monitoring.coreos.com"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def require_binary(cluster: Cluster, name: str) -> str:
    """The binary's path; a missing one fails the test (CI must not pass by testing nothing)."""
    found = shutil.which(name, path=cluster.env()["PATH"])
    assert found, f"{name} is not on PATH ({cluster.bin_dir}); run hack/cluster/build.sh"
    return found


def helm(
    cluster: Cluster, *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    require_binary(cluster, "helm")
    env = cluster.env()
    # Keep helm's caches and repository config out of the user's home.
    cache = cache_root() / "helm"
    env.update(
        HELM_CACHE_HOME=str(cache / "cache"),
        HELM_CONFIG_HOME=str(cache / "config"),
        HELM_DATA_HOME=str(cache / "data"),
    )
    proc = subprocess.run(
        ["helm", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
    return proc


@contextmanager
def release_cleanup(cluster: Cluster, release: str, namespace: str) -> Iterator[None]:
    """Whatever happens in the test, no release and none of its cluster-scoped objects stay behind
    (namespaced ones go with the test's namespace)."""
    try:
        yield
    finally:
        helm(cluster, "uninstall", release, "-n", namespace, "--ignore-not-found", check=False)
        cluster.kubectl(
            "delete",
            "clusterrole,clusterrolebinding",
            "-l",
            f"app.kubernetes.io/instance={release}",
            "--ignore-not-found",
            check=False,
        )


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


@contextmanager
def fresh_namespaces(
    cluster: Cluster, *prefixes: str, labels: dict[str, str] | None = None
) -> Iterator[list[str]]:
    """Namespaces made for one test (deleted afterwards, without waiting)."""
    names = [unique(p) for p in prefixes]
    try:
        for name in names:
            cluster.kubectl("create", "namespace", name)
            if labels:
                cluster.kubectl("label", "namespace", name, *(f"{k}={v}" for k, v in labels.items()))
        yield names
    finally:
        for name in names:
            cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
}


def service_monitor_crd_file() -> str:
    cache = cache_root()
    version = pinned_versions()["PROMETHEUS_OPERATOR_VERSION"]
    return f"{cache}/crds/prometheus-operator-{version}/monitoring.coreos.com_servicemonitors.yaml"


def ensure_service_monitor_crd(cluster: Cluster) -> None:
    """The Prometheus Operator's real ServiceMonitor CRD (another suite may delete it to test its absence)."""
    path = service_monitor_crd_file()
    assert Path(path).is_file(), f"{path} is missing; hack/cluster/cluster.sh up fetches it"
    cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", "--field-manager=modelserve-tests", "-f", path
    )
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", SERVICE_MONITOR_CRD)


def ensure_gateway_api_crds(cluster: Cluster) -> None:
    """Gateway API's CRDs (hack/cluster/build.sh fetches them): `kubectl auth can-i` answers "no" for
    a resource the API server does not serve, whatever the RBAC rules say."""
    folder = service_monitor_crd_file().split("/crds/")[0] + (
        f"/crds/gateway-api-{pinned_versions()['GATEWAY_API_VERSION']}"
    )
    assert Path(folder).is_dir(), f"{folder} is missing; hack/cluster/build.sh crds fetches it"
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", folder)
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/httproutes.gateway.networking.k8s.io"
    )


PROMETHEUS_RULE_CRD = "prometheusrules.monitoring.coreos.com"


def ensure_prometheus_rule_crd(cluster: Cluster) -> None:
    """The Prometheus Operator's real PrometheusRule CRD (hack/cluster/build.sh fetches it)."""
    path = service_monitor_crd_file().replace("_servicemonitors.yaml", "_prometheusrules.yaml")
    assert Path(path).is_file(), f"{path} is missing; hack/cluster/build.sh crds fetches it"
    cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", "--field-manager=modelserve-tests", "-f", path
    )
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", PROMETHEUS_RULE_CRD)


def token_kubeconfig(cluster: Cluster, namespace: str, service_account: str, path: Path) -> Path:
    """A kubeconfig holding only a TokenRequest token of the ServiceAccount (no admin credentials)."""
    token = cluster.kubectl(
        "create", "token", service_account, "-n", namespace, "--duration=1h"
    ).stdout.strip()
    config = json.loads(
        cluster.kubectl("config", "view", "--raw", "--minify", "--flatten", "-o", "json").stdout
    )
    user = f"system:serviceaccount:{namespace}:{service_account}"
    config["users"] = [{"name": user, "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = user
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def whoami(cluster: Cluster, kubeconfig: Path) -> str:
    env = dict(cluster.env(), KUBECONFIG=str(kubeconfig))
    proc = subprocess.run(
        ["kubectl", "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return proc.stdout.strip()


def can_i(cluster: Cluster, user: str, verb: str, resource: str, namespace: str | None) -> bool:
    """`kubectl auth can-i` as `user`; namespace None asks cluster-wide (--all-namespaces).
    `resource` may name a subresource (`pods/log`) and one object (`leases.coordination.k8s.io:name`)."""
    scope = ["-n", namespace] if namespace else ["--all-namespaces"]
    resource, _, name = resource.partition(":")
    resource, _, subresource = resource.partition("/")
    extra = [f"--subresource={subresource}"] if subresource else []
    target = f"{resource}/{name}" if name else resource
    proc = cluster.kubectl("auth", "can-i", verb, target, *extra, f"--as={user}", *scope, check=False)
    answer = proc.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl auth can-i {verb} {resource}: {proc.stdout}{proc.stderr}"
    return answer == "yes"


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


@contextmanager
def operator_as(kubeconfig: Path, namespace: str, lease: tuple[str, str]) -> Iterator[list[str]]:
    """The operator in-process (KopfRunner, as tests/integration do) with only `kubeconfig`'s
    credentials, watching `namespace` and electing itself leader on `lease` (namespace, name: what
    the chart grants); yields its log lines, checked for 403s by the caller."""
    from kopf.testing import KopfRunner
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.config import kube_config

    saved_default = kube_config.KUBE_CONFIG_DEFAULT_LOCATION

    saved = {
        k: os.environ.get(k)
        for k in (
            "KUBECONFIG",
            "MODELSERVE_METRICS_PORT",
            "MODELSERVE_HEALTH_PORT",
            "MODELSERVE_RETRY_DELAY_SECONDS",
            "MODELSERVE_LEASE_NAMESPACE",
            "MODELSERVE_LEASE_NAME",
        )
    }
    os.environ.update(
        KUBECONFIG=str(kubeconfig),
        MODELSERVE_METRICS_PORT="0",
        MODELSERVE_HEALTH_PORT="0",
        MODELSERVE_RETRY_DELAY_SECONDS="0.5",
        MODELSERVE_LEASE_NAMESPACE=lease[0],
        MODELSERVE_LEASE_NAME=lease[1],
    )
    # The Kubernetes client reads KUBECONFIG once, at import: an earlier test may have imported it
    # with the admin kubeconfig. Point its default at the token too, for kopf's login and the
    # operator's client alike, and prove that this is who the operator will be.
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(kubeconfig)
    expected = json.loads(kubeconfig.read_text())["users"][0]["name"]
    api_client = k8s_config.new_client_from_config()
    try:
        review = k8s_client.AuthenticationV1Api(api_client).create_self_subject_review(
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
    finally:
        api_client.close()
    assert review.status.user_info.username == expected, f"the operator would run as {review.status}"
    collector = _Collect()
    root = logging.getLogger()
    root.addHandler(collector)
    try:
        args = ["run", "--standalone", "--namespace", namespace, "-m", "modelserve.handlers"]
        with KopfRunner(args, timeout=60) as runner:
            yield collector.lines
        assert runner.exception is None, runner.output
        assert runner.exit_code == 0, runner.output
    finally:
        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = saved_default
        root.removeHandler(collector)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def forbidden_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if "forbidden" in line.lower() or " 403" in line]


def wait_operator_pod_ready(
    cluster: Cluster, namespace: str, release: str, timeout: float = 120
) -> dict[str, Any]:
    """The operator's pod scheduled on a (kwok) node and Ready."""

    def probe() -> dict[str, Any] | None:
        pods = cluster.kubectl_json(
            "get",
            "pods",
            "-n",
            namespace,
            # The release also runs the activator: the component label tells the operator's pods apart.
            "-l",
            f"app.kubernetes.io/instance={release},app.kubernetes.io/component=operator",
        )["items"]
        for pod in pods:
            if pod["metadata"].get("deletionTimestamp"):
                continue
            ready = any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (pod.get("status") or {}).get("conditions") or []
            )
            if pod["spec"].get("nodeName") and ready:
                return dict(pod)
        return None

    return wait_until(
        probe,
        timeout=timeout,
        what=f"the operator pod of {release} Ready",
        describe=lambda: (
            cluster.kubectl("get", "pods,events", "-n", namespace, "-o", "wide", check=False).stdout
        ),
    )
