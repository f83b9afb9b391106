"""Issue 15: the runway as people read it. Whole days, rounded down (a runway never promises
a day too many), "more than a year" beyond 365 days; the API's number is unchanged."""

from __future__ import annotations

import pytest

from receiver.spend.reports import Runway, runway_days_text, runway_line

CREDIT = 1_000_000  # micro-credits


@pytest.mark.parametrize(
    ("days", "shown"),
    [
        (21275.6, "more than a year"),
        (365.2, "more than a year"),
        (365.0, "365 days"),
        (21.9, "21 days"),
        (1.99, "1 day"),
        (0.4, "less than a day"),
        (None, "unknown"),
    ],
)
def test_runway_days_read_in_whole_days_or_more_than_a_year(days: float | None, shown: str) -> None:
    assert runway_days_text(days) == shown


def test_the_cli_line_says_it_in_words_and_the_api_keeps_the_number() -> None:
    runway = Runway(
        available_micros=999_989 * CREDIT, daily_micros=47 * CREDIT, window_days=7, as_of=None
    )
    assert runway.view().days == 21276.4
    line = runway_line(runway)
    assert line.startswith("runway: more than a year (999989 credits available")
    assert "21276" not in line

    weeks = Runway(
        available_micros=100 * CREDIT, daily_micros=7 * CREDIT, window_days=7, as_of=None
    )
    assert weeks.view().days == 14.3
    assert runway_line(weeks).startswith("runway: 14 days (")
