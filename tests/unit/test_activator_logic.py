"""The activator's pure parts: which model a request names, the per-model queue, KEDA's answers."""

from __future__ import annotations

import asyncio

import pytest

from modelserve.activator import externalscaler as pb
from modelserve.activator.proxy import Holder, Options, Unavailable, model_spec_name
from modelserve.activator.scaler import Scaler
from modelserve.activator.state import Registry

pytestmark = pytest.mark.unit


def registry() -> Registry:
    reg = Registry()
    reg.upsert_model("ml", "resnet", "resnet_v2", "", None)
    reg.set_service_ip("ml", "resnet", "10.96.0.12")
    reg.upsert_model("dev", "bert", "bert", "", None)
    return reg


@pytest.mark.parametrize(
    ("host", "found"),
    [
        ("resnet.ml.svc:8501", "resnet"),
        ("resnet.ml", "resnet"),
        ("resnet.ml.svc.cluster.local", "resnet"),
        ("10.96.0.12:8501", "resnet"),
        ("bert", "bert"),
        ("bert.ml.svc", None),
        ("other.ml.svc:8501", None),
    ],
)
def test_the_host_names_the_model(host: str, found: str | None) -> None:
    model = registry().by_host(host)
    assert (model.name if model else None) == found


def test_grpc_requests_are_routed_by_model_spec_name() -> None:
    request = b"\x0a\x0b\x0a\x09resnet_v2" + b"\x12\x03abc"  # PredictRequest{model_spec{name}, inputs...}
    assert model_spec_name(request) == "resnet_v2"
    assert model_spec_name(b"\xff") is None
    assert registry().by_model_name("resnet_v2") is not None


def test_the_queue_is_bounded_and_a_wake_is_asked_once() -> None:
    async def scenario() -> None:
        reg = registry()
        model = reg.models[("ml", "resnet")]
        wakes: list[int] = []
        holder = Holder(reg, Options(hold_seconds=5, queue_size=2), lambda m: wakes.append(m.held))
        waiting = [asyncio.ensure_future(holder.pod_for(model)) for _ in range(2)]
        for _ in range(1000):  # both requests queued (the tasks run on this loop, no clock)
            if model.held == 2:
                break
            await asyncio.sleep(0)
        with pytest.raises(Unavailable, match="queue full"):
            await holder.pod_for(model)
        assert model.held == 2 and wakes == [1]
        reg.set_pod("ml", "resnet", "resnet-abc", "10.1.0.7")
        assert await asyncio.gather(*waiting) == ["10.1.0.7", "10.1.0.7"]
        assert model.held == 0 and wakes == [1, 0]  # KEDA is told when nothing waits any more
        assert await holder.pod_for(model) == "10.1.0.7"  # a ready pod: no hold at all

    asyncio.run(scenario())


def test_no_pod_within_the_hold_timeout_is_unavailable_with_the_cause() -> None:
    async def scenario() -> None:
        reg = registry()
        reg.upsert_model("ml", "resnet", "resnet_v2", "InsufficientGPU: 0/4 nodes are available", None)
        holder = Holder(reg, Options(hold_seconds=0.05, retry_after_seconds=7), lambda m: None)
        with pytest.raises(Unavailable) as err:
            await holder.pod_for(reg.models[("ml", "resnet")])
        assert err.value.retry_after == 7 and "InsufficientGPU" in err.value.message

    asyncio.run(scenario())


def test_keda_sees_the_model_active_while_requests_wait_or_another_replica_asked() -> None:
    async def scenario() -> None:
        reg = registry()
        scaler = Scaler(reg, hold_seconds=30, queue_size=100)
        ref = pb.ScaledObjectRef(name="resnet", namespace="ml")
        assert (await scaler.is_active(ref, None)).result is False  # type: ignore[arg-type]
        reg.models[("ml", "resnet")].held = 3
        assert (await scaler.is_active(ref, None)).result is True  # type: ignore[arg-type]
        metrics = await scaler.get_metrics(pb.GetMetricsRequest(scaledObjectRef=ref), None)  # type: ignore[arg-type]
        assert metrics.metricValues[0].metricValue == 3
        reg.models[("ml", "resnet")].held = 0
        import time

        reg.upsert_model("ml", "resnet", "resnet_v2", "", time.time())  # the annotation of another replica
        assert (await scaler.is_active(ref, None)).result is True  # type: ignore[arg-type]
        spec = await scaler.get_metric_spec(ref, None)  # type: ignore[arg-type]
        assert spec.metricSpecs[0].targetSize == 100

    asyncio.run(scenario())
