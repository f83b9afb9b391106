"""Everything a running service holds, built complete in one step by `open_runtime` and
closed by the app's lifespan (or by a one-off CLI command)."""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TypeAlias

import httpx
from litestar.di import NamedDependency

from receiver.activity import SUMMARY_EVERY_S, ActivitySummary
from receiver.admin_sessions import Sessions
from receiver.archive.archiver import ArchiveConfig, Archiver
from receiver.archive.fetch import HostPolicy
from receiver.aurous import AurousClient, RateBudget
from receiver.gauges import Gauges
from receiver.ids import new_id
from receiver.jobs.creation import JobCreator
from receiver.jobs.reconcile import ReconcileConfig, Reconciler
from receiver.jobs.replica import Replica
from receiver.jobs.tracker import JobTracker
from receiver.metrics import Metrics
from receiver.relay.destinations import DestinationStore
from receiver.relay.feed import Feed
from receiver.relay.links import Links
from receiver.relay.push import PushConfig, Pusher
from receiver.scheduler import Ticker
from receiver.settings import Settings
from receiver.spend.audit import Audit, AuditConfig
from receiver.web.auth import resolve_admin_token
from receiver.webhooks.intake import Intake
from receiver.webhooks.keyring import SecretStore
from storage import gateway
from storage.blobs import BlobStore
from storage.crypto import CryptoError, SecretBox, open_secret_box
from storage.db import Database
from storage.migrate import current_revision, head_revision
from storage.private import keep_private
from storage.types import utcnow

__all__ = [
    "NotMigrated",
    "Runtime",
    "RuntimeDep",
    "check_startable",
    "load_secret_box",
    "open_runtime",
]

log = logging.getLogger(__name__)
MASTER_KEY_FILE = "master.key"
KEY_CHECK_STATE = "master_key_check"
_KEY_CHECK = b"master-key-check"
WRONG_MASTER_KEY = (
    "the master key (RECEIVER_MASTER_KEY, else master.key in the data directory) is not the "
    "one this database's secrets are sealed with; use that key"
)


class NotMigrated(RuntimeError):
    """The database schema is behind the code."""


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    db: Database
    secrets: SecretStore
    tracker: JobTracker
    intake: Intake
    metrics: Metrics
    gauges: Gauges
    blobs: BlobStore
    http: httpx.AsyncClient
    aurous: AurousClient | None  # None without AUROUS_API_KEY: webhooks only
    archiver: Archiver
    creator: JobCreator
    reconciler: Reconciler | None
    audit: Audit | None
    destinations: DestinationStore
    links: Links
    pusher: Pusher
    feed: Feed
    ticker: Ticker | None  # None for one-off commands: no background work
    admin_token: str
    sessions: Sessions
    head_revision: str | None
    owner: str  # this replica's name on the leases it takes

    async def start(self) -> None:
        await self.intake.start()
        await self.archiver.clean_spool()
        if self.ticker is not None:
            self.ticker.start()

    async def close(self) -> None:
        if self.ticker is not None:
            await self.ticker.stop()
        await self.intake.stop()
        if self.audit is not None:
            await self.audit.stop()
        await self.archiver.stop()
        await self.pusher.stop()
        if self.reconciler is not None:
            await self.reconciler.release()
        if self.aurous is not None:
            await self.aurous.aclose()
        await self.http.aclose()
        await self.db.dispose()


RuntimeDep: TypeAlias = NamedDependency[Runtime]
"""How a route handler asks for the runtime."""


async def load_secret_box(db: Database, settings: Settings) -> SecretBox:
    """The master key's box, once it is known to be the key this database's secrets are sealed
    with: one secret sealed under another key would stop every webhook from verifying."""
    path = Path(settings.data_dir) / MASTER_KEY_FILE
    box, created = open_secret_box(settings.master_key, path)
    if created:
        log.warning("master key generated into %s; back it up with the database", path.resolve())
    check = await db.read(lambda conn: gateway.get_state(conn, KEY_CHECK_STATE))
    if check is None:
        await _check_sealed_secrets(db, box)  # sealed before the database kept a key check
        sealed = base64.b64encode(box.seal(KEY_CHECK_STATE, _KEY_CHECK)).decode()
        check = await db.write(
            lambda conn: gateway.claim_state(conn, KEY_CHECK_STATE, sealed, utcnow())
        )
    try:
        box.open(base64.b64decode(check), _KEY_CHECK)
    except CryptoError:
        raise CryptoError(WRONG_MASTER_KEY) from None
    return box


async def _check_sealed_secrets(db: Database, box: SecretBox) -> None:
    """For a database sealed before it kept a key check: a key that opens fewer of its secrets
    than it cannot is another key. Secrets the key does not open were sealed under a wrong key
    by an earlier release; they are left out (each says how to replace it)."""
    opened, unopened = await SecretStore(db, box).sealed_elsewhere()
    opened_too, unopened_too = await DestinationStore(db, box).sealed_elsewhere()
    if unopened + unopened_too > opened + opened_too:
        raise CryptoError(WRONG_MASTER_KEY)


async def _check_migrated(db: Database) -> str | None:
    head = head_revision()
    current = await current_revision(db)
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


async def check_startable(settings: Settings) -> None:
    """What would stop `open_runtime`, found without starting anything: a blob store URL it
    cannot use, a schema behind the code, or a master key other than the one the database's
    secrets are sealed with."""
    BlobStore.from_url(settings.media_url)  # an unusable RECEIVER_MEDIA_URL says so now
    db = Database(settings.database_url)
    try:
        await _check_migrated(db)
        await load_secret_box(db, settings)
    finally:
        await db.dispose()


async def open_runtime(settings: Settings) -> Runtime:
    """Build and start everything; background work only if `settings.background`."""
    keep_private(Path(settings.data_dir))
    db = Database(settings.database_url)
    try:
        head = await _check_migrated(db)
        box = await load_secret_box(db, settings)
        secrets = SecretStore(db, box)
        await secrets.bootstrap(settings.bootstrap_secrets)
        runtime = _build(settings, db, box, secrets, head)
    except Exception:
        await db.dispose()
        raise
    try:
        await runtime.start()
    except BaseException:
        await runtime.close()
        raise
    return runtime


def _build(
    settings: Settings, db: Database, box: SecretBox, secrets: SecretStore, head: str | None
) -> Runtime:
    owner = new_id("own_")
    admin_token = resolve_admin_token(settings)
    aurous = _aurous_client(settings)
    metrics = Metrics()
    tracker = JobTracker(db, output_ttl_s=settings.output_ttl_s, aurous=aurous)
    # Output downloads come from Aurous too: its 429s pause the API calls as well.
    hooks = {"response": [aurous.budget.watch]} if aurous else {}
    http = httpx.AsyncClient(timeout=httpx.Timeout(60, connect=10), event_hooks=hooks)
    blobs = BlobStore.from_url(settings.media_url)
    replica = Replica(db, tracker, owner, lease=timedelta(seconds=settings.lease_s))
    archive = ArchiveConfig(
        policy=HostPolicy.for_base(settings.aurous_base_url, settings.download_hosts),
        spool_dir=Path(settings.data_dir) / "spool",
        concurrency=settings.archive_concurrency,
        max_bytes=settings.max_output_bytes,
    )
    budget = aurous.budget if aurous else None
    archiver = Archiver(replica, blobs, http, archive, budget=budget)
    sweeps = ReconcileConfig(sweep_every=timedelta(seconds=settings.sweep_interval_s))
    reconciler = Reconciler(replica, aurous, sweeps) if aurous else None
    audit = Audit(replica, aurous, AuditConfig.from_settings(settings)) if aurous else None
    background = settings.background
    intake = Intake(
        tracker,
        # a low-balance webhook starts an audit pass at once
        on_events=audit.on_events if audit is not None and background else None,
        writers=1 if db.is_sqlite else 4,
    )
    creator = JobCreator(
        db, tracker, aurous, repair_after=timedelta(seconds=settings.create_repair_after_s)
    )
    gauges = Gauges(db, metrics, aurous)
    destinations = DestinationStore(db, box)
    ttl = timedelta(seconds=settings.link_ttl_s)
    links = Links(blobs, box.derive(b"download-links"), ttl, settings.public_url)
    push = PushConfig(
        retry_scale=settings.relay_retry_scale,
        disable_after=timedelta(seconds=settings.destination_disable_after_s),
    )
    pusher = Pusher(replica, destinations, links, metrics, push)
    feed = Feed(db, links)
    tracker.subscribe(metrics.count_job_news)
    tracker.subscribe_to_events(feed.on_events)
    summary = ActivitySummary(metrics)
    if background:
        tracker.subscribe(archiver.on_news)
        tracker.subscribe_to_events(pusher.on_events)
        archiver.subscribe(summary.count_archive_round)
    return Runtime(
        settings=settings,
        db=db,
        secrets=secrets,
        tracker=tracker,
        intake=intake,
        metrics=metrics,
        gauges=gauges,
        blobs=blobs,
        http=http,
        aurous=aurous,
        archiver=archiver,
        creator=creator,
        reconciler=reconciler,
        audit=audit,
        destinations=destinations,
        links=links,
        pusher=pusher,
        feed=feed,
        ticker=_ticker(
            settings, archiver, gauges, reconciler, creator, audit, pusher, feed, summary
        )
        if background
        else None,
        admin_token=admin_token,
        sessions=Sessions(db, admin_token, timedelta(seconds=settings.session_ttl_s)),
        head_revision=head,
        owner=owner,
    )


def _ticker(
    settings: Settings,
    archiver: Archiver,
    gauges: Gauges,
    reconciler: Reconciler | None,
    creator: JobCreator,
    audit: Audit | None,
    pusher: Pusher,
    feed: Feed,
    summary: ActivitySummary,
) -> Ticker:
    ticker = Ticker()
    tick = settings.tick_s
    ticker.every(tick, "archive", archiver.run_until_idle)
    ticker.every(tick, "gauges", gauges.refresh)
    ticker.every(tick, "push", pusher.run_until_idle)
    keep = timedelta(days=settings.event_retention_days)
    ticker.every(3600, "event-retention", lambda: feed.prune(keep))
    ticker.every(SUMMARY_EVERY_S, "activity-summary", summary.log_last_minute)
    if reconciler is not None:  # without an API key: warned about at start (startup_checks)
        ticker.every(settings.sweep_interval_s, "sweep", reconciler.sweep)
        ticker.every(tick, "polls", reconciler.poll_due)
        ticker.every(tick, "create-repair", creator.repair)
    if audit is not None:
        ticker.every(audit.config.interval_s, "audit", audit.run)
    return ticker
