"""Everything a running service holds, opened and closed by the app's lifespan."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TypeAlias

import httpx
from litestar.di import NamedDependency

from receiver.archive.archiver import Archiver
from receiver.archive.fetch import HostPolicy
from receiver.aurous import AurousClient, RateBudget
from receiver.generation import parse_timestamp
from receiver.ids import new_id
from receiver.jobs.creation import JobCreator
from receiver.jobs.lifecycle import ObservationResult, is_known
from receiver.jobs.reconcile import Reconciler
from receiver.metrics import Metrics
from receiver.scheduler import Ticker
from receiver.settings import Settings
from receiver.spend.audit import Audit, AuditConfig
from receiver.spend.ledger import SYNCED_KEY
from receiver.web.auth import resolve_admin_token
from receiver.webhooks.intake import Intake
from receiver.webhooks.keyring import SecretStore
from storage import gateway
from storage.blobs import BlobStore
from storage.crypto import (
    SecretBox,
    decode_master_key,
    new_master_key_text,
    read_or_create_private_file,
)
from storage.db import Database
from storage.gateway import stats
from storage.migrate import current_revision, head_revision
from storage.types import utcnow

__all__ = ["NotMigrated", "Runtime", "RuntimeDep", "load_secret_box", "open_runtime"]

log = logging.getLogger(__name__)
MASTER_KEY_FILE = "master.key"


class NotMigrated(RuntimeError):
    """The database schema is behind the code."""


@dataclass
class Runtime:
    settings: Settings
    db: Database
    secrets: SecretStore
    intake: Intake
    metrics: Metrics
    blobs: BlobStore
    http: httpx.AsyncClient
    aurous: AurousClient | None
    archiver: Archiver
    admin_token: str
    head_revision: str | None
    owner: str
    creator: JobCreator
    reconciler: Reconciler | None = field(default=None)
    audit: Audit | None = field(default=None)
    ticker: Ticker | None = field(default=None)

    async def refresh_gauges(self) -> None:
        now = utcnow()
        async with self.db.read() as conn:
            counts = await gateway.output_counts(conn, now + timedelta(hours=1))
            by_day = await stats.terminal_via_by_day(conn, now - timedelta(days=7))
            findings = await stats.open_findings_by_code(conn)
            synced = parse_timestamp(await gateway.get_state(conn, SYNCED_KEY))
        self.metrics.set_output_counts(counts)
        self.metrics.set_missed_webhooks(by_day)
        for code, n in findings.items():
            self.metrics.findings_open.labels(code).set(n)
        self.metrics.ledger_sync_lag.set((now - synced).total_seconds() if synced else -1)
        if self.aurous is not None:
            self.metrics.poll_budget_used.set(self.aurous.budget.used)
            for kind, n in self.aurous.requests.items():
                self.metrics.aurous_requests.labels(kind).set(n)

    def after_commit(self, results: Sequence[ObservationResult]) -> None:
        for result in results:
            if result.applied:
                self.metrics.transitions.labels(result.source, result.status).inc()
            if not is_known(result.observed):
                self.metrics.unknown_statuses.labels(result.observed[:32]).inc()
        if self.settings.background and any(r.has_pending_outputs for r in results):
            self.archiver.kick()

    async def close(self) -> None:
        if self.ticker is not None:
            self.ticker.stop()
        await self.intake.stop()
        if self.audit is not None:
            await self.audit.stop()
        await self.archiver.stop()
        if self.aurous is not None:
            await self.aurous.aclose()
        await self.http.aclose()
        await self.db.dispose()


RuntimeDep: TypeAlias = NamedDependency[Runtime]
"""How a route handler asks for the runtime."""


def load_secret_box(settings: Settings) -> SecretBox:
    if settings.master_key:
        return SecretBox(decode_master_key(settings.master_key))
    path = Path(settings.data_dir) / MASTER_KEY_FILE
    text, created = read_or_create_private_file(path, new_master_key_text)
    if created:
        log.warning("master key generated into %s; back it up with the database", path.resolve())
    return SecretBox(decode_master_key(text))


async def _check_migrated(db: Database) -> str | None:
    head = head_revision()
    async with db.read() as conn:
        current = await current_revision(conn)
    if current != head:
        raise NotMigrated(
            f"database is at revision {current or 'none'}, code expects {head}; "
            "run `aurous-receiver migrate`"
        )
    return head


def _aurous_client(settings: Settings) -> AurousClient | None:
    if not settings.aurous_api_key:
        return None
    return AurousClient(
        settings.aurous_base_url,
        settings.aurous_api_key,
        budget=RateBudget(settings.poll_budget_per_min),
        version=settings.aurous_version,
    )


async def open_runtime(settings: Settings) -> Runtime:
    db = Database(settings.database_url)
    try:
        head = await _check_migrated(db)
    except Exception:
        await db.dispose()
        raise
    secrets = SecretStore(db, load_secret_box(settings))
    await secrets.bootstrap(settings.bootstrap_secrets)
    owner = new_id("own_")
    aurous = _aurous_client(settings)
    # Output downloads come from Aurous too: its 429s pause the API calls as well.
    hooks = {"response": [aurous.budget.watch]} if aurous else {}
    http = httpx.AsyncClient(timeout=httpx.Timeout(60, connect=10), event_hooks=hooks)
    blobs = BlobStore.from_url(settings.media_url)
    archiver = Archiver(
        db,
        blobs,
        http,
        policy=HostPolicy.for_base(settings.aurous_base_url, settings.download_hosts),
        spool_dir=Path(settings.data_dir) / "spool",
        owner=owner,
        output_ttl_s=settings.output_ttl_s,
        concurrency=settings.archive_concurrency,
        max_bytes=settings.max_output_bytes,
        aurous=aurous,
        lease=timedelta(seconds=settings.lease_s),
        budget=aurous.budget if aurous else None,
    )
    runtime = Runtime(
        settings=settings,
        db=db,
        secrets=secrets,
        intake=Intake(db, output_ttl_s=settings.output_ttl_s, writers=1 if db.is_sqlite else 4),
        metrics=Metrics(),
        blobs=blobs,
        http=http,
        aurous=aurous,
        archiver=archiver,
        admin_token=resolve_admin_token(settings),
        head_revision=head,
        owner=owner,
        creator=JobCreator(
            db,
            aurous,
            output_ttl_s=settings.output_ttl_s,
            repair_after=timedelta(seconds=settings.create_repair_after_s),
        ),
    )
    if aurous is not None:
        runtime.reconciler = Reconciler(
            db,
            aurous,
            owner=owner,
            output_ttl_s=settings.output_ttl_s,
            on_observed=runtime.after_commit,
            lease=timedelta(seconds=settings.lease_s),
        )
        runtime.audit = Audit(
            db,
            aurous,
            owner=owner,
            output_ttl_s=settings.output_ttl_s,
            config=AuditConfig.from_settings(settings),
            on_observed=runtime.after_commit,
        )
        if settings.background:  # a low-balance webhook starts an audit pass at once
            runtime.intake.add_event_listener(runtime.audit.on_events)
    runtime.intake.add_listener(runtime.after_commit)
    await runtime.intake.start()
    await archiver.clean_spool()
    if settings.background:
        runtime.ticker = _start_ticker(runtime)
    return runtime


def _start_ticker(runtime: Runtime) -> Ticker:
    ticker = Ticker()
    tick = runtime.settings.tick_s
    ticker.every(tick, "archive", runtime.archiver.run_until_idle)
    ticker.every(tick, "gauges", runtime.refresh_gauges)
    if runtime.reconciler is not None:
        ticker.every(runtime.settings.sweep_interval_s, "sweep", runtime.reconciler.sweep)
        ticker.every(tick, "polls", runtime.reconciler.poll_due)
        ticker.every(tick, "create-repair", runtime.creator.repair)
        if runtime.audit is not None:
            ticker.every(runtime.audit.config.interval_s, "audit", runtime.audit.run)
    else:
        log.warning("AUROUS_API_KEY is not set: no sweeps or polls; webhooks only")
    ticker.start()
    return ticker
