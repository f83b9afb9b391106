"""What the dashboard shows: small read models gathered for each page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from receiver.errors import ReceiverError
from receiver.jobs import views as jobs
from receiver.jobs.views import Job, JobEvent
from receiver.relay.destinations import DestinationChange
from receiver.relay.replay import replay_range
from receiver.runtime import Runtime
from receiver.spend import reports as spend
from receiver.spend.reports import RunwayView, SpendGroupView, parse_moment
from receiver.webhooks.keyring import Secret
from storage import gateway
from storage.db import Connection
from storage.gateway import stats
from storage.records import (
    AtRiskOutput,
    JobEndings,
    OutputCounts,
    PushAttemptRecord,
    RejectionCountRecord,
)
from storage.states import NON_TERMINAL, DeliveryStatus
from storage.types import utcnow

__all__ = [
    "DeliveryChart",
    "Overview",
    "bar_chart",
    "delivery_chart",
    "overview",
    "spend_page",
]

FINDINGS_SHOWN = 500  # the oldest open ones; the API and the CLI page through all of them
DELIVERY_MINUTES = 60


@dataclass(frozen=True)
class Segment:
    """One outcome's part of a minute's bar."""

    outcome: str
    y: float
    height: float


@dataclass(frozen=True)
class MinuteBar:
    x: float
    width: float
    segments: list[Segment]
    title: str


@dataclass(frozen=True)
class AxisLabel:
    x: float
    text: str
    anchor: str  # the SVG text-anchor: start, middle or end


@dataclass(frozen=True)
class DeliveryChart:
    """Deliveries per minute as stacked bars, one colour per outcome, in SVG units."""

    width: int
    height: int
    plot_top: float
    baseline: float
    bars: list[MinuteBar]
    labels: list[AxisLabel]
    totals: dict[str, int]  # per outcome, in stacking order (bottom first)
    peak: int  # the busiest minute's deliveries: the height of the plot

    @property
    def total(self) -> int:
        return sum(self.totals.values())


def delivery_chart(
    series: dict[str, list[int]], since: datetime, minutes: int = DELIVERY_MINUTES
) -> DeliveryChart:
    """Stacked bars of deliveries per minute by outcome, drawn server-side (the page runs no
    script of its own). Known outcomes stack in a fixed order so colours keep their place;
    one the code does not know yet goes on top."""
    width, height, plot_top, baseline = 240, 92, 14.0, 76.0  # about a card's width in px
    outcomes = [s for s in DeliveryStatus if s in series] + sorted(
        set(series) - set(DeliveryStatus)
    )
    per_minute = [sum(series[o][i] for o in outcomes) for i in range(minutes)]
    peak = max(per_minute, default=0)
    slot = width / minutes
    bars = []
    for minute, total in enumerate(per_minute):
        if not total:
            continue
        segments, top = [], baseline
        for outcome in outcomes:
            count = series[outcome][minute]
            if count:
                size = (baseline - plot_top) * count / peak
                top -= size
                segments.append(Segment(outcome, top, size))
        start = since + timedelta(minutes=minute)
        counts = ", ".join(f"{series[o][minute]} {o}" for o in outcomes if series[o][minute])
        title = f"{start:%H:%M} UTC: {counts}"
        bars.append(MinuteBar(minute * slot + slot * 0.1, slot * 0.8, segments, title))
    labels = [
        AxisLabel(0, f"{minutes} min ago", "start"),
        AxisLabel(width / 2, f"{minutes // 2} min ago", "middle"),
        AxisLabel(width, "now", "end"),
    ]
    shown = [*DeliveryStatus, *outcomes]  # every outcome in the legend, even at zero
    totals = {o: sum(series.get(o, ())) for o in dict.fromkeys(shown)}
    return DeliveryChart(width, height, plot_top, baseline, bars, labels, totals, peak)


@dataclass(frozen=True)
class Overview:
    jobs_by_status: dict[str, int]
    deliveries: DeliveryChart
    endings: JobEndings
    outputs: OutputCounts
    at_risk: list[AtRiskOutput]
    rejections: list[RejectionCountRecord]

    @property
    def total_jobs(self) -> int:
        return sum(self.jobs_by_status.values())

    @property
    def running(self) -> int:
        return sum(n for status, n in self.jobs_by_status.items() if status in NON_TERMINAL)

    @property
    def webhook_expected(self) -> int:
        """Jobs that ended and that the receiver expected a webhook for."""
        return sum(self.endings.webhook_expected.values())

    @property
    def missed_webhooks(self) -> int:
        """Of those, the ones whose final status came by poll or sweep."""
        return self.endings.missed_webhooks

    @property
    def no_webhook_expected(self) -> int:
        """Jobs that ended and were created elsewhere (found by a sweep, tracked by id)."""
        return sum(self.endings.no_webhook_expected.values())

    @property
    def missed_webhook_rate(self) -> float | None:
        return self.endings.missed_webhook_rate


async def overview(runtime: Runtime) -> Overview:
    now = utcnow()
    since = now - timedelta(minutes=DELIVERY_MINUTES)

    def read(conn: Connection) -> Overview:
        return Overview(
            jobs_by_status=gateway.count_jobs_by_status(conn),
            deliveries=delivery_chart(
                stats.deliveries_per_minute(conn, since, DELIVERY_MINUTES), since
            ),
            endings=stats.job_endings(conn, now - timedelta(days=1)),
            outputs=gateway.output_counts(conn, now + timedelta(hours=1)),
            at_risk=stats.recent_outputs_at_risk(conn, now + timedelta(hours=1)),
            rejections=gateway.rejection_counts(conn),
        )

    return await runtime.db.read(read)


async def job_page(runtime: Runtime, job_id: str) -> tuple[Job, list[JobEvent]] | None:
    job = await jobs.get_job(runtime.db, job_id)
    if job is None:
        return None
    return job, await jobs.job_events(runtime.db, job_id) or []


def safe_to_retire(secret: Secret, others_active: int, grace: timedelta) -> bool:
    """Unused for the grace period, and not the last secret that still verifies."""
    if secret.state != "active" or others_active == 0:
        return False
    last_used = secret.last_matched_at or secret.created_at
    return bool(utcnow() - last_used > grace)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    label_x: float  # the label is centred under its bar
    value: float
    day: str


@dataclass(frozen=True)
class _Day:
    key: str
    charged: float | None


SPEND_CHART_WIDTH, SPEND_CHART_HEIGHT = 960, 160
# Room under the bars for the day labels, and on each side for half a label ("11-30" at
# 10px is about 30 units wide), so the first and the last label stay inside the viewBox.
_LABEL_ROOM = 20
_SIDE_ROOM = 18


def bar_chart(
    groups: list[_Day], *, width: int = SPEND_CHART_WIDTH, height: int = SPEND_CHART_HEIGHT
) -> list[Bar]:
    """Server-rendered SVG bars of credits charged per group (no JavaScript); every fifth
    day is labelled, counting back from the last one."""
    if not groups:
        return []
    top = max(float(g.charged or 0) for g in groups) or 1.0
    slot = (width - 2 * _SIDE_ROOM) / len(groups)
    bars = []
    for i, group in enumerate(groups):
        value = float(group.charged or 0)
        bar_height = (height - _LABEL_ROOM) * value / top
        left = _SIDE_ROOM + i * slot
        bars.append(
            Bar(
                left + slot * 0.1,
                height - _LABEL_ROOM - bar_height,
                slot * 0.8,
                bar_height,
                group.key[5:10] if (len(groups) - 1 - i) % 5 == 0 else "",
                left + slot / 2,
                value,
                group.key[:10],
            )
        )
    return bars


def _every_day(groups: list[SpendGroupView], now: datetime, days: int) -> list[_Day]:
    """One group per calendar day of the window, zero where nothing was charged."""
    charged = {g.key[:10]: g.charged for g in groups}
    dates = [(now - timedelta(days=n)).date().isoformat() for n in range(days - 1, -1, -1)]
    return [_Day(d, charged.get(d, 0)) for d in dates]


async def spend_page(runtime: Runtime) -> dict[str, object]:
    now = utcnow()
    open_by_code = await runtime.db.read(stats.open_findings_by_code)
    daily = await spend.summary(runtime.db, "day", now - timedelta(days=30), None)
    return {
        "daily": daily,
        "bars": bar_chart(_every_day(daily.groups, now, 30)),
        "chart_width": SPEND_CHART_WIDTH,
        "chart_height": SPEND_CHART_HEIGHT,
        "chart_baseline": SPEND_CHART_HEIGHT - _LABEL_ROOM,
        "kinds": await spend.summary(runtime.db, "kind"),
        "models": await spend.summary(runtime.db, "model"),
        "findings": (await spend.findings(runtime.db, limit=FINDINGS_SHOWN)).data,
        "findings_open": sum(open_by_code.values()),
        "runway": (await spend.runway(runtime.db, now)).view(),
    }


async def credits_card(runtime: Runtime) -> RunwayView | None:
    view = (await spend.runway(runtime.db, utcnow())).view()
    return view if view.available is not None else None


ATTEMPTS_SHOWN = 10


async def destinations_page(runtime: Runtime) -> dict[str, object]:
    found = await runtime.destinations.list_all()

    def read(conn: Connection) -> dict[str, list[PushAttemptRecord]]:
        return {
            d.id: gateway.list_push_attempts(conn, d.id, before_id=None, limit=ATTEMPTS_SHOWN)
            for d in found
        }

    attempts = await runtime.db.read(read)
    rates = {d: _success_rate(rows) for d, rows in attempts.items()}
    return {"destinations": found, "attempts": attempts, "rates": rates}


def _success_rate(attempts: list[PushAttemptRecord]) -> float | None:
    if not attempts:
        return None
    ok = sum(1 for a in attempts if a.status is not None and 200 <= a.status < 300)
    return ok / len(attempts)


async def act_on_destination(
    runtime: Runtime, destination_id: str, action: str, since: object
) -> str:
    """What the dashboard's buttons do; returns what to tell the operator."""
    if action in ("enable", "disable"):
        change = DestinationChange(enabled=action == "enable")
        await runtime.destinations.change(destination_id, change)
        runtime.pusher.kick()
        return f"{destination_id} {action}d"
    if action == "replay":
        start = parse_moment(str(since or ""), "since")
        if start is None:
            raise ReceiverError(400, "invalid_parameter", "since is required", param="since")
        count = await replay_range(runtime.db, destination_id, start, utcnow())
        runtime.pusher.kick()
        return f"{count} events will be pushed to {destination_id} again"
    raise ReceiverError(404, "not_found", f"no action {action!r}")
