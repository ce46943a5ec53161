"""The release workflow cannot run here (no GitHub runners, no registry): it is linted with actionlint
(built from its Go module by hack/cluster/build.sh), its version check is run as written, and what it
pushes is checked against the repository (image names and tags the operator defaults to, both charts).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_kit import require_binary

from kit import REPO, Cluster

WORKFLOW = REPO / ".github" / "workflows" / "release.yaml"


def workflow() -> dict[Any, Any]:
    return dict(yaml.safe_load(WORKFLOW.read_text()))


def test_actionlint_passes(cluster: Cluster) -> None:
    binary = require_binary(cluster, "actionlint")
    files = sorted(str(p) for p in (REPO / ".github" / "workflows").glob("*.y*ml"))
    proc = subprocess.run(
        [binary, "-no-color", "-shellcheck=", "-pyflakes=", *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_runs_on_version_tags_with_least_privilege() -> None:
    flow = workflow()
    triggers = flow[True] if True in flow else flow["on"]  # YAML 1.1 reads `on` as true
    assert triggers == {"push": {"tags": ["v*.*.*"]}}
    assert flow["permissions"] == {"contents": "read"}
    for name, job in flow["jobs"].items():
        writes = {k for k, v in (job.get("permissions") or {}).items() if v == "write"}
        assert writes <= {"packages", "id-token"}, f"{name}: {writes}"


def _version_step() -> str:
    (step,) = [s for s in workflow()["jobs"]["check"]["steps"] if s.get("id") == "version"]
    return str(step["run"])


@pytest.mark.parametrize(("tag", "ok"), [("v0.1.0", True), ("v9.9.9", False)])
def test_the_version_check_accepts_only_the_repositorys_version(tmp_path: Path, tag: str, ok: bool) -> None:
    version = yaml.safe_load((REPO / "charts" / "modelserve-operator" / "Chart.yaml").read_text())["version"]
    assert version == "0.1.0", "update the parametrization with the version"
    output = tmp_path / "output"
    env = {
        **os.environ,
        "GITHUB_REF_NAME": tag,
        "GITHUB_OUTPUT": str(output),
        "TF_SERVING_VERSION": workflow()["env"]["TF_SERVING_VERSION"],
    }
    proc = subprocess.run(
        ["bash", "-e", "-c", _version_step()], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    assert (proc.returncode == 0) is ok, proc.stdout + proc.stderr
    if ok:
        assert output.read_text() == f"version={version}\n"


def test_images_are_the_ones_the_operator_and_chart_default_to() -> None:
    from modelserve.settings import DEFAULT_CPU_IMAGE, DEFAULT_GPU_IMAGE

    flow = workflow()
    tf_serving = flow["env"]["TF_SERVING_VERSION"]
    dockerfile_base = re.search(
        r"^ARG BASE=tensorflow/serving:(\S+)$", (REPO / "serving-image" / "Dockerfile").read_text(), re.M
    )
    assert dockerfile_base and dockerfile_base.group(1) == tf_serving
    matrix = {m["name"]: m for m in flow["jobs"]["images"]["strategy"]["matrix"]["include"]}
    assert set(matrix) == {"operator", "serving", "serving-gpu"}
    version = "0.1.0"

    def tag(name: str) -> str:
        m = matrix[name]
        return f"{m['image']}:{m['tag_prefix']}{version}{m['tag_suffix']}"

    assert DEFAULT_CPU_IMAGE.endswith("/" + tag("serving"))
    assert DEFAULT_GPU_IMAGE.endswith("/" + tag("serving-gpu"))
    values = yaml.safe_load((REPO / "charts" / "modelserve-operator" / "values.yaml").read_text())
    assert values["image"]["repository"].endswith("/" + matrix["operator"]["image"])
    assert matrix["serving-gpu"]["build_args"] == f"BASE=tensorflow/serving:{tf_serving}-gpu"
    for m in matrix.values():
        assert (REPO / m["dockerfile"]).is_file()


def test_every_pushed_image_and_chart_is_signed() -> None:
    jobs = workflow()["jobs"]
    image_steps = " ".join(str(s.get("run", "")) for s in jobs["images"]["steps"])
    assert 'cosign sign --yes "$IMAGE"' in image_steps
    assert any("@${{ steps.build.outputs.digest }}" in str(s.get("env", "")) for s in jobs["images"]["steps"])
    chart_script = next(
        s["run"] for s in jobs["charts"]["steps"] if s.get("name") == "package, push and sign"
    )
    assert "for chart in modelserve-operator-crds modelserve-operator" in chart_script
    assert 'helm push "dist/charts/$chart-$VERSION.tgz" "oci://' in chart_script
    assert "cosign sign --yes" in chart_script
    for chart in ("modelserve-operator-crds", "modelserve-operator"):
        assert (REPO / "charts" / chart / "Chart.yaml").is_file()
