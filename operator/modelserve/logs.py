"""Logging of `modelserve run`: plain text for people, or one JSON object per line for log pipelines.

JSON lines come from python-json-logger: `time` is RFC 3339 in UTC
(`2026-12-01T20:33:00.123456+00:00`), `level` (lower case), `logger`, `message`, `exception` (a
traceback), and for lines about one ModelDeployment its `namespace`, `name` and, where there is one,
the status `reason`, so a pipeline can select every line of one object. Call sites pass those with
`extra=about(namespace, name, reason)`; kopf's own per-object lines carry `k8s_ref`, which is mapped
to the same fields.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from pythonjsonlogger.json import JsonFormatter

# LogRecord has a `name` (the logger) of its own, so the object's fields travel under these keys and
# are renamed on output.
_NAMESPACE: Final = "k8s_namespace"
_NAME: Final = "k8s_name"
_RENAMES: Final = {
    "levelname": "level",
    "name": "logger",
    "exc_info": "exception",
    _NAMESPACE: "namespace",
    _NAME: "name",
}
# kopf's per-object logger extras, and its settings object: never output as such.
_DROPPED: Final = ("k8s_ref", "k8s_skip", "settings")


def about(namespace: str, name: str, reason: str | None = None) -> dict[str, str]:
    """The `extra` of a log line about one ModelDeployment."""
    extra = {_NAMESPACE: namespace, _NAME: name}
    if reason:
        extra["reason"] = reason
    return extra


class _KopfObject(logging.Filter):
    """Lifts kopf's `k8s_ref` (the object a kopf line is about) into our namespace/name fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict):
            if ref.get("namespace") and not hasattr(record, _NAMESPACE):
                setattr(record, _NAMESPACE, ref["namespace"])
            if ref.get("name") and not hasattr(record, _NAME):
                setattr(record, _NAME, ref["name"])
        return True


class _Formatter(JsonFormatter):
    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        # Lower-case levels, as most Kubernetes components and log pipelines write them.
        if isinstance(log_data.get("level"), str):
            log_data["level"] = log_data["level"].lower()
        return log_data


def json_formatter() -> logging.Formatter:
    return _Formatter(
        "{levelname}{name}{message}",
        style="{",
        rename_fields=dict(_RENAMES),
        timestamp="time",
        reserved_attrs=[*JsonFormatter().reserved_attrs, *_DROPPED],
    )


def text_formatter() -> logging.Formatter:
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def configure(json_logs: bool, verbose: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(json_formatter() if json_logs else text_formatter())
    handler.addFilter(_KopfObject())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # kopf logs every watch event at debug and more at info; ours says what matters.
    logging.getLogger("kopf").setLevel(logging.INFO if verbose else logging.WARNING)
