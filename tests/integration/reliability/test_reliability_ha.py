"""Two operator processes, one Lease: failover after SIGKILL, and the fence of a paused leader.

- Failover: the leader is SIGKILLed right after a spec change; the standby must take the Lease and
  reconcile that change. The time from the kill to the change's status (written by the new leader)
  is printed per round (bench/failover.py measures it over 10 rounds for docs/benchmarks.md).
- Fencing: the leader is SIGSTOPped past its lease while changes keep coming, the standby takes
  over, then the old leader is SIGCONTed with work queued. The API server's audit log must show no
  write from it after the standby's first write, save one frozen between its fence check and its
  send (which it must report as late), and its refused-writes counter shows it tried.
- Across rounds: zero duplicate or orphaned children (convergence_problems).
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from kit import get_or_none, wait_until
from modelserve.events import DEFAULT_POSTERS
from modelserve.settings import Settings
from reliability_kit import (
    FaultCluster,
    OperatorProcess,
    apply_all,
    bump,
    md_manifest,
    wait_converged,
)

pytestmark = pytest.mark.integration

LEASE_DURATION = Settings().lease_duration_seconds  # the defaults: what a user gets
MUTATING = {"create", "update", "patch", "delete"}


@pytest.fixture
def pair(
    fault_cluster: FaultCluster, fault_namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[OperatorProcess, OperatorProcess]]:
    ops = tuple(
        OperatorProcess(
            kubeconfig=fault_cluster.cluster.kubeconfig,
            namespace=fault_namespace,
            log_path=tmp_path / f"operator-{name}.log",
            env={"MODELSERVE_RETRY_DELAY_SECONDS": "0.5", "MODELSERVE_IDENTITY": name},
        )
        for name in ("a", "b")
    )
    yield ops  # type: ignore[misc]
    for op in ops:
        if op.running():
            op.signal(signal.SIGCONT)
        op.stop()
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for op in ops:
            print(f"\n===== operator {op.env['MODELSERVE_IDENTITY']} log =====\n{op.log_tail(80)}")


def start_pair(a: OperatorProcess, b: OperatorProcess) -> None:
    a.start().wait_serving()
    wait_until(lambda: a.role() == "leader", timeout=30, what="a to lead", describe=a.log_tail)
    b.start().wait_serving()
    assert b.role() == "standby"
    assert b.metric("modelserve_leader") == 0.0 and a.metric("modelserve_leader") == 1.0


def identity(op: OperatorProcess) -> str:
    return op.env["MODELSERVE_IDENTITY"]


def generation_reconciled(fc: FaultCluster, namespace: str, name: str, generation: int) -> bool:
    md = get_or_none(fc.cluster, namespace, "modeldeployment", name)
    return bool(md and (md.get("status") or {}).get("observedGeneration", 0) >= generation)


def generation_of(fc: FaultCluster, namespace: str, name: str) -> int:
    md = get_or_none(fc.cluster, namespace, "modeldeployment", name)
    assert md is not None, f"{name} is gone"
    return int(md["metadata"]["generation"])


def failover_rounds(
    fc: FaultCluster, namespace: str, a: OperatorProcess, b: OperatorProcess, *, objects: int, rounds: int
) -> list[float]:
    names = [f"ha-{i:03d}" for i in range(objects)]
    apply_all(fc.cluster, namespace, [md_manifest(n, {"replicas": 1}) for n in names])
    start_pair(a, b)
    wait_converged(fc.cluster, namespace, timeout=180, what=f"{objects} ModelDeployments before the rounds")
    leader, standby = a, b
    times = []
    for round_ in range(rounds):
        # Under load: every object changes, the leader dies before it can finish, and the change made
        # right after the kill can only be reconciled by the standby.
        bump(fc.cluster, namespace, names, f"r{round_}-before")
        leader.kill()
        killed_at = time.monotonic()
        generation = bump(fc.cluster, namespace, names, f"r{round_}")
        wait_until(
            lambda g=generation: generation_reconciled(fc, namespace, names[0], g),
            timeout=LEASE_DURATION + 30,
            what=f"round {round_}: the standby reconciling generation {generation}",
            describe=standby.log_tail,
        )
        times.append(time.monotonic() - killed_at)
        assert standby.role() == "leader"
        wait_converged(fc.cluster, namespace, timeout=120, what=f"round {round_}: convergence")
        leader.start().wait_serving()  # the killed one comes back (same identity) as the standby
        assert leader.role() == "standby"
        leader, standby = standby, leader
    print(f"\nfailover (SIGKILL to the new leader's status write), s: {[round(t, 1) for t in times]}")
    for op in (a, b):
        assert not op.tracebacks(), op.tracebacks()[0]
    return times


def test_the_standby_takes_over_a_killed_leader(
    fault_cluster: FaultCluster, fault_namespace: str, pair: tuple[OperatorProcess, OperatorProcess]
) -> None:
    failover_rounds(fault_cluster, fault_namespace, *pair, objects=10, rounds=2)


@pytest.mark.slow
def test_ten_failovers_under_load_leave_no_duplicate_or_orphaned_child(
    fault_cluster: FaultCluster, fault_namespace: str, pair: tuple[OperatorProcess, OperatorProcess]
) -> None:
    failover_rounds(fault_cluster, fault_namespace, *pair, objects=40, rounds=10)


def _audit_writes(path: Path, namespace: str) -> list[tuple[datetime, str, str, str]]:
    """(received, user agent, verb, resource) of every write in `namespace`, in log order."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        ref = entry.get("objectRef") or {}
        if entry.get("verb") not in MUTATING or ref.get("namespace") != namespace:
            continue
        received = datetime.fromisoformat(entry["requestReceivedTimestamp"].replace("Z", "+00:00"))
        resource = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        out.append((received, str(entry.get("userAgent", "")), entry["verb"], resource))
    return out


def test_a_paused_leader_writes_nothing_once_the_standby_took_over(
    fault_cluster: FaultCluster, fault_namespace: str, pair: tuple[OperatorProcess, OperatorProcess]
) -> None:
    fc, ns = fault_cluster, fault_namespace
    a, b = pair
    assert fc.audit_log.exists(), f"the fault cluster keeps no audit log at {fc.audit_log}"
    names = [f"fence-{i:02d}" for i in range(40)]
    apply_all(fc.cluster, ns, [md_manifest(n, {"replicas": 1}) for n in names])
    # One worker: a's burst of 40 reconciles is serial, so when it is frozen right after the change it
    # is surely in the middle of one (with eight workers it could be done with all of them already,
    # and a leader with nothing in flight tries no write: the fence would go unexercised).
    a.env["MODELSERVE_WORKERS"] = "1"
    start_pair(a, b)
    wait_converged(fc.cluster, ns, timeout=120, what="convergence under a")

    # Work for a to be in the middle of, then freeze it: its threads, its event loop, its lease renewals.
    bump(fc.cluster, ns, names, "before-pause")
    a.signal(signal.SIGSTOP)
    assert not generation_reconciled(fc, ns, names[-1], generation_of(fc, ns, names[-1])), (
        "a was done with the whole burst before it was frozen: nothing in flight to fence"
    )
    paused_at = time.monotonic()
    # Changes while a is frozen: their watch events wait in a's sockets for when it wakes.
    wait_until(lambda: b.role() == "leader", timeout=LEASE_DURATION + 15, what="b to take the Lease")
    took_over = time.monotonic() - paused_at
    generation = bump(fc.cluster, ns, names, "while-paused")
    wait_until(lambda: generation_reconciled(fc, ns, names[-1], generation), timeout=60, what="b reconciling")

    a.signal(signal.SIGCONT)
    # a wakes with queued events and in-flight reconciles; its fence must refuse every write.
    wait_until(lambda: a.role() == "standby", timeout=30, what="a to notice it no longer leads")
    wait_until(
        lambda: a.metric("modelserve_leader") == 0.0 and sum_refused(a) > 0,
        timeout=30,
        what="a to try (and be refused) a write",
        describe=a.log_tail,
    )
    generation = bump(fc.cluster, ns, names, "after-resume")
    wait_converged(fc.cluster, ns, timeout=120, what="convergence under b")
    assert a.role() == "standby"

    writes = _audit_writes(fc.audit_log, ns)
    ours = [w for w in writes if w[1].startswith("modelserve-operator/")]
    of_b = [w for w in ours if w[1].endswith("(b)")]
    assert of_b, "b never wrote"
    first_b = min(w[0] for w in of_b)
    late_a = [w for w in ours if w[1].endswith("(a)") and w[0] >= first_b]
    print(
        f"\nb took the Lease {took_over:.1f}s after a was paused; a's writes refused by its fence: "
        f"{sum_refused(a):.0f}; audit: {len(ours) - len(of_b)} writes by a, {len(late_a)} of them "
        f"after b's first (each reported late by a: {sum_metric(a, 'modelserve_writes_late_total'):.0f}), "
        f"{len(of_b)} by b"
    )
    # A write frozen between its fence check and its bytes leaving lands when a wakes: no client-side
    # fence can stop that one (client-go's cannot either). There is at most one per thread that writes
    # (a's one worker and its Event posters), and a must report each as late; any other write after
    # b's first would be the fence failing.
    assert len(late_a) <= 1 + DEFAULT_POSTERS, f"a wrote after b took over: {late_a[:5]}"
    assert len(late_a) <= sum_metric(a, "modelserve_writes_late_total"), (
        f"a wrote after b took over without reporting it as late: {late_a}"
    )
    for op in (a, b):
        assert not op.tracebacks(), op.tracebacks()[0]


def sum_metric(op: OperatorProcess, name: str) -> float:
    return sum(float(line.split()[-1]) for line in op.metrics().splitlines() if line.startswith(name + "{"))


def sum_refused(op: OperatorProcess) -> float:
    return sum_metric(op, "modelserve_writes_refused_total")
