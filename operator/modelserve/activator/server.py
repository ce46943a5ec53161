"""`modelserve activator`: wiring of the watches, the KEDA external scaler and the proxies."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

import grpc
import prometheus_client
from aiohttp import web

from modelserve.activator.kubewatch import Watches
from modelserve.activator.proxy import GrpcProxy, Holder, Options, RestProxy, rest_app
from modelserve.activator.scaler import Scaler
from modelserve.activator.state import Model, Registry
from modelserve.kube import load_api_client

log = logging.getLogger(__name__)


@dataclass
class Config:
    bind: str = "0.0.0.0"
    rest_port: int = 8501
    grpc_port: int = 8500
    scaler_port: int = 9091
    metrics_port: int = 9090
    kubeconfig: str | None = None
    # Where the wake Leases live: the activator's own namespace.
    namespace: str = "modelserve-system"
    options: Options = field(default_factory=Options)


async def _metrics(request: web.Request) -> web.Response:
    return web.Response(body=prometheus_client.generate_latest(), content_type="text/plain")


async def _healthz(request: web.Request) -> web.Response:
    synced: asyncio.Event = request.app["synced"]
    return web.Response(text="ok" if synced.is_set() else "syncing", status=200 if synced.is_set() else 503)


async def _site(app: web.Application, bind: str, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, bind, port, reuse_address=True)
    await site.start()
    return runner, _port(site)


async def _grpc(handler: grpc.GenericRpcHandler, bind: str, port: int) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([handler])
    bound = server.add_insecure_port(f"{bind}:{port}")
    await server.start()
    return server, bound


async def serve(config: Config) -> None:
    loop = asyncio.get_running_loop()
    registry = Registry()
    watches = Watches(load_api_client(config.kubeconfig), registry, loop, config.namespace)
    scaler = Scaler(registry, hold_seconds=config.options.hold_seconds, queue_size=config.options.queue_size)

    def wake(model: Model) -> None:
        scaler.notify(model)
        if model.held > 0:  # the other replicas learn it from the wake Lease
            loop.run_in_executor(None, watches.request_wake, model.namespace, model.name)

    registry.on_wanted = scaler.notify
    holder = Holder(registry, config.options, wake)
    rest = RestProxy(holder)
    rest_runner, rest_port = await _site(rest_app(rest), config.bind, config.rest_port)
    synced = asyncio.Event()
    side = web.Application()
    side["synced"] = synced
    side.router.add_get("/metrics", _metrics)
    side.router.add_get("/healthz", _healthz)
    side_runner, metrics_port = await _site(side, config.bind, config.metrics_port)
    grpc_proxy = GrpcProxy(holder)

    def address_gone(ip: str) -> None:
        rest.upstream.forget(ip)
        grpc_proxy.forget(ip)

    registry.on_address_gone = address_gone
    grpc_server, grpc_port = await _grpc(grpc_proxy, config.bind, config.grpc_port)
    scaler_server, scaler_port = await _grpc(scaler.handler(), config.bind, config.scaler_port)

    watches.start()
    await loop.run_in_executor(None, watches.synced.wait)
    # What exists now (the imported modules, the clients, the servers) lives as long as the process:
    # out of the collector's full passes, which otherwise walk its ~77k objects (50 ms of one core
    # here, every hundredth young collection) at any moment, a release of held requests included.
    gc.collect()
    gc.freeze()
    synced.set()
    print(
        f"activator listening rest={config.bind}:{rest_port} grpc={config.bind}:{grpc_port} "
        f"scaler={config.bind}:{scaler_port} metrics={config.bind}:{metrics_port}",
        flush=True,
    )

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: held requests are answered 503 with Retry-After: 1")
    holder.close()
    watches.stop.set()
    await asyncio.sleep(0)
    await grpc_server.stop(grace=2)
    await scaler_server.stop(grace=0)
    for runner in (rest_runner, side_runner):
        await runner.cleanup()
    await grpc_proxy.close()
    await rest.close()


def _port(site: web.TCPSite) -> int:
    server: Any = site._server  # aiohttp keeps the bound sockets there
    return int(server.sockets[0].getsockname()[1])


def main(config: Config) -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve(config))
    return 0
