"""Issue 15 end to end: a sweep that adopts jobs created elsewhere says so in the log, with how
many."""

from __future__ import annotations

import logging
import re
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.harness import receiver_settings, start_receiver, start_simulator, wait_for


def test_a_sweep_that_adopts_jobs_logs_how_many(
    tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with ExitStack() as stack:
        sim = start_simulator(stack)  # no webhooks: only sweeps can learn of these jobs
        settings = receiver_settings(tmp_path / "data", sqlite_url, sim, sweep_interval_s=1.0)
        receiver = start_receiver(stack, settings)
        sim.create_direct("image", 3)
        wait_for(lambda: len(receiver.jobs()) == 3, timeout=30)
        wait_for(lambda: _adopted(caplog) == 3, timeout=10)  # the line follows the sweep's end

    lines = [r.getMessage() for r in caplog.records if r.name == "receiver.jobs.reconcile"]
    assert all("created elsewhere" in line for line in lines if "adopted" in line)


def _adopted(caplog: pytest.LogCaptureFixture) -> int:
    counts = [
        re.search(r"sweep adopted (\d+) job", r.getMessage())
        for r in caplog.records
        if r.name == "receiver.jobs.reconcile"
    ]
    return sum(int(found.group(1)) for found in counts if found)
