"""The sync engine's pure parts: which versions a policy serves from one listing, and the probes'
verdicts from the state file."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelserve_serving import syncstate
from modelserve_serving.modelconfig import ALL, LATEST, SPECIFIC, VersionPolicy, select

pytestmark = pytest.mark.unit


def test_latest_takes_the_highest_complete_folders_of_one_listing() -> None:
    complete = {1: True, 2: True, 3: True, 4: False}
    assert select(VersionPolicy(LATEST, 2), [1, 2, 3, 4], complete.__getitem__) == [2, 3]
    assert select(VersionPolicy(LATEST, 1), [3, 10, 9], lambda v: True) == [10]


def test_all_skips_incomplete_folders_and_specific_is_exactly_the_list() -> None:
    assert select(VersionPolicy(ALL), [1, 2, 3], lambda v: v != 2) == [1, 3]
    assert select(VersionPolicy(SPECIFIC, versions=(7, 1)), [1, 2], lambda v: True) == [1, 7]


def test_probe_verdicts(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert syncstate.verdict(syncstate.read(path), ready=False)[0] is False
    syncstate.write(path, syncstate.State(started=True, complete=True, served=[3], present=[3]))
    assert syncstate.verdict(syncstate.read(path), ready=True) == (True, "every served version on disk: 3")
    syncstate.write(path, syncstate.State(started=True, complete=False, served=[3, 4], present=[3]))
    ok, line = syncstate.verdict(syncstate.read(path), ready=True)
    assert not ok and "4 not on disk yet" in line
    assert syncstate.verdict(syncstate.read(path), ready=False)[0] is True
    syncstate.write(
        path, syncstate.State(started=True, degraded=True, present=[3], last_error="s3://b/m: down")
    )
    ok, line = syncstate.verdict(syncstate.read(path), ready=True)
    assert not ok and "s3://b/m: down" in line
