"""The dependency locks: every range of pyproject.toml is pinned, with hashes, and what installs the
venv (CI) and the operator image installs from them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def pins(lock: str) -> dict[str, set[str]]:
    """Name -> pinned versions (a universal lock may pin two versions under different markers)."""
    found: dict[str, set[str]] = {}
    for name, version in re.findall(r"(?m)^([A-Za-z0-9_.-]+)==([^\s;\\]+)", lock):
        found.setdefault(canonicalize_name(name), set()).add(version)
    return found


def requirements(*extras: str) -> list[Requirement]:
    listed = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in extras:
        listed += [Requirement(r) for r in PROJECT["optional-dependencies"][extra]]
    return [r for r in listed if canonicalize_name(r.name) != canonicalize_name(PROJECT["name"])]


@pytest.mark.parametrize(
    ("lock_file", "extras"),
    [("requirements.lock", ()), ("requirements-dev.lock", ("dev", "serving"))],
)
def test_lock_pins_every_requirement_within_its_range_with_hashes(
    lock_file: str, extras: tuple[str, ...]
) -> None:
    lock = (REPO / lock_file).read_text()
    pinned = pins(lock)
    for req in requirements(*extras):
        versions = pinned.get(canonicalize_name(req.name))
        assert versions, f"{req.name} is not in {lock_file}: run `make lock`"
        assert all(v in req.specifier for v in versions), f"{req.name}=={versions} does not satisfy {req}"
    blocks = re.split(r"(?m)^(?=[A-Za-z0-9_.-]+==)", lock)[1:]
    assert blocks and all("--hash=sha256:" in block for block in blocks)


def test_the_runtime_lock_holds_no_dev_tools() -> None:
    pinned = pins((REPO / "requirements.lock").read_text())
    for tool in ("pytest", "mypy", "ruff", "tensorflow"):
        assert tool not in pinned


def test_the_venv_and_the_operator_image_install_from_the_locks_with_hashes() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "LOCK := requirements-dev.lock" in makefile
    assert "pip install -q --disable-pip-version-check --require-hashes -r $(LOCK)" in makefile
    assert "pip install -q --disable-pip-version-check --no-deps -e ." in makefile
    dockerfile = (REPO / "operator" / "Dockerfile").read_text()
    assert "pip install --require-hashes -r requirements.lock" in dockerfile
    assert "pip install --no-deps ." in dockerfile
    assert "!requirements.lock" in (REPO / "operator" / "Dockerfile.dockerignore").read_text()
