"""The Prometheus HTTP API client of the analysis and the sync-health poller (instant queries only)."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Final

DEFAULT_TIMEOUT_SECONDS: Final = 5.0


class PrometheusError(Exception):
    """Prometheus could not be reached, refused the query, or did not return one number."""


def _query(base_url: str, promql: str, timeout: float) -> dict[str, Any]:
    """The `data` of an instant query's answer."""
    url = base_url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("error") or exc.reason
        except ValueError:
            detail = exc.reason
        raise PrometheusError(f"HTTP {exc.code}: {detail}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise PrometheusError(f"{base_url} unreachable: {getattr(exc, 'reason', exc)}") from exc
    if body.get("status") != "success":
        raise PrometheusError(str(body.get("error") or body))
    return dict(body.get("data") or {})


def query_value(base_url: str, promql: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> float | None:
    """The single number an instant query returns; None when it returns no sample (no data)."""
    data = _query(base_url, promql, timeout)
    result = data.get("result") or []
    if data.get("resultType") == "scalar":
        value = float(result[1])
    elif data.get("resultType") == "vector":
        if not result:
            return None
        if len(result) > 1:
            raise PrometheusError(f"the query returned {len(result)} series; a check needs one number")
        value = float(result[0]["value"][1])
    else:
        raise PrometheusError(f"the query returned a {data.get('resultType')}; a check needs one number")
    return None if math.isnan(value) else value


def query_vector(
    base_url: str, promql: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS
) -> list[tuple[dict[str, str], float]]:
    """Every sample of an instant vector query as (labels, value); NaN samples are left out."""
    data = _query(base_url, promql, timeout)
    if data.get("resultType") != "vector":
        raise PrometheusError(f"the query returned a {data.get('resultType')}; expected a vector")
    out: list[tuple[dict[str, str], float]] = []
    for sample in data.get("result") or []:
        try:
            value = float(sample["value"][1])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise PrometheusError(f"a sample without a value: {sample!r}") from exc
        if not math.isnan(value):
            out.append(({str(k): str(v) for k, v in (sample.get("metric") or {}).items()}, value))
    return out
