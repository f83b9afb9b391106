"""Peak memory (RSS) of the receiver process: idle, under the ingest load, and while archiving
a 1 GiB video. Each figure is read from /proc (VmRSS, VmHWM) of a real `aurous-receiver serve`.

    .venv/bin/python bench/memory.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import LUA, make_deliveries
from soak import migrate

from tests.support.harness import (
    WEBHOOK_SECRET,
    ReceiverProcess,
    free_port,
    receiver_settings,
    start_simulator,
    wait_for,
)


def rss_kib(process: ReceiverProcess, field: str) -> int:
    for line in Path(f"/proc/{process.process.pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"no {field}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp, ExitStack() as stack:
        port = free_port()
        sim = start_simulator(stack, receiver_port=port, video_size=1 << 30, rate_limits=False)
        url = f"sqlite+aiosqlite:///{tmp}/receiver.db"
        migrate(url)
        settings = receiver_settings(Path(tmp) / "data", url, sim)
        receiver = ReceiverProcess(settings, port)
        stack.callback(receiver.stop)
        receiver.start()
        time.sleep(5)
        idle = rss_kib(receiver, "VmRSS")

        deliveries = Path(tmp) / "deliveries.tsv"
        script = Path(tmp) / "cycle.lua"
        script.write_text(LUA)
        make_deliveries(deliveries, 30_000, secret=WEBHOOK_SECRET)
        subprocess.run(
            [
                "wrk",
                "-t1",
                "-c32",
                "-d10s",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}/webhooks/aurous",
                "--",
                str(deliveries),
                "1",
            ],
            check=True,
            capture_output=True,
        )
        under_ingest = rss_kib(receiver, "VmHWM")

        [job] = sim.create_direct("video", 1, {"prompt": "big", "duration": 2})
        wait_for(
            lambda: (
                (o := receiver.get(f"/jobs/{job}").get("outputs")) and o[0]["state"] == "archived"
            ),
            timeout=300,
            interval=0.5,
        )
        after_archive = rss_kib(receiver, "VmHWM")
    print(f"{'receiver RSS':<40}{'MiB':>8}")
    print(f"{'idle':<40}{idle / 1024:>8.1f}")
    print(f"{'peak under ingest (32 connections, 10 s)':<40}{under_ingest / 1024:>8.1f}")
    print(f"{'peak after archiving a 1 GiB video':<40}{after_archive / 1024:>8.1f}")
    print(f"1 GiB archive grew the peak by {(after_archive - under_ingest) / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
