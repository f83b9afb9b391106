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
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _pg import database
from _proc import cpu_seconds
from ingest import LUA, free_port, make_deliveries, receiver_env, run_wrk, start_serve


@contextmanager
def receiver(database_url: str, data_dir: Path, workers: int) -> Iterator[tuple[int, int]]:
    """A migrated `serve --workers N` on a free port: (port, pid of the serving process)."""
    env = receiver_env(data_dir) | {"RECEIVER_DATABASE_URL": database_url}
    port = free_port()
    command = [sys.executable, "-m", "receiver", "serve", "--port", str(port)]
    data_dir.mkdir(parents=True, exist_ok=True)
    process = start_serve(
        [*command, "--workers", str(workers)], env, port, data_dir.parent / f"serve-{workers}.log"
    )
    try:
        time.sleep(2)  # every worker up, not just the first
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(30)


def measure(
    database_url: str, workers: int, args: argparse.Namespace, workdir: Path
) -> dict[str, float]:
    deliveries, script = workdir / "deliveries.tsv", workdir / "cycle.lua"
    script.write_text(LUA)
    make_deliveries(deliveries, args.deliveries)
    with receiver(database_url, workdir / f"data-{workers}", workers) as (port, pid):
        url = f"http://127.0.0.1:{port}/webhooks/aurous"
        server_before = cpu_seconds(pid)
        wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        figures = run_wrk(url, args, script, [str(deliveries), str(args.threads)])
        wall = time.monotonic() - started
        wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        figures["server_cpu"] = (cpu_seconds(pid) - server_before) / wall
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
