"""Measurements: watch-based arrival times, audit-log request counts, process RSS and CPU."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from kubernetes import watch

from modelserve import builders

MUTATING = {"create", "update", "patch", "delete", "deletecollection"}
CHILD_RESOURCES = {k.plural for k in builders.CHILD_KINDS}


class Arrivals:
    """Records, per object name, when a watch first delivered it and when a predicate first held."""

    def __init__(
        self, list_fn: Callable[..., Any], namespace: str, done: Callable[[dict[str, Any]], bool]
    ) -> None:
        self.first_seen: dict[str, float] = {}
        self.done_at: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(list_fn, namespace, done), daemon=True)
        self._thread.start()

    def _run(
        self, list_fn: Callable[..., Any], namespace: str, done: Callable[[dict[str, Any]], bool]
    ) -> None:
        resource_version = None
        while not self._stop.is_set():
            stream = watch.Watch()
            # Plain JSON, not the client's typed models: building those costs the harness more CPU
            # than the operator spends, on the machine the operator and floor are measured on.
            kwargs: dict[str, Any] = {
                "namespace": namespace,
                "timeout_seconds": 30,
                "_request_timeout": 60,
                "deserialize": False,
            }
            if resource_version:
                kwargs["resource_version"] = resource_version
            try:
                for event in stream.stream(list_fn, **kwargs):
                    obj = event["object"]
                    meta = obj.get("metadata") or {}
                    name = meta.get("name")
                    resource_version = meta.get("resourceVersion")
                    now = time.monotonic()
                    self.first_seen.setdefault(name, now)
                    if name not in self.done_at and done(obj):
                        self.done_at[name] = now
                    if self._stop.is_set():
                        break
            except Exception:  # a dropped stream is resumed; the benchmark tolerates reconnects
                resource_version = None

    def stop(self) -> None:
        self._stop.set()

    def wait_done(self, count: int, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.done_at) >= count:
                return max(self.done_at.values())
            time.sleep(0.2)
        return None


def percentile(values: Iterable[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def audit_position(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def audit_requests(
    path: Path, start: int, agents: tuple[str, ...], end: int | None = None
) -> Counter[tuple[str, str]]:
    """(verb, resource[/subresource]) counts of requests whose user agent starts with one of `agents`."""
    counts: Counter[tuple[str, str]] = Counter()
    with path.open("rb") as handle:
        handle.seek(start)
        data = handle.read() if end is None else handle.read(end - start)
    for line in data.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("stage") != "ResponseComplete" or not str(entry.get("userAgent", "")).startswith(agents):
            continue
        ref = entry.get("objectRef") or {}
        resource = ref.get("resource", entry.get("requestURI", "?").split("?")[0])
        if ref.get("subresource"):
            resource = f"{resource}/{ref['subresource']}"
        counts[(entry.get("verb", "?"), resource)] += 1
    return counts


def mutating(counts: Counter[tuple[str, str]], resources: set[str] | None = None) -> int:
    return sum(
        n
        for (verb, res), n in counts.items()
        if verb in MUTATING and (resources is None or res.split("/")[0] in resources)
    )


class ProcessStats:
    """Peak RSS and CPU seconds of a process (Linux /proc), including all its threads."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def peak_rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks


def now_iso() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")
