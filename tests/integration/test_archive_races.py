"""The archiver where crashes, leases and Aurous's hiccups meet: a paid-for output ends archived
with its true bytes, or waits to be tried again; never lost by mistake, never stored mangled."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from receiver.archive.archiver import ArchiveConfig, Archiver
from receiver.archive.fetch import HostPolicy
from receiver.aurous import AurousError
from receiver.generation import GenerationResponse, decode_generation
from receiver.jobs.lifecycle import Observation
from receiver.jobs.replica import Replica
from receiver.jobs.tracker import JobTracker
from storage import gateway
from storage.blobs import BlobStore, BlobStoreError, key_for
from storage.db import Database
from storage.records import OutputRecord
from storage.states import Source
from tests.support.aurous import generation

AUROUS = "http://127.0.0.1:9"  # loopback: the download policy lets tests use it
Handler = Callable[[httpx.Request], httpx.Response]


def _succeeded(job_id: str, urls: list[str]) -> GenerationResponse:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    body = generation(job_id, completed_at=now, output_urls=urls)
    return decode_generation(json.dumps(body).encode())


async def _chunks(data: bytes, delay: float = 0.0) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 100_000):
        if delay:
            await asyncio.sleep(delay)
        yield data[start : start + 100_000]


def _honours_range(data: bytes, requests: Counter[str]) -> Handler:
    """A server as RFC 9110 has it: Range answered with 206, and 416 past the end."""

    def serve(request: httpx.Request) -> httpx.Response:
        requests[request.headers.get("range", "whole")] += 1
        ranged = request.headers.get("range")
        start = int(ranged.removeprefix("bytes=").split("-")[0]) if ranged else 0
        if start >= len(data) and ranged:
            return httpx.Response(416, headers={"content-range": f"bytes */{len(data)}"})
        headers = {"content-length": str(len(data) - start), "content-type": "image/png"}
        if ranged:
            headers["content-range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        return httpx.Response(
            206 if ranged else 200, content=_chunks(data[start:]), headers=headers
        )

    return serve


class _AurousDown:
    """An Aurous that cannot be reached just now."""

    async def get_generation(self, job_id: str) -> GenerationResponse:
        raise AurousError(0, "network", "connect_error", "connection refused")


@dataclass
class _Receiver:
    db: Database
    tracker: JobTracker
    root: Path

    def archiver(
        self, serve: Handler, *, owner: str = "replica-a", lease_s: float = 60, slots: int = 4
    ) -> Archiver:
        replica = Replica(self.db, self.tracker, owner, lease=timedelta(seconds=lease_s))
        http = httpx.AsyncClient(transport=httpx.MockTransport(serve))
        config = ArchiveConfig(HostPolicy.for_base(AUROUS), self.root / "spool", concurrency=slots)
        return Archiver(replica, self.blobs, http, config)

    @property
    def blobs(self) -> BlobStore:
        return BlobStore.from_url(f"file://{self.root}/blobs")

    async def succeed(self, job_id: str, *urls: str) -> None:
        observation = Observation(_succeeded(job_id, list(urls)), Source.WEBHOOK, datetime.now(UTC))
        await self.tracker.observe([observation])

    async def outputs(self, *job_ids: str) -> list[OutputRecord]:
        return await self.db.read(lambda conn: gateway.list_outputs(conn, list(job_ids)))


@pytest.fixture
async def receiver(db_url: str, tmp_path: Path) -> AsyncIterator[_Receiver]:
    db = Database(db_url)
    aurous: Any = _AurousDown()
    yield _Receiver(db, JobTracker(db, output_ttl_s=86_400, aurous=aurous), tmp_path)
    await db.dispose()


async def _archived_truly(receiver: _Receiver, output: OutputRecord, data: bytes) -> bool:
    true = hashlib.sha256(data).hexdigest()
    return (
        output.state == "archived"
        and output.sha256 == true
        and output.size == len(data)
        and await receiver.blobs.rehash(true) == true
    )


async def test_a_whole_spool_left_by_a_crash_is_archived_not_lost(receiver: _Receiver) -> None:
    """Killed after the last byte but before the blob was stored: the next attempt asks for
    the bytes past the end, the server answers 416 with that very length, and the spool is
    stored as it is."""
    data = os.urandom(300_000)
    url = f"{AUROUS}/v1/images/img_whole/output/0"
    await receiver.succeed("img_whole", url)
    [output] = await receiver.outputs("img_whole")
    spool = receiver.root / "spool"
    spool.mkdir()
    (spool / f"output-{output.id}.part").write_bytes(data)
    requests: Counter[str] = Counter()

    await receiver.archiver(_honours_range(data, requests)).run_until_idle()

    [output] = await receiver.outputs("img_whole")
    assert await _archived_truly(receiver, output, data), output
    assert requests == {f"bytes={len(data)}-": 1}  # not downloaded again


async def test_a_spool_a_crash_left_linked_into_the_store_is_never_rewritten(
    receiver: _Receiver,
) -> None:
    """Killed between linking the spool into the store and removing it: the spool is the blob
    (one file, two names), and another output may share that blob. The retry stores it as it
    is: truncating it to download again would have emptied the blob under both."""
    data = os.urandom(300_000)
    true = hashlib.sha256(data).hexdigest()
    await receiver.succeed("img_linked", f"{AUROUS}/o/linked")
    [output] = await receiver.outputs("img_linked")
    spool = receiver.root / "spool" / f"output-{output.id}.part"
    spool.parent.mkdir()
    spool.write_bytes(data)
    blob = receiver.root / "blobs" / key_for(true)
    blob.parent.mkdir(parents=True)
    os.link(spool, blob)
    requests: Counter[str] = Counter()

    def cut_short(request: httpx.Request) -> httpx.Response:
        requests[request.headers.get("range", "whole")] += 1
        return httpx.Response(200, content=_chunks(data[:100_000]))

    await receiver.archiver(cut_short).run_until_idle()

    [output] = await receiver.outputs("img_linked")
    assert await _archived_truly(receiver, output, data), output
    assert requests == {} and blob.read_bytes() == data and not spool.exists()


async def test_a_whole_download_the_store_refused_is_stored_later_though_its_url_expired(
    receiver: _Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store is down once (S3 outage, expired credentials) after the whole output came,
    and by the next attempt its URL has expired: the spool still holds all of it."""
    data = os.urandom(300_000)
    await receiver.succeed("img_outage", f"{AUROUS}/o/outage")
    adopt = BlobStore.adopt_file
    outages = iter([True])

    async def down_once(self: BlobStore, *args: Any, **kwargs: Any) -> bool:
        if next(outages, False):
            raise BlobStoreError("the store is unavailable")
        return await adopt(self, *args, **kwargs)

    monkeypatch.setattr(BlobStore, "adopt_file", down_once)
    first = await receiver.archiver(_honours_range(data, Counter())).run_due()

    def expired(request: httpx.Request) -> httpx.Response:
        error = {"error": {"type": "invalid_request", "code": "output_expired", "message": "gone"}}
        return httpx.Response(410, json=error)

    later = receiver.archiver(expired)
    for _ in range(30):  # the retry is due after a second or two
        await asyncio.sleep(0.1)
        if (await later.run_due()).handled:
            break

    [output] = await receiver.outputs("img_outage")
    assert first.retry == 1
    assert await _archived_truly(receiver, output, data), output
    assert output.content_type == "image/png"
    assert list((receiver.root / "spool").iterdir()) == []


async def test_a_partial_spool_from_another_url_is_not_continued(receiver: _Receiver) -> None:
    """Bytes kept from an expired URL are not the start of whatever a fresh URL serves: the
    download starts over rather than archive a file of both."""
    old, new = os.urandom(300_000), os.urandom(300_000)
    await receiver.succeed("img_moved", f"{AUROUS}/o/new")
    [output] = await receiver.outputs("img_moved")
    spool = receiver.root / "spool" / f"output-{output.id}.part"
    spool.parent.mkdir()
    spool.write_bytes(old[:100_000])
    meta = {"content_type": "image/png", "total": len(old), "url": f"{AUROUS}/o/old"}
    spool.with_name(spool.name + ".meta").write_text(json.dumps(meta))
    requests: Counter[str] = Counter()

    await receiver.archiver(_honours_range(new, requests)).run_until_idle()

    [output] = await receiver.outputs("img_moved")
    assert await _archived_truly(receiver, output, new), output
    assert requests == {"whole": 1}


async def test_a_410_while_aurous_cannot_be_asked_for_a_fresh_url_is_tried_again(
    receiver: _Receiver,
) -> None:
    url = f"{AUROUS}/v1/images/img_gone/output/0"
    await receiver.succeed("img_gone", url)

    def expired(request: httpx.Request) -> httpx.Response:
        error = {"error": {"type": "invalid_request", "code": "output_expired", "message": "gone"}}
        return httpx.Response(410, json=error)

    outcome = await receiver.archiver(expired).run_due()

    [output] = await receiver.outputs("img_gone")
    assert (outcome.lost, outcome.retry) == (0, 1)
    assert output.state == "pending" and output.next_attempt_at is not None
    assert "410" in (output.last_error or "") and "fresh URL" in (output.last_error or "")


async def test_an_output_waiting_for_a_download_slot_keeps_its_lease(
    receiver: _Receiver,
) -> None:
    """One slot, a lease of one second, and a download of two: the output that waits its turn
    is not claimed by another replica meanwhile, and each output is downloaded once."""
    data = {name: os.urandom(1_000_000) for name in ("slow", "next")}
    requests: Counter[str] = Counter()

    def serve(request: httpx.Request) -> httpx.Response:
        name = request.url.path.rsplit("/", 1)[1]
        requests[name] += 1
        delay = 0.2 if name == "slow" else 0.0  # the first takes two seconds
        return httpx.Response(200, content=_chunks(data[name], delay))

    await receiver.succeed("img_slots", f"{AUROUS}/o/slow", f"{AUROUS}/o/next")
    first = receiver.archiver(serve, lease_s=1, slots=1)
    other = receiver.archiver(serve, owner="replica-b", lease_s=1, slots=1)
    running = asyncio.create_task(first.run_due())
    await asyncio.sleep(1.5)  # past the lease of the output that waits for the slot
    meanwhile = await other.run_due()
    outcome = await running

    assert (outcome.archived, meanwhile.handled) == (2, 0)
    assert requests == {"slow": 1, "next": 1}
    for output in await receiver.outputs("img_slots"):
        name = output.source_url.rsplit("/", 1)[1]
        assert await _archived_truly(receiver, output, data[name]), output


async def test_a_lease_renewal_that_fails_once_is_tried_again(
    receiver: _Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(1_000_000)
    requests: Counter[str] = Counter()

    def slow(request: httpx.Request) -> httpx.Response:
        requests[request.url.path] += 1
        return httpx.Response(200, content=_chunks(data, 0.2))

    renew = gateway.extend_output_lease
    failures = iter([True])

    def renew_but_fail_once(*args: Any, **kwargs: Any) -> bool:
        if next(failures, False):
            raise RuntimeError("database is locked")
        return renew(*args, **kwargs)

    monkeypatch.setattr(gateway, "extend_output_lease", renew_but_fail_once)
    await receiver.succeed("img_renew", f"{AUROUS}/o/renew")
    running = asyncio.create_task(receiver.archiver(slow, lease_s=0.9).run_due())
    await asyncio.sleep(1.3)  # the lease would have run out without the second renewal
    meanwhile = await receiver.archiver(slow, owner="replica-b", lease_s=0.9).run_due()
    outcome = await running

    assert (outcome.archived, meanwhile.handled) == (1, 0)
    assert list(requests.values()) == [1]
    [output] = await receiver.outputs("img_renew")
    assert await _archived_truly(receiver, output, data), output
