"""The callers of bench/activator_bench.py, in a process of their own (one asyncio loop).

    python bench/http_clients.py    # then one JSON command per line on stdin, one JSON answer each

Outside the bench's process so that their work does not share an interpreter (and a GIL) with
the bench's watch or the TF Serving stand-in: 50 callers are 50 connections on one loop, not 50
threads. Plain HTTP/1.1 over asyncio streams, no framework. Times are time.monotonic()
(CLOCK_MONOTONIC, the same clock in every process of the host).

Commands:
- `{"op": "burst", "addr": "IP:PORT", "host": H, "path": P, "n": N}`: N requests at once, each on a
  connection of its own (first requests to a model at zero each come from their own caller).
  Answers `[[started, answered, status], ...]`; `answered` is when the whole response was read.
- `{"op": "load", "addr": ..., "host": ..., "path": ..., "n": N, "concurrency": C}`: N requests by
  C callers, each keeping its connection alive. Answers `{"latencies": [...], "elapsed": s,
  "statuses": {...}}`.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from collections import Counter
from typing import Any

BODY = b'{"instances": [1.0]}'


def _request(host: str, path: str, keep_alive: bool) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\nConnection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    ).encode() + BODY


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = next(
        (int(v) for k, _, v in (x.partition(":") for x in lines[1:]) if k.lower() == "content-length"), 0
    )
    await reader.readexactly(length)
    return status


def _split(addr: str) -> tuple[str, int]:
    ip, _, port = addr.rpartition(":")
    return ip, int(port)


async def one(addr: str, host: str, path: str) -> list[float]:
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(*_split(addr))
    writer.write(_request(host, path, keep_alive=False))
    status = await _read_response(reader)
    answered = time.monotonic()
    writer.close()
    return [started, answered, status]


async def burst(addr: str, host: str, path: str, n: int) -> list[list[float]]:
    return list(await asyncio.gather(*(one(addr, host, path) for _ in range(n))))


async def load(addr: str, host: str, path: str, n: int, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    left = n

    async def caller() -> None:
        nonlocal left
        reader, writer = await asyncio.open_connection(*_split(addr))
        request = _request(host, path, keep_alive=True)
        while left > 0:
            left -= 1
            started = time.monotonic()
            writer.write(request)
            statuses[await _read_response(reader)] += 1
            latencies.append(time.monotonic() - started)
        writer.close()

    started = time.monotonic()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return {"latencies": latencies, "elapsed": time.monotonic() - started, "statuses": dict(statuses)}


async def main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    gc.freeze()  # a full collection never walks the startup heap mid-measurement
    print("clients ready", flush=True)
    while line := await reader.readline():
        command = json.loads(line)
        args = (command["addr"], command["host"], command["path"], command["n"])
        if command["op"] == "burst":
            answer: Any = await burst(*args)
        else:
            answer = await load(*args, command["concurrency"])
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
