"""Issue 15: the dashboard's charts are drawn inside their viewBox. The spend chart's first and
last day labels are whole (the last one was cut to "11-3"); the deliveries chart stacks its
bars by outcome and labels its time axis at both ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from receiver.web.dashboard import (
    SPEND_CHART_HEIGHT,
    SPEND_CHART_WIDTH,
    _Day,
    bar_chart,
    delivery_chart,
)

HALF_A_LABEL = 15  # "11-30" at 10px is about 30 units wide


def test_every_day_label_fits_inside_the_spend_chart() -> None:
    last = datetime(2026, 11, 30, tzinfo=UTC)
    days = [_Day((last - timedelta(days=n)).date().isoformat(), n % 4) for n in range(29, -1, -1)]
    bars = bar_chart(days)
    labelled = [bar for bar in bars if bar.label]
    assert [bar.label for bar in labelled] == ["11-05", "11-10", "11-15", "11-20", "11-25", "11-30"]
    for bar in labelled:
        assert HALF_A_LABEL <= bar.label_x <= SPEND_CHART_WIDTH - HALF_A_LABEL
        assert bar.x <= bar.label_x <= bar.x + bar.width  # centred under its own bar
    for bar in bars:
        assert bar.x >= 0 and bar.x + bar.width <= SPEND_CHART_WIDTH
        assert bar.y >= 0 and bar.y + bar.height <= SPEND_CHART_HEIGHT


def test_a_quiet_hour_draws_no_bars_and_keeps_every_outcome_in_the_legend() -> None:
    chart = delivery_chart({}, datetime(2026, 11, 30, tzinfo=UTC))
    assert chart.bars == [] and chart.peak == 0 and chart.total == 0
    assert set(chart.totals) >= {"processed", "quarantined", "rejected"}
    assert [label.anchor for label in chart.labels] == ["start", "middle", "end"]
    assert chart.labels[-1].x == chart.width  # "now" ends at the right edge, inside the box


def test_an_outcome_the_code_does_not_know_stacks_on_top() -> None:
    series = {"processed": [0] * 59 + [2], "teleported": [0] * 59 + [1]}
    chart = delivery_chart(series, datetime(2026, 11, 30, tzinfo=UTC))
    (bar,) = chart.bars
    assert [s.outcome for s in bar.segments] == ["processed", "teleported"]
    assert bar.segments[1].y < bar.segments[0].y
    assert list(chart.totals)[-1] == "teleported"
    assert bar.title == "00:59 UTC: 2 processed, 1 teleported"
