"""Webhook ingest with `serve --workers 1` and `--workers 2`, side by side, on SQLite and on
PostgreSQL, with the CPU each side used (the server's process tree, and wrk's own).

Each run gets a fresh database and unique, freshly signed deliveries (the ones of
bench/ingest.py), driven by wrk with the same connections and duration. A worker is a whole
receiver: its own event loop, database writer and background ticker, sharing the port with
the others (the kernel spreads the connections) and the background work through leases.

    .venv/bin/python bench/workers.py [--duration 10] [--connections 32] [--no-postgres]

Needs wrk (Debian package `wrk`).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _pg import database
from ingest import LUA, MASTER_KEY, SECRET, TOKEN, free_port, make_deliveries, run_wrk


@contextmanager
def receiver(database_url: str, data_dir: Path, workers: int) -> Iterator[tuple[int, int]]:
    """A migrated `serve --workers N` on a free port: (port, pid of the serving process)."""
    env = dict(
        os.environ,
        RECEIVER_DATA_DIR=str(data_dir),
        RECEIVER_DATABASE_URL=database_url,
        RECEIVER_ADMIN_TOKEN=TOKEN,
        RECEIVER_MASTER_KEY=MASTER_KEY,
        AUROUS_WEBHOOK_SECRET=SECRET,
    )
    port = free_port()
    command = [sys.executable, "-m", "receiver", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", str(workers)], env=env, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            raise SystemExit("the receiver did not start")
        time.sleep(2)  # every worker up, not just the first
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(30)


def tree_cpu_s(pid: int) -> float:
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def measure(
    database_url: str, workers: int, args: argparse.Namespace, workdir: Path
) -> dict[str, float]:
    deliveries, script = workdir / "deliveries.tsv", workdir / "cycle.lua"
    script.write_text(LUA)
    make_deliveries(deliveries, args.deliveries)
    with receiver(database_url, workdir / f"data-{workers}", workers) as (port, pid):
        url = f"http://127.0.0.1:{port}/webhooks/aurous"
        server_before = tree_cpu_s(pid)
        wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        figures = run_wrk(url, args, script, [str(deliveries), str(args.threads)])
        wall = time.monotonic() - started
        wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        figures["server_cpu"] = (tree_cpu_s(pid) - server_before) / wall
        wrk_cpu = (wrk_after.ru_utime + wrk_after.ru_stime) - (
            wrk_before.ru_utime + wrk_before.ru_stime
        )
        figures["wrk_cpu"] = wrk_cpu / wall
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--deliveries", type=int, default=60_000)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    backends = ["sqlite"] if args.no_postgres else ["sqlite", "postgresql"]
    rows = []
    for backend in backends:
        for workers in (1, 2):
            with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
                pg = database("auto") if backend == "postgresql" else nullcontext(None)
                with pg as pg_url:
                    url = pg_url or f"sqlite+aiosqlite:///{tmp}/receiver.db"
                    figures = measure(url, workers, args, Path(tmp))
            rows.append((backend, workers, figures))
            print(
                f"{backend:10} workers={workers}: {figures['rps']:7.0f} req/s, "
                f"p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, "
                f"non-2xx {figures['non2xx']:.0f}; CPU: server {figures['server_cpu']:.2f} "
                f"cores, wrk {figures['wrk_cpu']:.2f} cores",
                flush=True,
            )
    for backend in backends:
        one, two = (f["rps"] for b, _, f in rows if b == backend)
        print(f"{backend}: 2 workers / 1 worker = {two / one:.2f}")
    print(f"on {os.cpu_count()} cores, wrk sharing them with the server")


if __name__ == "__main__":
    main()
