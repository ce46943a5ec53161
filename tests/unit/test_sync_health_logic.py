"""Per-pod model sync health: the query's answer per model, the condition, the poller's bookkeeping."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from modelserve import api, metrics, status, sync_health
from modelserve.rollout.prometheus import PrometheusError
from modelserve.settings import from_env
from modelserve.status_writer import cache_transition_events
from modelserve.sync_health import Reading, SyncObservation
from modelserve.sync_health_poller import SyncHealthPoller

pytestmark = pytest.mark.unit

T0 = 1_780_000_000.0  # 2026-05-28T20:26:40Z


def sample(stat: str, value: float, ns: str = "ml", svc: str = "llm", **labels: str) -> Any:
    return ({"namespace": ns, "service": svc, sync_health.STAT_LABEL: stat, **labels}, value)


def test_the_query_is_one_cluster_wide_expression_keyed_by_namespace_and_service() -> None:
    q = sync_health.QUERY
    assert q.count("label_replace(") == 4 and "namespace=" not in q
    for metric in (
        "modelserve_sync_degraded",
        "modelserve_sync_last_success_timestamp_seconds",
        "modelserve_sync_version_present",
    ):
        assert metric in q
    assert q.count("by (namespace, service") == 4


def test_parse_groups_the_statistics_per_model() -> None:
    got = sync_health.parse(
        [
            sample("pods", 3),
            sample("degraded", 2),
            sample("lastSuccess", T0),
            sample("version", 2, version="2"),
            sample("version", 1, version="1"),
            sample("pods", 2, svc="ok"),
            sample("degraded", 0, svc="ok"),
            sample("pods", 1, svc=""),  # scraped without a Service: not ours
            sample("pods", 1, svc="never"),
            sample("degraded", 1, svc="never"),
            sample("lastSuccess", 0, svc="never"),  # exported as 0 until a first success
        ]
    )
    assert got == {
        ("ml", "llm"): SyncObservation(pods=3, degraded=2, last_success=T0, versions=(1, 2)),
        ("ml", "ok"): SyncObservation(pods=2, degraded=0),
        ("ml", "never"): SyncObservation(pods=1, degraded=1),
    }


def test_changed_names_models_that_appeared_went_or_changed() -> None:
    a = SyncObservation(pods=1, degraded=0)
    b = SyncObservation(pods=1, degraded=1)
    old = {("ml", "same"): a, ("ml", "flip"): a, ("ml", "gone"): a}
    new = {("ml", "same"): a, ("ml", "flip"): b, ("ml", "new"): a}
    assert sync_health.changed(old, new) == {("ml", "flip"), ("ml", "gone"), ("ml", "new")}


@pytest.mark.parametrize(
    ("obs", "degraded", "message"),
    [
        (SyncObservation(3, 0), False, "the model sync of all 3 pods reached the store at its last poll"),
        (SyncObservation(1, 0), False, "the model sync of the pod reached the store at its last poll"),
        (
            SyncObservation(3, 2, T0, (1, 2)),
            True,
            "2 of 3 pods cannot reach the model store (no successful poll since 2026-05-28T20:26:40Z); "
            "they keep serving what is on disk: versions 1, 2",
        ),
        (
            SyncObservation(1, 1),
            True,
            "the only pod cannot reach the model store (no successful poll yet); "
            "it keeps serving what is on disk",
        ),
    ],
)
def test_condition_messages(obs: SyncObservation, degraded: bool, message: str) -> None:
    reason = "StoreUnreachable" if degraded else "SyncHealthy"
    assert sync_health.condition(obs) == ("ModelSyncDegraded", degraded, reason, message)


def make(cache: bool = False) -> api.ModelDeployment:
    model: dict[str, Any] = {"storageUri": "s3://models/llm"}
    if cache:
        model["cache"] = {"size": "10Gi"}
    meta = {"name": "llm", "namespace": "ml", "uid": "u", "generation": 1}
    return api.parse({"metadata": meta, "spec": {"model": model}})


READY_DEPLOYMENT = {
    "metadata": {"generation": 1},
    "status": {"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 3,
               "availableReplicas": 3, "conditions": [{"type": "Available", "status": "True"}]},
    "spec": {"replicas": 3},
}


def conds(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in out["conditions"]}


def build(reading: Reading | None, previous: dict[str, Any] | None = None, cache: bool = False) -> Any:
    obs = status.Observed(deployment=READY_DEPLOYMENT, service={}, sync_health=reading)
    return conds(status.compute_status(make(cache), obs, previous, "2026-01-01T00:00:00Z"))


def test_a_degraded_sidecar_sets_the_condition_and_leaves_ready_alone() -> None:
    healthy = build(Reading(True, SyncObservation(3, 0)))
    degraded = build(Reading(True, SyncObservation(3, 2, T0, (1,))))
    assert healthy["ModelSyncDegraded"]["status"] == "False"
    assert healthy["ModelSyncDegraded"]["reason"] == "SyncHealthy"
    assert degraded["ModelSyncDegraded"]["status"] == "True"
    assert degraded["ModelSyncDegraded"]["reason"] == "StoreUnreachable"
    assert degraded["Ready"] == healthy["Ready"]


def test_no_prometheus_or_no_series_no_condition() -> None:
    assert "ModelSyncDegraded" not in build(None)
    assert "ModelSyncDegraded" not in build(Reading(True, None))


def test_not_asked_yet_keeps_the_stored_condition_as_it_was() -> None:
    before = {"conditions": list(build(Reading(True, SyncObservation(2, 1, T0))).values())}
    kept = build(sync_health.PENDING, before)
    assert kept["ModelSyncDegraded"] == {
        c["type"]: c for c in before["conditions"]
    }["ModelSyncDegraded"]
    assert "ModelSyncDegraded" not in build(sync_health.PENDING, {"conditions": []})


def test_with_a_cache_the_sync_deployment_is_the_source() -> None:
    out = build(Reading(True, SyncObservation(3, 3)), cache=True)
    # The cache's own view (no sync Deployment yet): not degraded, whatever Prometheus says.
    assert out["ModelSyncDegraded"]["status"] == "False"


def test_transitions_post_a_warning_then_a_normal_event() -> None:
    healthy = {"conditions": list(build(Reading(True, SyncObservation(1, 0))).values())}
    degraded = {"conditions": list(build(Reading(True, SyncObservation(1, 1, T0, (1,)))).values())}
    assert cache_transition_events({}, healthy) == []  # a first healthy reading is no news
    ((kind, reason, message),) = cache_transition_events(healthy, degraded)
    assert (kind, reason) == ("Warning", "StoreUnreachable")
    assert message.startswith("ModelSyncDegraded: the only pod cannot reach the model store")
    assert cache_transition_events(degraded, healthy)[0][:2] == ("Normal", "SyncHealthy")
    assert cache_transition_events(degraded, degraded) == []


class FakePrometheus:
    def __init__(self) -> None:
        self.answer: list[tuple[dict[str, str], float]] | PrometheusError = []
        self.queries = 0

    def __call__(self, url: str, promql: str) -> list[tuple[dict[str, str], float]]:
        self.queries += 1
        assert (url, promql) == ("http://prom", sync_health.QUERY)
        if isinstance(self.answer, PrometheusError):
            raise self.answer
        return self.answer


def poller(prom: FakePrometheus, leader: list[bool], enqueued: list[Any]) -> SyncHealthPoller:
    return SyncHealthPoller(
        "http://prom",
        30,
        is_leader=lambda: leader[0],
        enqueue=enqueued.append,
        enqueue_all=lambda: enqueued.append("all"),
        query=prom,
    )


def failures() -> float:
    return metrics.SYNC_HEALTH_QUERIES.labels(result="failure")._value.get()  # type: ignore[no-any-return]


def test_poller_enqueues_only_changes_and_keeps_the_last_answer_while_prometheus_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    prom, leader, enqueued = FakePrometheus(), [True], []
    p = poller(prom, leader, enqueued)
    key = ("ml", "llm")
    assert p.reading(key) == sync_health.PENDING

    prom.answer = [sample("pods", 2), sample("degraded", 0)]
    assert asyncio.run(p.poll()) == {key}
    assert enqueued == ["all", key]  # the first answer: every model's stored condition may be stale
    assert p.reading(key) == Reading(True, SyncObservation(2, 0))
    assert p.reading(("ml", "other")) == Reading(True, None)

    enqueued.clear()
    assert asyncio.run(p.poll()) == set() and enqueued == []  # nothing changed: nothing enqueued

    before = failures()
    prom.answer = PrometheusError("http://prom unreachable: connection refused")
    with caplog.at_level(logging.INFO, logger="modelserve.sync_health_poller"):
        for _ in range(3):
            assert asyncio.run(p.poll()) == set()
        assert failures() == before + 3
        assert p.reading(key) == Reading(True, SyncObservation(2, 0))  # no flapping
        prom.answer = [sample("pods", 2), sample("degraded", 1)]
        assert asyncio.run(p.poll()) == {key}
    logged = [r.getMessage() for r in caplog.records]
    assert len([m for m in logged if "cannot ask Prometheus" in m]) == 1  # once per change of state
    assert len([m for m in logged if "answers the model sync query again" in m]) == 1
    assert enqueued == [key]


def test_a_standby_does_not_ask_and_forgets_what_it_knew() -> None:
    prom, leader, enqueued = FakePrometheus(), [False], []
    p = poller(prom, leader, enqueued)
    assert asyncio.run(p.poll()) == set() and prom.queries == 0
    leader[0] = True
    prom.answer = [sample("pods", 1), sample("degraded", 1)]
    asyncio.run(p.poll())
    leader[0] = False
    asyncio.run(p.poll())
    assert prom.queries == 1 and p.reading(("ml", "llm")) == sync_health.PENDING


def test_the_interval_is_a_setting_of_its_own() -> None:
    assert from_env({}).sync_health_seconds == 30.0
    assert from_env({"MODELSERVE_SYNC_HEALTH_SECONDS": "5"}).sync_health_seconds == 5.0
    with pytest.raises(ValueError, match="sync_health_seconds"):
        from_env({"MODELSERVE_SYNC_HEALTH_SECONDS": "0"})


@pytest.fixture
def fake_api() -> Any:
    """A loopback HTTP server answering /api/v1/query with whatever the test sets (status, body)."""
    import http.server
    import json
    import threading

    answer: dict[str, Any] = {"status": 200, "body": {}}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = json.dumps(answer["body"]).encode()
            self.send_response(answer["status"])
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    answer["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield answer
    server.shutdown()
    server.server_close()


def test_query_vector_returns_every_sample_and_refuses_what_is_not_a_vector(fake_api: Any) -> None:
    from modelserve.rollout.prometheus import query_vector

    fake_api["body"] = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"namespace": "ml", "service": "llm"}, "value": [1.0, "3"]},
                {"metric": {"service": "nan"}, "value": [1.0, "NaN"]},
            ],
        },
    }
    assert query_vector(fake_api["url"], "q") == [({"namespace": "ml", "service": "llm"}, 3.0)]
    fake_api["body"] = {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "1"]}}
    with pytest.raises(PrometheusError, match="scalar; expected a vector"):
        query_vector(fake_api["url"], "q")
    fake_api.update(status=400, body={"status": "error", "error": "parse error at char 3"})
    with pytest.raises(PrometheusError, match="HTTP 400: parse error at char 3"):
        query_vector(fake_api["url"], "q")


def test_query_vector_of_an_unreachable_prometheus_is_a_prometheus_error() -> None:
    import socket

    from modelserve.rollout.prometheus import query_vector

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(PrometheusError, match="unreachable"):
        query_vector(f"http://127.0.0.1:{port}", "q", timeout=2)
