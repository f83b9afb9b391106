"""Archive throughput against curl, measured in the same run on the same simulator output.

Downloads one 200 MB simulator video with `curl -o` and through the real archiver (claim,
stream, hash, spool, move into the local blob store, mark archived) and prints MB/s for both
and the ratio. Runs alternate; the median of each is reported.

Two more figures say where the ceiling is on this machine: the same work done by C tools
(`curl | tee FILE | openssl dgst -sha256`, then fsync), and sha256 alone over memory.

    .venv/bin/python bench/archive.py [--size-mb 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from receiver.archive.archiver import ArchiveConfig, Archiver
from receiver.archive.fetch import HostPolicy
from receiver.generation import decode_generation
from receiver.jobs.lifecycle import Observation
from receiver.jobs.replica import Replica
from receiver.jobs.tracker import JobTracker
from storage.blobs import BlobStore
from storage.db import Database
from storage.migrate import upgrade
from storage.types import utcnow

API_KEY = "al_live_bench"
C_TOOLS = "curl | tee | openssl sha256, fsync"


def start_simulator(port: int, size: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "simulator",
        "--port",
        str(port),
        "--api-key",
        API_KEY,
        "--time-scale",
        "1000",
        "--video-size",
        str(size),
        "--no-rate-limits",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/loras", headers={"X-Api-Key": API_KEY})
            return process
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit("simulator did not start")


def make_video(base: str) -> bytes:
    headers = {"X-Api-Key": API_KEY}
    created = httpx.post(
        f"{base}/v1/videos", json={"prompt": "bench", "duration": 2}, headers=headers
    ).json()
    while True:
        body = httpx.get(f"{base}/v1/images/{created['id']}", headers=headers)
        if body.json()["status"] == "succeeded":
            return body.content
        time.sleep(0.05)


def curl(url: str, target: Path) -> list[str]:
    return ["curl", "-sSf", "-o", str(target), url]


def c_tools(url: str, target: Path) -> list[str]:
    """Download, hash and write like the archiver does, with C tools."""
    source, sink = shlex.quote(url), shlex.quote(str(target))
    return [
        "bash",
        "-o",
        "pipefail",
        "-c",
        f"curl -sSf {source} | tee {sink} | openssl dgst -sha256",
    ]


def time_download(command: list[str], target: Path, *, durable: bool = False) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    if durable:  # what the archiver also pays before it may call an output archived
        with target.open("rb") as handle:
            os.fsync(handle.fileno())
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def sha256_rate(total: int = 400 << 20) -> float:
    """MB/s of hashlib's sha256 over 4 MiB buffers already in memory (one core)."""
    buffer, hasher = os.urandom(4 << 20), hashlib.sha256()
    started = time.perf_counter()
    for _ in range(total // len(buffer)):
        hasher.update(buffer)
    return total / (time.perf_counter() - started) / 1e6


async def time_archiver(generation_body: bytes, base: str, workdir: Path) -> float:
    data = workdir / "receiver"
    shutil.rmtree(data, ignore_errors=True)
    db = Database(f"sqlite+aiosqlite:///{data}/receiver.db")
    await upgrade(db)
    generation = decode_generation(generation_body)
    tracker = JobTracker(db, output_ttl_s=86400)
    await tracker.observe([Observation(generation, "poll", utcnow())])
    async with httpx.AsyncClient(timeout=120) as http:
        archiver = Archiver(
            Replica(db, tracker, "bench"),
            BlobStore.from_url((data / "media").as_uri()),
            http,
            ArchiveConfig(policy=HostPolicy.for_base(base), spool_dir=data / "spool"),
        )
        started = time.perf_counter()
        outcome = await archiver.run_until_idle()
        elapsed = time.perf_counter() - started
    await db.dispose()
    assert outcome.archived == 1, outcome
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("curl"):
        raise SystemExit("curl is needed")
    size = args.size_mb * 1_000_000
    port = 18000 + os.getpid() % 1000
    simulator = start_simulator(port, size)
    base = f"http://127.0.0.1:{port}"
    try:
        generation_body = make_video(base)
        url = decode_generation(generation_body).output_sources()[0]
        with tempfile.TemporaryDirectory(prefix="bench-archive-") as tmp:
            workdir = Path(tmp)
            curl_s, synced_s, tools_s, archive_s = [], [], [], []
            for _ in range(args.runs):
                target = workdir / "download.out"
                curl_s.append(time_download(curl(url, target), target))
                synced_s.append(time_download(curl(url, target), target, durable=True))
                if shutil.which("openssl"):
                    tools_s.append(time_download(c_tools(url, target), target, durable=True))
                archive_s.append(asyncio.run(time_archiver(generation_body, base, workdir)))
    finally:
        simulator.send_signal(signal.SIGINT)
        simulator.wait(20)
    rates = {
        name: size / statistics.median(times) / 1e6
        for name, times in (
            ("curl -o", curl_s),
            ("curl -o, then fsync", synced_s),
            (C_TOOLS, tools_s),
            ("archiver (hash, fsync, store)", archive_s),
        )
        if times
    }
    print(f"{'path':<34}{'MB/s':>10}")
    for name, rate in rates.items():
        print(f"{name:<34}{rate:>10.1f}")
    archiver = rates["archiver (hash, fsync, store)"]
    print(
        f"ratio archiver/curl: {archiver / rates['curl -o']:.2f} (target >= 0.90); "
        f"archiver/(curl + fsync): {archiver / rates['curl -o, then fsync']:.2f}; "
        f"{args.size_mb} MB, {args.runs} runs each"
    )
    if C_TOOLS in rates:
        tools = rates[C_TOOLS] / rates["curl -o"]
        print(f"C tools doing the archiver's work reach {tools:.2f} of curl")
    sha = sha256_rate()
    print(
        f"sha256 alone: {sha:.0f} MB/s on one core; hashing every byte costs "
        f"{rates['curl -o'] / sha:.2f}x curl's whole time per byte"
    )


if __name__ == "__main__":
    main()
