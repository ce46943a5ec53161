"""The canary's checks as PromQL over TF Serving's own metrics, and the verdict of one step (pure).

TF Serving publishes (tensorflow_serving/servables/tensorflow/util.cc, exported by
util/prometheus_exporter.cc with '/' turned into ':'):
- `:tensorflow:serving:request_count{model_name, status}`: requests by gRPC status code name;
  every status other than OK counts as an error here.
- `:tensorflow:serving:request_latency_bucket{model_name, API, entrypoint, status, le}`: request
  latency histogram in microseconds.
The canary's series are told apart by the `pod` label that a ServiceMonitor's scrape gives every
sample (pods of the `<name>-canary` Deployment are named `<name>-canary-<hash>-<suffix>`; a stable
pod's name cannot contain `-canary-`, the pod-template hash alphabet has no 'a' or 'e').

Verdicts: Fail as soon as the window holds enough requests and a check is out of bounds (so a bad
canary rolls back within one window); Pass only when the whole window has passed with enough
requests and every check in bounds; otherwise Inconclusive, or Error when Prometheus could not
answer. Silence is never a Pass.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

from modelserve import api

REQUEST_COUNT: Final = ":tensorflow:serving:request_count"
REQUEST_LATENCY_BUCKET: Final = ":tensorflow:serving:request_latency_bucket"
PASS, FAIL, NO_DATA, ERROR, INCONCLUSIVE = "Pass", "Fail", "NoData", "Error", "Inconclusive"
# The shortest window queried: rate() needs two samples, and a step's first seconds have few.
MIN_WINDOW_SECONDS: Final = 5
_DURATION_PART: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text: str) -> float:
    """'1m30s' -> 90.0 (the API's DURATION pattern)."""
    return sum(float(n) * _UNIT[unit] for n, unit in _DURATION_PART.findall(text))


def canary_pods(md: api.ModelDeployment) -> str:
    return f"{md.name}-canary-.+"


def canary_selector(md: api.ModelDeployment) -> str:
    return f'namespace="{md.namespace}",pod=~"{canary_pods(md)}",model_name="{md.model_name}"'


@dataclass(frozen=True)
class Check:
    """One query and its bound. kind: 'max' (value must be <= bound), 'min' (>=), or 'count' (the
    request count gate: below it the step cannot pass, but does not fail either)."""

    name: str
    query: str
    kind: str
    bound: float

    @property
    def threshold(self) -> str:
        return f"{'<=' if self.kind == 'max' else '>='} {self.bound:g}"


def checks(md: api.ModelDeployment, analysis: api.Analysis, window_seconds: int) -> list[Check]:
    sel, window = canary_selector(md), f"{window_seconds}s"
    total = f"sum(increase({REQUEST_COUNT}{{{sel}}}[{window}]))"
    errors = f'(sum(increase({REQUEST_COUNT}{{{sel},status!="OK"}}[{window}])) or vector(0))'
    out = [
        Check("requestCount", total, "count", float(analysis.min_request_count)),
        Check("errorRatio", f"{errors} / {total}", "max", analysis.max_error_ratio),
    ]
    if analysis.max_p99_latency_ms is not None:
        buckets = f"sum by (le) (rate({REQUEST_LATENCY_BUCKET}{{{sel}}}[{window}]))"
        p99 = f"histogram_quantile(0.99, {buckets}) / 1000"
        out.append(Check("p99LatencyMs", p99, "max", analysis.max_p99_latency_ms))
    for custom in analysis.custom or ():
        query = (
            custom.query.replace("$namespace", md.namespace)
            .replace("$name", md.name)
            .replace("$model", md.model_name)
            .replace("$canaryPods", canary_pods(md))
            .replace("$window", window)
        )
        if custom.max is not None:
            out.append(Check(custom.name, query, "max", custom.max))
        if custom.min is not None:
            out.append(Check(custom.name, query, "min", custom.min))
    return out


@dataclass(frozen=True)
class Outcome:
    """A check's answer: the value (None: no data) or the error Prometheus gave."""

    check: Check
    value: float | None
    error: str | None = None

    @property
    def verdict(self) -> str:
        if self.error is not None:
            return ERROR
        if self.value is None or math.isnan(self.value):
            return NO_DATA
        if self.check.kind == "max":
            return PASS if self.value <= self.check.bound else FAIL
        return PASS if self.value >= self.check.bound else FAIL

    def as_status(self) -> dict[str, str]:
        out = {
            "name": self.check.name,
            "query": self.check.query,
            "threshold": self.check.threshold,
            "verdict": self.verdict,
        }
        if self.value is not None and not math.isnan(self.value):
            out["value"] = f"{self.value:.6g}"
        return out


@dataclass(frozen=True)
class Verdict:
    verdict: str
    message: str
    outcomes: tuple[Outcome, ...]
    window_seconds: int

    def as_status(self, now: str) -> dict[str, object]:
        return {
            "time": now,
            "verdict": self.verdict,
            "window": f"{self.window_seconds}s",
            "message": self.message[:4096],
            "checks": [o.as_status() for o in self.outcomes],
        }


def judge(outcomes: list[Outcome], *, window_seconds: int, step_seconds: float) -> Verdict:
    """The step's verdict from its checks' outcomes (see the module docstring)."""
    done = tuple(outcomes)
    errors = [o for o in outcomes if o.verdict == ERROR]
    if errors:
        first = errors[0]
        return Verdict(
            ERROR, f"Prometheus could not answer {first.check.name}: {first.error}", done, window_seconds
        )
    count = next((o for o in outcomes if o.check.kind == "count"), None)
    requests = count.value if count is not None and count.value is not None else 0.0
    if count is not None and (math.isnan(requests) or requests < count.check.bound):
        shown = 0.0 if math.isnan(requests) else requests
        return Verdict(
            INCONCLUSIVE,
            f"the canary served {shown:.0f} requests in the last {window_seconds}s, fewer than the "
            f"{count.check.bound:.0f} it needs to be judged (a silent canary is never promoted)",
            done,
            window_seconds,
        )
    failed = [o for o in outcomes if o.check.kind != "count" and o.verdict == FAIL]
    if failed:
        text = "; ".join(f"{o.check.name} = {o.value:.4g}, must be {o.check.threshold}" for o in failed)
        return Verdict(FAIL, text, done, window_seconds)
    missing = [o.check.name for o in outcomes if o.verdict == NO_DATA]
    if missing:
        return Verdict(INCONCLUSIVE, f"no data for {', '.join(missing)}", done, window_seconds)
    if window_seconds < step_seconds:
        return Verdict(
            INCONCLUSIVE,
            f"every check passes; the window has run {window_seconds}s of {step_seconds:g}s",
            done,
            window_seconds,
        )
    return Verdict(
        PASS, f"every check passed over {window_seconds}s ({requests:.0f} requests)", done, window_seconds
    )
