"""Benchmark: progressive rollouts (issue 13), from an analysis verdict to the traffic share changing.

    MODELSERVE_CLUSTER_NAME=<name> .venv/bin/python bench/rollout_bench.py [--rollouts 5]

Runs against the local cluster (hack/cluster, MODELSERVE_CLUSTER_NAME) with the operator as its own
process (tests/reliability_kit.OperatorProcess), a real Prometheus (tests/prometheus_kit.py) and a
stand-in for TF Serving's metrics endpoint labelled like the canary's pods (kwok pods serve nothing;
tests/tfserving_exporter.py publishes TF Serving's metric names at a healthy rate, so every step
passes). One ModelDeployment of 4 GPU replicas (maxExtraReplicas 0, the fake A100 node has exactly
4 GPUs) is rolled `--rollouts` times through 25/50/75/100 % with short step windows.

Two watches run for the whole bench, their events stamped on arrival: the ModelDeployment and the
Service's EndpointSlices. A step advance is the status write that moves status.rollout.step (the
operator decided: the previous step's analysis passed); the final promotion is the write that sets
phase Promoting. For each, the time until the EndpointSlices show the new split of ready endpoints
(canary pods are `<name>-canary-*`; promotion is done when 4 ready endpoints are stable pods none of
which served before the rollout) and until the first endpoint change at all. status.rollout's
analysis.time is a decision stamp with whole seconds only, so it is reported as a cross-check of
the watch's delay, not as the clock. API requests: the operator's own modelserve_api_requests_total,
read at every step change, per step by verb. Results: bench/results/rollout.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from measure import percentile

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "operator")]

from kit import CRD_DIR, Cluster, model_deployment, start_local_cluster, wait_until  # noqa: E402
from modelserve.rollout.machine import canary_target  # noqa: E402
from prometheus_kit import start_exporter, start_prometheus  # noqa: E402
from reliability_kit import OperatorProcess  # noqa: E402

NAME = "bench"
REPLICAS = 4
STEPS = [25, 50, 75, 100]
A100 = "NVIDIA-A100-SXM4-80GB"
Split = tuple[frozenset[str], frozenset[str]]  # (ready stable pods, ready canary pods)


def spec(version: int, step_duration: str) -> dict[str, Any]:
    return {
        "model": {"storageUri": "gs://models/resnet", "versionPolicy": {"specific": {"versions": [version]}}},
        "replicas": REPLICAS,
        "gpu": {"count": 1, "product": A100},
        "rollout": {
            "steps": STEPS,
            "stepDuration": step_duration,
            "analysis": {"minRequestCount": 20, "maxErrorRatio": 0.05, "maxP99LatencyMs": 500},
        },
    }


def api_requests(op: OperatorProcess) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for line in op.metrics().splitlines():
        if line.startswith("modelserve_api_requests_total{"):
            labels = dict(
                part.split("=", 1) for part in line[line.index("{") + 1 : line.index("}")].split(",")
            )
            key = (labels["verb"].strip('"'), labels["resource"].strip('"'))
            counts[key] += int(float(line.split()[-1]))
    return counts


class Recorder:
    """Watches the ModelDeployment and the Service's EndpointSlices; every event stamped on arrival."""

    def __init__(self, cluster: Cluster, namespace: str, op: OperatorProcess) -> None:
        from kubernetes import config

        self.api = config.new_client_from_config(config_file=cluster.kubeconfig)  # type: ignore[no-untyped-call]
        self.namespace, self.op = namespace, op
        self.lock = threading.Lock()
        self.rollouts: list[tuple[float, dict[str, Any], Counter[tuple[str, str]]]] = []
        self.splits: list[tuple[float, Split]] = []
        self._slices: dict[str, list[dict[str, Any]]] = {}
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._watch, args=(self._md_list, self._on_md), daemon=True),
            threading.Thread(target=self._watch, args=(self._slice_list, self._on_slice), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _md_list(self, **kw: Any) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self.api).list_namespaced_custom_object(
            "modelserve.dev", "v1alpha1", self.namespace, "modeldeployments", **kw
        )

    def _slice_list(self, **kw: Any) -> Any:
        from kubernetes import client

        return client.DiscoveryV1Api(self.api).list_namespaced_endpoint_slice(
            self.namespace, label_selector=f"kubernetes.io/service-name={NAME}", **kw
        )

    def _watch(self, list_fn: Any, on: Any) -> None:
        from kubernetes import watch

        rv = None
        while not self._stop.is_set():
            kw: dict[str, Any] = {"timeout_seconds": 30, "_request_timeout": 60, "deserialize": False}
            if rv:
                kw["resource_version"] = rv
            try:
                for event in watch.Watch().stream(list_fn, **kw):  # type: ignore[no-untyped-call]
                    now = time.time()
                    obj = event["object"]
                    rv = (obj.get("metadata") or {}).get("resourceVersion")
                    on(now, event["type"], obj)
                    if self._stop.is_set():
                        return
            except Exception:  # a dropped stream resumes from a fresh list
                rv = None

    def _on_md(self, now: float, kind: str, obj: dict[str, Any]) -> None:
        if obj.get("metadata", {}).get("name") != NAME:
            return
        rollout = dict((obj.get("status") or {}).get("rollout") or {})
        key = {k: rollout.get(k) for k in ("phase", "step", "stableRevision")}
        with self.lock:
            last = self.rollouts[-1][1] if self.rollouts else None
        if last is not None and {k: last.get(k) for k in key} == key:
            return
        counts = api_requests(self.op)  # read at once: the step's requests end here
        with self.lock:
            self.rollouts.append((now, rollout, counts))

    def _on_slice(self, now: float, kind: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        with self.lock:
            if kind == "DELETED":
                self._slices.pop(name, None)
            else:
                self._slices[name] = list(obj.get("endpoints") or [])
            refs = {
                (ep.get("targetRef") or {}).get("name", "?")
                for eps in self._slices.values()
                for ep in eps
                if (ep.get("conditions") or {}).get("ready")
            }
            canary = frozenset(r for r in refs if r.startswith(f"{NAME}-canary-"))
            split = (frozenset(refs - canary), canary)
            if not self.splits or self.splits[-1][1] != split:
                self.splits.append((now, split))

    def split_now(self) -> Split:
        with self.lock:
            return self.splits[-1][1] if self.splits else (frozenset(), frozenset())

    def latest(self) -> dict[str, Any]:
        with self.lock:
            return self.rollouts[-1][1] if self.rollouts else {}

    def stop(self) -> None:
        self._stop.set()
        self.api.close()


def _stamp(value: object) -> float | None:
    if not value:
        return None
    return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def analyse(rec: Recorder, since: float, old_pods: frozenset[str]) -> dict[str, Any]:
    """Samples of one rollout, from the status changes and endpoint splits recorded after `since`."""
    with rec.lock:
        changes = [c for c in rec.rollouts if c[0] >= since]
        splits = list(rec.splits)
    out: dict[str, Any] = {"steps": [], "promotion": None}

    def first_after(t: float, want: Any) -> float | None:
        before = next((s for tt, s in reversed(splits) if tt <= t), None)
        for tt, s in splits:
            if tt > t and want(s, before):
                return tt
        return None

    for (t, st, counts), (t_next, _, counts_next) in zip(changes, [*changes[1:], changes[-1]], strict=True):
        phase, step = st.get("phase"), st.get("step")
        entry: dict[str, Any] = {
            "phase": phase,
            "step": step,
            "requests": dict(Counter({f"{v} {r}": n for (v, r), n in (counts_next - counts).items()})),
            "seconds_in_state": round(t_next - t, 2),
        }
        stamp = _stamp((st.get("analysis") or {}).get("time"))
        if stamp is not None:
            entry["watch_after_decision_stamp_ms"] = round((t - stamp) * 1000)
        if phase == "Progressing" and step:
            canary_n = canary_target(REPLICAS, STEPS[step - 1])
            done = first_after(t, lambda s, _b, c=canary_n: len(s[1]) == c and len(s[0]) == REPLICAS - c)
            moved = first_after(t, lambda s, b: s != b)
            entry.update(
                weight=STEPS[step - 1],
                new_split_ms=round((done - t) * 1000) if done else None,
                first_endpoint_change_ms=round((moved - t) * 1000) if moved else None,
            )
            out["steps"].append(entry)
        elif phase == "Promoting":
            done = first_after(t, lambda s, _b: len(s[0]) == REPLICAS and not s[1] and not (s[0] & old_pods))
            moved = first_after(t, lambda s, b: s != b)
            entry.update(
                all_new_ms=round((done - t) * 1000) if done else None,
                first_endpoint_change_ms=round((moved - t) * 1000) if moved else None,
            )
            out["promotion"] = entry
    return out


def one_rollout(
    cluster: Cluster, namespace: str, rec: Recorder, version: int, step_duration: str
) -> dict[str, Any]:
    wait_until(
        lambda: len(rec.split_now()[0]) == REPLICAS and not rec.split_now()[1],
        timeout=120,
        what="4 ready stable endpoints",
    )
    old_pods = rec.split_now()[0]
    since = time.time()
    apply(cluster, namespace, spec(version, step_duration))
    wait_until(
        lambda: (
            (c := rec.latest()).get("phase") == "Stable"
            and c.get("stableSpec", {}).get("model", {}).get("versionPolicy")
            == {"specific": {"versions": [version]}}
            and len((s := rec.split_now())[0]) == REPLICAS
            and not s[1]
            and not s[0] & old_pods
        ),
        timeout=240,
        interval=0.2,
        what=f"rollout to version {version} promoted, endpoints all new",
        describe=lambda: json.dumps(rec.latest(), indent=1),
    )
    result = analyse(rec, since, old_pods)
    result["spec_change_to_stable_s"] = round(rec.rollouts[-1][0] - since, 2)
    return result


def apply(cluster: Cluster, namespace: str, body: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(model_deployment(NAME, body)))


def summary(samples: list[float | None]) -> dict[str, Any]:
    got = [float(s) for s in samples if s is not None]
    return {
        "n": len(got),
        "missing": len(samples) - len(got),
        "p50": percentile(got, 50) if got else None,
        "p95": percentile(got, 95) if got else None,
        "max": max(got) if got else None,
    }


def report(runs: list[dict[str, Any]]) -> dict[str, Any]:
    advances = [s for r in runs for s in r["steps"] if s["step"] and s["step"] > 1]
    firsts = [s for r in runs for s in r["steps"] if s["step"] == 1]
    promotions = [r["promotion"] for r in runs if r["promotion"]]
    steps = [s for r in runs for s in r["steps"]]
    by_verb: Counter[str] = Counter()
    by_request: Counter[str] = Counter()
    for s in steps:
        for key, n in s["requests"].items():
            by_verb[key.split()[0]] += n
            by_request[key] += n
    return {
        "step_advance_to_new_split_ms": summary([s["new_split_ms"] for s in advances]),
        "step_advance_to_first_endpoint_change_ms": summary(
            [s["first_endpoint_change_ms"] for s in advances]
        ),
        "watch_after_decision_stamp_ms": summary([s.get("watch_after_decision_stamp_ms") for s in advances]),
        "rollout_start_to_step1_split_ms": summary([s["new_split_ms"] for s in firsts]),
        "promotion_to_all_new_endpoints_ms": summary([p["all_new_ms"] for p in promotions]),
        "promotion_to_first_endpoint_change_ms": summary([p["first_endpoint_change_ms"] for p in promotions]),
        "api_requests_per_step_by_verb": {v: round(n / len(steps), 1) for v, n in sorted(by_verb.items())},
        "api_requests_per_step_by_request": {
            k: round(n / len(steps), 1) for k, n in sorted(by_request.items(), key=lambda kv: -kv[1])
        },
        "api_requests_promotion_by_verb": {
            v: round(
                sum(n for p in promotions for k, n in p["requests"].items() if k.split()[0] == v)
                / len(promotions),
                1,
            )
            for v in sorted({k.split()[0] for p in promotions for k in p["requests"]})
        },
        "spec_change_to_stable_s": summary([r["spec_change_to_stable_s"] for r in runs]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rollouts", type=int, default=5)
    parser.add_argument("--step-duration", default="4s", help="each step's analysis window")
    args = parser.parse_args()
    load_before = os.getloadavg()
    started = time.monotonic()
    cluster = start_local_cluster()
    for path in sorted(CRD_DIR.glob("*.yaml")):
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    namespace = f"bench-rollout-{int(time.time())}"
    cluster.kubectl("create", "namespace", namespace)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        prom = start_prometheus(Path(tmp) / "prometheus")
        exporter = start_exporter(model=NAME, rps=30, latency_ms=20)
        # One stand-in for every canary pod: the analysis selects pod=~"<name>-canary-.+".
        prom.add_target(exporter.address, namespace=namespace, pod=f"{NAME}-canary-standin")
        op = OperatorProcess(
            cluster.kubeconfig,
            namespace,
            Path(tmp) / "operator.log",
            env={"MODELSERVE_PROMETHEUS_URL": prom.url, "MODELSERVE_RETRY_DELAY_SECONDS": "0.5"},
        )
        rec: Recorder | None = None
        try:
            op.start().wait_serving()
            wait_until(lambda: op.role() == "leader", timeout=60, what="the operator to lead")
            rec = Recorder(cluster, namespace, op)
            apply(cluster, namespace, spec(1, args.step_duration))
            for r in range(args.rollouts):
                runs.append(one_rollout(cluster, namespace, rec, r + 2, args.step_duration))
                steps = [(s["step"], s["new_split_ms"]) for s in runs[-1]["steps"]]
                promo = runs[-1]["promotion"] or {}
                print(f"rollout {r + 1}: steps (step, ms) {steps}, promotion {promo.get('all_new_ms')} ms")
        except BaseException:
            print(op.log_tail(80), file=sys.stderr)
            raise
        finally:
            if rec is not None:
                rec.stop()
            op.stop()
            exporter.stop()
            prom.stop()
            cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    result = {
        "command": " ".join(["bench/rollout_bench.py", *sys.argv[1:]]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average_1_5_15_before": [round(x, 2) for x in load_before],
        "load_average_1_5_15_after": [round(x, 2) for x in os.getloadavg()],
        "seconds": round(time.monotonic() - started, 1),
        "setup": {
            "replicas": REPLICAS,
            "steps": STEPS,
            "step_duration": args.step_duration,
            "max_extra_replicas": 0,
            "rollouts": args.rollouts,
        },
        **report(runs),
        "runs": runs,
    }
    out = REPO / "bench" / "results" / "rollout.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
