"""A bounded HTTP/1.1 load generator for the loopback interface (the service benchmarks).

``run(host, port, requests, concurrency)``: ``concurrency`` keep-alive connections, each sending
its share of ``requests`` one after the other (a closed loop: at most ``concurrency`` requests
in flight, so the server is never flooded beyond what it can answer); every answer's latency is
kept. Plain asyncio and sockets, so the figures do not include a client library's overhead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import attrs

__all__ = ["LoadResult", "request_bytes", "run"]


@attrs.frozen
class LoadResult:
    latencies: list[float]  # seconds, one per request
    wall: float  # seconds for the whole run
    statuses: dict[int, int]

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def request_bytes(
    method: str, path: str, body: bytes = b"", content_type: str = "application/json"
) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if body or method == "POST":
        head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def _client(
    host: str, port: int, payloads: Sequence[bytes], out: list[float], statuses: dict[int, int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for payload in payloads:
            started = time.perf_counter()
            writer.write(payload)
            status = await _read_response(reader)
            out.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def _run(host: str, port: int, payloads: Sequence[bytes], concurrency: int) -> LoadResult:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    shares = [payloads[k::concurrency] for k in range(concurrency)]
    started = time.perf_counter()
    await asyncio.gather(*(_client(host, port, s, latencies, statuses) for s in shares if s))
    return LoadResult(latencies, time.perf_counter() - started, statuses)


def run(host: str, port: int, payloads: Sequence[bytes], concurrency: int = 4) -> LoadResult:
    """Send every payload (a whole HTTP request each) over ``concurrency`` connections."""
    return asyncio.run(_run(host, port, payloads, concurrency))
