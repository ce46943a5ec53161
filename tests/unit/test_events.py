"""The event recorder: reconciles queue Events and never wait; one thread posts them in order."""

from __future__ import annotations

import threading

from modelserve.events import EventRecorder, PendingEvent

MD = {"metadata": {"name": "echo", "namespace": "ml", "uid": "u-1", "resourceVersion": "7"}}


def test_one_model_deployments_events_are_posted_in_order_by_one_thread() -> None:
    posted: list[tuple[str, str]] = []
    threads: set[str] = set()

    def post(event: PendingEvent) -> None:
        threads.add(threading.current_thread().name)
        posted.append((event.reason, event.message))

    recorder = EventRecorder(post)
    recorder.start()
    recorder.record(MD, "Normal", "Ready", "all replicas ready")
    recorder.record(MD, "Warning", "Unschedulable", "no node has the GPUs")
    recorder.stop()
    assert posted == [("Ready", "all replicas ready"), ("Unschedulable", "no node has the GPUs")]
    assert len(threads) == 1 and threads.pop().startswith("modelserve-events-")
    assert recorder.pending() == 0


def test_event_refers_to_the_model_deployment_as_it_was_recorded() -> None:
    posted: list[PendingEvent] = []
    recorder = EventRecorder(posted.append)
    recorder.start()
    recorder.record(MD, "Normal", "Ready", "ok")
    recorder.stop()
    (event,) = posted
    assert event.involved == {"name": "echo", "namespace": "ml", "uid": "u-1", "resourceVersion": "7"}
    assert event.event_type == "Normal"
    assert event.at.tzinfo is not None


def test_record_never_blocks_a_full_queue_drops_and_counts() -> None:
    release = threading.Event()
    posted: list[str] = []
    dropped: list[int] = []

    def slow_post(event: PendingEvent) -> None:
        release.wait(10)
        posted.append(event.message)

    recorder = EventRecorder(slow_post, posters=1, capacity=2, on_dropped=lambda: dropped.append(1))
    recorder.start()
    for i in range(6):  # one in the poster's hands, two queued, the rest dropped
        recorder.record(MD, "Normal", "Ready", f"m{i}")
    assert 3 <= len(dropped) <= 4
    assert recorder.pending() == 6 - len(dropped)
    release.set()
    recorder.stop()
    assert posted[0] == "m0" and len(posted) + len(dropped) == 6
    assert recorder.pending() == 0


def test_a_failing_post_does_not_stop_the_ones_after_it() -> None:
    posted: list[str] = []

    def post(event: PendingEvent) -> None:
        if event.message == "bad":
            raise RuntimeError("API server said no")
        posted.append(event.message)

    recorder = EventRecorder(post)
    recorder.start()
    for message in ("first", "bad", "last"):
        recorder.record(MD, "Normal", "Ready", message)
    recorder.stop()
    assert posted == ["first", "last"]


def test_events_of_many_model_deployments_spread_over_the_posters() -> None:
    threads: dict[str, set[str]] = {}
    lock = threading.Lock()

    def post(event: PendingEvent) -> None:
        with lock:
            threads.setdefault(event.involved["name"], set()).add(threading.current_thread().name)

    recorder = EventRecorder(post, posters=3)
    recorder.start()
    for i in range(60):
        for reason in ("Ready", "Unschedulable"):
            recorder.record({"metadata": {"name": f"m{i}", "namespace": "ml"}}, "Normal", reason, "")
    recorder.stop()
    assert all(len(names) == 1 for names in threads.values())  # per object: one thread, in order
    assert len(set().union(*threads.values())) == 3
