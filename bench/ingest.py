"""Webhook ingest throughput against a bare Litestar endpoint, measured in the same run.

Both apps run in the same ASGI server (uvicorn, one process, uvloop + httptools) and are driven
by wrk with the same connections and duration. The receiver gets unique, freshly signed
deliveries (pre-generated, cycled by a Lua script, one slice per wrk thread) and runs on its
default SQLite with synchronous=FULL. Prints requests/s, p50 and p99 for both, and the ratio.

A third figure puts the ratio in context: the intake alone (no HTTP), storing the same
deliveries from as many concurrent callers as wrk has connections, in this process. That is
the most the storage path lets the endpoint reach, whatever the HTTP layer costs.

    .venv/bin/python bench/ingest.py [--duration 10] [--connections 32]

Needs wrk (Debian package `wrk`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

SECRET = "whsec_bench_8jKpQ4nXabc1234abcdef567890"
TOKEN = "bench-admin-token-0123456789abcdefghij"
MASTER_KEY = "q0tJp3xN1W8j2f7Yb6cVd5eRt4sAz3qQwLkMnBvCx1o="
LUA = """
local requests = {}
local counter = 0
function setup(thread)
  thread:set("slot", counter)
  counter = counter + 1
end
function init(args)
  local path, threads = args[1], tonumber(args[2])
  local n = 0
  for line in io.lines(path) do
    if n % threads == slot then
      local sig, body = line:match("^([^\\t]*)\\t(.*)$")
      requests[#requests + 1] = wrk.format("POST", "/webhooks/aurous", {
        ["Content-Type"] = "application/json", ["Aurous-Webhook-Signature"] = sig }, body)
    end
    n = n + 1
  end
  i = 0
end
function request()
  i = i + 1
  return requests[(i - 1) % #requests + 1]
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(kind: str, port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        RECEIVER_DATA_DIR=str(data_dir),
        RECEIVER_ADMIN_TOKEN=TOKEN,
        RECEIVER_MASTER_KEY=MASTER_KEY,
        AUROUS_WEBHOOK_SECRET=SECRET,
        RECEIVER_LOG_FORMAT="text",
    )
    if kind == "receiver":
        subprocess.run(
            [sys.executable, "-m", "receiver", "migrate"], env=env, check=True, capture_output=True
        )
    command = [sys.executable, str(Path(__file__).parent / "_servers.py"), kind, str(port)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{kind} server did not start")


def make_deliveries(path: Path, count: int, secret: str = SECRET) -> None:
    from receiver.webhooks.signing import sign

    now = int(time.time())
    with path.open("w") as out:
        for n in range(count):
            data = {
                "id": f"img_BENCH{n:010d}",
                "object": "inference",
                "status": "succeeded",
                "media_type": "image",
                "created_at": "2026-05-04T10:00:00Z",
                "completed_at": "2026-05-04T10:00:14Z",
                "output_urls": [f"https://api.aurous-labs.com/v1/images/img_BENCH{n:010d}/o/0"],
                "cost": {"amount": 2, "currency": "credit"},
            }
            body = json.dumps(
                {
                    "id": f"evt_BENCH{n:010d}",
                    "type": "image.completed",
                    "created_at": "2026-05-04T10:00:15Z",
                    "synthetic": False,
                    "data": data,
                },
                separators=(",", ":"),
            )
            out.write(f"{sign(body.encode(), [secret], now)}\t{body}\n")


def run_wrk(url: str, args: argparse.Namespace, script: Path, extra: list[str]) -> dict[str, float]:
    command = [
        "wrk",
        "-t",
        str(args.threads),
        "-c",
        str(args.connections),
        "-d",
        f"{args.duration}s",
        "--latency",
        "-s",
        str(script),
        url,
        "--",
        *extra,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "requests": float(re.search(r"(\d+) requests in", output).group(1)),  # type: ignore[union-attr]
        "p50_ms": _latency(output, "50%"),
        "p99_ms": _latency(output, "99%"),
        "non2xx": float(m.group(1)) if (m := re.search(r"Non-2xx.*?(\d+)", output)) else 0.0,
    }


def _latency(output: str, label: str) -> float:
    match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", output)
    assert match, output
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def measure(
    kind: str, args: argparse.Namespace, workdir: Path, deliveries: Path
) -> dict[str, float]:
    port = free_port()
    data_dir = workdir / kind
    server = serve(kind, port, data_dir)
    try:
        script = workdir / "cycle.lua"
        script.write_text(LUA)
        path = "/webhooks/aurous" if kind == "receiver" else "/bare"
        extra = [str(deliveries), str(args.threads)]
        if kind == "bare":
            script = workdir / "bare.lua"
            script.write_text(LUA.replace("/webhooks/aurous", "/bare"))
        warm = argparse.Namespace(**{**vars(args), "duration": 2})
        run_wrk(f"http://127.0.0.1:{port}{path}", warm, script, extra)
        result = run_wrk(f"http://127.0.0.1:{port}{path}", args, script, extra)
    finally:
        server.terminate()
        server.wait(20)
    if kind == "receiver":
        with sqlite3.connect(data_dir / "receiver.db") as db:
            result["stored"] = db.execute(
                "select count(*) from delivery where status='processed'"
            ).fetchone()[0]
            result["sync"] = db.execute("pragma synchronous").fetchone()[0]
    return result


def measure_intake_alone(deliveries: Path, workdir: Path, callers: int, count: int) -> float:
    """Deliveries per second that the intake (verify excluded, store included) commits."""
    bodies = [line.split("\t", 1)[1].rstrip("\n").encode() for line in deliveries.open()]
    data_dir = workdir / "intake-alone"
    data_dir.mkdir()
    return asyncio.run(_intake_alone(bodies[:count], data_dir, callers))


async def _intake_alone(bodies: list[bytes], data_dir: Path, callers: int) -> float:
    from receiver.jobs.tracker import JobTracker
    from receiver.webhooks.envelope import decode_envelope
    from receiver.webhooks.intake import Intake, RequestFacts, VerifiedDelivery
    from receiver.webhooks.signing import Match
    from storage.db import Database
    from storage.migrate import upgrade

    db = Database(f"sqlite:///{data_dir}/receiver.db")
    await upgrade(db)
    intake = Intake(JobTracker(db, output_ttl_s=86_400))
    headers = {"content-type": "application/json"}
    queue = iter(bodies)

    async def caller() -> None:
        for body in queue:
            facts = RequestFacts(datetime.now(UTC), headers, "127.0.0.1", None)
            match = Match(secret_id=None, timestamp=int(time.time()))
            await intake.submit(VerifiedDelivery(body, match, facts, decode_envelope(body)))

    await intake.start()
    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    elapsed = time.perf_counter() - started
    await intake.stop()
    await db.dispose()
    return len(bodies) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--deliveries", type=int, default=120_000)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        workdir = Path(tmp)
        deliveries = workdir / "deliveries.tsv"
        make_deliveries(deliveries, args.deliveries)
        bare = measure("bare", args, workdir, deliveries)
        receiver = measure("receiver", args, workdir, deliveries)
        alone = measure_intake_alone(deliveries, workdir, args.connections, 20_000)
    ratio = receiver["rps"] / bare["rps"]
    print(f"{'endpoint':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>10}")
    for name, row in (("bare Litestar (204)", bare), ("POST /webhooks/aurous", receiver)):
        print(
            f"{name:<22}{row['rps']:>10.0f}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}"
            f"{row['non2xx']:>10.0f}"
        )
    print(
        f"throughput ratio receiver/bare: {ratio:.2f} (target >= 0.50); "
        f"receiver p99 {receiver['p99_ms']:.1f} ms (target <= 25)"
    )
    print(
        f"receiver stored {receiver['stored']:.0f} unique deliveries "
        f"(sent {receiver['requests']:.0f} incl. warm-up excluded), "
        f"sqlite synchronous={receiver['sync']:.0f} (2 = FULL)"
    )
    print(
        f"intake alone, no HTTP ({args.connections} concurrent callers): {alone:.0f} deliveries/s"
        f" = {alone / bare['rps']:.2f} of bare: the storage path's own ceiling"
    )
    if receiver["requests"] > args.deliveries:
        print("note: the run sent more requests than unique deliveries; raise --deliveries")


if __name__ == "__main__":
    main()
