"""The spend API on both databases: summary shapes and groupings, the error envelope for bad
parameters, the ledger's list shape and cursor, findings, and a CSV whose sums are the summary."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from receiver.generation import decode_generation
from receiver.jobs.lifecycle import Observation
from receiver.jobs.tracker import JobTracker
from receiver.settings import Settings
from receiver.spend.rules import normalize_row
from storage import gateway
from storage.db import Connection, Database
from storage.records import NewFinding, NewLedgerEntry
from storage.types import utcnow
from tests.support.aurous import generation

Client = AsyncTestClient[Any]
MOVES = [  # (uev id, type, amount as Aurous sent it, generation, created_at)
    ("uev_01", "topup", 100, None, "2026-05-03T09:00:00Z"),
    ("uev_02", "hold", 2, "img_a", "2026-05-03T10:00:00Z"),
    ("uev_03", "charge", -2, "img_a", "2026-05-03T10:00:20Z"),  # the other sign convention
    ("uev_04", "hold", 5, "vid_b", "2026-05-04T10:00:00Z"),
    ("uev_05", "release", 5, "vid_b", "2026-05-04T10:02:00Z"),
    ("uev_06", "hold", 2, "img_c", "2026-05-04T11:00:00Z"),
    ("uev_07", "charge", 2.5, "img_c", "2026-05-04T11:00:30Z"),
    ("uev_08", "refund", 0.5, "img_c", "2026-05-05T08:00:00Z"),
    ("uev_09", "charge", 3, "img_ghost", "2026-05-05T09:00:00Z"),
]


async def seed(settings: Settings) -> None:
    db = Database(settings.database_url)
    try:
        for job_id, status, cost in (
            ("img_a", "succeeded", 2),
            ("vid_b", "failed", 0),
            ("img_c", "succeeded", 2),
        ):
            body = generation(job_id, status, cost={"amount": cost}, inference_type="t2i")
            gen = decode_generation(json.dumps(body).encode())
            tracker = JobTracker(db, output_ttl_s=86400)
            await tracker.observe([Observation(gen, "webhook:evt_x", utcnow())])
        rows = []
        for uev, kind, amount, gen_id, at in MOVES:
            raw = {
                "id": uev,
                "type": kind,
                "amount": amount,
                "generation_id": gen_id,
                "created_at": at,
            }
            entry = normalize_row(raw)
            assert entry is not None
            rows.append(entry)

        def store(conn: Connection) -> None:
            _store_oldest_first(conn, rows, first_position=0)
            gateway.insert_findings(conn, [_finding()])

        await db.write(store)
    finally:
        await db.dispose()


def _store_oldest_first(
    conn: Connection, rows: list[NewLedgerEntry], *, first_position: int
) -> None:
    """Positions from `first_position` up, in list order (the gateway takes newest first)."""
    newest = first_position + len(rows) - 1
    gateway.upsert_ledger_entries(conn, rows[::-1], first_position=newest, synced_at=utcnow())


def _finding() -> NewFinding:
    now = utcnow()
    return NewFinding(
        code="charge_mismatch",
        subject="img_c",
        job_id="img_c",
        expected_micros=2_000_000,
        actual_micros=2_000_000,
        reason="example",
        action=None,
        first_seen_at=now,
        last_seen_at=now,
        resolved_at=None,
    )


@pytest.fixture
async def seeded(client: Client, settings: Settings) -> Client:
    await seed(settings)
    return client


async def test_summary_totals_and_groups(seeded: Client) -> None:
    body = (await seeded.get("/spend/summary", params={"by": "kind"})).json()
    assert body["currency"] == "credit"
    # charged = charges - refunds: 2 + 2.5 + 3 - 0.5; held/released are holds placed/released
    assert body["total"] == {
        "charged": 7.0,
        "held": 9.0,
        "released": 5.0,
        "refunded": 0.5,
        "jobs": 4,
    }
    groups = {g["key"]: g for g in body["groups"]}
    assert set(groups) == {"image", "video", "unknown"}
    assert groups["image"]["charged"] == 4.0 and groups["image"]["jobs"] == 2
    assert groups["unknown"]["charged"] == 3.0  # money for a job the receiver never saw

    by_day = (await seeded.get("/spend/summary", params={"by": "day"})).json()
    assert [g["key"] for g in by_day["groups"]] == ["2026-05-03", "2026-05-04", "2026-05-05"]
    assert [g["charged"] for g in by_day["groups"]] == [2.0, 2.5, 2.5]
    by_status = (await seeded.get("/spend/summary", params={"by": "status"})).json()
    assert {g["key"]: g["jobs"] for g in by_status["groups"]} == {
        "failed": 1,
        "succeeded": 2,
        "unknown": 1,
    }
    by_model = (await seeded.get("/spend/summary", params={"by": "model"})).json()
    assert {g["key"] for g in by_model["groups"]} == {"t2i", "unknown"}

    window = {"by": "day", "since": "2026-05-04", "until": "2026-05-05T00:00:00Z"}
    day = (await seeded.get("/spend/summary", params=window)).json()
    assert day["total"]["charged"] == 2.5 and day["total"]["jobs"] == 2
    assert day["since"] == "2026-05-04T00:00:00Z"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"by": "weekly"}, "by"),
        ({"since": "last tuesday"}, "since"),
        ({"until": "2026-13-01"}, "until"),
    ],
)
async def test_bad_parameters_use_the_error_envelope(
    seeded: Client, params: dict[str, str], param: str
) -> None:
    response = await seeded.get("/spend/summary", params=params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request" and error["param"] == param
    assert response.headers["Receiver-Request-Id"] == error["request_id"]


async def test_the_ledger_is_a_paged_list_newest_first(seeded: Client) -> None:
    first = (await seeded.get("/spend/ledger", params={"limit": 5})).json()
    assert [e["id"] for e in first["data"]] == ["uev_09", "uev_08", "uev_07", "uev_06", "uev_05"]
    assert first["has_more"] is True
    rest = (await seeded.get("/spend/ledger", params={"cursor": first["next_cursor"]})).json()
    assert [e["id"] for e in rest["data"]] == ["uev_04", "uev_03", "uev_02", "uev_01"]
    assert rest["has_more"] is False and rest["next_cursor"] is None
    charges = (await seeded.get("/spend/ledger", params={"type": "charge", "job": "img_a"})).json()
    [charge] = charges["data"]
    assert (charge["amount"], charge["generation_id"]) == (-2.0, "img_a")
    bad = await seeded.get("/spend/ledger", params={"cursor": "x"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "cursor"


async def test_findings_and_the_csv_agree_with_the_summary(seeded: Client) -> None:
    [finding] = (await seeded.get("/spend/findings")).json()["data"]
    assert (finding["code"], finding["job_id"], finding["expected"]) == (
        "charge_mismatch",
        "img_c",
        2.0,
    )
    assert (await seeded.get("/spend/findings", params={"status": "resolved"})).json()["data"] == []

    response = await seeded.get("/spend/export.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == [
        "id",
        "kind",
        "model",
        "status",
        "created",
        "completed",
        "held",
        "charged",
        "released",
        "refunded",
        "findings",
    ]
    by_id = {r["id"]: r for r in rows}
    assert by_id["img_c"]["findings"] == "charge_mismatch" and by_id["img_c"]["charged"] == "2"
    assert (
        by_id["img_ghost"]["status"] == "" and by_id["img_a"]["created"] == "2026-05-04T10:00:00Z"
    )
    total = (await seeded.get("/spend/summary")).json()["total"]
    assert len(rows) == total["jobs"]
    for column in ("held", "charged", "released", "refunded"):
        assert sum(Decimal(r[column]) for r in rows) == Decimal(str(total[column]))


async def test_running_the_audit_needs_an_api_key(seeded: Client) -> None:
    response = await seeded.post("/spend/sync")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "not_configured"
    runway = (await seeded.get("/spend/balance")).json()
    assert runway["available"] is None and runway["days"] is None


async def test_whole_history_reports_match_the_ledger_through_resyncs_and_late_links(
    client: Client, settings: Settings
) -> None:
    """Whole-history reports read rollups; a window read the ledger itself. However the ledger
    arrives (overlapping pages read twice, a release naming only its hold and linked to its job
    later), the two agree for every grouping."""
    await seed(settings)
    hold_only = {"id": "uev_10", "type": "release", "amount": 1, "hold_id": "hold_d"}
    late = [
        ({"id": "uev_11", "type": "hold", "amount": 1, "generation_id": "img_d"}, "hold_d"),
        (hold_only, None),
        ({"id": "uev_12", "type": "charge", "amount": 4, "generation_id": "img_c"}, None),
    ]
    db = Database(settings.database_url)
    try:
        for pages in (late[:2], late, late[1:]):  # the second and third walks re-read rows
            rows = []
            for raw, hold_id in pages:
                entry = normalize_row(raw | {"created_at": "2026-05-06T10:00:00Z"})
                assert entry is not None
                rows.append(msgspec.structs.replace(entry, hold_id=hold_id or entry.hold_id))

            def store(conn: Connection, rows: list[NewLedgerEntry] = rows) -> None:
                _store_oldest_first(conn, rows, first_position=len(MOVES))
                gateway.fill_generation_ids(conn)

            await db.write(store)
    finally:
        await db.dispose()
    everything = {"since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"}
    for by in ("day", "kind", "model", "status"):
        whole = (await client.get("/spend/summary", params={"by": by})).json()
        window = (await client.get("/spend/summary", params={"by": by, **everything})).json()
        assert whole["total"] == window["total"], by
        assert whole["groups"] == window["groups"], by
    total = whole["total"]
    assert total["jobs"] == 5 and total["held"] == 10.0 and total["released"] == 6.0
    assert total["charged"] == 11.0  # 7 before, plus the new 4-credit charge counted once


async def test_findings_page_with_a_cursor_and_never_drop_any_silently(
    seeded: Client, settings: Settings
) -> None:
    db = Database(settings.database_url)
    try:
        more = [
            msgspec.structs.replace(_finding(), subject=f"img_{n}", job_id=f"img_{n}")
            for n in range(4)
        ]
        await db.write(lambda conn: gateway.insert_findings(conn, more))
    finally:
        await db.dispose()
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await seeded.get("/spend/findings", params=params)).json()
        seen += [f["subject"] for f in page["data"]]
        pages += 1
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
    assert pages == 3 and seen == ["img_c", "img_0", "img_1", "img_2", "img_3"]
    bad = await seeded.get("/spend/findings", params={"cursor": "later"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "cursor"
    too_many = await seeded.get("/spend/findings", params={"limit": 10_001})
    assert too_many.status_code == 400
