"""The demo's stand-in for the customer's app: an endpoint on loopback that verifies each push
with the `standardwebhooks` package and prints what it was told."""

from __future__ import annotations

import asyncio
import contextlib
import json

import click
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

__all__ = ["DemoApp"]


class DemoApp:
    def __init__(self) -> None:
        self.secret: str | None = None
        self.told = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen on a free loopback port; returns it."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ValueError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = dict(
                    (name.strip().lower(), value.strip())
                    for name, _, value in (
                        line.partition(":") for line in head.decode("latin-1").split("\r\n")[1:]
                    )
                    if name
                )
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status = self._take(headers, body)
                writer.write(f"HTTP/1.1 {status} OK\r\ncontent-length: 0\r\n\r\n".encode())
                await writer.drain()
        writer.close()

    def _take(self, headers: dict[str, str], body: bytes) -> int:
        if self.secret is None:
            return 503
        try:
            Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError:
            click.echo("  your app refused a push: the signature does not verify")
            return 401
        event = json.loads(body)
        self.told += 1
        job = event.get("job_id") or ""
        click.echo(f"  your app <- {event['type']:<22} {job} #{event.get('sequence') or '-'}")
        return 204
