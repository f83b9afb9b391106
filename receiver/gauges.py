"""Gauges read from the database (outputs, missed webhooks, findings, ledger lag) and from the
Aurous client, refreshed on each tick and at every scrape of `/metrics`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from receiver.aurous import AurousClient
from receiver.generation import parse_timestamp
from receiver.metrics import Metrics
from receiver.spend.ledger import SYNCED_KEY
from storage import gateway
from storage.db import Connection, Database
from storage.gateway import stats
from storage.records import JobEndings, OutputCounts, PushTally
from storage.types import utcnow

__all__ = ["Gauges"]


@dataclass(frozen=True)
class _Readings:
    outputs: OutputCounts
    endings_by_day: dict[str, JobEndings]
    findings: dict[str, int]
    synced: str | None
    pushes: list[PushTally]


@dataclass(frozen=True)
class Gauges:
    db: Database
    metrics: Metrics
    aurous: AurousClient | None

    async def refresh(self) -> None:
        now = utcnow()

        def read(conn: Connection) -> _Readings:
            return _Readings(
                gateway.output_counts(conn, now + timedelta(hours=1)),
                stats.job_endings_by_day(conn, now - timedelta(days=7)),
                stats.open_findings_by_code(conn),
                gateway.get_state(conn, SYNCED_KEY),
                gateway.push_tallies(conn),
            )

        readings = await self.db.read(read)
        self.metrics.set_output_counts(readings.outputs)
        self.metrics.set_missed_webhooks(readings.endings_by_day)
        for code, n in readings.findings.items():
            self.metrics.findings_open.labels(code).set(n)
        for tally in readings.pushes:
            waiting = tally.oldest_pending_at
            lag = (now - waiting).total_seconds() if waiting else 0.0
            self.metrics.push_lag.labels(tally.destination_id).set(lag)
        synced = parse_timestamp(readings.synced)
        self.metrics.ledger_sync_lag.set((now - synced).total_seconds() if synced else -1)
        if self.aurous is not None:
            self.metrics.poll_budget_used.set(self.aurous.budget.used)
            for kind, n in self.aurous.requests.items():
                self.metrics.aurous_requests.labels(kind).set(n)
