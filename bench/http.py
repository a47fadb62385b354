"""The HTTP side of the load: a minimal keep-alive HTTP/1.1 client on raw asyncio
streams (it costs as little as the grpc.aio client of a baseline does), and a wait for
an HTTP server to answer."""

from __future__ import annotations

import asyncio
import time

import httpx


class HttpError(RuntimeError):
    """A status other than 200, with the body the gateway sent (a google.rpc.Status)."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"gateway answered {status}: {body.decode(errors='replace')}")
        self.status = status
        self.body = body


class HttpConnection:
    """One keep-alive HTTP/1.1 connection: a request, then its Content-Length body; a
    status other than 200 raises HttpError with that body."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> HttpConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> None:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length)
        if status != 200:
            raise HttpError(status, body)

    def close(self) -> None:
        self.writer.close()


def raw_request(method: str, path: str, port: int, token: str, body: bytes = b"") -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n"
        "Content-Type: application/json\r\n\r\n"
    )
    return head.encode() + body


async def wait_for_http(url: str, within: float = 30.0) -> float:
    """Seconds until `url` answers at all (any status)."""
    started = time.perf_counter()
    async with httpx.AsyncClient() as client:
        while time.perf_counter() - started < within:
            try:
                await client.get(url, timeout=1)
                return time.perf_counter() - started
            except httpx.TransportError:
                await asyncio.sleep(0.02)
    raise TimeoutError(url)
