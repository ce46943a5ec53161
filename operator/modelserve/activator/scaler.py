"""KEDA's external scaler, served by every activator replica (the `activator` trigger of a
scale-to-zero model's ScaledObject, type external-push).

KEDA keeps a StreamIsActive call open per ScaledObject and asks IsActive whenever it evaluates
the triggers; the activator answers "active" while requests for the model are held (here or, via
the wake Lease, by another replica). A push on the stream makes KEDA act at once instead of at
its next polling interval, so the scale from 0 to 1 starts within milliseconds of the first held
request. GetMetrics reports the held requests against a target of one queue per replica, so the
trigger never asks for more than the queue needs; the load triggers do the real scaling.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, Final

import grpc

from modelserve.activator import externalscaler as pb
from modelserve.activator.state import Model, Registry

log = logging.getLogger(__name__)

METRIC: Final = "activator-held-requests"


class Scaler:
    def __init__(self, registry: Registry, *, hold_seconds: float, queue_size: int) -> None:
        self.registry = registry
        self.hold_seconds = hold_seconds
        self.queue_size = queue_size
        self._streams: dict[tuple[str, str], set[asyncio.Queue[bool]]] = {}

    def notify(self, model: Model) -> None:
        """Pushes the model's activity to every KEDA stream open for it on this replica."""
        active = self.registry.wanted(model, self.hold_seconds)
        for queue in self._streams.get(model.key, set()):
            queue.put_nowait(active)

    def _active(self, ref: Any) -> bool:
        model = self.registry.models.get((ref.namespace, ref.name))
        return model is not None and self.registry.wanted(model, self.hold_seconds)

    # --- the service -----------------------------------------------------------------------------

    async def is_active(self, ref: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return pb.IsActiveResponse(result=self._active(ref))

    async def stream_is_active(
        self, ref: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        key = (ref.namespace, ref.name)
        queue: asyncio.Queue[bool] = asyncio.Queue()
        self._streams.setdefault(key, set()).add(queue)
        log.info("KEDA streams activity of %s/%s", *key)
        try:
            yield pb.IsActiveResponse(result=self._active(ref))
            while True:
                try:
                    active = await asyncio.wait_for(queue.get(), timeout=self.hold_seconds)
                except TimeoutError:
                    active = self._active(ref)  # a wake annotation ages out without an event
                yield pb.IsActiveResponse(result=active)
        finally:
            self._streams.get(key, set()).discard(queue)

    async def get_metric_spec(self, ref: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        spec = pb.MetricSpec(
            metricName=METRIC, targetSize=self.queue_size, targetSizeFloat=float(self.queue_size)
        )
        return pb.GetMetricSpecResponse(metricSpecs=[spec])

    async def get_metrics(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        ref = request.scaledObjectRef
        model = self.registry.models.get((ref.namespace, ref.name))
        held = model.held if model is not None else 0
        value = pb.MetricValue(metricName=METRIC, metricValue=held, metricValueFloat=float(held))
        return pb.GetMetricsResponse(metricValues=[value])

    def handler(self) -> grpc.GenericRpcHandler:
        def unary(fn: Any, request_type: Any) -> grpc.RpcMethodHandler:
            return grpc.unary_unary_rpc_method_handler(
                fn, request_deserializer=request_type.FromString, response_serializer=_serialize
            )

        return grpc.method_handlers_generic_handler(
            pb.SERVICE,
            {
                "IsActive": unary(self.is_active, pb.ScaledObjectRef),
                "StreamIsActive": grpc.unary_stream_rpc_method_handler(
                    self.stream_is_active,
                    request_deserializer=pb.ScaledObjectRef.FromString,
                    response_serializer=_serialize,
                ),
                "GetMetricSpec": unary(self.get_metric_spec, pb.ScaledObjectRef),
                "GetMetrics": unary(self.get_metrics, pb.GetMetricsRequest),
            },
        )


def _serialize(message: Any) -> bytes:
    return bytes(message.SerializeToString())
