"""JSON log lines: RFC 3339 time, lower-case level, the object's namespace/name/reason."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from modelserve import logs

pytestmark = pytest.mark.unit


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("kopf").level
    logs.configure(json_logs=True, verbose=False)
    stream = io.StringIO()
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    yield stream
    root.handlers[:], root.level = saved[0], saved[1]
    logging.getLogger("kopf").setLevel(saved[2])


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_about_a_model_deployment_carries_its_namespace_name_and_reason(captured: io.StringIO) -> None:
    before = datetime.now(UTC)
    logging.getLogger("modelserve.controller").warning(
        "reconcile of %s/%s failed", "ml", "resnet", extra=logs.about("ml", "resnet", "ApplyForbidden")
    )
    [entry] = lines(captured)
    assert entry["level"] == "warning"
    assert entry["logger"] == "modelserve.controller"
    assert entry["message"] == "reconcile of ml/resnet failed"
    assert (entry["namespace"], entry["name"], entry["reason"]) == ("ml", "resnet", "ApplyForbidden")
    # RFC 3339: a full date-time with an explicit UTC offset.
    at = datetime.fromisoformat(str(entry["time"]))
    assert at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= at <= datetime.now(UTC) + timedelta(seconds=1)
    assert str(entry["time"]).endswith("+00:00") and "T" in str(entry["time"])


def test_a_plain_line_has_no_object_fields_and_a_traceback_under_exception(captured: io.StringIO) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("modelserve.x").exception("failed")
    [entry] = lines(captured)
    assert "namespace" not in entry and "name" not in entry and "reason" not in entry
    assert entry["level"] == "error"
    assert "ValueError: boom" in str(entry["exception"])


def test_kopf_object_lines_are_mapped_to_the_same_fields(captured: io.StringIO) -> None:
    logging.getLogger("kopf.objects").warning(
        "handler failed",
        extra={
            "k8s_ref": {"namespace": "ml", "name": "bert", "uid": "u"},
            "k8s_skip": False,
            # kopf's own Event poster may still hang on this logger after an in-process operator
            # ran (integration tests first): settings that never post keep it out of the way.
            "settings": SimpleNamespace(
                posting=SimpleNamespace(enabled=False, level=logging.CRITICAL + 1, loggers=False)
            ),
        },
    )
    [entry] = lines(captured)
    assert (entry["namespace"], entry["name"]) == ("ml", "bert")
    assert "k8s_ref" not in entry and "settings" not in entry and "k8s_skip" not in entry


def test_text_logs_stay_plain() -> None:
    record = logging.LogRecord("modelserve", logging.INFO, __file__, 1, "hello", None, None)
    assert logs.text_formatter().format(record).endswith("INFO modelserve: hello")
