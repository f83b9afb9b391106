"""Real servers on loopback for end-to-end runs: a simulator and one or more receivers wired
to it, each in its own uvicorn server and thread, plus small helpers to wait and compare."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from receiver.settings import Settings
from receiver.web.app import create_app
from simulator import SimulatorConfig, create_simulator_app
from tests.conftest import ADMIN_TOKEN, MASTER_KEY
from tests.support.live_server import LiveServer

API_KEY = "al_live_" + "cd" * 32
WEBHOOK_SECRET = "whsec_e2e_Q4nXabc1234abcdef5678901"


# Ports a test picks now and listens on later. They come from below the kernel's ephemeral
# range (32768 and up on Linux): a port from that range, free when picked, could meanwhile be
# taken as the local end of an outgoing connection (PostgreSQL, HTTP clients), and the server
# would fail to bind it. Each is handed out once per test run.
_PICKABLE = range(20000, 32768)
_handed_out: set[int] = set()


def free_port() -> int:
    for _ in range(1000):
        port = random.choice(_PICKABLE)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


@dataclass
class SimHandle:
    server: LiveServer
    client: httpx.Client

    @property
    def url(self) -> str:
        return self.server.url

    def faults(self, **knobs: Any) -> Any:
        return self._control("POST", "faults", knobs)

    def advance(self, seconds: float) -> Any:
        return self._control("POST", "advance", {"seconds": seconds})

    def truth(self) -> dict[str, Any]:
        return self.client.get("/_sim/truth").json()  # type: ignore[no-any-return]

    def stats(self) -> dict[str, Any]:
        return self._control("GET", "stats")  # type: ignore[no-any-return]

    def create_direct(self, kind: str, count: int, body: dict[str, Any] | None = None) -> list[str]:
        """Jobs another backend created: they never pass through the receiver."""
        payload = {"kind": kind, "count": count, "body": body or {"prompt": "elsewhere"}}
        ids: list[str] = self._control("POST", "jobs", payload)["ids"]
        return ids

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        response = self.client.request(method, f"/_sim/{path}", json=body)
        assert response.status_code < 300, response.text
        return response.json()


@dataclass
class ReceiverHandle:
    server: LiveServer
    client: httpx.Client
    settings: Settings

    def jobs(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 200} | ({"cursor": cursor} if cursor else {})
            page = self.client.get("/jobs", params=params).json()
            found += page["data"]
            if not page["has_more"]:
                return found
            cursor = page["next_cursor"]

    def create(self, kind: str, body: dict[str, Any], key: str | None = None) -> httpx.Response:
        headers = {"Idempotency-Key": key} if key else {}
        return self.client.post(f"/jobs/{kind}s", json=body, headers=headers)


def start_simulator(
    stack: ExitStack, *, receiver_port: int | None = None, **overrides: Any
) -> SimHandle:
    config: dict[str, Any] = {"api_key": API_KEY, "seed": 11, "time_scale": 100.0}
    if receiver_port is not None:
        config["webhook_url"] = f"http://127.0.0.1:{receiver_port}/webhooks/aurous"
        config["webhook_secret"] = WEBHOOK_SECRET
    config.update(overrides)
    server = stack.enter_context(_running(create_simulator_app(SimulatorConfig(**config))))
    client = stack.enter_context(
        httpx.Client(base_url=server.url, timeout=60, headers={"X-Api-Key": API_KEY})
    )
    return SimHandle(server, client)


def receiver_settings(
    data_dir: Path, database_url: str, sim: SimHandle, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "admin_token": ADMIN_TOKEN,
        "master_key": MASTER_KEY,
        "bootstrap_secrets": (WEBHOOK_SECRET,),
        "aurous_api_key": API_KEY,
        "aurous_base_url": sim.url,
        "tick_s": 0.5,
        "sweep_interval_s": 2.0,
        "poll_budget_per_min": 6000,
    }
    values.update(overrides)
    return Settings(**values)


def start_receiver(stack: ExitStack, settings: Settings, port: int = 0) -> ReceiverHandle:
    server = stack.enter_context(_running(create_app(settings), port=port))
    client = stack.enter_context(
        httpx.Client(
            base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
    )
    return ReceiverHandle(server, client, settings)


class _running:
    def __init__(self, app: Any, port: int = 0) -> None:
        self.server = LiveServer(app, port=port)

    def __enter__(self) -> LiveServer:
        self.server.start()
        return self.server

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


def truth_by_id(sim: SimHandle) -> dict[str, dict[str, Any]]:
    return {job["id"]: job for job in sim.truth()["jobs"]}


class ReceiverProcess:
    """`aurous-receiver serve` as a real process, for kill -9 and memory measurements."""

    def __init__(
        self, settings: Settings, port: int, *, args: tuple[str, ...] = (), **env: str
    ) -> None:
        import os

        self.args = args
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = dict(os.environ, **settings_env(settings), **env)
        self.process: Any = None

    def start(self, timeout: float = 30.0) -> None:
        import subprocess
        import sys

        self.process = subprocess.Popen(
            [sys.executable, "-m", "receiver", "serve", "--port", str(self.port), *self.args],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def ready() -> bool:
            try:
                return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, timeout, interval=0.1)

    def kill(self) -> None:
        import signal

        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)

    def peak_rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM")

    def get(self, path: str) -> Any:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        return httpx.get(f"{self.url}{path}", headers=headers, timeout=30).json()

    def post(self, path: str, body: Any) -> Any:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        response = httpx.post(f"{self.url}{path}", json=body, headers=headers, timeout=30)
        assert response.status_code < 300, response.text
        return response.json()


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes `aurous-receiver` read these settings."""
    env = {
        "RECEIVER_DATA_DIR": str(settings.data_dir),
        "RECEIVER_DATABASE_URL": settings.database_url,
        "RECEIVER_MEDIA_URL": settings.media_url,
        "RECEIVER_ADMIN_TOKEN": settings.admin_token or "",
        "RECEIVER_MASTER_KEY": settings.master_key or "",
        "AUROUS_API_KEY": settings.aurous_api_key or "",
        "AUROUS_BASE_URL": settings.aurous_base_url,
        "AUROUS_WEBHOOK_SECRET": ",".join(settings.bootstrap_secrets),
        "RECEIVER_TICK_S": str(settings.tick_s),
        "RECEIVER_SWEEP_INTERVAL_S": str(settings.sweep_interval_s),
        "RECEIVER_POLL_BUDGET_PER_MIN": str(settings.poll_budget_per_min),
        "RECEIVER_LEASE_S": str(settings.lease_s),
        "RECEIVER_CREATE_REPAIR_AFTER_S": str(settings.create_repair_after_s),
    }
    return {k: v for k, v in env.items() if v}
