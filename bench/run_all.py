"""Run a set of benchmark scripts one after another and print a summary table at the end.

.venv/bin/python bench/run_all.py bench  # ingest, archive, relay, audit, scale, memory,
                                         # open loop, burst, idle
.venv/bin/python bench/run_all.py soak   # crash (SQLite, PostgreSQL), faults, fuzz
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
SUITES = {
    "bench": [
        ("ingest", ["ingest.py"]),
        ("archive", ["archive.py"]),
        ("relay", ["relay.py"]),
        ("audit (100k jobs, 300k ledger rows)", ["audit.py"]),
        (
            "audit (1M jobs, 3M ledger rows)",
            ["audit.py", "--jobs", "1000000", "--ledger", "3000000"],
        ),
        ("scale (SQLite, 1M jobs)", ["scale.py"]),
        ("scale (PostgreSQL, 100k jobs)", ["scale.py", "--postgres", "auto"]),
        ("memory", ["memory.py"]),
        ("ingest open loop (200/s, 60 s)", ["ingest.py", "--open-loop", "200", "--seconds", "60"]),
        (
            "ingest burst (10,000 at once, 256 connections)",
            ["ingest.py", "--burst", "10000", "--burst-connections", "256"],
        ),
        ("idle (CPU and RSS, nothing to do)", ["idle.py"]),
    ],
    "soak": [
        ("crash soak (SQLite)", ["soak.py", "crash"]),
        ("crash soak (PostgreSQL, 3 replicas)", ["soak.py", "crash", "--postgres", "auto"]),
        ("fault soak", ["soak.py", "faults"]),
        ("fuzzing", ["fuzz.py"]),
    ],
}
SUMMARY_LINES = 8  # each script ends with its figures; the table keeps the last lines


def run(label: str, args: list[str]) -> tuple[str, int, float, list[str]]:
    print(f"\n=== {label}: {' '.join(args)}", flush=True)
    started = time.monotonic()
    process = subprocess.run(
        [sys.executable, str(HERE / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        check=False,
    )
    print(process.stdout, end="")
    if process.returncode:
        print(process.stderr[-2000:], end="")
    lines = [line for line in process.stdout.splitlines() if line.strip()]
    return label, process.returncode, time.monotonic() - started, lines[-SUMMARY_LINES:]


def main() -> None:
    suite = sys.argv[1] if len(sys.argv) > 1 else "bench"
    if suite not in SUITES:
        raise SystemExit(f"usage: run_all.py {'|'.join(SUITES)}")
    results = [run(label, args) for label, args in SUITES[suite]]
    print("\n" + "=" * 100 + f"\nSUMMARY ({suite})")
    for label, code, seconds, lines in results:
        print(f"\n{label}  [{'ok' if code == 0 else f'exit {code}'}, {seconds:.0f}s]")
        for line in lines:
            print(f"    {line}")
    raise SystemExit(1 if any(code for _, code, _, _ in results) else 0)


if __name__ == "__main__":
    main()
