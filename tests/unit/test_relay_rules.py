"""The relay's rules without I/O: which event patterns a destination may ask for, which
events it gets, the retry schedule, and download links that refuse tampering and age."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from receiver.errors import ReceiverError
from receiver.jobs.outbox import is_pattern, job_event_type, wants
from receiver.relay.links import Links
from receiver.relay.push import RETRY_SCHEDULE, next_attempt_delay
from storage.blobs import BlobStore
from storage.records import DestinationRecord

NOW = datetime(2026, 5, 4, tzinfo=UTC)


@pytest.mark.parametrize(
    "pattern",
    ["*", "job.*", "output.*", "job.succeeded", "output.archived", "balance.low", "job.upscaling"],
)
def test_known_patterns_and_future_statuses_are_accepted(pattern: str) -> None:
    assert is_pattern(pattern)


@pytest.mark.parametrize("pattern", ["", "nope", "job", "jobs.*", "output.deleted", "job.Bad Name"])
def test_unknown_patterns_are_refused(pattern: str) -> None:
    assert not is_pattern(pattern)


def test_an_unknown_status_keeps_a_safe_name() -> None:
    assert job_event_type("succeeded") == "job.succeeded"
    assert job_event_type("Upscaling Now!") == "job.upscaling_now"
    assert job_event_type("!!!") == "job.unknown"


def destination(events: list[str], kind: str | None = None) -> DestinationRecord:
    return DestinationRecord(
        "dst_1", "http://x", None, events, kind, "enabled", None, NOW, NOW, None, None
    )


def test_a_destination_gets_what_its_filter_takes() -> None:
    jobs_only = destination(["job.*"])
    assert wants(jobs_only, "job.succeeded", "image")
    assert not wants(jobs_only, "output.archived", "image")
    videos = destination(["*"], kind="video")
    assert wants(videos, "job.failed", "video") and not wants(videos, "job.failed", "image")
    assert wants(videos, "balance.low", None)  # not about a job: the kind does not narrow it


def test_the_retry_schedule_grows_with_jitter_and_honours_retry_after() -> None:
    for attempts, base in enumerate(RETRY_SCHEDULE, start=1):
        assert base * 0.8 <= next_attempt_delay(attempts, 1.0, None) <= base * 1.2
    assert next_attempt_delay(1, 1.0, 60.0) == 60.0
    assert next_attempt_delay(1, 0.001, None) < 0.01
    assert next_attempt_delay(1, 1.0, 1e9) <= 36000.0


def test_a_link_opens_until_it_expires_and_refuses_any_change() -> None:
    links = Links(BlobStore.from_url("memory://"), b"k" * 32, timedelta(hours=1), "https://r")
    url, expires_at = asyncio.run(links.link("img_1", 0, "a" * 64))
    assert url.startswith("https://r/links/outputs/img_1/0?expires=")
    assert expires_at > datetime.now(UTC)
    expires = url.split("expires=")[1].split("&")[0]
    signature = url.split("signature=")[1]
    links.check("img_1", 0, expires, signature)
    for job, index, when, sig in [
        ("img_2", 0, expires, signature),
        ("img_1", 1, expires, signature),
        ("img_1", 0, str(int(expires) + 1), signature),
        ("img_1", 0, expires, signature[:-1] + ("1" if signature.endswith("0") else "0")),
        ("img_1", 0, "²", signature),
    ]:
        with pytest.raises(ReceiverError) as refused:
            links.check(job, index, when, sig)
        assert refused.value.status == 403
    gone = Links(BlobStore.from_url("memory://"), b"k" * 32, timedelta(seconds=-10), None)
    stale, _ = asyncio.run(gone.link("img_1", 0, "a" * 64))  # expired ten seconds ago
    with pytest.raises(ReceiverError) as expired:
        gone.check("img_1", 0, stale.split("expires=")[1].split("&")[0], stale.split("=")[-1])
    assert expired.value.status == 410
