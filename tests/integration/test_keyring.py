"""Rotation without downtime: several secrets, each with an optional expiry, changed while the
service runs, never stored in plaintext."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from receiver.runtime import load_secret_box
from receiver.settings import Settings
from receiver.webhooks.keyring import SecretStore
from storage.db import Database
from storage.types import utcnow
from tests.conftest import TEST_SECRET
from tests.support.aurous import endpoint_event, generation, headers

Client = AsyncTestClient[Any]
OLD, NEW = TEST_SECRET, "whsec_rotated_Zz9Yy8Xx7Ww6Vv5Uu4"


async def deliver(client: Client, event_id: str, *secrets: str) -> int:
    body = endpoint_event(generation(), event_id=event_id)
    response = await client.post("/webhooks/aurous", content=body, headers=headers(body, *secrets))
    return response.status_code


async def cli_store(settings: Settings) -> tuple[SecretStore, Database]:
    """A second process's view, as the CLI has it: its own engine on the same database."""
    db = Database(settings.database_url)
    return SecretStore(db, await load_secret_box(db, settings)), db


async def test_rotation_overlap_then_expiry(client: Client, settings: Settings) -> None:
    store, db = await cli_store(settings)
    try:
        [old] = [s for s in await store.list() if s.source == "env"]
        await store.add(NEW, source="cli", label="rotated")
        await store.expire(old.id, utcnow() + timedelta(seconds=1.5))

        assert await deliver(client, "evt_old", OLD) == 200
        assert await deliver(client, "evt_new", NEW) == 200
        assert await deliver(client, "evt_both", OLD, NEW) == 200

        await asyncio.sleep(1.6)
        assert await deliver(client, "evt_old_late", OLD) == 401
        assert await deliver(client, "evt_new_late", NEW) == 200
        assert await deliver(client, "evt_both_late", OLD, NEW) == 200
    finally:
        await db.dispose()


async def test_secret_added_while_running_works_at_once(client: Client, settings: Settings) -> None:
    assert await deliver(client, "evt_before", NEW) == 401
    store, db = await cli_store(settings)
    try:
        await store.add(NEW, source="cli")
    finally:
        await db.dispose()
    await asyncio.sleep(0.3)  # past the reload-on-miss guard
    assert await deliver(client, "evt_after", NEW) == 200


async def test_a_retired_secret_stops_verifying(client: Client, settings: Settings) -> None:
    store, db = await cli_store(settings)
    try:
        new_id = await store.add(NEW, source="cli")
        assert await deliver(client, "evt_1", NEW) == 200
        await store.retire(new_id)
    finally:
        await db.dispose()
    await asyncio.sleep(1.1)  # the keyring cache lives one second
    assert await deliver(client, "evt_2", NEW) == 401


async def test_secrets_api_shows_metadata_and_which_secret_matched(client: Client) -> None:
    assert await deliver(client, "evt_1", OLD) == 200
    [secret] = (await client.get("/secrets")).json()["data"]
    assert secret["preview"] == "whsec_tes…7890"
    assert secret["state"] == "active"
    assert secret["match_count"] == 1
    assert secret["last_matched_at"] is not None
    assert OLD not in (await client.get("/secrets")).text
    [delivery] = (await client.get("/deliveries")).json()["data"]
    assert delivery["secret_id"] == secret["id"]


async def test_no_secret_is_stored_in_plaintext(
    sqlite_client: Client, sqlite_settings: Settings
) -> None:
    client, settings = sqlite_client, sqlite_settings  # the database file is in the data dir
    await deliver(client, "evt_1", OLD)
    store, db = await cli_store(settings)
    try:
        await store.add(NEW, source="cli")
    finally:
        await db.dispose()
    db_dir = Path(settings.database_url.removeprefix("sqlite+aiosqlite:///")).parent
    for directory in (settings.data_dir, db_dir):
        for path in directory.rglob("*"):
            if path.is_file():
                content = path.read_bytes()
                assert OLD.encode() not in content, path
                assert NEW.encode() not in content, path
