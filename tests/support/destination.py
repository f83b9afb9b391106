"""A destination the tests run: an endpoint of "the customer's app" that verifies every push
with the `standardwebhooks` package, records what it got, and misbehaves on request: 500,
a timeout (no answer), a connection reset (RST), 429 with Retry-After.

It is a small HTTP/1.1 server on asyncio streams, in its own thread, so that a reset can be a
real one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass
class Received:
    webhook_id: str
    event: dict[str, Any]
    verified_by: list[int]  # which of the destination's secrets verified it


@dataclass
class DestinationApp:
    """`secrets`: every secret a consumer might hold; a push is accepted when one of them
    verifies it. `faults` are used up one per request, in order."""

    secrets: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    hang_s: float = 20.0  # a timeout: longer than the receiver waits
    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    in_flight: Counter[str] = field(default_factory=Counter)
    overlapping: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        """The answer to one push (status, headers); raises ConnectionResetError to hang up."""
        webhook_id = headers.get("webhook-id", "")
        with self.lock:
            self.in_flight[webhook_id] += 1
            if self.in_flight[webhook_id] > 1:
                self.overlapping.append(webhook_id)
            fault = self.faults.pop(0) if self.faults else None
        try:
            return await self._answer(fault, headers, body)
        finally:
            with self.lock:
                self.in_flight[webhook_id] -= 1

    async def _answer(
        self, fault: str | None, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str]]:
        if fault == "reset":
            raise ConnectionResetError
        if fault == "timeout":
            await asyncio.sleep(self.hang_s)  # never processed: the sender gave up
            return 504, {}
        if fault == "500":
            return 500, {}
        if fault == "429":
            return 429, {"retry-after": "1"}
        verified = self._verify(body, headers)
        if not verified:
            self.refused.append(headers.get("webhook-id", ""))
            return 401, {}
        with self.lock:
            self.received.append(Received(headers["webhook-id"], json.loads(body), verified))
        return 204, {}

    def _verify(self, body: bytes, headers: dict[str, str]) -> list[int]:
        verified = []
        for n, secret in enumerate(self.secrets):
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            verified.append(n)
        return verified


class DestinationServer:
    def __init__(self, app: DestinationApp) -> None:
        self.app = app
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="destination")
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        if not self._started.wait(10):
            raise TimeoutError("the destination did not start")

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shut(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    async def _shut(self) -> None:
        """Close the listener and every connection still open (the receiver keeps them alive)."""
        if self._server is not None:
            self._server.close()
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                try:
                    status, headers = await self.app.handle(*request)
                except ConnectionResetError:
                    _reset(writer)
                    return
                lines = [f"HTTP/1.1 {status} X", "content-length: 0"]
                lines += [f"{k}: {v}" for k, v in headers.items()]
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
                await writer.drain()
        writer.close()


async def _read_request(reader: asyncio.StreamReader) -> tuple[dict[str, str], bytes] | None:
    head = await reader.readuntil(b"\r\n\r\n")
    if not head:
        return None
    lines = head.decode("latin-1").split("\r\n")[1:]
    headers = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return headers, body


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST, as a crashing peer would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def start_destination(app: DestinationApp) -> DestinationServer:
    server = DestinationServer(app)
    server.start()
    return server
