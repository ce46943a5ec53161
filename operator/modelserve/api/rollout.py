"""spec.rollout: metric-gated canary rollouts without a mesh (see docs/rollouts.md)."""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import ConfigDict, Field

from modelserve.api.base import DNS_SUBDOMAIN, DURATION, PRESERVE, _Model, cel, rules

# The annotation a person (kubectl) or Git sets to act on a rollout in progress: `promote` or `abort`,
# optionally followed by `@<anything>` to repeat an action (each distinct value is acted on once).
ROLLOUT_ACTION_ANNOTATION: Final = "modelserve.dev/rollout-action"
PROMQL_MAX_LENGTH: Final = 4096


class CustomCheck(_Model):
    """A PromQL query of your own that must stay within bounds while the canary serves."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel("has(self.max) || has(self.min)", "a custom check needs max, min or both"),
            cel(
                "!has(self.max) || !has(self.min) || self.min <= self.max",
                "min must not be greater than max",
                field_path=".min",
            ),
        )
    )

    name: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    """Name of the check, shown in status and Events."""
    query: Annotated[str, Field(min_length=1, max_length=PROMQL_MAX_LENGTH)]
    """PromQL returning one number. `$namespace`, `$name`, `$model`, `$canaryPods` (a regular expression of
    the canary's pod names) and `$window` (the analysis window, for example 30s) are replaced first."""
    max: float | None = None
    """The check fails when the value is above this."""
    min: float | None = None
    """The check fails when the value is below this."""


class Analysis(_Model):
    """What each step must show before the rollout moves on, read from TF Serving's metrics."""

    max_error_ratio: Annotated[float, Field(ge=0, le=1)] = 0.01
    """Highest share of the canary's requests that may fail (TF Serving's request_count with a status
    other than OK), from 0 to 1."""
    max_p99_latency_ms: Annotated[float | None, Field(ge=1, le=3_600_000)] = None
    """Highest 99th-percentile request latency of the canary, in milliseconds (TF Serving's
    request_latency histogram). Not checked when absent."""
    min_request_count: Annotated[int, Field(ge=1, le=1_000_000_000)] = 50
    """Requests the canary must have served in a step's window before it may pass: a canary nobody
    calls is never promoted (it rolls back at the progress deadline)."""
    custom: Annotated[list[CustomCheck] | None, Field(max_length=8)] = None
    """Further checks: PromQL queries with bounds."""
    prometheus_url: Annotated[
        str | None, Field(max_length=512, pattern=r"^https?://[^/\s]+(/\S*)?$", alias="prometheusURL")
    ] = None
    """Prometheus to query for this ModelDeployment, instead of the operator's --prometheus-url."""


class ParentRef(_Model):
    """A Gateway (or other parent) the HTTPRoute attaches to."""

    name: Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]
    """Name of the Gateway."""
    namespace: Annotated[str | None, Field(max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")] = None
    """Its namespace (default: the ModelDeployment's)."""
    section_name: Annotated[str | None, Field(max_length=253, pattern=DNS_SUBDOMAIN)] = None
    """A listener of the Gateway."""


class GatewayAPI(_Model):
    """Exact traffic percentages through a Gateway API HTTPRoute (needs the Gateway API CRDs)."""

    parent_refs: Annotated[list[ParentRef], Field(min_length=1, max_length=8)]
    """Gateways the HTTPRoute `<name>` attaches to; it sends each step's share to `<name>-canary` and
    the rest to `<name>-stable`."""


class Rollout(_Model):
    """Roll changes that restart the serving pods out as a canary, gated on metrics."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel(
                "self.steps[self.steps.size() - 1] == 100",
                "rollout.steps must end at 100 (the canary takes all traffic before it is promoted)",
                field_path=".steps",
            ),
            cel(
                "self.steps.isSorted() && self.steps.all(s, self.steps.exists_one(t, t == s))",
                "rollout.steps must be strictly increasing, for example [10, 50, 100]",
                field_path=".steps",
            ),
        )
    )

    steps: Annotated[list[Annotated[int, Field(ge=1, le=100)]], Field(min_length=1, max_length=20)] = [
        25,
        50,
        100,
    ]
    """Canary traffic percentages, strictly increasing and ending at 100. The share is that of ready
    endpoints behind the Service (exact with gatewayAPI)."""
    step_duration: Annotated[str, Field(max_length=32, pattern=DURATION)] = "1m"
    """How long each step's analysis window lasts once the step's canary pods are ready."""
    analysis: Annotated[Analysis, Field(json_schema_extra={"default": {}})] = Analysis()
    """The checks every step must pass."""
    max_extra_replicas: Annotated[int, Field(ge=0, le=1000)] = 0
    """Pods (and so GPUs) the rollout may run beyond the replica count. 0: the stable shrinks as the
    canary grows, so no extra GPU is ever needed."""
    progress_deadline_seconds: Annotated[int, Field(ge=10, le=86_400)] = 600
    """A step that has neither passed nor failed after this long rolls back (a canary that never gets
    ready, a silent canary, Prometheus unreachable)."""
    paused: bool = False
    """Hold the rollout at its current step (no analysis, no deadline) until set back to false."""
    gateway_api: Annotated[GatewayAPI | None, Field(alias="gatewayAPI")] = None
    """Weighted routing with a Gateway API HTTPRoute instead of the share of endpoints."""


# --- status ----------------------------------------------------------------------------------------


class CheckResult(_Model):
    """One check of the last analysis."""

    name: Annotated[str, Field(max_length=63)]
    """errorRatio, p99LatencyMs, requestCount or a custom check's name."""
    query: Annotated[str, Field(max_length=PROMQL_MAX_LENGTH + 512)]
    """The PromQL sent to Prometheus."""
    value: Annotated[str | None, Field(max_length=64)] = None
    """What Prometheus answered (absent: no data)."""
    threshold: Annotated[str, Field(max_length=64)]
    """The bound, for example '<= 0.01'."""
    verdict: Annotated[str, Field(max_length=16)]
    """Pass, Fail, NoData or Error."""


class AnalysisResult(_Model):
    """The last analysis of the canary."""

    time: Annotated[str, Field(max_length=64)]
    """When it ran (RFC 3339)."""
    verdict: Annotated[str, Field(max_length=16)]
    """Pass, Fail, Inconclusive (window not over, too few requests) or Error (Prometheus)."""
    window: Annotated[str, Field(max_length=32)]
    """The range the queries covered."""
    message: Annotated[str, Field(max_length=4096)] = ""
    """Why, for a person."""
    checks: Annotated[list[CheckResult] | None, Field(max_length=16)] = None
    """Each check's query, value, threshold and verdict."""


class RolloutStatus(_Model):
    """Where the rollout is. Everything needed to resume it lives here and in the children."""

    phase: Annotated[str, Field(max_length=32)]
    """Stable (nothing to roll), Progressing, Paused, Promoting or RolledBack."""
    stable_revision: Annotated[str | None, Field(max_length=64)] = None
    """Hash of the pod-rolling part of the spec the stable Deployment runs."""
    canary_revision: Annotated[str | None, Field(max_length=64)] = None
    """Hash of the spec the canary runs (or, when RolledBack, the one that was rolled back)."""
    step: int | None = None
    """1-based index into spec.rollout.steps."""
    step_weight: int | None = None
    """The step's planned canary percentage."""
    weight: int | None = None
    """The canary's actual share of ready endpoints, in percent."""
    stable_replicas: int | None = None
    """Ready stable pods."""
    canary_replicas: int | None = None
    """Ready canary pods."""
    total_replicas: int | None = None
    """The replica count being split (with autoscaling: the autoscaler's count when the rollout began)."""
    step_started_at: Annotated[str | None, Field(max_length=64)] = None
    """When the current step began (its progress deadline counts from here)."""
    step_ready_at: Annotated[str | None, Field(max_length=64)] = None
    """When the step's pods were all ready (its analysis window starts here)."""
    last_handled_action: Annotated[str | None, Field(max_length=256)] = None
    """The last value of the rollout-action annotation that was acted on."""
    reason: Annotated[str | None, Field(max_length=64)] = None
    """Why it was rolled back: AnalysisFailed, ProgressDeadlineExceeded or Aborted."""
    message: Annotated[str | None, Field(max_length=4096)] = None
    """What is happening, for a person."""
    analysis: AnalysisResult | None = None
    """The last analysis."""
    stable_spec: Annotated[dict[str, Any] | None, Field(json_schema_extra=PRESERVE)] = None
    """The pod-rolling part of the spec the stable Deployment runs: what a rollback returns to."""
