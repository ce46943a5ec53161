"""Holding and forwarding: the REST (aiohttp) and gRPC (raw bytes) front ends of the activator.

A request for a model with a ready pod is forwarded at once. Otherwise it waits in the model's
queue (bounded: a full queue answers 503 at once) until a pod is ready, then goes to that pod's own
address; after the hold timeout it gets 503 with Retry-After (gRPC: UNAVAILABLE with a retry-after
trailer) and the cause from the model's status.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import grpc
from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram

from modelserve.activator.state import Model, Registry
from modelserve.activator.upstream import ConnectError, Upstream, UpstreamError

log = logging.getLogger(__name__)

LABELS: Final = ("namespace", "model")
QUEUED = Counter(
    "modelserve_activator_requests_queued_total", "Requests held for a model without a ready pod.", LABELS
)
FORWARDED = Counter("modelserve_activator_requests_forwarded_total", "Requests forwarded to a pod.", LABELS)
TIMED_OUT = Counter(
    "modelserve_activator_requests_timed_out_total",
    "Held requests answered 503 after the hold timeout.",
    LABELS,
)
REJECTED = Counter(
    "modelserve_activator_requests_rejected_total",
    "Requests refused at once (queue full, unknown model, activator shutting down).",
    ("reason",),
)
WOKEN = Counter(
    "modelserve_activator_wakes_total", "Models woken: held requests released to a ready pod.", LABELS
)
HELD = Gauge("modelserve_activator_requests_held", "Requests waiting for a pod right now.", LABELS)
WAKE_SECONDS = Histogram(
    "modelserve_activator_wake_seconds",
    "From the first held request of a model to its first ready pod.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
)
FORWARD_SECONDS = Histogram(
    "modelserve_activator_forward_seconds",
    "Time to forward a request and read the pod's answer (pod time included).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "expect",  # the activator has read the whole body already; the pod gets it at once
    }
)
NAMESPACE_HEADER: Final = "x-modelserve-namespace"
CONNECT_RETRY_SECONDS: Final = 0.1


class Unavailable(Exception):  # noqa: N818  (reads as the status it becomes)
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


@dataclass
class Options:
    hold_seconds: float = 60.0
    queue_size: int = 100
    retry_after_seconds: int = 10
    forward_timeout_seconds: float = 300.0
    upstream_rest_port: int = 8501
    upstream_grpc_port: int = 8500


class Holder:
    """The per-model queues: wait for a ready pod, wake the model when the first request waits."""

    def __init__(self, registry: Registry, options: Options, wake: Callable[[Model], None]) -> None:
        self.registry = registry
        self.options = options
        self.wake = wake
        self.closing = False
        self._wake_started: dict[tuple[str, str], float] = {}

    def close(self) -> None:
        """The activator stops: every held request is answered 503 with Retry-After: 1 now."""
        self.closing = True
        for model in self.registry.models.values():
            model.release()

    async def pod_for(self, model: Model) -> str:
        ip = model.pick_pod()
        if ip:
            return ip
        if self.closing:
            REJECTED.labels("shutdown").inc()
            raise Unavailable("the activator is shutting down; retry", 1)
        if model.held >= self.options.queue_size:
            REJECTED.labels("queue_full").inc()
            raise Unavailable(
                f"{model.namespace}/{model.name}: {model.held} requests already wait for a replica "
                "(activator queue full)",
                self.options.retry_after_seconds,
            )
        labels = (model.namespace, model.name)
        model.held += 1
        QUEUED.labels(*labels).inc()
        HELD.labels(*labels).inc()
        if model.held == 1:
            self._wake_started.setdefault(model.key, time.monotonic())
            self.wake(model)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        model.waiters.append(waiter)
        timer = loop.call_later(self.options.hold_seconds, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            if waiter in model.waiters:  # timed out or the caller left: not released with the rest
                model.waiters.remove(waiter)
            model.held -= 1
            HELD.labels(*labels).dec()
            if model.held == 0:
                self.wake(model)  # tells KEDA the model is no longer wanted by this replica
        ip = model.pick_pod()
        if ip:
            started = self._wake_started.pop(model.key, None)
            if started is not None:
                WOKEN.labels(*labels).inc()
                WAKE_SECONDS.observe(time.monotonic() - started)
            return ip
        if self.closing:
            REJECTED.labels("shutdown").inc()
            raise Unavailable("the activator is shutting down; retry", 1)
        TIMED_OUT.labels(*labels).inc()
        if model.held == 0:
            self._wake_started.pop(model.key, None)
        cause = model.status_note or "no replica became ready"
        raise Unavailable(
            f"{model.namespace}/{model.name} has no ready replica after "
            f"{self.options.hold_seconds:g}s: {cause}",
            self.options.retry_after_seconds,
        )


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


# --- REST ----------------------------------------------------------------------------------------


def _model_from_path(registry: Registry, path: str) -> Model | None:
    # TF Serving's REST paths: /v1/models/<name>[/versions/<n>|/labels/<l>][:predict|...]
    parts = path.split("/")
    if len(parts) >= 4 and parts[1] == "v1" and parts[2] == "models":
        return registry.by_model_name(parts[3].split(":", 1)[0])
    return None


def _error(status: int, message: str, retry_after: int | None = None) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return web.json_response({"error": message}, status=status, headers=headers)


class RestProxy:
    def __init__(self, holder: Holder) -> None:
        self.holder = holder
        options = holder.options
        self.upstream = Upstream(options.upstream_rest_port, options.forward_timeout_seconds)

    async def close(self) -> None:
        self.upstream.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        registry = self.holder.registry
        model = registry.by_host(request.host) or _model_from_path(registry, request.path)
        if model is None:
            REJECTED.labels("unknown_model").inc()
            return _error(
                404, f"no scale-to-zero model answers to host {request.host!r} and path {request.path!r}"
            )
        body = await request.read()
        try:
            ip = await self.holder.pod_for(model)
            return await self._forward(request, model, ip, body)
        except Unavailable as exc:
            return _error(503, exc.message, exc.retry_after)

    async def _forward(self, request: web.Request, model: Model, ip: str, body: bytes) -> web.Response:
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
        deadline = time.monotonic() + self.holder.options.hold_seconds
        while True:
            started = time.monotonic()
            try:
                upstream = await self.upstream.request(ip, request.method, request.path_qs, headers, body)
            except ConnectError:
                # A pod reported ready a moment before its port accepts: try again, within the hold.
                if time.monotonic() > deadline:
                    raise Unavailable(
                        f"{model.namespace}/{model.name}: the ready pod {ip} refuses connections", 1
                    ) from None
                await asyncio.sleep(CONNECT_RETRY_SECONDS)
                ip = model.pick_pod() or ip
                continue
            except UpstreamError as exc:
                return _error(502, f"{model.namespace}/{model.name}: the pod {ip} broke the answer: {exc}")
            except TimeoutError:
                timeout = self.holder.options.forward_timeout_seconds
                return _error(
                    504, f"{model.namespace}/{model.name}: the pod {ip} did not answer in {timeout:g}s"
                )
            FORWARD_SECONDS.observe(time.monotonic() - started)
            FORWARDED.labels(model.namespace, model.name).inc()
            out = [(k, v) for k, v in upstream.headers if k.lower() not in HOP_BY_HOP]
            return web.Response(
                status=upstream.status, reason=upstream.reason or None, headers=out, body=upstream.body
            )


def _host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


# --- gRPC ----------------------------------------------------------------------------------------


def _field(data: bytes, number: int) -> bytes | None:
    """The first length-delimited field `number` of a serialized protobuf message (no schema)."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, i = _varint(data, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            size, i = _varint(data, i)
            if field == number:
                return data[i : i + size]
            i += size
        else:
            return None
    return None


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data):
            raise ValueError("truncated varint")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def model_spec_name(request: bytes) -> str | None:
    """TF Serving's requests all start with `ModelSpec model_spec = 1` whose `name` is field 1."""
    try:
        spec = _field(request, 1)
        name = _field(spec, 1) if spec is not None else None
        return name.decode() if name else None
    except (ValueError, UnicodeDecodeError):
        return None


class GrpcProxy(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Every unary method (TF Serving's PredictionService and ModelService are all unary)."""

    def __init__(self, holder: Holder) -> None:
        self.holder = holder
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._closing: set[asyncio.Future[None]] = set()

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method

        async def unary(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            return await self._handle(method, request, context)

        return grpc.unary_unary_rpc_method_handler(unary)

    async def _handle(
        self, method: str, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        metadata = [(k, v) for k, v in (context.invocation_metadata() or ()) if k not in ("user-agent",)]
        namespace = next((str(v) for k, v in metadata if k == NAMESPACE_HEADER), None)
        name = model_spec_name(request)
        model = self.holder.registry.by_model_name(name, namespace) if name else None
        if model is None:
            REJECTED.labels("unknown_model").inc()
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"no scale-to-zero model named {name!r} "
                f"(set {NAMESPACE_HEADER} when the name is in several namespaces)",
            )
        assert model is not None
        try:
            ip = await self.holder.pod_for(model)
        except Unavailable as exc:
            context.set_trailing_metadata((("retry-after", str(exc.retry_after)),))
            await context.abort(grpc.StatusCode.UNAVAILABLE, exc.message)
        channel = self._channel(ip)
        started = time.monotonic()
        call = channel.unary_unary(method)
        try:
            response: bytes = await call(
                request,
                metadata=metadata,
                timeout=self.holder.options.forward_timeout_seconds,
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as exc:
            await context.abort(exc.code(), exc.details() or "")
        FORWARD_SECONDS.observe(time.monotonic() - started)
        FORWARDED.labels(model.namespace, model.name).inc()
        return response

    def _channel(self, ip: str) -> grpc.aio.Channel:
        channel = self._channels.get(ip)
        if channel is None:
            channel = grpc.aio.insecure_channel(f"{_host(ip)}:{self.holder.options.upstream_grpc_port}")
            self._channels[ip] = channel
        return channel

    def forget(self, ip: str) -> None:
        """The pod at `ip` is gone: close its channel once the calls on it have ended."""
        channel = self._channels.pop(ip, None)
        if channel is not None:
            task = asyncio.ensure_future(channel.close(grace=self.holder.options.forward_timeout_seconds))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()


def rest_app(proxy: RestProxy) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    return app


__all__ = ["GrpcProxy", "Holder", "Options", "RestProxy", "Unavailable", "model_spec_name", "rest_app"]
