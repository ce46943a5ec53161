"""TF Serving's model layout: `<base>/<version>/saved_model.pb(txt)`, version a decimal number.

TF Serving silently ignores folders that are not numbers and fails late (state END) on a numeric
folder without a SavedModel, so the fetcher checks the layout up front and says what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from .errors import LayoutError

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


def is_version_name(name: str) -> bool:
    # ASCII digits only: str.isdigit() also accepts characters such as "²" that TF Serving rejects.
    return name.isascii() and name.isdigit()


def validate_files(relative_paths: Iterable[str], where: str) -> list[int]:
    """Checks a layout given as relative file paths (a bucket listing or a walked directory).

    Returns the version numbers, ascending; raises LayoutError naming what is missing.
    """
    versions: dict[str, bool] = {}
    for rel in relative_paths:
        parts = PurePosixPath(rel).parts
        if len(parts) < 2 or not is_version_name(parts[0]):
            continue
        has_model = len(parts) == 2 and parts[1] in SAVED_MODEL_FILES
        versions[parts[0]] = versions.get(parts[0], False) or has_model
    if not versions:
        raise LayoutError(
            f"{where} has no numeric version folders: expected <version>/saved_model.pb, "
            "e.g. 1/saved_model.pb"
        )
    missing = sorted((v for v, ok in versions.items() if not ok), key=int)
    if missing:
        raise LayoutError(
            f"{where}: version folder(s) {', '.join(missing)} hold no saved_model.pb or saved_model.pbtxt"
        )
    numbers = sorted(int(v) for v in versions)
    if len(numbers) != len(set(numbers)):
        raise LayoutError(f"{where}: version folders name the same version twice (leading zeros?)")
    return numbers


def list_relative_files(root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]


def validate_dir(root: Path, where: str | None = None) -> list[int]:
    """Checks a local model directory (a fetched copy or a mounted volume)."""
    label = where or str(root)
    if not root.is_dir():
        raise LayoutError(f"{label} is not a directory")
    return validate_files(list_relative_files(root), label)


def version_dirs(base: Path) -> list[int]:
    """The numeric version folders under a base path, ascending: what TF Serving would consider."""
    try:
        entries = list(base.iterdir())
    except OSError:
        return []
    return sorted(int(p.name) for p in entries if p.is_dir() and is_version_name(p.name))
