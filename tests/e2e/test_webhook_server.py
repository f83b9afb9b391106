"""The webhook endpoint in a real uvicorn server: concurrent duplicates and a hard kill."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from receiver.settings import Settings
from receiver.web.app import create_app
from tests.conftest import ADMIN_TOKEN, MASTER_KEY, TEST_SECRET
from tests.support.aurous import endpoint_event, generation, headers
from tests.support.live_server import live_server

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_fifty_concurrent_copies_are_processed_once(settings: Settings) -> None:
    body = endpoint_event(generation("img_concurrent"), event_id="evt_concurrent")
    with live_server(create_app(settings)) as server:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:
            responses = await asyncio.gather(
                *[
                    client.post("/webhooks/aurous", content=body, headers=headers(body))
                    for _ in range(50)
                ]
            )
            outcomes = Counter(r.json()["status"] for r in responses)
            events = (await client.get("/jobs/img_concurrent/events", headers=AUTH)).json()
            stored = (await client.get("/deliveries", headers=AUTH, params={"limit": 100})).json()
    assert {r.status_code for r in responses} == {200}
    assert outcomes == {"accepted": 1, "duplicate": 49}
    assert len(events["data"]) == 1
    assert [(d["status"], d["duplicates"]) for d in stored["data"]] == [("processed", 49)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        RECEIVER_DATA_DIR=str(data_dir),
        RECEIVER_ADMIN_TOKEN=ADMIN_TOKEN,
        RECEIVER_MASTER_KEY=MASTER_KEY,
        AUROUS_WEBHOOK_SECRET=TEST_SECRET,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "receiver", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"server did not start: {process.stderr.read() if process.stderr else ''}")


def test_an_acknowledged_delivery_survives_kill_9(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    body = endpoint_event(generation("img_durable"), event_id="evt_durable")
    server = _start(tmp_path / "data", port)
    try:
        response = httpx.post(f"{url}/webhooks/aurous", content=body, headers=headers(body))
        assert response.json() == {"status": "accepted"}
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(10)

    server = _start(tmp_path / "data", port)
    try:
        job = httpx.get(f"{url}/jobs/img_durable", headers=AUTH).json()
        again = httpx.post(f"{url}/webhooks/aurous", content=body, headers=headers(body))
    finally:
        server.terminate()
        server.wait(10)
    assert job["status"] == "succeeded"
    assert len(job["outputs"]) == 1
    assert again.json() == {"status": "duplicate"}
