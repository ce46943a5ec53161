"""The charts as platform teams use them: as dependencies of an umbrella chart (Helm injects `global`),
the CRD upgraded by `helm upgrade` of the CRD chart with existing ModelDeployments kept, and the
OpenShift values accepted where fixed UIDs are refused.

The ModelDeployment CRD is shared with every other suite on the cluster and is never deleted here:
the CRD chart adopts it (`--take-ownership`), its uninstall keeps it (`helm.sh/resource-policy: keep`),
and every test leaves it at the current version.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from e2e_kit import (
    CHART,
    E2E,
    RESTRICTED,
    documents,
    fresh_namespaces,
    helm,
    release_cleanup,
    unique,
    wait_operator_pod_ready,
)

from kit import CRD_DIR, REPO, Cluster, model_deployment, wait_until

CRD_CHART = REPO / "charts" / "modelserve-operator-crds"
UMBRELLA = E2E / "fixtures" / "umbrella"
CRD_NAME = "modeldeployments.modelserve.dev"
OPENSHIFT_VALUES = CHART / "values-openshift.yaml"


def _umbrella_copy(tmp_path: Path) -> Path:
    """The fixture with its file:// repositories made absolute, and its dependencies built."""
    chart = tmp_path / "ml-platform"
    shutil.copytree(UMBRELLA, chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    for dep in meta["dependencies"]:
        dep["repository"] = f"file://{REPO / 'charts' / dep['name']}"
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
    return chart


def _current_crd_back(cluster: Cluster) -> None:
    """Whatever a test did to the CRD, the checked-in version is what the next suite finds."""
    for path in sorted(CRD_DIR.glob("*.yaml")):
        cluster.kubectl(
            "apply", "--server-side", "--force-conflicts", "--field-manager=modelserve-tests", "-f", str(path)
        )
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", CRD_NAME)


@contextmanager
def _crd_release(cluster: Cluster, release: str, namespace: str) -> Iterator[None]:
    try:
        yield
    finally:
        helm(cluster, "uninstall", release, "-n", namespace, "--ignore-not-found", check=False)
        _current_crd_back(cluster)


def test_umbrella_chart_installs_both_charts_with_global_values(cluster: Cluster, tmp_path: Path) -> None:
    chart = _umbrella_copy(tmp_path)
    helm(cluster, "dependency", "build", str(chart))
    release = unique("umb")
    with (
        fresh_namespaces(cluster, "e2e-umbrella", labels=RESTRICTED) as (namespace,),
        release_cleanup(cluster, release, namespace),
        _crd_release(cluster, release, namespace),
    ):
        # Without the fix: "modelserve-operator: additional properties 'global' not allowed".
        # --skip-crds: the CRD comes from the CRD chart's templates, not the operator chart's crds/;
        # --take-ownership: this cluster's CRD was created by other suites before.
        install = helm(
            cluster,
            "install",
            release,
            str(chart),
            "-n",
            namespace,
            "--skip-crds",
            "--take-ownership",
            "--wait",
            "--timeout=180s",
        )
        assert "STATUS: deployed" in install.stdout
        computed = json.loads(
            helm(cluster, "get", "values", release, "-n", namespace, "--all", "-o", "json").stdout
        )
        assert computed["global"]["imageRegistry"] == "registry.example.com"
        assert computed["modelserve-operator"]["global"] == computed["global"], "Helm passes global down"

        pod = wait_operator_pod_ready(cluster, namespace, release)
        assert "--workers=4" in pod["spec"]["containers"][0]["args"], (
            "the umbrella's values reached the subchart"
        )
        crd = cluster.kubectl_json("get", "crd", CRD_NAME)
        assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == release
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

        # The subchart's schema is as strict as before: only `global` was admitted.
        typo = helm(
            cluster,
            "template",
            release,
            str(chart),
            "--set",
            "modelserve-operator.operator.wrokers=3",
            check=False,
        )
        assert typo.returncode != 0
        assert "additional properties 'wrokers' not allowed" in typo.stderr, typo.stderr

        helm(cluster, "uninstall", release, "-n", namespace, "--wait")
        assert cluster.kubectl_json("get", "crd", CRD_NAME)["metadata"]["name"] == CRD_NAME, (
            "uninstall kept the CRD (resource-policy keep)"
        )


def _old_crd_chart(tmp_path: Path) -> Path:
    """The CRD chart as an older release would have shipped it: version 0.0.1, without spec.suspend."""
    old = tmp_path / "modelserve-operator-crds-old"
    shutil.copytree(CRD_CHART, old)
    meta = yaml.safe_load((old / "Chart.yaml").read_text())
    meta["version"] = "0.0.1"
    (old / "Chart.yaml").write_text(yaml.safe_dump(meta))
    (template,) = (old / "templates").glob("*.yaml")
    lines = template.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if re.fullmatch(r" {14}suspend:\n", line))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith(" " * 16))
    template.write_text("".join(lines[:start] + lines[end:]))
    return old


def _spec_properties(cluster: Cluster) -> dict[str, Any]:
    crd = cluster.kubectl_json("get", "crd", CRD_NAME)
    (version,) = crd["spec"]["versions"]
    return dict(version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"])


def _apply_strict(cluster: Cluster, namespace: str, body: dict[str, Any], dry_run: bool = False) -> Any:
    """Strict field validation: an unknown field is refused instead of silently pruned."""
    args = ["apply", "-n", namespace, "--validate=strict", "-f", "-"]
    if dry_run:
        args.append("--dry-run=server")
    return cluster.kubectl(*args, input=json.dumps(body), check=False)


def test_crd_chart_upgrade_upgrades_the_crd_and_keeps_existing_objects(
    cluster: Cluster, tmp_path: Path
) -> None:
    old_chart = _old_crd_chart(tmp_path)
    release = unique("crds")
    with (
        fresh_namespaces(cluster, "e2e-crd-upgrade") as (namespace,),
        _crd_release(cluster, release, namespace),
    ):
        helm(cluster, "install", release, str(old_chart), "-n", namespace, "--take-ownership", "--wait")
        wait_until(lambda: "suspend" not in _spec_properties(cluster), timeout=30, what="the old CRD served")

        existing = model_deployment("kept", {"model": {"storageUri": "gs://models/half_plus_two"}})
        created = _apply_strict(cluster, namespace, existing)
        assert created.returncode == 0, created.stderr
        uid = cluster.kubectl_json("get", "mdep", "kept", "-n", namespace)["metadata"]["uid"]
        suspended = model_deployment("suspended", {"model": {"storageUri": "gs://models/x"}, "suspend": True})
        refused = _apply_strict(cluster, namespace, suspended, dry_run=True)
        assert refused.returncode != 0 and 'unknown field "spec.suspend"' in refused.stderr, refused.stderr

        # The upgrade: one helm command, no kubectl step.
        upgrade = helm(cluster, "upgrade", release, str(CRD_CHART), "-n", namespace, "--wait")
        assert "STATUS: deployed" in upgrade.stdout
        wait_until(lambda: "suspend" in _spec_properties(cluster), timeout=30, what="the new CRD served")
        kept = cluster.kubectl_json("get", "mdep", "kept", "-n", namespace)
        assert kept["metadata"]["uid"] == uid, "the existing ModelDeployment is the same object"
        assert kept["spec"]["suspend"] is False, "the new field's default applies to the existing object"
        accepted = _apply_strict(cluster, namespace, suspended)
        assert accepted.returncode == 0, accepted.stderr

        served = cluster.kubectl_json("get", "crd", CRD_NAME)
        (version,) = served["spec"]["versions"]
        (ours,) = documents((CRD_DIR / "modelserve.dev_modeldeployments.yaml").read_text())
        assert version["schema"] == ours["spec"]["versions"][0]["schema"], "the CRD is exactly crds/"

        helm(cluster, "uninstall", release, "-n", namespace, "--wait")
        assert cluster.kubectl_json("get", "mdep", "kept", "-n", namespace)["metadata"]["uid"] == uid


# A stand-in for OpenShift's restricted-v2 SCC, which this cluster does not have: a real in-tree
# ValidatingAdmissionPolicy refusing pods that pick their own UID or fsGroup outside the namespace's
# range (restricted-v2 assigns them from the range; fixed IDs such as 1000 or 65532 are refused).
SCC_RANGE = (1000680000, 1000689999)


def _ids_in_range(path: str) -> str:
    low, high = SCC_RANGE
    return " && ".join(
        f"(!has({path}.{field}) || ({path}.{field} >= {low} && {path}.{field} <= {high}))"
        for field in ("runAsUser", "fsGroup")
        if not (field == "fsGroup" and "containers" in path)
    )


@contextmanager
def _restricted_v2_stand_in(cluster: Cluster, namespace: str) -> Iterator[None]:
    name = unique("restricted-v2")
    pod_rule = _ids_in_range("object.spec.securityContext")
    container_rule = _ids_in_range("c.securityContext")
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": f"!has(object.spec.securityContext) || ({pod_rule})",
                    "message": f"restricted-v2: the pod's runAsUser/fsGroup must be in {SCC_RANGE} or unset",
                },
                {
                    "expression": (
                        "(object.spec.containers + (has(object.spec.initContainers) ? "
                        "object.spec.initContainers : [])).all(c, !has(c.securityContext) || "
                        f"({container_rule}))"
                    ),
                    "message": f"restricted-v2: a container's runAsUser must be in {SCC_RANGE} or unset",
                },
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    try:
        for obj in (policy, binding):
            cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))
        yield
    finally:
        cluster.kubectl(
            "delete",
            "validatingadmissionpolicybinding,validatingadmissionpolicy",
            name,
            "--ignore-not-found",
            check=False,
        )


def _pods_of(manifest: str, namespace: str) -> list[dict[str, Any]]:
    """Every pod the manifest would create (Deployment templates and bare pods), as Pods."""
    pods = []
    for doc in documents(manifest):
        if doc["kind"] == "Deployment":
            template = doc["spec"]["template"]
            name = doc["metadata"]["name"]
        elif doc["kind"] == "Pod":
            template, name = doc, doc["metadata"]["name"]
        else:
            continue
        # Under the namespace's default ServiceAccount: the chart's own does not exist in a dry run.
        spec = {k: v for k, v in template["spec"].items() if k != "serviceAccountName"}
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"{name}-dry-run", "namespace": namespace},
                "spec": spec,
            }
        )
    return pods


def _dry_run(cluster: Cluster, objects: list[dict[str, Any]]) -> Any:
    manifest = "\n---\n".join(json.dumps(o) for o in objects)
    return cluster.kubectl("create", "--dry-run=server", "-f", "-", input=manifest, check=False)


def test_openshift_values_pass_a_restricted_v2_stand_in_that_fixed_uids_fail(cluster: Cluster) -> None:
    with (
        fresh_namespaces(cluster, "e2e-openshift", labels=RESTRICTED) as (namespace,),
        _restricted_v2_stand_in(cluster, namespace),
    ):

        def rendered(*args: str) -> str:
            return helm(cluster, "template", "rel", str(CHART), "-n", namespace, *args).stdout

        # The policy is live (a fresh binding takes a moment): the chart's defaults, fixed UID 65532,
        # are refused by it.
        defaults = _pods_of(rendered(), namespace)
        wait_until(
            lambda: "restricted-v2" in _dry_run(cluster, defaults).stderr,
            timeout=30,
            what="the restricted-v2 stand-in refusing the default UIDs",
        )
        openshift = rendered("-f", str(OPENSHIFT_VALUES))
        proc = _dry_run(cluster, _pods_of(openshift, namespace))
        assert proc.returncode == 0, proc.stderr
        assert "(server dry run)" in proc.stdout
        # And every object of the OpenShift install (RBAC, Service ...) is accepted as a whole.
        whole = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=openshift, check=False)
        assert whole.returncode == 0, whole.stderr
        deployment = next(
            d
            for d in documents(openshift)
            if d["kind"] == "Deployment" and not d["metadata"]["name"].endswith("-activator")
        )
        env = {
            e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env["MODELSERVE_SERVING_FIXED_IDS"] == "false"


def test_serving_pods_without_fixed_ids_pass_the_restricted_v2_stand_in(cluster: Cluster) -> None:
    """What the operator creates under servingFixedIDs=false is admitted too (and refused with IDs)."""
    from modelserve import api
    from modelserve.builders.deployment import build_deployment
    from modelserve.settings import Settings

    with (
        fresh_namespaces(cluster, "e2e-openshift-serving", labels=RESTRICTED) as (namespace,),
        _restricted_v2_stand_in(cluster, namespace),
    ):
        md = api.parse(
            {
                "metadata": {"name": "half-plus-two", "namespace": namespace, "uid": "u-1"},
                "spec": {"model": {"storageUri": "gs://models/half_plus_two", "credentialsSecret": "c"}},
            }
        )

        def serving_pod(fixed: bool) -> list[dict[str, Any]]:
            deployment = build_deployment(md, Settings(serving_fixed_ids=fixed))
            return _pods_of(yaml.safe_dump(deployment), namespace)

        wait_until(
            lambda: "restricted-v2" in _dry_run(cluster, serving_pod(True)).stderr,
            timeout=30,
            what="the restricted-v2 stand-in refusing UID 1000",
        )
        proc = _dry_run(cluster, serving_pod(False))
        assert proc.returncode == 0, proc.stderr
