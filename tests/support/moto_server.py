"""moto's real S3 API server, in a child process on 127.0.0.1, for the S3 blob store tests.

A child process rather than `ThreadedMotoServer` in the test process: moto keeps every
object in its own memory, which would swamp the RSS bounds the tests measure, and it
would share the GIL with the code under test. The child exits when its stdin closes, so
it dies with the test run even after a kill -9.
"""

from __future__ import annotations

import re
import select
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

import httpx

__all__ = ["MotoS3", "moto_s3_server"]

_CHILD = """
import logging, sys
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer("127.0.0.1", 0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


@dataclass(frozen=True)
class MotoS3:
    endpoint: str

    def env(self) -> dict[str, str]:
        """Fake credentials: moto accepts any, and they never touch os.environ."""
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing-secret",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"blobs-{uuid.uuid4().hex[:12]}"
        response = httpx.put(f"{self.endpoint}/{name}", timeout=10)
        response.raise_for_status()
        return name

    def object_keys(self, bucket: str) -> list[str]:
        """Every key in the bucket, read straight from the server (first 1000)."""
        response = httpx.get(f"{self.endpoint}/{bucket}?list-type=2", timeout=10)
        response.raise_for_status()
        return sorted(re.findall(r"<Key>([^<]*)</Key>", response.text))

    def open_multipart_uploads(self, bucket: str) -> int:
        response = httpx.get(f"{self.endpoint}/{bucket}?uploads", timeout=10)
        response.raise_for_status()
        return response.text.count("<Upload>")


@contextmanager
def moto_s3_server(timeout: float = 30.0) -> Iterator[MotoS3]:
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        try:
            port = _read_port(child, errors, timeout)
            yield MotoS3(f"http://127.0.0.1:{port}")
        finally:
            _stop(child)


def _read_port(child: subprocess.Popen[str], errors: IO[bytes], timeout: float) -> int:
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], timeout)
    line = child.stdout.readline() if ready else ""
    if not line.strip().isdigit():
        raise RuntimeError(f"moto server did not start: {_tail(errors)}")
    return int(line)


def _tail(errors: IO[bytes]) -> str:
    errors.seek(0)
    return errors.read().decode(errors="replace")[-2000:] or "no output"


def _stop(child: subprocess.Popen[str]) -> None:
    if child.stdin is not None:
        child.stdin.close()
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
