"""A stand-in for TF Serving's REST API, in a process of its own, for bench/activator_bench.py.

    python bench/tfserving_standin.py --ips 127.78.0.1,127.78.0.2 [--port 8501]

Not TF Serving: kwok pods run no containers, so this answers `POST /v1/models/<m>:predict` with a
fixed prediction on every pod address the bench's kwok node may hand out. It runs outside the
bench's process so that the bench's client and watch threads do not share its interpreter (and its
GIL): what the bench measures is the activator. One asyncio loop, plain HTTP/1.1 with keep-alive
(the activator pools its upstream connections), no framework: its own service time per request is
a few microseconds, and it records it.

For every request it records (arrived, answered) as time.monotonic() (CLOCK_MONOTONIC, the same
clock in every process of the host): `arrived` when the whole request has been read, `answered`
when the response has been handed to the socket. `GET /_standin/served?since=T` on the control
address (printed on stdout at start: `standin listening control=IP:PORT`) returns them as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
from urllib.parse import parse_qs, urlsplit

PREDICTION = json.dumps({"predictions": [[2.5]]}).encode()


class Served:
    def __init__(self) -> None:
        self.records: list[tuple[float, float, str]] = []  # (arrived, answered, ip)


def _response(status: str, body: bytes, keep_alive: bool) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    return head.encode() + body


class Http(asyncio.Protocol):
    def __init__(self, served: Served, ip: str, control: bool) -> None:
        self.served = served
        self.ip = ip
        self.control = control
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
            }
            total = end + 4 + int(headers.get("content-length") or 0)
            if len(self.buffer) < total:
                return
            arrived = time.monotonic()
            self.buffer = self.buffer[total:]
            method, target, _ = lines[0].split(" ", 2)
            keep_alive = headers.get("connection", "").lower() != "close"
            if self.control:
                self._control(target, keep_alive)
            elif method == "POST" and target.endswith(":predict"):
                self.transport.write(_response("200 OK", PREDICTION, keep_alive))
                self.served.records.append((arrived, time.monotonic(), self.ip))
            else:
                self.transport.write(_response("404 Not Found", b'{"error": "stand-in"}', keep_alive))
            if not keep_alive:
                self.transport.close()
                self.transport = None

    def _control(self, target: str, keep_alive: bool) -> None:
        assert self.transport is not None
        url = urlsplit(target)
        since = float(parse_qs(url.query).get("since", ["0"])[0])
        body = json.dumps([r for r in self.served.records if r[0] >= since]).encode()
        self.transport.write(_response("200 OK", body, keep_alive))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(ips: list[str], port: int) -> None:
    loop = asyncio.get_running_loop()
    served = Served()
    for ip in ips:
        await loop.create_server(lambda ip=ip: Http(served, ip, False), ip, port, backlog=1024)
    control = await loop.create_server(lambda: Http(served, "control", True), "127.0.0.1", 0)
    host, control_port = control.sockets[0].getsockname()[:2]
    gc.freeze()  # a full collection never walks the startup heap mid-measurement
    print(f"standin listening control={host}:{control_port}", flush=True)
    await asyncio.Event().wait()  # until the bench terminates the process


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ips", required=True, help="comma-separated addresses to answer on")
    parser.add_argument("--port", type=int, default=8501)
    args = parser.parse_args()
    asyncio.run(serve(args.ips.split(","), args.port))


if __name__ == "__main__":
    main()
