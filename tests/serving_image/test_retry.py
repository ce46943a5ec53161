"""The retry policy: transient errors retried with growing delays, permanent ones at once."""

from __future__ import annotations

import pytest

from modelserve_serving.errors import FetchError, LayoutError
from modelserve_serving.retry import Backoff, is_transient, retry

pytestmark = pytest.mark.unit


def flaky(failures: list[BaseException]) -> tuple[list[int], object]:
    calls: list[int] = []

    def action() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "done"

    return calls, action


def test_transient_errors_are_retried_with_exponential_backoff() -> None:
    calls, action = flaky([ConnectionResetError("reset"), TimeoutError("slow")])
    sleeps: list[float] = []
    result = retry(action, what="x", backoff=Backoff(5, 1.0, 30.0), sleep=sleeps.append)  # type: ignore[arg-type]
    assert result == "done" and len(calls) == 3
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0  # jittered 1 s, then 2 s


def test_attempts_run_out() -> None:
    calls, action = flaky([FetchError("503", transient=True)] * 3)
    with pytest.raises(FetchError, match="503"):
        retry(action, what="x", backoff=Backoff(3, 0.0, 0.0), sleep=lambda _: None)  # type: ignore[arg-type]
    assert len(calls) == 3


@pytest.mark.parametrize(
    "exc",
    [FileNotFoundError("k"), PermissionError("no"), FetchError("404"), LayoutError("flat"), ValueError("x")],
)
def test_permanent_errors_are_not_retried(exc: BaseException) -> None:
    assert not is_transient(exc)
    calls, action = flaky([exc])
    with pytest.raises(type(exc)):
        retry(action, what="x", backoff=Backoff(5, 0.0, 0.0), sleep=lambda _: None)  # type: ignore[arg-type]
    assert len(calls) == 1


def test_backoff_is_capped() -> None:
    assert Backoff(10, 1.0, 4.0).delay(9) <= 4.0
