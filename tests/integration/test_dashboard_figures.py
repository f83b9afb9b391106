"""Issue 15: what the overview's figures mean. A missed webhook is a job the receiver expected
a webhook for (it created the job, or a webhook told of it first) whose final status came by
poll or sweep; jobs created elsewhere are not counted. The runway reads in whole days or
"more than a year", while the API keeps the number. The deliveries chart stacks its bars by
outcome, per minute."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from receiver.gauges import Gauges
from receiver.generation import decode_generation
from receiver.jobs.lifecycle import Observation
from receiver.jobs.tracker import JobTracker, JobWriter
from receiver.metrics import Metrics
from receiver.runtime import Runtime
from receiver.web import dashboard
from storage import gateway
from storage.db import Connection, Database
from storage.gateway import stats
from storage.records import NewBalanceSnapshot, NewDelivery, NewLedgerEntry, OutputCounts
from storage.states import DeliveryStatus, Source
from storage.types import utcnow
from tests.integration.test_dashboard_pages import log_in
from tests.support.aurous import generation

Client = AsyncTestClient[Any]


@pytest.fixture
async def tracker(db_url: str) -> AsyncIterator[JobTracker]:
    """A tracker of the test's own, on the app's database: the app's runtime lives on the
    test client's event loop, which PostgreSQL connections cannot be shared with."""
    db = Database(db_url)
    yield JobTracker(db, output_ttl_s=86400)
    await db.dispose()


async def _observe(tracker: JobTracker, job_id: str, status: str, source: Source) -> None:
    now = utcnow()
    fields = {"completed_at": now.isoformat()} if status == "succeeded" else {}
    body = json.dumps(generation(job_id, status, **fields)).encode()
    await tracker.observe([Observation(decode_generation(body), source, now)])


async def _create_here(tracker: JobTracker, job_id: str) -> None:
    """What `jobs/creation.py` writes when Aurous answers the create call."""
    body = json.dumps(generation(job_id, "pending")).encode()
    observation = Observation(decode_generation(body), Source.API, utcnow())

    def track(_: Connection, jobs: JobWriter) -> None:
        jobs.observe([observation])
        jobs.link_request(job_id, f"key-{job_id}")

    await tracker.write(track)


async def test_missed_webhooks_count_only_jobs_that_expected_one(
    client: Client, tracker: JobTracker, db_url: str
) -> None:
    # created through the receiver: one ended by poll (missed), one by webhook
    await _create_here(tracker, "img_here_poll")
    await _observe(tracker, "img_here_poll", "succeeded", Source.POLL)
    await _create_here(tracker, "img_here_hook")
    await _observe(tracker, "img_here_hook", "succeeded", Source.WEBHOOK)
    # first heard of by a webhook, the final one lost: a sweep brought the end (missed)
    await _observe(tracker, "img_told_by_hook", "processing", Source.WEBHOOK)
    await _observe(tracker, "img_told_by_hook", "succeeded", Source.SWEEP)
    # created elsewhere: adopted by a sweep, or tracked by id; polls and sweeps are expected
    await _observe(tracker, "img_adopted", "processing", Source.SWEEP)
    await _observe(tracker, "img_adopted", "succeeded", Source.SWEEP)
    await _observe(tracker, "img_adopted_polled", "processing", Source.SWEEP)
    await _observe(tracker, "img_adopted_polled", "succeeded", Source.POLL)
    await tracker.track("img_tracked_by_id")
    await _observe(tracker, "img_tracked_by_id", "succeeded", Source.POLL)

    since = utcnow() - timedelta(days=1)
    db = Database(db_url)
    metrics = Metrics()
    try:
        endings = await db.read(lambda conn: stats.job_endings(conn, since))
        await Gauges(db, metrics, None).refresh()
    finally:
        await db.dispose()
    assert endings.webhook_expected == {"poll": 1, "webhook": 1, "sweep": 1}
    assert endings.no_webhook_expected == {"sweep": 1, "poll": 2}

    nothing = dashboard.delivery_chart({}, since)
    overview = dashboard.Overview({}, nothing, endings, OutputCounts(), [], [])
    assert (overview.missed_webhooks, overview.webhook_expected) == (2, 3)
    assert overview.no_webhook_expected == 3
    assert overview.missed_webhook_rate == 2 / 3
    # the Prometheus gauge, per UTC day, by the same definition
    today = {"day": utcnow().date().isoformat()}
    assert metrics.registry.get_sample_value("receiver_missed_webhook_rate", today) == 2 / 3

    await log_in(client)
    page = (await client.get("/")).text
    figure = re.search(r'<p class="big" title="([^"]+)">\s*66\.7%', page)
    assert figure is not None, "the rate, with its definition in a tooltip"
    assert "poll or sweep" in figure.group(1) and "created elsewhere" in figure.group(1)
    assert "2 of 3 jobs expected to send a webhook" in page


async def test_no_job_that_expected_a_webhook_shows_a_dash(
    client: Client, tracker: JobTracker
) -> None:
    await _observe(tracker, "img_adopted", "succeeded", Source.SWEEP)
    await log_in(client)
    no_rate = r'<p class="big" title="[^"]+">\u2013'  # an en dash
    assert re.search(no_rate, (await client.get("/")).text)


def _charge(uev_id: str, credits: int, days_ago: float) -> NewLedgerEntry:
    at = utcnow() - timedelta(days=days_ago)
    raw = {"id": uev_id, "type": "charge", "amount": -credits}
    return NewLedgerEntry(
        uev_id, "charge", -credits * 1_000_000, "credit", None, None, at, None, "ledger", raw
    )


async def test_a_long_runway_reads_more_than_a_year_and_the_api_keeps_the_number(
    sqlite_client: Client,
) -> None:
    runtime: Runtime = sqlite_client.app.state.runtime
    snapshot = NewBalanceSnapshot(
        utcnow(), "sync", 10**12, 0, 10**12, "prepaid", None, None, {"available": 1_000_000}
    )

    def seed(conn: Connection) -> None:
        gateway.insert_balance_snapshot(conn, snapshot)
        rows = [_charge("uev_b", 40, 1), _charge("uev_a", 30, 6.5)]  # newest first
        gateway.upsert_ledger_entries(conn, rows, first_position=2, synced_at=utcnow())

    await runtime.db.write(seed)
    balance = (await sqlite_client.get("/spend/balance")).json()
    assert isinstance(balance["days"], float) and balance["days"] > 90_000  # a number, as before

    await log_in(sqlite_client)
    for path in ("/", "/dashboard/spend"):
        page = (await sqlite_client.get(path)).text
        assert "runway more than a year at" in page, path
        assert f"{balance['days']}" not in page


async def test_the_runway_averages_over_seven_days_when_the_ledger_is_older(
    sqlite_client: Client,
) -> None:
    """One charge yesterday in a ledger a month old is a seventh of it a day, not all of it."""
    runtime: Runtime = sqlite_client.app.state.runtime
    snapshot = NewBalanceSnapshot(
        utcnow(), "sync", 1093 * 10**6, 0, 1093 * 10**6, "prepaid", None, None, {}
    )
    topup = msgspec.structs.replace(
        _charge("uev_t", -1100, 30), type="topup", raw={"id": "uev_t", "type": "topup"}
    )

    def seed(conn: Connection) -> None:
        gateway.insert_balance_snapshot(conn, snapshot)
        rows = [_charge("uev_c", 7, 1), topup]  # newest first
        gateway.upsert_ledger_entries(conn, rows, first_position=2, synced_at=utcnow())

    await runtime.db.write(seed)
    balance = (await sqlite_client.get("/spend/balance")).json()
    assert balance["window_days"] == 7.0 and balance["daily_spend"] == 1.0
    assert balance["days"] == 1093.0


async def test_deliveries_stack_per_minute_by_outcome(sqlite_client: Client) -> None:
    runtime: Runtime = sqlite_client.app.state.runtime
    now = utcnow()

    def delivery(status: str, minutes_ago: float, n: int) -> NewDelivery:
        return NewDelivery(
            status=status,
            received_at=now - timedelta(minutes=minutes_ago),
            body=b"{}",
            body_size=2,
            headers={},
            remote_addr="127.0.0.1",
            request_id=None,
            event_id=f"evt_{status}_{minutes_ago}_{n}" if status != "rejected" else None,
            reject_reason="no_matching_signature" if status == "rejected" else None,
        )

    arrivals = [("processed", 42.5, 3), ("rejected", 42.5, 1), ("quarantined", 10.5, 2)]
    arrivals += [("processed", 0.5, 5), ("processed", 75, 4)]  # the last before the hour
    rows = [delivery(s, ago, n) for s, ago, count in arrivals for n in range(count)]
    await runtime.db.write(lambda conn: gateway.insert_delivery_records(conn, rows))

    chart = (await dashboard.overview(runtime)).deliveries
    assert chart.total == 11
    assert chart.peak == 5
    assert [len(bar.segments) for bar in chart.bars] == [2, 1, 1]
    processed, rejected = chart.bars[0].segments
    assert (processed.outcome, rejected.outcome) == (DeliveryStatus.PROCESSED, "rejected")
    assert rejected.y + rejected.height == pytest.approx(processed.y)  # stacked on top
    assert processed.y + processed.height == pytest.approx(chart.baseline)
    assert chart.bars[-1].segments[0].y == pytest.approx(chart.plot_top)  # the busiest minute
    assert all(bar.x >= 0 and bar.x + bar.width <= chart.width for bar in chart.bars)
    assert "3 processed, 1 rejected" in chart.bars[0].title
    assert list(chart.totals) == list(DeliveryStatus)  # every outcome in the legend, in order

    await log_in(sqlite_client)
    page = (await sqlite_client.get("/")).text
    assert page.count('<rect class="processed"') == 2
    assert page.count('<rect class="rejected"') == 1
    assert page.count('<rect class="quarantined"') == 1
    assert "<polyline" not in page


async def test_copies_of_a_delivery_show_as_duplicates_at_their_last_arrival(
    sqlite_client: Client,
) -> None:
    runtime: Runtime = sqlite_client.app.state.runtime
    now = utcnow()
    first = NewDelivery(
        status="processed",
        received_at=now - timedelta(minutes=20.5),
        body=b"{}",
        body_size=2,
        headers={},
        remote_addr="127.0.0.1",
        request_id=None,
        event_id="evt_copied",
    )

    def store(conn: Connection) -> None:
        gateway.insert_deliveries(conn, [first])
        gateway.count_duplicates(conn, {"evt_copied": (4, now - timedelta(minutes=5.5))})

    await runtime.db.write(store)
    chart = (await dashboard.overview(runtime)).deliveries
    assert chart.total == 5
    assert [[s.outcome for s in bar.segments] for bar in chart.bars] == [
        [DeliveryStatus.PROCESSED],
        [DeliveryStatus.DUPLICATE],
    ]
    assert "4 duplicate" in chart.bars[1].title
