"""Webhook ingest throughput against a bare Litestar endpoint, measured in the same run.

Both apps run in the same ASGI server (uvicorn, one process, uvloop + httptools) and are driven
by wrk with the same connections and duration. The receiver gets unique, freshly signed
deliveries (pre-generated, cycled by a Lua script, one slice per wrk thread) and runs on its
default SQLite with synchronous=FULL. Prints requests/s, p50 and p99 for both, and the ratio.

A third figure puts the ratio in context: the intake alone (no HTTP), storing the same
deliveries from as many concurrent callers as wrk has connections, in this process. That is
the most the storage path lets the endpoint reach, whatever the HTTP layer costs. A last line
sets the two targets against what one process can do on one core: the bare request's CPU plus
the intake alone's CPU per delivery, spent one after the other under one GIL.

    .venv/bin/python bench/ingest.py [--duration 10] [--connections 32]

Needs wrk (Debian package `wrk`).

An A/B of the endpoint between this checkout and another one (an older commit, say), measured
in turns under the same load, prints each turn and the medians:

    git worktree add /tmp/before REV
    .venv/bin/python bench/ingest.py --against /tmp/before --rounds 4

Two more modes drive a real `aurous-receiver serve` (SQLite, default settings) from this process
(asyncio + aiohttp), with a bare Litestar run at the same load first as the floor (skip it with
--no-baseline). Neither needs wrk:

    .venv/bin/python bench/ingest.py --open-loop 200 --seconds 60 [--loop-connections 64]
    .venv/bin/python bench/ingest.py --burst 10000 --burst-connections 256

- open loop: request i is due at start + i/RATE whatever happened to the ones before it, and its
  latency is counted from that due time, not from when it went out: a server that falls behind
  cannot hide its queue (no coordinated omission). The generator prints its own lateness (how
  late each send began) and its CPU, next to the server's, so a reader can tell which one was
  the bottleneck. Target (issue 16): 200/s for 60 s, p99 <= 10 ms, nothing lost.
- burst: N deliveries due at once over C connections; the time until the last answer, the
  latency (from the burst's start) and the answers. Target: 10,000 answered 200 within 10 s.

Both then check that every delivery sent was stored exactly once: through the admin API
(GET /deliveries, every page) while the server runs, and in the SQLite file after it stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import re
import shlex
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import _proc
import httpx

T = TypeVar("T")
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


def serve(
    kind: str, port: int, data_dir: Path, code: Path | None = None
) -> subprocess.Popen[bytes]:
    """`kind`'s server; `code`: run another checkout's receiver (its own modules and
    bench/_servers.py) instead of this one's."""
    env = dict(
        os.environ,
        RECEIVER_DATA_DIR=str(data_dir),
        RECEIVER_ADMIN_TOKEN=TOKEN,
        RECEIVER_MASTER_KEY=MASTER_KEY,
        AUROUS_WEBHOOK_SECRET=SECRET,
        RECEIVER_LOG_FORMAT="text",
    )
    if code is not None:
        env["PYTHONPATH"] = str(code)
    servers = (code / "bench" if code else Path(__file__).parent) / "_servers.py"
    if kind == "receiver":
        subprocess.run(
            [sys.executable, "-m", "receiver", "migrate"],
            env=env,
            check=True,
            capture_output=True,
            cwd=code,
        )
    command = [sys.executable, str(servers), kind, str(port)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL, cwd=code)
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
    with path.open("w") as out:
        for signature, body in signed_deliveries(count, secret):
            out.write(f"{signature}\t{body.decode()}\n")


def signed_deliveries(
    count: int, secret: str = SECRET, *, send_rate: float | None = None, lead_s: float = 0.0
) -> list[tuple[str, bytes]]:
    """`count` unique `image.completed` deliveries, each with its signature header.

    All are signed now, or, with `send_rate`, delivery n at about when it will be sent
    (now + lead_s + n / send_rate), as Aurous signs each one as it sends it: a long open-loop
    run stays inside the receiver's 300 s signature tolerance."""
    from receiver.webhooks.signing import sign

    now = time.time()
    signed: list[tuple[str, bytes]] = []
    for n, body in enumerate(_delivery_bodies(count)):
        at = int(now + lead_s + n / send_rate) if send_rate else int(now)
        signed.append((sign(body, [secret], at), body))
    return signed


def _delivery_bodies(count: int) -> Iterator[bytes]:
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
        envelope = {
            "id": f"evt_BENCH{n:010d}",
            "type": "image.completed",
            "created_at": "2026-05-04T10:00:15Z",
            "synthetic": False,
            "data": data,
        }
        yield json.dumps(envelope, separators=(",", ":")).encode()


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
    kind: str,
    args: argparse.Namespace,
    workdir: Path,
    deliveries: Path,
    *,
    code: Path | None = None,
    label: str | None = None,
) -> dict[str, float]:
    port = free_port()
    data_dir = workdir / (label or kind)
    server = serve(kind, port, data_dir, code)
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
        cpu_before = _proc.cpu_seconds(server.pid)
        result = run_wrk(f"http://127.0.0.1:{port}{path}", args, script, extra)
        cpu = _proc.cpu_seconds(server.pid) - cpu_before
        result["cpu_us"] = cpu / max(result["requests"], 1) * 1e6
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


def measure_intake_alone(
    deliveries: Path, workdir: Path, callers: int, count: int
) -> tuple[float, float]:
    """Deliveries per second that the intake (verify excluded, store included) commits, and the
    CPU it spent per delivery in microseconds (this process, every thread)."""
    bodies = [line.split("\t", 1)[1].rstrip("\n").encode() for line in deliveries.open()]
    data_dir = workdir / "intake-alone"
    data_dir.mkdir()
    return asyncio.run(_intake_alone(bodies[:count], data_dir, callers))


async def _intake_alone(bodies: list[bytes], data_dir: Path, callers: int) -> tuple[float, float]:
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
    started, cpu_started = time.perf_counter(), _proc.self_cpu_seconds()
    await asyncio.gather(*(caller() for _ in range(callers)))
    elapsed, cpu = time.perf_counter() - started, _proc.self_cpu_seconds() - cpu_started
    await intake.stop()
    await db.dispose()
    return len(bodies) / elapsed, cpu / len(bodies) * 1e6


# --- open loop and burst: a real `aurous-receiver serve`, driven from this process -------------


@dataclass
class Shot:
    """One request: when it was due, when the generator began it, when it had a connection,
    when its answer was in (time.perf_counter), and the answer (-1: no answer, see error)."""

    due: float
    began: float = 0.0
    connected: float = 0.0
    done: float = 0.0
    status: int = -1
    answer: bytes = b""
    error: str = ""


@dataclass
class LoadRun:
    shots: list[Shot]
    seconds: float  # from the first due time to the last answer
    generator_cpu_s: float
    server_cpu_s: float
    machine_busy_s: float  # every core, every process: the rest is the other load on the machine
    peak_in_flight: int


@dataclass
class StoredCheck:
    rows: int  # rows GET /deliveries returned, all pages
    stored_once: int  # sent event ids found in exactly one row, processed, no copies counted
    missing: int
    twice: int  # sent event ids in more than one row
    not_processed: int  # sent event ids stored with another status
    copies_counted: int  # the `duplicates` counters added up (each was sent once)
    extra: int  # rows for nothing this run sent
    sqlite_rows: int = -1
    sqlite_distinct: int = -1

    def nothing_lost(self, sent: int) -> bool:
        return (
            self.stored_once == sent
            and not (self.missing or self.twice or self.not_processed or self.extra)
            and self.sqlite_rows == self.sqlite_distinct == sent
        )


def percentile(values: list[float], share: float) -> float:
    """Nearest rank: the smallest value with at least `share` of the values at or below it."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1))]


def receiver_env(data_dir: Path) -> dict[str, str]:
    """This process's environment without any RECEIVER_/AUROUS_ setting of the caller's (the
    defaults are what is measured), plus the bench's token, key and webhook secret."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECEIVER_", "AUROUS_"))}
    return env | {
        "RECEIVER_DATA_DIR": str(data_dir),
        "RECEIVER_ADMIN_TOKEN": TOKEN,
        "RECEIVER_MASTER_KEY": MASTER_KEY,
        "AUROUS_WEBHOOK_SECRET": SECRET,
        "RECEIVER_LOG_FORMAT": "text",
    }


def serve_cli(
    port: int, data_dir: Path, log: Path, serve_args: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """`aurous-receiver serve` as an operator runs it (it migrates the database on start),
    ready when /readyz says so."""
    command = [sys.executable, "-m", "receiver", "serve", "--port", str(port), *serve_args]
    return start_serve(command, receiver_env(data_dir), port, log)


def start_serve(
    command: Sequence[str], env: dict[str, str], port: int, log: Path
) -> subprocess.Popen[bytes]:
    """Start a `serve` command (its output into `log`); returned once its /readyz says 200."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"aurous-receiver serve did not start:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(30)


async def _fire(
    session: Any,
    url: str,
    slots: asyncio.Semaphore,
    delivery: tuple[str, bytes],
    shot: Shot,
    in_flight: list[int],
) -> None:
    clock = time.perf_counter  # uvloop's loop.time() counts whole milliseconds
    shot.began = clock()
    signature, body = delivery
    headers = {"Content-Type": "application/json", "Aurous-Webhook-Signature": signature}
    async with slots:
        shot.connected = clock()
        in_flight[0] += 1
        in_flight[1] = max(in_flight[1], in_flight[0])
        try:
            async with session.post(url, data=body, headers=headers) as response:
                shot.answer = await response.read()
                shot.status = response.status
        except Exception as exc:  # counted and named in the report, never raised
            shot.error = type(exc).__name__
        finally:
            in_flight[0] -= 1
            shot.done = clock()


async def drive(
    url: str,
    deliveries: list[tuple[str, bytes]],
    *,
    rate: float | None,
    connections: int,
    server_pid: int,
) -> LoadRun:
    """Send `deliveries` on a fixed schedule (delivery i due at start + i/rate; all due at the
    start when `rate` is None) over at most `connections` connections, and wait for every
    answer. A request that finds every connection busy waits for one: that wait is the
    server's backlog and is counted in its latency, which runs from the due time."""
    import aiohttp

    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(connections)
    in_flight = [0, 0]
    # idle connections are dropped before the receiver's 5 s keep-alive would close them
    connector = aiohttp.TCPConnector(limit=connections, keepalive_timeout=4)
    timeout = aiohttp.ClientTimeout(total=120)
    # The generator must not stall: no cyclic collection pauses during the run (the garbage of
    # a run is freed by reference counting), and no gather() over every task at the end (its
    # set-up holds the loop for tens of ms with thousands of tasks): each task says it is done.
    gc.collect()
    gc.disable()
    running: set[asyncio.Task[None]] = set()
    all_done = asyncio.Event()

    def finished(task: asyncio.Task[None]) -> None:
        running.discard(task)
        if not running and len(shots) == len(deliveries):
            all_done.set()

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        shots: list[Shot] = []
        cpu0, server0 = _proc.self_cpu_seconds(), _proc.cpu_seconds(server_pid)
        busy0 = _proc.machine_busy_seconds()
        start = time.perf_counter() + 0.05
        try:
            for i, delivery in enumerate(deliveries):
                due = start + i / rate if rate else start
                if (wait := due - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                shot = Shot(due)
                shots.append(shot)
                task = loop.create_task(_fire(session, url, slots, delivery, shot, in_flight))
                running.add(task)
                task.add_done_callback(finished)
            if running:
                await all_done.wait()
        finally:
            gc.enable()
        cpu1, server1 = _proc.self_cpu_seconds(), _proc.cpu_seconds(server_pid)
        busy1 = _proc.machine_busy_seconds()
    seconds = max(s.done for s in shots) - start
    return LoadRun(shots, seconds, cpu1 - cpu0, server1 - server0, busy1 - busy0, in_flight[1])


def run_on_uvloop(work: Coroutine[Any, Any, T]) -> T:
    """`work` on its own event loop (uvloop when installed, as the server's is)."""
    try:
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(work)


def check_stored(base_url: str, sent: list[tuple[str, bytes]]) -> StoredCheck:
    """Every row GET /deliveries lists (admin token, all pages) against the event ids sent."""
    expected = {json.loads(body)["id"] for _, body in sent}
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        while True:
            params: dict[str, Any] = {"limit": 200} | ({"cursor": cursor} if cursor else {})
            response = client.get("/deliveries", params=params)
            response.raise_for_status()
            page = response.json()
            rows += page["data"]
            if not page["has_more"]:
                break
            cursor = page["next_cursor"]
    seen = Counter(row["event_id"] for row in rows)
    good = {
        row["event_id"]
        for row in rows
        if row["status"] == "processed" and row["duplicates"] == 0 and seen[row["event_id"]] == 1
    }
    return StoredCheck(
        rows=len(rows),
        stored_once=len(good & expected),
        missing=len(expected - seen.keys()),
        twice=sum(1 for event, n in seen.items() if n > 1 and event in expected),
        not_processed=len({r["event_id"] for r in rows if r["status"] != "processed"} & expected),
        copies_counted=sum(row["duplicates"] for row in rows),
        extra=sum(n for event, n in seen.items() if event not in expected),
    )


def check_sqlite(path: Path, check: StoredCheck) -> None:
    """The same question asked of the database file, once the server has stopped."""
    with sqlite3.connect(path) as db:
        rows, distinct = db.execute(
            "select count(*), count(distinct event_id) from delivery where status='processed'"
        ).fetchone()
    check.sqlite_rows, check.sqlite_distinct = rows, distinct


def measure_load(
    kind: str,
    workdir: Path,
    warm: list[tuple[str, bytes]],
    load: list[tuple[str, bytes]],
    *,
    rate: float | None,
    connections: int,
    serve_args: list[str],
) -> tuple[LoadRun, StoredCheck | None]:
    """A warm-up (its own deliveries, not measured), then the load, against a fresh server:
    `receiver` (aurous-receiver serve, fresh SQLite) or `bare` (Litestar, 204, stores nothing)."""
    port = free_port()
    data_dir = workdir / f"{kind}-{port}"
    if kind == "receiver":
        server = serve_cli(port, data_dir, workdir / f"{kind}-{port}.log", serve_args)
        path = "/webhooks/aurous"
    else:
        server = serve("bare", port, data_dir)
        path = "/bare"
    check = None
    try:
        url = f"http://127.0.0.1:{port}{path}"
        if warm:
            run_on_uvloop(
                drive(url, warm, rate=rate, connections=connections, server_pid=server.pid)
            )
        result = run_on_uvloop(
            drive(url, load, rate=rate, connections=connections, server_pid=server.pid)
        )
        if kind == "receiver":
            check = check_stored(f"http://127.0.0.1:{port}", warm + load)
    finally:
        stop(server)
    if check is not None:
        check_sqlite(data_dir / "receiver.db", check)
    return result, check


def _ms(value: float) -> str:
    return f"{value * 1000:>9.2f}"


def report_load(label: str, run: LoadRun, *, rate: float | None, target_ms: float | None) -> None:
    shots = run.shots
    latency = [s.done - s.due for s in shots]
    lateness = [s.began - s.due for s in shots]
    conn_wait = [s.connected - s.began for s in shots]
    ok = sum(1 for s in shots if s.status == 200)
    other = Counter(s.status for s in shots if s.status not in (200, -1))
    errors = Counter(s.error for s in shots if s.status == -1)
    accepted = sum(1 for s in shots if s.answer == b'{"status":"accepted"}')
    print(f"\n{label}")
    print(f"  {'':<34}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name, values in (
        ("latency from due time", latency),
        ("latency from send began", [s.done - s.began for s in shots]),
        ("generator lateness (send began)", lateness),
        ("waiting for a free connection", conn_wait),
    ):
        cells = "".join(_ms(percentile(values, q)) for q in (0.5, 0.9, 0.99, 1.0))
        print(f"  {name:<34}{cells}")
    print(
        f"  sent {len(shots)}, answered 200: {ok} ({accepted} 'accepted'), "
        f"other status: {dict(other) or 0}, errors: {dict(errors) or 0}"
    )
    achieved = len(shots) / run.seconds
    print(
        f"  last answer {run.seconds:.2f} s after the first due time"
        + (f" ({achieved:.1f}/s answered, {rate:g}/s offered)" if rate else f" ({achieved:.0f}/s)")
        + f"; at most {run.peak_in_flight} requests in flight"
    )
    late = sum(1 for value in lateness if value > 0.001)
    others = run.machine_busy_s - run.generator_cpu_s - run.server_cpu_s
    print(
        f"  CPU over the run, % of one core: generator {run.generator_cpu_s / run.seconds:.1%}, "
        f"server {run.server_cpu_s / run.seconds:.1%}, everything else on the machine "
        f"{max(0.0, others) / run.seconds:.1%} ({os.cpu_count()} cores); server CPU per "
        f"request {run.server_cpu_s / len(shots) * 1000:.2f} ms; {late} sends began > 1 ms late"
    )
    if target_ms is not None:
        p99 = percentile(latency, 0.99) * 1000
        verdict = "met" if p99 <= target_ms else "MISSED"
        print(f"  target p99 <= {target_ms:g} ms: {verdict} ({p99:.2f} ms)")


def report_stored(check: StoredCheck, sent: int) -> bool:
    lost = not check.nothing_lost(sent)
    print(
        f"  stored (GET /deliveries, {check.rows} rows): {check.stored_once} of {sent} sent "
        f"(warm-up included) stored exactly once; missing {check.missing}, twice {check.twice}, "
        f"other status {check.not_processed}, copies counted {check.copies_counted}, "
        f"rows nobody sent {check.extra}"
    )
    print(
        f"  SQLite after stop: {check.sqlite_rows} processed rows, "
        f"{check.sqlite_distinct} distinct event ids"
    )
    print(f"  nothing lost: {'LOST OR DOUBLED DELIVERIES' if lost else 'yes'}")
    return not lost


def open_loop_mode(args: argparse.Namespace, workdir: Path) -> bool:
    rate, seconds = args.open_loop, args.seconds
    warm_n, load_n = round(rate * args.warm_up), round(rate * seconds)
    signed = signed_deliveries(warm_n + load_n, send_rate=rate, lead_s=3)
    warm, load = signed[:warm_n], signed[warm_n:]
    setting = (
        f"{rate:g} deliveries/s for {seconds:g} s ({load_n} requests), at most "
        f"{args.loop_connections} connections, after a {args.warm_up:g} s warm-up at that rate"
    )
    print(f"open loop: {setting}; load average {os.getloadavg()[0]:.2f}")
    if not args.no_baseline:
        bare, _ = measure_load(
            "bare",
            workdir,
            warm,
            load,
            rate=rate,
            connections=args.loop_connections,
            serve_args=[],
        )
        report_load(
            "bare Litestar (204), same schedule: the floor", bare, rate=rate, target_ms=None
        )
        # signed again, as they will now be sent: a long run stays within the tolerance
        signed = signed_deliveries(warm_n + load_n, send_rate=rate, lead_s=3)
        warm, load = signed[:warm_n], signed[warm_n:]
    run, check = measure_load(
        "receiver",
        workdir,
        warm,
        load,
        rate=rate,
        connections=args.loop_connections,
        serve_args=args.serve_args,
    )
    report_load(
        "POST /webhooks/aurous (aurous-receiver serve, SQLite)", run, rate=rate, target_ms=10
    )
    assert check is not None
    fine = report_stored(check, len(signed))
    latency = [s.done - s.due for s in run.shots]
    print(
        f"open loop {rate:g}/s for {seconds:g} s: p50 {percentile(latency, 0.5) * 1000:.1f}, "
        f"p99 {percentile(latency, 0.99) * 1000:.1f}, "
        f"max {max(latency) * 1000:.1f} ms from due time (target p99 <= 10); "
        f"{sum(1 for s in run.shots if s.status == 200)}/{len(run.shots)} answered 200; "
        f"generator lateness p99 "
        f"{percentile([s.began - s.due for s in run.shots], 0.99) * 1000:.1f} ms; "
        f"nothing lost: {'yes' if fine else 'NO'}"
    )
    return fine


def burst_mode(args: argparse.Namespace, workdir: Path) -> bool:
    count, connections = args.burst, args.burst_connections
    warm_n = min(1000, count)
    signed = signed_deliveries(warm_n + count)
    warm, load = signed[:warm_n], signed[warm_n:]
    print(
        f"\nburst: {count} deliveries due at once over {connections} connections, after a "
        f"{warm_n}-delivery warm-up burst; load average {os.getloadavg()[0]:.2f}"
    )
    if not args.no_baseline:
        bare, _ = measure_load(
            "bare", workdir, warm, load, rate=None, connections=connections, serve_args=[]
        )
        report_load("bare Litestar (204), same burst: the floor", bare, rate=None, target_ms=None)
    run, check = measure_load(
        "receiver",
        workdir,
        warm,
        load,
        rate=None,
        connections=connections,
        serve_args=args.serve_args,
    )
    report_load(
        "POST /webhooks/aurous (aurous-receiver serve, SQLite)", run, rate=None, target_ms=None
    )
    answered = sum(1 for s in run.shots if s.status == 200)
    verdict = "met" if answered == count and run.seconds <= 10 else "MISSED"
    print(
        f"  target all {count} answered 200 within 10 s: {verdict} "
        f"({answered} answered 200, the last after {run.seconds:.2f} s)"
    )
    assert check is not None
    fine = report_stored(check, len(signed))
    print(
        f"burst {count} over {connections} connections: all answered after {run.seconds:.2f} s "
        f"(target <= 10), max latency {max(s.done - s.due for s in run.shots) * 1000:.0f} ms; "
        f"{answered}/{count} answered 200; nothing lost: {'yes' if fine else 'NO'}"
    )
    return fine


def against_mode(args: argparse.Namespace, workdir: Path, deliveries: Path) -> None:
    """This checkout's endpoint and another's (`--against DIR`), interleaved, round after
    round, under the same wrk load: the A/B that tells whether a change made ingest slower."""
    sides = {"this checkout": None, f"{args.against}": Path(args.against).resolve()}
    figures: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    print(f"{'round':<7}{'side':<40}{'req/s':>9}{'p99 ms':>9}{'server CPU us/req':>19}")
    for round_number in range(1, args.rounds + 1):
        for n, (name, code) in enumerate(sides.items()):
            label = f"ab-{round_number}-{n}"
            row = measure("receiver", args, workdir, deliveries, code=code, label=label)
            figures[name].append(row)
            print(
                f"{round_number:<7}{name[-39:]:<40}{row['rps']:>9.0f}{row['p99_ms']:>9.1f}"
                f"{row['cpu_us']:>19.0f}"
            )
    for name, rows in figures.items():
        print(
            f"median {name[-32:]:<33}{statistics.median(r['rps'] for r in rows):>9.0f}"
            f"{statistics.median(r['p99_ms'] for r in rows):>9.1f}"
            f"{statistics.median(r['cpu_us'] for r in rows):>19.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--deliveries", type=int, default=120_000)
    parser.add_argument(
        "--against",
        metavar="DIR",
        help="A/B: another checkout of the project (e.g. `git worktree add DIR REV`), its "
        "endpoint measured in turns with this one's",
    )
    parser.add_argument("--rounds", type=int, default=3, help="with --against: how many turns")
    loads = parser.add_argument_group("open loop and burst (no wrk)")
    loads.add_argument(
        "--open-loop", type=float, metavar="RATE", help="deliveries/s on a fixed schedule"
    )
    loads.add_argument("--seconds", type=float, default=60, help="open loop: how long")
    loads.add_argument("--warm-up", type=float, default=2, help="open loop: seconds, not counted")
    loads.add_argument("--loop-connections", type=int, default=64, help="open loop: at most")
    loads.add_argument("--burst", type=int, metavar="N", help="N deliveries due at once")
    loads.add_argument("--burst-connections", type=int, default=256)
    loads.add_argument(
        "--no-baseline", action="store_true", help="skip the bare Litestar run at the same load"
    )
    loads.add_argument(
        "--serve-args",
        type=shlex.split,
        default=[],
        metavar="'ARGS'",
        help="more arguments for `aurous-receiver serve`, in one quoted string",
    )
    args = parser.parse_args()
    if args.open_loop or args.burst:
        with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
            fine = True
            if args.open_loop:
                fine = open_loop_mode(args, Path(tmp)) and fine
            if args.burst:
                fine = burst_mode(args, Path(tmp)) and fine
        raise SystemExit(0 if fine else 1)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        workdir = Path(tmp)
        deliveries = workdir / "deliveries.tsv"
        make_deliveries(deliveries, args.deliveries)
        if args.against:
            against_mode(args, workdir, deliveries)
            return
        bare = measure("bare", args, workdir, deliveries)
        receiver = measure("receiver", args, workdir, deliveries)
        alone, alone_cpu_us = measure_intake_alone(deliveries, workdir, args.connections, 20_000)
    ratio = receiver["rps"] / bare["rps"]
    print(
        f"{'endpoint':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>10}"
        f"{'server CPU us/req':>19}"
    )
    for name, row in (("bare Litestar (204)", bare), ("POST /webhooks/aurous", receiver)):
        print(
            f"{name:<22}{row['rps']:>10.0f}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}"
            f"{row['non2xx']:>10.0f}{row['cpu_us']:>19.0f}"
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
        f" = {alone / bare['rps']:.2f} of bare: the storage path's own ceiling; the endpoint"
        f" reaches {receiver['rps'] / alone:.2f} of it (target >= 0.80)"
    )
    endpoint_cores = receiver["cpu_us"] * receiver["rps"] / 1e6
    print_one_process_bound(bare["cpu_us"], alone_cpu_us, endpoint_cores)
    if receiver["requests"] > args.deliveries:
        print("note: the run sent more requests than unique deliveries; raise --deliveries")


def print_one_process_bound(http_us: float, storage_us: float, endpoint_cores: float) -> None:
    """What a single-process endpoint cannot pass on one core, whatever its own code costs.

    A delivery costs at least a bare request (HTTP) plus what the intake alone spent on it
    (storage). The server holds one GIL, so on one core the two run one after the other: at most
    1 / (http + storage) deliveries/s, which is storage / (http + storage) of the intake alone
    and http / (http + storage) of bare. (SQLite's own C code can run beside the loop without the
    GIL; the endpoint's measured cores say how much that happened.)"""
    total = http_us + storage_us
    print(
        f"one process on one core: a delivery costs at least {http_us:.0f} us (a bare request) + "
        f"{storage_us:.0f} us (the intake alone's CPU per delivery) = {total:.0f} us, so an "
        f"endpoint that spent nothing of its own would reach at most {storage_us / total:.2f} "
        f"of the intake alone and {http_us / total:.2f} of bare; the endpoint used "
        f"{endpoint_cores:.2f} of a core"
    )


if __name__ == "__main__":
    main()
