"""What can be proven about the image without a Docker engine: the Dockerfile's pins and contract
values, the locked dependencies, and that the image's code needs nothing beyond them."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from modelserve import contract

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
IMAGE_DIR = REPO / "serving-image"
DOCKERFILE = (IMAGE_DIR / "Dockerfile").read_text()
PACKAGE = IMAGE_DIR / "modelserve_serving"
# Test-only helpers shipped in the package but never imported inside the image.
DEV_ONLY_MODULES = {"protos"}


def instructions(name: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"(?m)^{name}\s+(.+)$", DOCKERFILE)]


def pyproject() -> dict[str, object]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def extra(name: str) -> list[Requirement]:
    extras = pyproject()["project"]["optional-dependencies"]  # type: ignore[index]
    return [Requirement(r) for r in extras[name]]  # type: ignore[index]


def tf_serving_version() -> str:
    match = re.search(r"(?m)^ARG BASE=tensorflow/serving:(\S+)$", DOCKERFILE)
    assert match, "the base image must be an ARG BASE=tensorflow/serving:<version>"
    return match.group(1)


def test_base_is_the_official_image_pinned_to_an_exact_release() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", tf_serving_version())
    assert not any(":latest" in line or line.endswith(":") for line in instructions("FROM"))
    assert instructions("FROM")[-1] == "${BASE}"


def test_tf_serving_version_matches_the_protos_the_tests_use() -> None:
    pins = [r for r in extra("dev") if r.name == "tensorflow-serving-api"]
    assert [str(r.specifier) for r in pins] == [f"=={tf_serving_version()}"]


def test_gpu_variant_is_the_same_release_with_the_gpu_suffix() -> None:
    makefile = (IMAGE_DIR / "Makefile").read_text()
    assert "--build-arg BASE=tensorflow/serving:$(TF_SERVING_VERSION)-gpu" in makefile


def test_runs_as_the_contract_non_root_user() -> None:
    assert instructions("USER")[-1] == f"{contract.RUN_AS_USER}:{contract.RUN_AS_GROUP}"
    assert contract.RUN_AS_USER != 0


def test_exposes_the_contract_ports_and_execs_the_entrypoint_without_a_shell() -> None:
    assert instructions("EXPOSE") == [f"{contract.GRPC_PORT} {contract.REST_PORT}"]
    assert instructions("ENTRYPOINT") == [f'["{contract.EXECUTABLE}"]']
    assert instructions("CMD") == [f'["{contract.CMD_SERVE}"]']


def test_console_script_name_is_the_contract_executable() -> None:
    scripts = pyproject()["project"]["scripts"]  # type: ignore[index]
    assert scripts[contract.EXECUTABLE] == "modelserve_serving.__main__:main"  # type: ignore[index]


def test_requirements_in_equals_the_serving_extra() -> None:
    lines = (IMAGE_DIR / "requirements.in").read_text().splitlines()
    listed = {str(Requirement(line)) for line in lines if line.strip() and not line.startswith("#")}
    assert listed == {str(r) for r in extra("serving")}


def test_lock_pins_every_serving_requirement_with_hashes() -> None:
    lock = (IMAGE_DIR / "requirements.txt").read_text()
    pins = dict(re.findall(r"(?m)^([A-Za-z0-9_.-]+)==(\S+) \\$", lock))
    assert pins, "requirements.txt pins nothing"
    for req in extra("serving"):
        assert req.name in pins, f"{req.name} is not locked"
        assert pins[req.name] in req.specifier, f"{req.name}=={pins[req.name]} does not satisfy {req}"
    blocks = re.split(r"(?m)^(?=[A-Za-z0-9_.-]+==)", lock)[1:]
    assert all("--hash=sha256:" in block for block in blocks)


def test_tf_serving_protos_are_locked_at_the_base_release_and_installed_without_dependencies() -> None:
    lock = (IMAGE_DIR / "requirements-protos.txt").read_text()
    pins = dict(re.findall(r"(?m)^([A-Za-z0-9_.-]+)==(\S+) \\$", lock))
    assert pins == {"tensorflow-serving-api": tf_serving_version()}
    assert "--hash=sha256:" in lock
    joined = DOCKERFILE.replace("\\\n", " ").splitlines()
    installs = [line for line in joined if "requirements-protos.txt" in line]
    assert any("--no-deps" in line and "--require-hashes" in line for line in installs), installs
    # What those protos need at run time is in the main lock.
    assert "protobuf" in {r.name for r in extra("serving")}


def third_party_imports() -> set[str]:
    stdlib = set(sys.stdlib_module_names)
    found = set()
    for path in PACKAGE.glob("*.py"):
        if path.stem in DEV_ONLY_MODULES:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            found |= {n.split(".")[0] for n in names} - stdlib
    return found - {"modelserve_serving"}


def test_image_code_imports_only_the_contract_and_locked_packages() -> None:
    # modelserve (the operator) is installed without its dependencies: only its stdlib contract.
    assert third_party_imports() == {
        "modelserve",
        "fsspec",
        "s3fs",
        "gcsfs",
        "requests",
        "prometheus_client",
        "google",
        "tensorflow_serving",
    }


def test_commands_run_without_the_operators_dependencies() -> None:
    """Each command's import path in a fresh interpreter that refuses kopf, kubernetes, pydantic,
    yaml and tensorflow, which the image does not have."""
    code = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"kopf", "kubernetes", "pydantic", "yaml", "tensorflow"}:
            raise ImportError("not in the image: " + name)
sys.meta_path.insert(0, Block())
import modelserve_serving.__main__, modelserve_serving.fetch, modelserve_serving.serve
import modelserve_serving.ready, modelserve_serving.supervise, modelserve_serving.objectstore
import modelserve.contract
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_dockerignore_keeps_what_the_dockerfile_copies() -> None:
    ignore = (IMAGE_DIR / "Dockerfile.dockerignore").read_text()
    for copied in (
        "pyproject.toml",
        "README.md",
        "operator/modelserve",
        "serving-image/requirements.txt",
        "serving-image/requirements-protos.txt",
        "serving-image/modelserve_serving",
    ):
        assert f"!{copied}" in ignore
