"""Audit credit spend: a local copy of the ledger, balance snapshots, and findings where the
money and the jobs disagree.

One pass (a tick, `spend sync`, or a `usage.balance_low` webhook) holds a lease so one replica
audits at a time: it walks `GET /v1/usage/events` newest first down to the last row of the
previous complete walk, reads the balance, and evaluates the rules in `receiver.spend.rules`.
The watermark moves only when a walk completes; a walk cut short is simply walked again and
the UNIQUE uev ids absorb what was already stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec

from receiver.aurous import AurousClient, AurousError, RawJson
from receiver.generation import parse_timestamp
from receiver.jobs.lifecycle import TERMINAL
from receiver.jobs.replica import Replica
from receiver.jobs.tracker import JobWriter
from receiver.settings import Settings
from receiver.spend.ledger import SYNCED_KEY, LedgerSync, SyncReport, snapshot_values, unchanged
from receiver.spend.reports import Finding
from receiver.spend.rules import (
    HISTORICAL,
    STATEFUL,
    Draft,
    JobMoney,
    drift_finding,
    duplicate_findings,
    hold_overdue,
    is_job_id,
    money_findings,
    outstanding,
    unknown_job_finding,
)
from storage import gateway
from storage.db import Connection
from storage.records import FindingUpdate, NewBalanceSnapshot, RepeatedRequest
from storage.states import Source
from storage.types import utcnow

__all__ = ["Audit", "AuditConfig", "AuditReport", "SyncReport"]

log = logging.getLogger(__name__)

LEASE_KEY = "audit.lease"
_SNAPSHOT_ATTEMPTS = 3
_LOGGED_PER_PASS = 20  # new findings logged one by one; the rest as a count


@dataclass(frozen=True)
class AuditConfig:
    interval_s: float = 60.0
    grace: timedelta = timedelta(minutes=3)
    duplicate_window: timedelta = timedelta(seconds=60)
    tolerance_micros: int = 100  # 0.0001 credit
    page_size: int = 100
    max_pages: int = 10_000
    lease: timedelta = timedelta(seconds=60)
    adopt_per_pass: int = 50
    snapshot_every: timedelta = timedelta(minutes=5)  # on schedule; low balance: at once

    @classmethod
    def from_settings(cls, settings: Settings) -> AuditConfig:
        """The ledger is read as often as the job list is swept, the balance every fifth
        time; a hold or an unknown job gets three syncs of grace before it is a finding."""
        interval = settings.sweep_interval_s
        return cls(
            interval_s=interval,
            grace=timedelta(seconds=3 * interval),
            snapshot_every=timedelta(seconds=5 * interval),
            lease=timedelta(seconds=settings.lease_s),
        )


@dataclass
class AuditReport:
    ran: bool = False  # False: another replica holds the lease
    sync: SyncReport = field(default_factory=SyncReport)
    snapshot_id: int | None = None
    consistent: bool = False
    new_findings: list[Draft] = field(default_factory=list)
    resolved: int = 0
    adopted: int = 0
    error: str | None = None  # Aurous could not be read; findings were still evaluated


@dataclass(frozen=True)
class _Evidence:
    """What the rules look at, read in one transaction."""

    money: list[JobMoney]
    terminal_seen: dict[str, datetime]
    synced: datetime | None
    first_synced: dict[str, datetime]
    settled_unknown: set[str]
    requests: list[RepeatedRequest]


def _tell_opened(conn: Connection, jobs: JobWriter, opened: set[tuple[str, str]]) -> None:
    by_code: dict[str, list[str]] = {}
    for code, subject in sorted(opened):
        by_code.setdefault(code, []).append(subject)
    for code, subjects in by_code.items():
        for finding in gateway.find_findings(conn, code, subjects):
            data = msgspec.json.encode({"finding": Finding.of(finding)})
            jobs.tell("spend.finding_opened", data, finding.job_id)


class Audit:
    def __init__(
        self, replica: Replica, aurous: AurousClient, config: AuditConfig | None = None
    ) -> None:
        self.config = config or AuditConfig()
        self._replica = replica
        self._db = replica.db
        self._aurous = aurous
        self._lock = asyncio.Lock()  # one pass at a time in this process
        self._kicks: set[asyncio.Task[AuditReport]] = set()
        self._ledger = LedgerSync(
            replica.db,
            aurous,
            page_size=self.config.page_size,
            max_pages=self.config.max_pages,
            still_ours=self._lease,
        )

    # --- the pass ------------------------------------------------------------------------

    async def run(self, trigger: str = "schedule") -> AuditReport:
        async with self._lock:
            report = AuditReport()
            if not await self._lease():
                return report
            try:
                report.ran = True
                try:
                    report.sync = await self.sync_ledger()
                    if trigger != "schedule" or await self._snapshot_due():
                        await self._snapshot(trigger, report)
                except AurousError as error:  # the rules still run on what is stored
                    report.error = str(error)
                    log.warning("audit: ledger or balance not read: %s", error)
                if await self._lease():  # the walk may have been long: still ours?
                    await self.evaluate(report)
            finally:
                await self._db.write(
                    lambda conn: gateway.release_lease(conn, LEASE_KEY, self._replica.owner)
                )
            return report

    def on_events(self, event_types: Sequence[str]) -> None:
        """After a commit of webhook deliveries: a low balance is worth a snapshot now."""
        if "usage.balance_low" in event_types:
            task = asyncio.get_running_loop().create_task(self.run("balance_low"))
            self._kicks.add(task)
            task.add_done_callback(self._kick_done)

    def _kick_done(self, task: asyncio.Task[AuditReport]) -> None:
        self._kicks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("audit after usage.balance_low failed: %s", task.exception())

    async def stop(self) -> None:
        for task in list(self._kicks):
            task.cancel()
        await asyncio.gather(*self._kicks, return_exceptions=True)

    async def _lease(self) -> bool:
        now = utcnow()
        until = now + self.config.lease
        return await self._db.write(
            lambda conn: gateway.take_lease(conn, LEASE_KEY, self._replica.owner, now, until)
        )

    # --- ledger sync and balance snapshots ------------------------------------------------

    async def sync_ledger(self) -> SyncReport:
        """Walk the ledger newest first down to the last complete walk's newest row."""
        return await self._ledger.walk()

    async def _snapshot_due(self) -> bool:
        latest = await self._db.read(gateway.latest_balance_snapshot)
        return latest is None or utcnow() - latest.taken_at >= self.config.snapshot_every

    async def _snapshot(self, trigger: str, report: AuditReport) -> None:
        """Read the balance right after a sync and check the ledger did not move meanwhile
        (else sync again): only then is the snapshot tied to a ledger position, and compared
        with the previous one."""
        balance: RawJson = {}
        for attempt in range(_SNAPSHOT_ATTEMPTS):
            if attempt:
                report.sync = await self.sync_ledger()
            if not report.sync.complete:
                break
            balance = await self._aurous.balance()
            if await self._ledger.head() == report.sync.head:
                report.consistent = True
                break
        if not report.consistent:
            balance = balance or await self._aurous.balance()
        head = report.sync.head if report.consistent else None
        now = utcnow()

        def store(conn: Connection, jobs: JobWriter) -> int:
            return self._store_snapshot(conn, jobs, trigger, balance, head, report, now)

        report.snapshot_id = await self._replica.tracker.write(store)

    def _store_snapshot(
        self,
        conn: Connection,
        jobs: JobWriter,
        trigger: str,
        balance: RawJson,
        head: str | None,
        report: AuditReport,
        now: datetime,
    ) -> int:
        position = None
        if report.consistent:
            position = gateway.ledger_position(conn, head) if head else 0
        snapshot = snapshot_values(balance, trigger, now, head, position)
        latest = gateway.latest_balance_snapshot(conn)
        if latest is not None and trigger == "schedule" and unchanged(latest, snapshot):
            return latest.id
        snapshot_id = gateway.insert_balance_snapshot(conn, snapshot)
        if position is not None and snapshot.credits_micros is not None:
            drift = self._drift(conn, snapshot_id, snapshot)
            report.new_findings += self._record(conn, jobs, drift, (), now)
        return snapshot_id

    def _drift(
        self, conn: Connection, snapshot_id: int, snapshot: NewBalanceSnapshot
    ) -> list[Draft]:
        previous = gateway.previous_consistent_snapshot(conn, snapshot_id)
        if previous is None or previous.ledger_position is None or snapshot.ledger_position is None:
            return []
        effect = gateway.ledger_effect_between(
            conn, previous.ledger_position, snapshot.ledger_position
        )
        delta = (snapshot.credits_micros or 0) - (previous.credits_micros or 0)
        found = drift_finding(previous.id, snapshot_id, delta, effect, self.config.tolerance_micros)
        return [found] if found else []

    # --- findings ------------------------------------------------------------------------

    async def evaluate(self, report: AuditReport | None = None) -> AuditReport:
        report = report or AuditReport()
        now = utcnow()
        tolerance = self.config.tolerance_micros
        evidence = await self._db.read(self._gather)
        drafts = duplicate_findings(evidence.requests, self.config.duplicate_window)
        for item in evidence.money:
            seen = evidence.terminal_seen.get(item.job_id)
            overdue = hold_overdue(seen, evidence.synced, self.config.grace)
            drafts += money_findings(item, tolerance, hold_overdue=overdue)
        to_adopt = [
            m.job_id
            for m in evidence.money
            if not m.known
            and is_job_id(m.job_id)
            and m.job_id not in evidence.settled_unknown
            and evidence.first_synced[m.job_id] <= now - self.config.grace
        ]
        drafts += [unknown_job_finding(m) for m in evidence.money if m.job_id in to_adopt]

        def record(conn: Connection, jobs: JobWriter) -> None:
            report.new_findings += self._record(conn, jobs, drafts, STATEFUL, now, report)

        await self._replica.tracker.write(record)
        report.adopted = await self._adopt(to_adopt)
        return report

    def _gather(self, conn: Connection) -> _Evidence:
        tolerance = self.config.tolerance_micros
        money = gateway.money_disagreements(conn, tolerance)
        leftover = [m.job_id for m in money if m.known and outstanding(m) > tolerance]
        unknown = [m.job_id for m in money if not m.known and is_job_id(m.job_id)]
        settled = gateway.find_findings(conn, "unknown_job", unknown) if unknown else []
        return _Evidence(
            money=money,
            terminal_seen=gateway.terminal_seen_at(conn, leftover, TERMINAL) if leftover else {},
            synced=parse_timestamp(gateway.get_state(conn, SYNCED_KEY)),
            first_synced=gateway.first_synced_at(conn, unknown),
            settled_unknown={f.subject for f in settled if f.action in ("adopted", "not_found")},
            requests=gateway.repeated_requests(conn),
        )

    def _record(
        self,
        conn: Connection,
        jobs: JobWriter,
        drafts: Sequence[Draft],
        evaluated: Sequence[str],
        now: datetime,
        report: AuditReport | None = None,
    ) -> list[Draft]:
        """Insert what is new (log it and tell the customer's app, once); re-open what came
        back; resolve the findings of `evaluated` codes whose cause is gone."""
        new = gateway.insert_findings(conn, [d.row(now) for d in drafts])
        _tell_opened(conn, jobs, new)
        current = {(d.code, d.subject) for d in drafts}
        open_rows = gateway.open_findings(conn, evaluated) if evaluated else []
        gone = [r.id for r in open_rows if (r.code, r.subject) not in current]
        gateway.update_findings(conn, gone, FindingUpdate(resolved_at=now))
        if report is not None:
            report.resolved += len(gone)
        self._touch(conn, [d for d in drafts if (d.code, d.subject) not in new], now)
        fresh = [d for d in drafts if (d.code, d.subject) in new]
        for draft in fresh[:_LOGGED_PER_PASS]:
            log.warning("finding %s %s: %s", draft.code, draft.subject, draft.reason)
        if len(fresh) > _LOGGED_PER_PASS:
            log.warning(
                "… and %d more new findings (GET /spend/findings)", len(fresh) - _LOGGED_PER_PASS
            )
        return fresh

    def _touch(self, conn: Connection, drafts: Sequence[Draft], now: datetime) -> None:
        """Findings found again: still true now; amounts refreshed (and re-opened) where
        they changed, which is rare, so that is one statement per changed finding."""
        by_code: dict[str, list[Draft]] = {}
        for draft in drafts:
            if draft.code not in HISTORICAL:
                by_code.setdefault(draft.code, []).append(draft)
        for code, items in by_code.items():
            known = gateway.find_findings(conn, code, [d.subject for d in items])
            gateway.update_findings(conn, [r.id for r in known], FindingUpdate(last_seen_at=now))
            by_subject = {d.subject: d for d in items}
            for row in known:
                again = by_subject.get(row.subject)
                if again is not None and again.changed(row):
                    gateway.update_findings(conn, [row.id], again.refresh(now))

    async def _adopt(self, job_ids: Sequence[str]) -> int:
        """Ask Aurous about jobs the ledger knows and we do not, and record what it says
        through the job tracker (as a sweep would). A few per pass: the rest wait for the
        next one, their findings are already stored."""
        actions: dict[str, list[str]] = {}
        for job_id in job_ids[: self.config.adopt_per_pass]:
            try:
                await self._replica.tracker.refresh(job_id, Source.SWEEP)
            except AurousError as error:
                action = "not_found" if error.status == 404 else "adoption_failed"
                actions.setdefault(action, []).append(job_id)
                continue
            actions.setdefault("adopted", []).append(job_id)

        def mark(conn: Connection) -> None:
            for action, ids in actions.items():
                rows = gateway.find_findings(conn, "unknown_job", ids)
                gateway.update_findings(conn, [r.id for r in rows], FindingUpdate(action=action))

        await self._db.write(mark)
        return len(actions.get("adopted", []))
