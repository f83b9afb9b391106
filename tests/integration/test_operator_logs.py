"""Issue 15: logs an operator can act on. A rejected delivery is one line with its reason, and a
burst of them a few lines; an empty keyring, a missing API key and a download host that does not
resolve are warned about at start; a failed archive attempt names the job and the output."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from receiver.runtime import Runtime
from receiver.settings import Settings
from tests.conftest import admin_client, make_settings
from tests.support.aurous import endpoint_event, generation, headers

Client = AsyncTestClient[Any]
UNRESOLVABLE = "media.example.invalid"  # .invalid never resolves (RFC 6761)
LOOPBACK_AUROUS = "http://127.0.0.1:9"  # needs no lookup, and nothing here calls it


@pytest.fixture(autouse=True)
def _info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)


def lines(caplog: pytest.LogCaptureFixture, logger: str, *words: str) -> list[str]:
    """The messages `logger` wrote that contain every one of `words`."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == logger and all(w in r.getMessage() for w in words)
    ]


async def test_a_rejected_delivery_logs_one_line_with_its_reason(
    sqlite_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    body = endpoint_event(generation())
    answer = await sqlite_client.post(
        "/webhooks/aurous", content=body, headers=headers(body, "whsec_not_the_secret_123")
    )
    assert answer.status_code == 401
    [line] = lines(caplog, "receiver.webhooks.intake", "rejected")
    assert "no_matching_signature" in line
    assert "secrets list" in line  # what to check if the sender was Aurous itself
    [record] = [r for r in caplog.records if r.getMessage() == line]
    assert record.levelno == logging.WARNING


async def test_a_burst_of_rejected_deliveries_logs_a_few_lines(
    sqlite_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    body = endpoint_event(generation())
    for _ in range(100):
        answer = await sqlite_client.post("/webhooks/aurous", content=body)  # no signature
        assert answer.status_code == 401
    rejected = lines(caplog, "receiver.webhooks.intake", "rejected", "missing_signature")
    assert 1 <= len(rejected) <= 3, rejected
    metrics = (await sqlite_client.get("/metrics")).text
    assert 'outcome="rejected",reason="missing_signature"} 100.0' in metrics


async def test_a_quarantined_delivery_logs_why(
    sqlite_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    body = json.dumps({"id": "evt_no_type", "data": {}}).encode()  # signed, but names no type
    answer = await sqlite_client.post("/webhooks/aurous", content=body, headers=headers(body))
    assert answer.json() == {"status": "quarantined"}
    [line] = lines(caplog, "receiver.webhooks.intake", "quarantined")
    assert "no event type" in line


@asynccontextmanager
async def started(settings: Settings) -> AsyncIterator[Client]:
    """The app started (in the test, so that its start-up lines are the test's), once its
    download hosts have been looked up."""
    async with admin_client(settings) as client:
        check = client.app.state.download_host_check

        async def finished() -> None:
            if check is not None:
                await check

        client.blocking_portal.call(finished)  # the app runs on the portal's event loop
        yield client


def unconfigured(tmp_path: Path, sqlite_url: str) -> Settings:
    """No webhook secret, no API key, and a download host that does not resolve; with its
    background work, as `serve` runs it (only a replica that archives checks its hosts)."""
    return make_settings(
        tmp_path / "data",
        sqlite_url,
        bootstrap_secrets=(),
        aurous_base_url=LOOPBACK_AUROUS,
        download_hosts=(UNRESOLVABLE,),
        background=True,
    )


async def test_start_warns_about_an_empty_keyring_and_a_missing_api_key(
    tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with started(unconfigured(tmp_path, sqlite_url)) as client:
        body = endpoint_event(generation())
        answer = await client.post("/webhooks/aurous", content=body, headers=headers(body))
        assert answer.status_code == 401
    [keyring] = lines(caplog, "receiver.startup_checks", "no active secret")
    assert "401" in keyring
    assert "aurous-receiver secrets add" in keyring and "AUROUS_WEBHOOK_SECRET" in keyring
    [api_key] = lines(caplog, "receiver.startup_checks", "AUROUS_API_KEY is not set")
    assert "webhooks only" in api_key
    # and each rejected webhook says what to do
    [rejected] = lines(caplog, "receiver.webhooks.intake", "rejected", "no_active_secret")
    assert "aurous-receiver secrets add" in rejected


async def test_an_unresolvable_download_host_is_warned_about_at_start(
    tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with started(unconfigured(tmp_path, sqlite_url)):
        pass
    [warning] = lines(caplog, "receiver.startup_checks", "does not resolve")
    assert UNRESOLVABLE in warning and "RECEIVER_DOWNLOAD_HOSTS" in warning
    assert not lines(caplog, "receiver.startup_checks", "127.0.0.1")  # an IP needs no lookup


async def test_a_configured_receiver_starts_without_warnings(
    tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        tmp_path / "data",
        sqlite_url,
        aurous_api_key="al_test_key",
        aurous_base_url=LOOPBACK_AUROUS,
    )
    async with started(settings):
        pass
    assert not [r for r in caplog.records if r.name == "receiver.startup_checks"]


async def test_an_archive_failure_is_logged_with_the_job_id(
    tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path / "data", sqlite_url, download_hosts=(UNRESOLVABLE,))
    job_id = "img_01HXLOGSARCHIVEFAILS00000"
    urls = [f"https://{UNRESOLVABLE}/o/0", "https://elsewhere.example.net/o/1"]
    ended = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # well within the deadline
    body = endpoint_event(generation(job_id, output_urls=urls, completed_at=ended))
    async with admin_client(settings) as client:
        answer = await client.post("/webhooks/aurous", content=body, headers=headers(body))
        assert answer.json() == {"status": "accepted"}
        runtime: Runtime = client.app.state.runtime
        caplog.clear()
        client.blocking_portal.call(runtime.archiver.run_due)

    # the DNS failure of the issue: retried, and now in the log rather than only on the job page
    [retry] = lines(caplog, "receiver.archive.archiver", job_id, "output 0")
    assert "failed (attempt 1)" in retry and UNRESOLVABLE in retry and "will retry" in retry
    # a host that is not allowed: lost at once
    [lost] = lines(caplog, "receiver.archive.archiver", job_id, "output 1")
    assert "is lost" in lost and "will not retry" in lost and "elsewhere.example.net" in lost
