"""docs/benchmarks.md from bench/results/*.json: tables against the targets of issue 6."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"

TARGETS = """\
| target | limit |
|---|---|
| 1,000 ModelDeployments converge | within 1.5x the floor's time |
| create-to-children latency | p99 within 1 s on an idle cluster |
| idle resync | zero mutating requests |
| restart with 2,000 existing | zero child writes, every status current within 60 s |
| operator RSS with 2,000 ModelDeployments | at most 200 MiB |
"""


def _row(run: dict[str, Any]) -> str:
    floor, op = run["floor"], run["operator"]
    pairs = run.get("pairs") or [{"floor_s": floor["seconds_to_ready"], "operator_s": op["seconds_to_ready"]}]
    ratios = [p["operator_s"] / p["floor_s"] for p in pairs]
    ratio = f"{statistics.median(ratios):.2f}x"
    if len(ratios) > 1:
        ratio = f"**{ratio}** (median of {', '.join(f'{r:.2f}' for r in ratios)})"
    lat = op["create_to_children"]
    idle_lat = op.get("idle_create_to_children") or {
        "p50": float("nan"),
        "p95": float("nan"),
        "p99": float("nan"),
    }
    restart = op["restart"]
    floor_times = " / ".join(f"{p['floor_s']:.1f}" for p in pairs)
    operator_times = " / ".join(f"{p['operator_s']:.1f}" for p in pairs)
    return (
        f"| {run['n']} | {floor_times} | {operator_times} | {ratio} "
        f"| {lat['p50']:.2f} / {lat['p95']:.2f} / {lat['p99']:.2f} "
        f"| {idle_lat['p50']:.3f} / {idle_lat['p95']:.3f} / {idle_lat['p99']:.3f} "
        f"| {floor['requests_total']} / {op['requests_total']} "
        f"| {op['peak_rss_mib']:.0f} | {op['cpu_seconds']:.0f} "
        f"| {op['idle']['mutating_requests']} in {op['idle']['seconds']:.0f} s "
        f"| {restart['seconds_until_all_reconciled']:.1f} s, {restart['child_writes']} child writes, "
        f"{restart['statuses_current']}/{restart.get('model_deployments', run['n'])} current |"
    )


def _section(results: dict[str, Any], command: str) -> str:
    machine = results["machine"]
    note = f", {results['note']}" if results.get("note") else ""
    lines = [
        f"## `{results.get('command', command)}` ({results['date']}{note})",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, Python "
        f"{machine['python']}; operator and floor both with {results['workers']} concurrent workers; "
        "control plane, kwok, the operator and the harness share the machine"
        + (
            f"; **{results['other_control_planes']} other control plane(s) were running**."
            if results.get("other_control_planes")
            else "; nothing else ran on it."
        ),
        "",
        "| N | floor s | operator s | ratio | create-to-children during the burst p50 / p95 / p99 s "
        "| create-to-children on an idle cluster p50 / p95 / p99 s | API requests floor / operator "
        "| operator peak RSS MiB | operator CPU s | idle mutating requests | restart |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *(_row(run) for run in results["runs"]),
        "",
        "Operator requests by verb and resource (largest N):",
        "",
        "```",
        *(f"{k}: {v}" for k, v in results["runs"][-1]["operator"]["requests"].items()),
        "```",
        "",
        *_profiles(results),
    ]
    return "\n".join(lines)


def _profiles(results: dict[str, Any]) -> list[str]:
    """The py-spy summaries of `--profile` runs: where the operator's busy threads spent their time."""
    lines: list[str] = []
    for run in results["runs"]:
        op = run["operator"]
        for phase, profile in (("burst", op.get("profile")), ("restart", op["restart"].get("profile"))):
            if not profile:
                continue
            threads = ", ".join(f"{name} {share}%" for name, share in profile["threads"])
            lines += [
                f"py-spy, N={run['n']}, {phase}: {profile['gil_seconds']} s holding the GIL; "
                f"by thread: {threads}. Functions by share of samples (self: on top of the stack; "
                "inclusive: the operator's own functions, anywhere in the stack):",
                "",
                "| self | % | inclusive | % |",
                "|---|---|---|---|",
                *(
                    f"| `{own[0]}` | {own[1]} | `{incl[0]}` | {incl[1]} |"
                    for own, incl in zip(profile["self"], profile["inclusive"], strict=False)
                ),
                "",
            ]
    return lines


def write_report(latest: dict[str, Any] | None = None, command: str | None = None) -> None:
    del latest, command  # every mode's latest results are re-read from disk
    sections = []
    for mode, command in (
        ("full", "make bench-full"),
        ("quick", "make bench"),
        ("quick-2000", "bench/run.py --mode quick --sizes 2000"),  # kept by hand: the latest memory change
        ("full-profile", "bench/run.py --mode full --profile"),
        ("quick-profile", "make bench-profile"),
    ):
        path = REPO / "bench" / "results" / f"{mode}.json"
        if path.exists():
            sections.append(_section(json.loads(path.read_text()), command))
    intro = f"""# Benchmarks

<!-- Generated by bench/report.py from bench/results/*.json; the sections from "Rollouts" on are
bench/analysis.md: edit them there, or the next `make bench` drops the edit. -->

Produced by `bench/run.py` (`make bench`: N=100 and a 60 s idle window; `make bench-full`: N = 100,
500, 1,000 and 2,000, three alternating floor/operator pairs per N with the median ratio, and a
5-minute idle window; `make bench-profile`: `make bench` with py-spy profiles of the operator).
Every phase runs on a fresh local control plane
(hack/cluster, genuine kube-apiserver, etcd, controller-manager and scheduler with kwok nodes) with
an audit log of every request and no client QPS limits in the control-plane components, so the
operator, not the controllers' throttles, is what is measured.

- **floor**: the very children the operator would create (ConfigMap, Service, Deployment, rendered
  by the same pure builders) applied directly with server-side apply, as many at a time as the
  operator has workers; time until every Deployment has a ready replica. The harness watches the
  same three kinds in both phases (create-to-children of the floor: from the start of an object's
  applies to the watch delivering its last child).
- **operator**: N ModelDeployments created, as many at a time; time until every one is Ready at its
  current generation. create-to-children: from the create response to the watch delivering the
  last of its three children, during the burst (includes queueing behind the other N) and on the
  idle cluster afterwards (ModelDeployments created one at a time: the target's measure).
- **API requests**: counted from the API server's audit log by user agent (the operator's client
  and kopf's watches), by verb and resource.
- **idle**: nothing changes for the window, with resyncs every 20 s (quick) or 60 s (full).
- **restart**: the operator stopped and started with N existing; time until it reconciled all of
  them (from its own metrics), child writes and status writes in that window (audit log).
- **RSS, CPU**: the operator process's peak resident size (VmHWM) and CPU seconds, from /proc.

Targets (issue 6):

{TARGETS}
"""
    # Everything measured by other benches (rollouts, model delivery, failover, the activator) and the
    # verdict against the targets, written by a person: kept across regenerations.
    analysis = REPO / "bench" / "analysis.md"
    tail = "\n" + analysis.read_text() if analysis.exists() else ""
    DOC.write_text(intro + "\n" + "\n".join(sections) + tail)


if __name__ == "__main__":
    write_report()
