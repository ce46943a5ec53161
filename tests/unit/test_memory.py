"""memory.py: freed heap pages go back to the OS once a wave of deletes is over."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelserve import memory

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_nothing_to_trim_before_anything_was_forgotten() -> None:
    trimmer = memory.Trimmer(settle=5, clock=Clock())
    assert not trimmer.due()


def test_a_wave_of_forgets_is_trimmed_once_after_it_settles() -> None:
    clock = Clock()
    trimmer = memory.Trimmer(settle=5, clock=clock)
    for _ in range(3):
        trimmer.forgot()
        clock.now += 3  # each forget comes before the last one settled
        assert not trimmer.due()
    clock.now += 2  # 5 s after the last forget
    assert trimmer.due()
    assert not trimmer.due()  # once per wave
    clock.now += 60
    assert not trimmer.due()
    trimmer.forgot()
    clock.now += 5
    assert trimmer.due()  # the next wave


def test_trim_calls_glibc() -> None:
    # The operator image and CI are glibc (Debian): trimming must really be there.
    assert memory.trim()


def test_the_image_and_the_chart_start_the_operator_with_the_allocator_env() -> None:
    root = Path(__file__).resolve().parents[2]
    dockerfile = (root / "operator" / "Dockerfile").read_text()
    chart = (root / "charts" / "modelserve-operator" / "templates" / "deployment.yaml").read_text()
    for name, value in memory.ALLOCATOR_ENV.items():
        assert f"{name}={value}" in dockerfile, name
        assert f'- name: {name}\n              value: "{value}"' in chart, name


def test_release_reports_rss_before_and_after() -> None:
    before, after = memory.release()
    assert before > 0 and after > 0
