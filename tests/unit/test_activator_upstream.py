"""The activator's forwarding client and release path, against a real HTTP server on loopback.

The server here is a stand-in for a pod's TF Serving with scripted answers (by request path), so
each way a pod can answer (or break) is seen by the real client and the real REST proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from modelserve.activator.proxy import Holder, Options, RestProxy, Unavailable, rest_app
from modelserve.activator.state import Registry
from modelserve.activator.upstream import ConnectError, Upstream, UpstreamError

pytestmark = pytest.mark.unit

ANSWERS = {
    "/length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nX-A: 2\r\n\r\nhello",
    "/chunked": (
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"
    ),
    "/continue": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "/close": b"HTTP/1.0 200 OK\r\n\r\nuntil the end",
    "/broken": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
}


class Pod:
    """A TF Serving stand-in: answers by path, counts connections, can close idle ones."""

    def __init__(self) -> None:
        self.connections = 0
        self.open: set[asyncio.StreamWriter] = set()
        self.requests: list[bytes] = []
        self.dropped = False
        self.server: asyncio.Server | None = None
        self.all_closed = asyncio.Event()  # set whenever the last open connection closes
        self.never = asyncio.Event()  # /slow waits on it: a pod that does not answer

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open.add(writer)
        self.all_closed.clear()
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                self.requests.append(head + await reader.readexactly(length))
                path = head.split(b" ")[1].decode()
                if path == "/drop-once" and not self.dropped:
                    self.dropped = True  # as a pod closing an idle connection just as it is reused
                    break
                if path == "/slow":
                    await self.never.wait()
                writer.write(ANSWERS.get(path, ANSWERS["/length"]))
                await writer.drain()
                if path in ("/close", "/broken"):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open.discard(writer)
            writer.close()
            if not self.open:
                self.all_closed.set()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])


@contextlib.asynccontextmanager
async def pod() -> AsyncIterator[Pod]:
    stand_in = Pod()
    stand_in.server = await asyncio.start_server(stand_in.handle, "127.0.0.1", 0)
    try:
        yield stand_in
    finally:
        stand_in.server.close()


def run(coroutine: object) -> None:
    asyncio.run(coroutine)  # type: ignore[arg-type]


def test_answers_by_length_chunked_and_to_close_and_the_connection_is_kept_alive() -> None:
    async def scenario() -> None:
        async with pod() as p:
            up = Upstream(p.port, timeout=5)
            first = await up.request("127.0.0.1", "POST", "/length", [("X-In", "v")], b'{"instances": [1]}')
            assert (first.status, first.body) == (200, b"hello")
            assert [v for k, v in first.headers if k == "X-A"] == ["1", "2"]  # repeated headers kept
            chunked = await up.request("127.0.0.1", "GET", "/chunked", [], b"")
            assert (chunked.status, chunked.reason, chunked.body) == (201, "Created", b"abcde")
            assert (await up.request("127.0.0.1", "GET", "/continue", [], b"")).body == b"ok"
            assert p.connections == 1  # one kept-alive connection for all three
            assert b"Content-Length: 18\r\n" in p.requests[0] and b"X-In: v\r\n" in p.requests[0]
            assert f"Host: 127.0.0.1:{p.port}".encode() in p.requests[0]
            to_close = await up.request("127.0.0.1", "GET", "/close", [], b"")
            assert to_close.body == b"until the end"
            await up.request("127.0.0.1", "GET", "/length", [], b"")
            assert p.connections == 2  # the HTTP/1.0 answer ended its connection
            up.close()

    run(scenario())


def test_an_idle_connection_the_pod_closed_is_replaced_and_a_broken_answer_is_an_error() -> None:
    async def scenario() -> None:
        async with pod() as p:
            up = Upstream(p.port, timeout=5)
            await up.request("127.0.0.1", "GET", "/length", [], b"")
            assert (await up.request("127.0.0.1", "GET", "/drop-once", [], b"")).body == b"hello"
            assert p.connections == 2  # sent again, once, on a new connection
            with pytest.raises(UpstreamError):
                await up.request("127.0.0.1", "GET", "/broken", [], b"")  # fresh or not: no resend
            up.close()

    run(scenario())


def test_a_gone_pod_loses_its_idle_connections_and_a_closed_port_is_a_connect_error() -> None:
    async def scenario() -> None:
        async with pod() as p:
            up = Upstream(p.port, timeout=5)
            await up.request("127.0.0.1", "GET", "/length", [], b"")
            up.forget("127.0.0.1")
            await asyncio.wait_for(p.all_closed.wait(), timeout=1)
            assert not p.open  # the pod saw the connection closed
            await up.request("127.0.0.1", "GET", "/length", [], b"")
            assert p.connections == 2
            up.close()
            lazy = Upstream(p.port, timeout=5, idle_seconds=0.05)  # idle connections expire
            await lazy.request("127.0.0.1", "GET", "/length", [], b"")
            await asyncio.wait_for(p.all_closed.wait(), timeout=1)
            assert not p.open
            port = p.port
        with pytest.raises(ConnectError):
            await Upstream(port, timeout=5).request("127.0.0.1", "GET", "/length", [], b"")

    run(scenario())


def test_a_pod_leaving_reports_its_address_once_no_ready_pod_has_it() -> None:
    reg = Registry()
    gone: list[str] = []
    reg.on_address_gone = gone.append
    reg.upsert_model("ml", "resnet", "resnet", "")
    reg.set_pod("ml", "resnet", "a", "10.1.0.7")
    reg.set_pod("ml", "resnet", "a", "10.1.0.7")  # a repeated Ready event
    reg.set_pod("ml", "resnet", "b", "10.1.0.8")
    reg.set_pod("ml", "resnet", "a", None)
    assert gone == ["10.1.0.7"]
    reg.set_pod("ml", "resnet", "b", "10.1.0.9")  # a new address for the same pod
    assert gone == ["10.1.0.7", "10.1.0.8"]


def test_held_requests_are_released_together_and_answered_503_when_the_activator_stops() -> None:
    async def scenario() -> None:
        reg = Registry()
        model = reg.upsert_model("ml", "resnet", "resnet", "")
        holder = Holder(reg, Options(hold_seconds=30), lambda m: None)
        held = [asyncio.ensure_future(holder.pod_for(model)) for _ in range(5)]
        while model.held < 5:
            await asyncio.sleep(0)
        assert len(model.waiters) == 5
        reg.set_pod("ml", "resnet", "a", "10.1.0.7")
        assert await asyncio.gather(*held) == ["10.1.0.7"] * 5
        assert model.waiters == [] and model.held == 0

        reg.set_pod("ml", "resnet", "a", None)
        left = asyncio.ensure_future(holder.pod_for(model))
        stays = asyncio.ensure_future(holder.pod_for(model))
        while model.held < 2:
            await asyncio.sleep(0)
        left.cancel()  # the caller went away: its place in the queue is freed
        with contextlib.suppress(asyncio.CancelledError):
            await left
        assert model.held == 1 and len(model.waiters) == 1
        holder.close()
        with pytest.raises(Unavailable, match="shutting down") as err:
            await stays
        assert err.value.retry_after == 1

    run(scenario())


def test_the_rest_proxy_answers_502_for_a_broken_answer_and_504_for_a_slow_pod() -> None:
    async def scenario() -> None:
        async with pod() as p:
            reg = Registry()
            reg.upsert_model("ml", "resnet", "resnet", "")
            reg.set_pod("ml", "resnet", "a", "127.0.0.1")
            options = Options(upstream_rest_port=p.port, forward_timeout_seconds=0.3)
            proxy = RestProxy(Holder(reg, options, lambda m: None))
            runner = web.AppRunner(rest_app(proxy))
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            headers = {"Host": "resnet.ml.svc:8501"}
            try:
                async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as client:
                    async with client.post("/length", headers=headers, data=b"{}") as ok:
                        assert (ok.status, await ok.read()) == (200, b"hello")
                        assert ok.headers.getall("X-A") == ["1", "2"]
                    async with client.get("/chunked", headers=headers) as chunked:
                        assert (chunked.status, await chunked.read()) == (201, b"abcde")
                    async with client.get("/broken", headers=headers) as broken:
                        assert broken.status == 502 and "broke the answer" in (await broken.json())["error"]
                    async with client.get("/slow", headers=headers) as slow:
                        assert slow.status == 504 and "did not answer" in (await slow.json())["error"]
            finally:
                await runner.cleanup()
                await proxy.close()

    run(scenario())
