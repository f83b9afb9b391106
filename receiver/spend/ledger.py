"""The local copy of the Aurous ledger: walks of `GET /v1/usage/events`, and balance readings.

A walk goes newest first down to the newest row of the previous complete walk (the
watermark), storing each page as it goes. The watermark moves only when a walk completes: a
walk cut short (crash, restart, error, lost lease) is walked again from the top, and the UNIQUE
uev ids absorb the rows already stored, so nothing is doubled and nothing skipped.

Ids are not ordered by time (ULIDs within a millisecond are random), so each row gets a
`position` that keeps Aurous's order: walk number * 2**32 minus the row's index in its walk. A
row seen again by a later walk takes that walk's position, which keeps the order consistent
when a walk repeats rows an interrupted one had stored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from receiver.aurous import AurousClient, AurousError, RawJson
from receiver.generation import parse_timestamp, to_micros
from receiver.spend.rules import normalize_row, unsettled
from storage import gateway
from storage.db import Connection, Database
from storage.records import BalanceSnapshotRecord, NewBalanceSnapshot, NewLedgerEntry
from storage.types import utcnow

__all__ = ["SYNCED_KEY", "LedgerSync", "SyncReport", "snapshot_values", "unchanged"]

log = logging.getLogger(__name__)

WATERMARK_KEY = "ledger.watermark"
CONTRACT_KEY = "ledger.contract"  # which of the two documented contracts Aurous serves
WALK_KEY = "ledger.walk"
SYNCED_KEY = "ledger.synced_at"  # when the last complete walk started (receiver clock)
_POSITIONS_PER_WALK = 1 << 32
_SNAPSHOT_REFRESH = timedelta(hours=1)  # store an unchanged balance again after this long
LEDGER, STREAM = "ledger", "usage"  # contract (a) and (b), named as `ledger_entry.contract`
_STREAM_LOOKBACK = timedelta(days=729)  # the stream answers at most 730 days back
# A stream row appears once its request is billed, which can be long after the request was
# made (its listing time): each walk reads this far back before its watermark again.
_STREAM_SETTLE = timedelta(days=2)


@dataclass
class SyncReport:
    pages: int = 0
    seen: int = 0
    new: int = 0
    complete: bool = False
    head: str | None = None  # the newest row when the walk started


@dataclass(frozen=True)
class Watermark:
    id: str
    created_at: datetime | None

    @classmethod
    def parse(cls, text: str | None) -> Watermark | None:
        if not text:
            return None
        data = json.loads(text)
        return cls(data["id"], parse_timestamp(data.get("created_at")))

    def reached_by(self, entry: NewLedgerEntry) -> bool:
        """This row, or one older than it (if Aurous has since pruned it)."""
        if entry.uev_id == self.id:
            return True
        created = entry.created_at
        return self.created_at is not None and created is not None and created < self.created_at


@dataclass
class Listing:
    """How `GET /v1/usage/events` is paged. The credit ledger (contract (a)) takes
    `starting_after`; the usage event stream (contract (b)) needs `start_time` and pages by an
    opaque `cursor`. A walk starts with what the last one learned and switches when Aurous asks
    for `start_time` or answers with stream rows."""

    contract: str
    mark: Watermark | None  # where the last complete walk stopped
    since: datetime  # contract (b)'s start_time, the same for every page of a walk

    @classmethod
    def of(cls, contract: str | None, mark: Watermark | None, now: datetime) -> Listing:
        """Contract (b) starts back past the watermark by as long as billing may lag, else as
        far back as the stream answers."""
        since = now - _STREAM_LOOKBACK
        if mark is not None and mark.created_at is not None:
            since = mark.created_at - _STREAM_SETTLE
        return cls(contract if contract == STREAM else LEDGER, mark, since)

    def stops_at(self) -> Watermark | None:
        """The ledger is walked down to the watermark; the stream, whose rows arrive late, to
        the end of its window (the UNIQUE id absorbs what is read again)."""
        return self.mark if self.contract == LEDGER else None

    async def page(self, aurous: AurousClient, cursor: str | None, limit: int) -> RawJson:
        if self.contract == STREAM:
            return await aurous.usage_events(start_time=self.since, cursor=cursor, limit=limit)
        return await aurous.usage_events(starting_after=cursor, limit=limit)

    def learn(self, body: RawJson) -> bool:
        """Switch to the stream if this first page is one; whether it did."""
        if self.contract == STREAM or not any(_stream_row(row) for row in _rows(body)):
            return False
        self.contract = STREAM
        return True

    def next_cursor(self, body: RawJson, rows: list[RawJson]) -> str | None:
        cursor = body.get("next_cursor")
        if isinstance(cursor, str) and cursor:
            return cursor
        return str(rows[-1].get("id")) if self.contract == LEDGER and rows else None


def _stream_row(row: RawJson) -> bool:
    return "credits_charged" in row and "amount" not in row


def _asks_for_start_time(error: AurousError) -> bool:
    return error.http_status == 400 and (
        error.param == "start_time" or "start_time" in error.message
    )


class LedgerSync:
    def __init__(
        self,
        db: Database,
        aurous: AurousClient,
        *,
        page_size: int,
        max_pages: int,
        still_ours: Callable[[], Awaitable[bool]],
    ) -> None:
        self._db = db
        self._aurous = aurous
        self._page_size = page_size
        self._max_pages = max_pages
        self._still_ours = still_ours  # renews the audit lease between pages
        self._contract: str | None = None  # as the last walk found it

    async def walk(self) -> SyncReport:
        report = SyncReport()
        started = utcnow()
        mark, top, contract = await self._begin(started)
        listing = Listing.of(contract, mark, started)
        cursor: str | None = None
        newest: NewLedgerEntry | None = None
        for _ in range(self._max_pages):
            body = await self._page(listing, cursor)
            rows = _rows(body)
            report.pages += 1
            entries, reached = newer_than(rows, listing.stops_at())
            newest = newest or (entries[0] if entries else None)
            report.head = report.head or (str(rows[0].get("id")) if rows else None)
            report.new += await self._store(entries, top - report.seen, started)
            report.seen += len(entries)
            if reached or not rows or not body.get("has_more"):
                report.complete = True
                break
            following = listing.next_cursor(body, rows)
            if following is None or following == cursor:
                break  # a page that names no way on: walked again from the top next time
            cursor = following
            if not await self._still_ours():
                break  # another replica took over: it walks again from the top
        self._contract = listing.contract
        if report.complete:
            await self._finish(newest, started, listing.contract)
        return report

    async def head(self) -> str | None:
        """The newest row's id right now."""
        listing = Listing.of(self._contract, None, utcnow())
        rows = _rows(await listing.page(self._aurous, None, 1))
        return str(rows[0].get("id")) if rows else None

    async def _page(self, listing: Listing, cursor: str | None) -> RawJson:
        try:
            body = await listing.page(self._aurous, cursor, self._page_size)
        except AurousError as error:
            if cursor is not None or listing.contract == STREAM or not _asks_for_start_time(error):
                raise
            listing.contract = STREAM
            return await listing.page(self._aurous, None, self._page_size)
        if cursor is None and listing.learn(body):
            log.warning("GET /v1/usage/events answers as the usage event stream; paging it so")
            return await listing.page(self._aurous, None, self._page_size)  # asked as one
        return body

    async def _begin(self, started: datetime) -> tuple[Watermark | None, int, str | None]:
        def begin(conn: Connection) -> tuple[Watermark | None, int, str | None]:
            mark = Watermark.parse(gateway.get_state(conn, WATERMARK_KEY))
            walk = int(gateway.get_state(conn, WALK_KEY) or 0) + 1
            gateway.set_state(conn, WALK_KEY, str(walk), started)
            contract = gateway.get_state(conn, CONTRACT_KEY)
            return mark, (walk + 1) * _POSITIONS_PER_WALK - 1, contract

        return await self._db.write(begin)

    async def _store(self, entries: list[NewLedgerEntry], first: int, started: datetime) -> int:
        return await self._db.write(
            lambda conn: gateway.upsert_ledger_entries(
                conn, entries, first_position=first, synced_at=started
            )
        )

    async def _finish(
        self, newest: NewLedgerEntry | None, started: datetime, contract: str
    ) -> None:
        def finish(conn: Connection) -> None:
            gateway.set_state(conn, CONTRACT_KEY, contract, started)
            if newest is not None:
                created = newest.created_at
                mark = {"id": newest.uev_id, "created_at": created and created.isoformat()}
                gateway.set_state(conn, WATERMARK_KEY, json.dumps(mark), started)
            gateway.set_state(conn, SYNCED_KEY, started.isoformat(), started)
            gateway.fill_generation_ids(conn)

        await self._db.write(finish)


def _rows(body: RawJson) -> list[RawJson]:
    data = body.get("data")
    return [row for row in data if isinstance(row, dict)] if isinstance(data, list) else []


def newer_than(
    rows: Sequence[Mapping[str, Any]], mark: Watermark | None
) -> tuple[list[NewLedgerEntry], bool]:
    """The page's rows above the watermark, normalized and deduped, and whether it was hit."""
    entries: dict[str, NewLedgerEntry] = {}
    for raw in rows:
        if unsettled(raw):
            continue  # stored once its request ends, by a later walk
        entry = normalize_row(raw)
        if entry is None:
            log.warning("ledger row not understood, skipped: %.200r", raw)
            continue
        if mark is not None and mark.reached_by(entry):
            return list(entries.values()), True
        entries.setdefault(entry.uev_id, entry)
    return list(entries.values()), False


def snapshot_values(
    balance: Mapping[str, Any],
    trigger: str,
    now: datetime,
    head: str | None,
    position: int | None,
) -> NewBalanceSnapshot:
    """A `GET /v1/balance` answer as a balance_snapshot row (numbers as micro-credits)."""

    def micros(name: str) -> int | None:
        value = balance.get(name)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return to_micros(value) if ok else None

    mode = balance.get("billing_mode")
    return NewBalanceSnapshot(
        taken_at=now,
        trigger=trigger,
        credits_micros=micros("credits"),
        held_micros=micros("held_credits"),
        available_micros=micros("available_credits"),
        billing_mode=mode if isinstance(mode, str) else None,
        ledger_head=head,
        ledger_position=position,
        raw=dict(balance),
    )


def unchanged(latest: BalanceSnapshotRecord, snapshot: NewBalanceSnapshot) -> bool:
    """Nothing new since the latest snapshot, and it is recent: no need for another row."""
    names = ("credits_micros", "held_micros", "available_micros", "ledger_head", "ledger_position")
    same = all(getattr(latest, name) == getattr(snapshot, name) for name in names)
    return same and snapshot.taken_at - latest.taken_at < _SNAPSHOT_REFRESH
