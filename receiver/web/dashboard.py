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
    OutputCounts,
    PushAttemptRecord,
    RejectionCountRecord,
)
from storage.states import NON_TERMINAL
from storage.types import utcnow

__all__ = ["Overview", "bar_chart", "overview", "sparkline_points", "spend_page"]

FINDINGS_SHOWN = 500  # the oldest open ones; the API and the CLI page through all of them


@dataclass(frozen=True)
class Overview:
    jobs_by_status: dict[str, int]
    deliveries: dict[str, list[int]]
    terminal_via: dict[str, int]
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
    def missed_webhook_rate(self) -> float | None:
        total = sum(self.terminal_via.values())
        missed = total - self.terminal_via.get("webhook", 0)
        return missed / total if total else None

    @property
    def deliveries_last_hour(self) -> int:
        return sum(sum(series) for series in self.deliveries.values())


async def overview(runtime: Runtime) -> Overview:
    now = utcnow()

    def read(conn: Connection) -> Overview:
        return Overview(
            jobs_by_status=gateway.count_jobs_by_status(conn),
            deliveries=stats.deliveries_per_minute(conn, now - timedelta(hours=1), 60),
            terminal_via=stats.terminal_via_counts(conn, now - timedelta(days=1)),
            outputs=gateway.output_counts(conn, now + timedelta(hours=1)),
            at_risk=stats.recent_outputs_at_risk(conn, now + timedelta(hours=1)),
            rejections=gateway.rejection_counts(conn),
        )

    return await runtime.db.read(read)


def sparkline_points(values: list[int], width: int = 300, height: int = 40) -> str:
    """SVG polyline points for a series, scaled into the box (server-rendered, no JS)."""
    if not values:
        return ""
    top = max(values) or 1
    step = width / max(1, len(values) - 1)
    return " ".join(
        f"{i * step:.1f},{height - (v / top) * (height - 2) - 1:.1f}" for i, v in enumerate(values)
    )


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
    value: float


@dataclass(frozen=True)
class _Day:
    key: str
    charged: float | None


def bar_chart(groups: list[_Day], *, width: int = 720, height: int = 160) -> list[Bar]:
    """Server-rendered SVG bars of credits charged per group (no JavaScript)."""
    if not groups:
        return []
    top = max(float(g.charged or 0) for g in groups) or 1.0
    slot = width / len(groups)
    bars = []
    for i, group in enumerate(groups):
        value = float(group.charged or 0)
        bar_height = (height - 20) * value / top
        bars.append(
            Bar(
                i * slot + slot * 0.1,
                height - 20 - bar_height,
                slot * 0.8,
                bar_height,
                group.key[5:10] if (len(groups) - 1 - i) % 5 == 0 else "",
                value,
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
