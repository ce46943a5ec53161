"""The activator's HTTP/1.1 client to a pod's TF Serving: one pool of kept-alive connections per pod.

Why not aiohttp's client: a wake forwards every held request at the same instant on one event
loop, so the client's per-request cost is paid once per held request in series. Profiled on a wake
of 50 held requests (bench/activator_bench.py --profile), aiohttp's request path (header
multidicts, tracing hooks, the connector) was half of the activator's CPU time; this client writes
the request in one buffer and parses the answer with a few byte searches. It speaks only what
forwarding needs: a complete request body out, a Content-Length, chunked or read-to-close body in.

Pools are per pod address and are dropped when the pod leaves (`forget`), so a pod that comes back
on the same address never gets a connection to its predecessor. A kept-alive connection that the
pod closed while idle fails before any byte of an answer: the request is then sent once more on a
new connection, which is what an HTTP client does with a stale kept-alive connection.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

MAX_HEAD: Final = 64 * 1024
MAX_IDLE_PER_POD: Final = 256
IDLE_SECONDS: Final = (
    60.0  # an idle connection is closed after this: a woken pod soon takes its traffic itself
)


class UpstreamError(Exception):
    """The pod broke the exchange: closed early, or answered something that is not HTTP/1.x."""


class ConnectError(UpstreamError):
    """The pod's port did not accept the connection."""


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


class _Connection(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.received = 0  # bytes of the current answer so far
        self.closed = False
        self.expiry: asyncio.TimerHandle | None = None
        self._waiter: asyncio.Future[None] | None = None

    # --- protocol callbacks ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.received += len(data)
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # --- reading ---------------------------------------------------------------------------------

    async def _more(self) -> None:
        if self.closed:
            raise UpstreamError("the pod closed the connection before the answer was complete")
        self._waiter = self.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def read_until(self, separator: bytes, limit: int) -> bytes:
        start = 0
        while (end := self.buffer.find(separator, start)) < 0:
            if len(self.buffer) > limit:
                raise UpstreamError("the pod's answer has an oversized head")
            start = max(0, len(self.buffer) - len(separator) + 1)
            await self._more()
        out = bytes(self.buffer[: end + len(separator)])
        del self.buffer[: end + len(separator)]
        return out

    async def read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            await self._more()
        out = bytes(self.buffer[:size])
        del self.buffer[:size]
        return out

    async def read_to_close(self) -> bytes:
        while not self.closed:
            self._waiter = self.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        out = bytes(self.buffer)
        self.buffer.clear()
        return out

    def close(self) -> None:
        self.closed = True
        if self.expiry is not None:
            self.expiry.cancel()
        if self.transport is not None:
            self.transport.close()


def _host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def encode_request(
    method: str, target: str, authority: str, headers: list[tuple[str, str]], body: bytes
) -> bytes:
    """The request as sent: the caller's end-to-end headers, our Host and the body's length."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {authority}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body or method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def parse_head(head: bytes) -> tuple[str, int, str, list[tuple[str, str]]]:
    """(version, status, reason, headers) of a response head (status line and header lines)."""
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise UpstreamError(f"the pod answered something that is not HTTP/1.x: {lines[0][:80]!r}")
    headers = [(k.strip(), v.strip()) for k, sep, v in (line.partition(":") for line in lines[1:]) if sep]
    return version, int(code), reason, headers


async def _read_chunked(conn: _Connection) -> bytes:
    body = bytearray()
    while True:
        size_line = await conn.read_until(b"\r\n", MAX_HEAD)
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise UpstreamError("the pod sent a malformed chunk") from None
        if size == 0:
            while await conn.read_until(b"\r\n", MAX_HEAD) != b"\r\n":  # trailers, dropped
                pass
            return bytes(body)
        body += await conn.read_exactly(size + 2)
        del body[-2:]


async def read_response(conn: _Connection, method: str) -> tuple[Response, bool]:
    """The pod's answer and whether the connection may carry another request."""
    while True:
        version, status, reason, headers = parse_head(await conn.read_until(b"\r\n\r\n", MAX_HEAD))
        if status >= 200 or status == 101:
            break  # 1xx informational answers precede the real one
    fields = {k.lower(): v.lower() for k, v in headers}
    keep_alive = fields.get("connection") != "close" and (
        version == "HTTP/1.1" or fields.get("connection") == "keep-alive"
    )
    if method == "HEAD" or status in (204, 304) or status < 200:
        body = b""
    elif "chunked" in fields.get("transfer-encoding", ""):
        body = await _read_chunked(conn)
    elif "content-length" in fields:
        try:
            length = int(fields["content-length"])
        except ValueError:
            raise UpstreamError("the pod sent a malformed Content-Length") from None
        body = await conn.read_exactly(length)
    else:
        body, keep_alive = await conn.read_to_close(), False
    return Response(status, reason, headers, body), keep_alive


class Upstream:
    """Requests to pods on one port, over kept-alive connections pooled per pod address."""

    def __init__(self, port: int, timeout: float, idle_seconds: float = IDLE_SECONDS) -> None:
        self.port = port
        self.timeout = timeout
        self.idle_seconds = idle_seconds
        self._idle: dict[str, list[_Connection]] = {}

    async def _connect(self, ip: str) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: _Connection(loop), ip, self.port)
        except OSError as exc:
            raise ConnectError(f"{_host(ip)}:{self.port}: {exc.strerror or exc}") from exc
        return conn

    def _pooled(self, ip: str) -> _Connection | None:
        idle = self._idle.get(ip)
        while idle:
            conn = idle.pop()
            if conn.expiry is not None:
                conn.expiry.cancel()
            if not conn.closed:
                return conn
        return None

    def _release(self, ip: str, conn: _Connection) -> None:
        idle = self._idle.setdefault(ip, [])
        if conn.closed or conn.buffer or len(idle) >= MAX_IDLE_PER_POD:
            conn.close()
        else:
            idle.append(conn)
            conn.expiry = conn.loop.call_later(self.idle_seconds, self._expire, ip, conn)

    def _expire(self, ip: str, conn: _Connection) -> None:
        idle = self._idle.get(ip, [])
        if conn in idle:
            idle.remove(conn)
        conn.close()

    async def request(
        self, ip: str, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> Response:
        """Sends one request to the pod at `ip` and reads its whole answer (within the timeout)."""
        data = encode_request(method, target, f"{_host(ip)}:{self.port}", headers, body)
        async with asyncio.timeout(self.timeout):
            while True:
                conn = self._pooled(ip)
                reused = conn is not None
                if conn is None:
                    conn = await self._connect(ip)
                assert conn.transport is not None
                conn.received = 0
                conn.transport.write(data)
                try:
                    response, keep_alive = await read_response(conn, method)
                except UpstreamError:
                    conn.close()
                    if reused and not conn.received:
                        continue  # the pod had closed this idle connection: once more on a new one
                    raise
                except BaseException:  # the timeout, a cancelled caller: the connection is mid-answer
                    conn.close()
                    raise
                if keep_alive:
                    self._release(ip, conn)
                else:
                    conn.close()
                return response

    def forget(self, ip: str) -> None:
        """The pod at `ip` is gone: close its idle connections."""
        for conn in self._idle.pop(ip, []):
            conn.close()

    def close(self) -> None:
        for ip in list(self._idle):
            self.forget(ip)
