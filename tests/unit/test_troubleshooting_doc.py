"""docs/troubleshooting.md has a section for every status reason the operator can set."""

from __future__ import annotations

import re

import pytest

from kit import REPO
from modelserve.status import Reason

pytestmark = pytest.mark.unit

DOC = REPO / "docs" / "troubleshooting.md"


def reasons() -> dict[str, str]:
    return {name: value for name, value in vars(Reason).items() if name.isupper() and isinstance(value, str)}


def test_every_reason_has_a_section() -> None:
    headings = set(re.findall(r"^### `([A-Za-z]+)`$", DOC.read_text(), re.M))
    missing = sorted(set(reasons().values()) - headings)
    assert not missing, f"add a '### `<Reason>`' section to docs/troubleshooting.md for {missing}"
    unknown = sorted(headings - set(reasons().values()))
    assert not unknown, f"docs/troubleshooting.md has sections for reasons that do not exist: {unknown}"


def test_relative_links_resolve() -> None:
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", DOC.read_text()):
        assert (DOC.parent / target).exists(), target
