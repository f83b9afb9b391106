"""The attacks of the hardening report against a real `serve`: slow or huge headers, stalled
bodies, and more connections than the process can hold. Each is answered or cut off by the
receiver itself, and a genuine signed delivery still gets through meanwhile."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing
from pathlib import Path

import httpx
import pytest

from receiver.webhooks.signing import sign
from tests.conftest import TEST_SECRET, make_settings
from tests.support.aurous import generation
from tests.support.harness import ReceiverProcess, free_port

LIMITS = {
    "RECEIVER_HEADER_TIMEOUT_S": "1",
    "RECEIVER_BODY_TIMEOUT_S": "1.5",
    "RECEIVER_MAX_HEADER_BYTES": "16384",
    "RECEIVER_MAX_CONNECTIONS": "60",
    "RECEIVER_BODY_BUFFER_BYTES": str(1 << 20),
}


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReceiverProcess]:
    data = tmp_path_factory.mktemp("limits")
    settings = make_settings(data, f"sqlite+aiosqlite:///{data}/receiver.db", background=False)
    process = ReceiverProcess(settings, free_port(), **LIMITS)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def connect(receiver: ReceiverProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", receiver.port), timeout=5)


def answer_of(sock: socket.socket) -> bytes:
    """What the server sent before it closed the connection (or within the socket timeout)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (TimeoutError, ConnectionResetError):
        pass
    return b"".join(chunks)


def genuine_delivery(receiver: ReceiverProcess, job_id: str) -> httpx.Response:
    body = json.dumps(
        {"id": f"evt_{job_id}", "type": "image.completed", "data": generation(job_id)}
    ).encode()
    headers = {"Aurous-Webhook-Signature": sign(body, [TEST_SECRET], int(time.time()))}
    return httpx.post(f"{receiver.url}/webhooks/aurous", content=body, headers=headers, timeout=5)


def test_headers_that_never_finish_are_cut_off(receiver: ReceiverProcess) -> None:
    with closing(connect(receiver)) as sock:
        sock.sendall(b"POST /webhooks/aurous HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        started = time.monotonic()
        answer = answer_of(sock)
    assert answer.startswith(b"HTTP/1.1 408")
    assert time.monotonic() - started < 4


def test_a_header_block_over_the_limit_is_refused_without_being_read_whole(
    receiver: ReceiverProcess,
) -> None:
    with closing(connect(receiver)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        try:
            while sent < 8 << 20:  # the server stops reading long before this
                sock.sendall(b"a" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = answer_of(sock)
    assert sent < 8 << 20 or answer.startswith(b"HTTP/1.1 431")
    assert genuine_delivery(receiver, "img_after_big_header").status_code == 200


def test_a_stalled_body_gets_408_and_the_next_delivery_is_fine(receiver: ReceiverProcess) -> None:
    with closing(connect(receiver)) as sock:
        sock.sendall(
            b"POST /webhooks/aurous HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000\r\n\r\n" + b"{" * 1000
        )
        answer = answer_of(sock)
    assert answer.startswith(b"HTTP/1.1 408")
    assert b'"code":"request_timeout"' in answer and b"receiver-request-id" in answer.lower()
    assert genuine_delivery(receiver, "img_after_stall").status_code == 200


def test_bodies_together_cannot_take_the_memory_of_genuine_deliveries(
    receiver: ReceiverProcess,
) -> None:
    with ExitStack() as stack:
        answers = []
        for _ in range(4):  # each wants 600 KiB of a 1 MiB budget
            sock = stack.enter_context(closing(connect(receiver)))
            sock.sendall(
                b"POST /webhooks/aurous HTTP/1.1\r\nHost: x\r\nContent-Length: 900000\r\n\r\n"
                + b" " * 600_000
            )
            sock.settimeout(0.5)
            answers.append(answer_of(sock))
        assert any(a.startswith(b"HTTP/1.1 503") for a in answers), answers
        assert genuine_delivery(receiver, "img_beside_big_bodies").status_code == 200


def test_connections_beyond_the_limit_are_refused_and_idle_ones_do_not_starve_deliveries(
    receiver: ReceiverProcess,
) -> None:
    with ExitStack() as stack:
        idle = [stack.enter_context(closing(connect(receiver))) for _ in range(60)]
        time.sleep(0.2)
        with closing(connect(receiver)) as extra:
            assert answer_of(extra).startswith(b"HTTP/1.1 503")
        # idle connections that never send a request are closed after the header timeout
        time.sleep(1.5)
        assert genuine_delivery(receiver, "img_after_idle").status_code == 200
        assert all(answer_of(sock).startswith(b"HTTP/1.1 408") for sock in idle[:5])


def test_serve_refuses_a_limit_that_is_not_a_number(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "RECEIVER_DATA_DIR": str(tmp_path), "RECEIVER_HEADER_TIMEOUT_S": "soon"}
    done = subprocess.run(
        [sys.executable, "-m", "receiver", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0 and "RECEIVER_HEADER_TIMEOUT_S" in done.stderr
    assert "Traceback" not in done.stderr
