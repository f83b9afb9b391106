"""Issue 15: the log's own rate limit (a line per reason per window, the rest counted on the
next one) and the minute's summary line (only while work happens)."""

from __future__ import annotations

import logging

import pytest

from receiver.activity import ActivitySummary
from receiver.archive.archiver import ArchiveOutcome
from receiver.logs import RateLimitedLog
from receiver.metrics import Metrics
from storage.records import OutputCounts

log = logging.getLogger("tests.rate_limited")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def messages(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger]


def test_one_line_per_reason_per_window_and_the_next_counts_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    limited = RateLimitedLog(log, every_s=10.0, clock=clock)
    for n in range(50):
        limited.warning("bad_signature", "rejected %d: 100%% %s", n, "bad")
    limited.warning("too_old", "rejected: too old")
    clock.now += 10.0
    limited.warning("bad_signature", "rejected again")
    limited.warning("bad_signature", "and again")  # in the new window: left out
    assert messages(caplog, log.name) == [
        "rejected 0: 100% bad",
        "rejected: too old",
        "rejected again (49 more like this since the last such line)",
    ]


def test_a_message_with_a_percent_sign_and_no_arguments_is_kept_as_it_is(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    limited = RateLimitedLog(log, every_s=10.0, clock=clock)
    limited.warning("pool", "bodies fill 100% of their budget")
    limited.warning("pool", "bodies fill 100% of their budget")
    clock.now += 11.0
    limited.warning("pool", "bodies fill 100% of their budget")
    assert messages(caplog, log.name) == [
        "bodies fill 100% of their budget",
        "bodies fill 100% of their budget (1 more like this since the last such line)",
    ]


async def test_the_summary_says_what_happened_and_nothing_when_idle(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    metrics = Metrics()
    summary = ActivitySummary(metrics)
    await summary.log_last_minute()
    assert messages(caplog, "receiver.activity") == []  # nothing happened yet

    for _ in range(3):
        metrics.deliveries.labels("accepted", "").inc()
    metrics.deliveries.labels("rejected", "missing_signature").inc()
    metrics.deliveries.labels("rejected", "no_matching_signature").inc()
    metrics.push_attempts.labels("delivered").inc()
    metrics.set_output_counts(OutputCounts(pending=7))
    summary.count_archive_round(ArchiveOutcome(archived=2, bytes=2_500_000, retry=1))
    await summary.log_last_minute()
    [line] = messages(caplog, "receiver.activity")
    assert line == (
        "last minute: webhooks 3 accepted, 2 rejected; outputs 2 archived (2.5 MB), "
        "1 to retry; archive backlog 7; pushes 1 delivered"
    )

    await summary.log_last_minute()  # an idle minute
    assert len(messages(caplog, "receiver.activity")) == 1
    metrics.deliveries.labels("duplicate", "").inc()
    await summary.log_last_minute()
    assert messages(caplog, "receiver.activity")[-1] == (
        "last minute: webhooks 1 duplicate; outputs none; archive backlog 7; pushes none"
    )
