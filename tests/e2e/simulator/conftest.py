"""Real simulator servers (and a tiny webhook receiver) on 127.0.0.1 for the contract tests."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulator import SimulatorConfig, create_simulator_app
from tests.support.live_server import LiveServer, live_server

API_KEY = "al_live_" + "ab" * 32


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def verify_signature(header: str, body: bytes, secrets: list[str]) -> list[str]:
    """Written from the docs (§1.5): HMAC-SHA256 over f"{t}." + raw body, hex, key = whole secret.
    Returns the secrets that produced one of the header's v1 values."""
    pairs = [part.split("=", 1) for part in header.split(",")]
    timestamps = [value for key, value in pairs if key == "t"]
    assert len(timestamps) == 1 and len(timestamps[0]) == 10 and timestamps[0].isdigit()
    signatures = [value for key, value in pairs if key == "v1"]
    matched = []
    for secret in secrets:
        expected = hmac.new(
            secret.encode("utf-8"), timestamps[0].encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        if any(hmac.compare_digest(expected, candidate) for candidate in signatures):
            matched.append(secret)
    return matched


@dataclass
class Sim:
    server: LiveServer
    client: httpx.Client

    @property
    def url(self) -> str:
        return self.server.url

    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = self.client.request(method, f"/_sim/{path}", json=body)
        assert response.status_code < 300, response.text
        return response.json()

    def faults(self, **knobs: Any) -> Any:
        return self.control("POST", "faults", knobs)

    def advance(self, seconds: float) -> Any:
        return self.control("POST", "advance", {"seconds": seconds})

    def truth(self, sha256: bool = True) -> Any:
        return self.client.get("/_sim/truth", params={"sha256": "1" if sha256 else "0"}).json()

    def stats(self) -> Any:
        return self.control("GET", "stats")

    def job_truth(self, job_id: str) -> dict[str, Any]:
        return next(job for job in self.truth()["jobs"] if job["id"] == job_id)

    def wait_terminal(self, job_id: str, timeout: float = 10.0) -> dict[str, Any]:
        def done() -> Any:
            body = self.client.get(f"/v1/images/{job_id}").json()
            return body if body.get("completed_at") else None

        return wait_for(done, timeout)  # type: ignore[no-any-return]


@pytest.fixture
def make_sim() -> Iterator[Callable[..., Sim]]:
    with ExitStack() as stack:

        def start(**overrides: Any) -> Sim:
            settings: dict[str, Any] = {"api_key": API_KEY, "seed": 7, "time_scale": 100.0}
            settings.update(overrides)
            server = stack.enter_context(
                live_server(create_simulator_app(SimulatorConfig(**settings)))
            )
            client = stack.enter_context(
                httpx.Client(
                    base_url=server.url, headers={"X-Api-Key": API_KEY}, trust_env=False, timeout=30
                )
            )
            return Sim(server, client)

        yield start


@pytest.fixture
def sim(make_sim: Callable[..., Sim]) -> Sim:
    return make_sim()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """A minimal webhook receiver: records every request and answers with `status_for`."""

    requests: list[Received] = field(default_factory=list)
    status_for: Callable[[Received], int] = lambda _: 200
    delay_s: float = 0.0  # answer this late (returns early if the sender hangs up)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        record = Received(scope["path"], headers, body, time.monotonic())
        with self.lock:
            self.requests.append(record)
        if self.delay_s:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(receive(), self.delay_s)
        status = self.status_for(record)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b"{}"})

    def snapshot(self, path: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if path is None or r.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    app = Receiver()
    with live_server(app) as server:
        app.url = server.url
        yield app


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class CliSim:
    process: subprocess.Popen[bytes]
    url: str
    client: httpx.Client

    def memory_kib(self) -> dict[str, int]:
        """VmRSS and VmHWM (peak RSS) of the simulator process, in KiB (Linux /proc)."""
        fields = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in {"VmRSS", "VmHWM"}:
                fields[name] = int(value.split()[0])
        return fields


@contextmanager
def cli_simulator(*args: str) -> Iterator[CliSim]:
    """`python -m simulator` as its own process, so its memory can be measured alone."""
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "simulator",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--api-key",
        API_KEY,
        *args,
    ]
    process = subprocess.Popen(
        command, cwd=Path(__file__).resolve().parents[3], stdout=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=url, headers={"X-Api-Key": API_KEY}, trust_env=False, timeout=60)

    def ready() -> bool:
        assert process.poll() is None, "simulator process exited"
        try:
            return client.get("/_sim/stats").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(ready, timeout=30, interval=0.05)
        yield CliSim(process, url, client)
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
