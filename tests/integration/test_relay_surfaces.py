"""The relay's surfaces on both databases: destinations through the CLI and the API, the event
feed after a webhook, download links refused when altered or expired, the dashboard page."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from click.testing import CliRunner
from litestar.testing import AsyncTestClient

from receiver.cli import cli
from receiver.settings import Settings
from receiver.webhooks.signing import sign
from tests.conftest import TEST_SECRET
from tests.support.aurous import generation
from tests.support.harness import settings_env

Client = AsyncTestClient[Any]


async def run_cli(settings: Settings, *args: str) -> str:
    """The CLI, as a separate command would run beside the service (its own event loop)."""

    def invoke() -> str:
        result = CliRunner().invoke(cli, list(args), env=settings_env(settings))
        assert result.exit_code == 0, result.output
        return result.output

    return await asyncio.to_thread(invoke)


async def deliver(client: Client, event_id: str, status: str, job_id: str = "img_relay") -> None:
    body = json.dumps(
        {"id": event_id, "type": f"image.{status}", "data": generation(job_id, status)}
    ).encode()
    headers = {"Aurous-Webhook-Signature": sign(body, [TEST_SECRET], int(time.time()))}
    response = await client.post("/webhooks/aurous", content=body, headers=headers)
    assert response.status_code == 200, response.text


async def test_destinations_are_managed_from_the_cli_and_the_api(
    client: Client, settings: Settings
) -> None:
    added = await run_cli(
        settings,
        "destinations",
        "add",
        "http://127.0.0.1:9/hooks",
        "--events",
        "job.*,output.archived",
        "--kind",
        "image",
        "--label",
        "app",
    )
    destination_id = added.split()[1]
    assert "whsec_" in added and destination_id.startswith("dst_")
    shown = (await client.get(f"/destinations/{destination_id}")).json()
    assert shown["events"] == ["job.*", "output.archived"] and shown["kind"] == "image"
    assert "secret" not in shown and shown["secrets"][0]["preview"].startswith("whsec_")
    assert destination_id in await run_cli(settings, "destinations", "list")
    await run_cli(settings, "destinations", "disable", destination_id)
    assert (await client.get(f"/destinations/{destination_id}")).json()["state"] == "disabled"
    await run_cli(settings, "destinations", "enable", destination_id)
    rotated = await run_cli(
        settings, "destinations", "rotate-secret", destination_id, "--grace", "1h"
    )
    assert "whsec_" in rotated
    secrets = (await client.get(f"/destinations/{destination_id}")).json()["secrets"]
    assert len(secrets) == 2 and sum(1 for s in secrets if s["expires_at"]) == 1

    changed = await client.patch(f"/destinations/{destination_id}", json={"events": ["*"]})
    assert changed.status_code == 200 and changed.json()["events"] == ["*"]
    attempts = await client.get(f"/destinations/{destination_id}/attempts")
    assert attempts.status_code == 200 and attempts.json()["data"] == []
    await run_cli(settings, "destinations", "remove", destination_id)
    gone = await client.get(f"/destinations/{destination_id}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "destination_not_found"


async def test_a_webhook_becomes_events_in_the_feed_once_each(
    client: Client, settings: Settings
) -> None:
    destination = (
        await client.post("/destinations", json={"url": "http://127.0.0.1:9/hooks"})
    ).json()["id"]
    await deliver(client, "evt_a1", "processing")
    await deliver(client, "evt_a1", "processing")  # a duplicate tells nothing new
    await deliver(client, "evt_a2", "succeeded")
    await deliver(client, "evt_a3", "failed")  # a contradiction tells nothing either
    page = (await client.get("/events")).json()
    assert [(e["type"], e["sequence"]) for e in page["data"]] == [
        ("job.processing", 1),
        ("job.succeeded", 2),
    ]
    succeeded = page["data"][1]
    assert succeeded["data"]["job"]["status"] == "succeeded"
    assert succeeded["data"]["job"]["outputs"][0]["state"] == "pending"
    listed = await run_cli(settings, "events", "list", "--job", "img_relay")
    assert "job.processing" in listed and "job.succeeded" in listed
    replayed = await run_cli(
        settings, "events", "replay", succeeded["id"], "--destination", destination
    )
    assert replayed.startswith("1 events")
    tail = await client.get("/events", params={"after": page["next_cursor"], "wait": 0.5})
    assert tail.json()["data"] == [] and tail.json()["next_cursor"] == page["next_cursor"]


async def test_download_links_refuse_alteration_and_age(client: Client) -> None:
    runtime = client.app.state.runtime
    url, _ = await runtime.links.link("img_x", 0, "b" * 64)
    altered = url.replace("/img_x/", "/img_y/")
    assert (await client.get(altered, headers={"Authorization": ""})).status_code == 403
    fresh = await client.get(url, headers={"Authorization": ""})
    assert fresh.status_code == 404  # a valid link to an output not archived (yet)
    expires = url.split("expires=")[1].split("&")[0]
    stale = url.replace(f"expires={expires}", "expires=1000")
    assert (await client.get(stale, headers={"Authorization": ""})).status_code == 403


async def test_the_destinations_page_shows_state_and_attempts(sqlite_client: Client) -> None:
    created = await sqlite_client.post(
        "/destinations", json={"url": "http://127.0.0.1:9/hooks", "label": "my app"}
    )
    destination = created.json()["id"]
    page = await sqlite_client.get("/dashboard/destinations")
    assert page.status_code == 200 and destination in page.text and "my app" in page.text
    disabled = await sqlite_client.post(
        f"/dashboard/destinations/{destination}/disable", follow_redirects=False
    )
    assert disabled.status_code == 303
    assert (await sqlite_client.get(f"/destinations/{destination}")).json()["state"] == "disabled"


async def test_a_destination_url_that_cannot_work_or_holds_credentials_is_400(
    client: Client,
) -> None:
    created = await client.post("/destinations", json={"url": "https://app.example.com/hooks"})
    assert created.status_code == 201
    for url in (
        "http://[::1/hooks",  # an unclosed IPv6 address
        "http://app.example.com:99999/hooks",
        "http://app example.com/hooks",
        "http://user:password@app.example.com/hooks",  # it would be shown wherever it is listed
        "ftp://app.example.com/hooks",
    ):
        for answer in (
            await client.post("/destinations", json={"url": url}),
            await client.patch(f"/destinations/{created.json()['id']}", json={"url": url}),
        ):
            assert (answer.status_code, answer.json()["error"]["code"]) == (400, "invalid_url")


async def test_a_label_with_a_nul_or_a_line_break_is_400_not_a_500(client: Client) -> None:
    """PostgreSQL text holds no NUL: such a label was a 500 there."""
    created = await client.post("/destinations", json={"url": "https://app.example.com/hooks"})
    for label in ("a\u0000b", "two\nlines", "x" * 201):
        for answer in (
            await client.post(
                "/destinations", json={"url": "https://app.example.com/h", "label": label}
            ),
            await client.patch(f"/destinations/{created.json()['id']}", json={"label": label}),
        ):
            assert (answer.status_code, answer.json()["error"]["code"]) == (400, "invalid_label")
    kept = await client.patch(f"/destinations/{created.json()['id']}", json={"label": "ok"})
    assert kept.json()["label"] == "ok"
