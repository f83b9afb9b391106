"""The benchmark scripts still run: each at a toy size, so an API change cannot leave `make bench`
broken until someone next measures. Their figures are not checked here (these machines are shared
and noisy); only that each finishes and reports what it promises to."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "bench"


def run_bench(*args: str, timeout: float = 240) -> str:
    process = subprocess.run(
        [sys.executable, str(BENCH / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-3000:]
    return process.stdout


@pytest.mark.slow
def test_audit_bench_finds_exactly_the_generated_anomalies() -> None:
    output = run_bench("audit.py", "--jobs", "3000", "--ledger", "9000")
    assert "= exactly the anomalies generated" in output
    assert "every report reads through an index" in output


@pytest.mark.slow
def test_scale_bench_times_every_query_and_prints_plans() -> None:
    output = run_bench("scale.py", "--jobs", "3000")
    for label in ("claim outputs", "claim polls", "jobs page (first)", "job detail"):
        assert label in output
    assert "plan claim outputs" in output and "USING INDEX" in output


@pytest.mark.slow
def test_archive_bench_compares_the_archiver_with_curl_and_c_tools() -> None:
    output = run_bench("archive.py", "--size-mb", "5", "--runs", "1")
    for label in ("curl -o", "archiver (hash, fsync, store)", "ratio archiver/curl"):
        assert label in output
    assert "sha256 alone" in output


@pytest.mark.slow
def test_relay_bench_measures_latency_and_push_against_bare_clients() -> None:
    output = run_bench("relay.py", "--rate", "20", "--seconds", "1", "--backlog", "50")
    for label in ("job.failed", "job.succeeded", "output.archived", "bare httpx client"):
        assert label in output
    assert "receiver push (signed)" in output and "push/bare httpx" in output


@pytest.mark.slow
def test_open_loop_burst_and_idle_benches_check_what_they_promise() -> None:
    output = run_bench(
        "ingest.py",
        *("--open-loop", "50", "--seconds", "1", "--warm-up", "0.5"),
        *("--burst", "200", "--burst-connections", "32"),
    )
    for label in ("latency from due time", "generator lateness", "bare Litestar (204)"):
        assert label in output
    assert "open loop 50/s for 1 s:" in output and "burst 200 over 32 connections:" in output
    assert output.count("nothing lost: yes") == 4  # per mode: the report and its summary line
    output = run_bench("idle.py", "--settle", "0.5", "--seconds", "2", "--breakdown", timeout=400)
    for label in ("webhooks only", "simulator as Aurous", "periodic jobs in the window"):
        assert label in output
    assert "where the memory goes" in output and "marginal RSS" in output
