"""The dashboard in a real browser (Debian's Chromium driven by Playwright) against real
servers: login, filtering, an archived image inline, a rejection's reason, logout. Every page
is screenshotted into tests/artifacts/screenshots, and no request leaves loopback.

The layout test (issue 15) loads every page with a busy receiver at 1,280 and 1,920 px and
checks that nothing is wider than its card, its chart or the window; its screenshots are kept
in a temporary folder (printed) for a person to look at."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from storage import gateway
from storage.db import Connection, Database
from storage.records import NewDelivery
from storage.types import utcnow
from tests.conftest import ADMIN_TOKEN
from tests.support import chromium
from tests.support.aurous import headers
from tests.support.destination import DestinationApp, start_destination
from tests.support.harness import (
    WEBHOOK_SECRET,
    ReceiverHandle,
    free_port,
    receiver_settings,
    start_receiver,
    start_simulator,
    wait_for,
)

SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
LAYOUT_SHOTS = Path(tempfile.gettempdir()) / "aurous-receiver-layout"
WINDOWS = {1280: 800, 1920: 1080}  # width: height


@pytest.fixture
def world(tmp_path: Path, sqlite_url: str) -> Iterator[ReceiverHandle]:
    with ExitStack() as stack:
        port = free_port()
        sim = start_simulator(stack, receiver_port=port, failed_rate=0.3, seed=5)
        receiver = start_receiver(
            stack, receiver_settings(tmp_path / "data", sqlite_url, sim), port=port
        )
        sim.create_direct("image", 8)
        httpx.post(
            f"{receiver.server.url}/webhooks/aurous",
            content=b"{}",
            headers={"Aurous-Webhook-Signature": "t=1,v1=00"},
        )

        def settled() -> bool:
            jobs = receiver.jobs()
            return len(jobs) == 8 and all(
                j["terminal"] and all(o["state"] == "archived" for o in j["outputs"]) for j in jobs
            )

        wait_for(settled, timeout=60, interval=0.5)
        receiver.client.post("/spend/sync")  # the ledger, so the spend chart has bars
        yield receiver


def test_dashboard_in_a_browser(browser_path: str, world: ReceiverHandle) -> None:
    from playwright.sync_api import sync_playwright

    base = world.server.url
    SHOTS.mkdir(parents=True, exist_ok=True)
    requested: list[str] = []
    jobs = world.jobs()
    image = next(j for j in jobs if j["status"] == "succeeded")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, args=chromium.FLAGS)
        page = browser.new_page()
        page.on("request", lambda request: requested.append(request.url))

        page.goto(f"{base}/")
        assert "/login" in page.url
        page.screenshot(path=str(SHOTS / "login.png"))
        page.fill("input[name=token]", ADMIN_TOKEN)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")
        assert page.locator("h1").inner_text() == "Overview"
        page.screenshot(path=str(SHOTS / "overview.png"), full_page=True)

        page.goto(f"{base}/dashboard/jobs")
        page.select_option("select[name=status]", "failed")
        page.click("form.filters button")
        page.wait_for_url("**status=failed**")
        statuses = page.locator("#jobs-table tbody td:nth-child(3)").all_inner_texts()
        assert statuses
        assert set(statuses) == {"failed"}
        page.screenshot(path=str(SHOTS / "jobs-filtered.png"), full_page=True)

        page.goto(f"{base}/dashboard/jobs/{image['id']}")
        img = page.locator("figure.output img").first
        img.wait_for()
        loaded = "img => img.complete && img.naturalWidth > 0"
        page.wait_for_function(loaded, arg=img.element_handle())
        page.screenshot(path=str(SHOTS / "job-detail.png"), full_page=True)

        page.goto(f"{base}/dashboard/deliveries?status=rejected")
        assert "no_matching_signature" in page.locator("td.reason").first.inner_text()
        page.screenshot(path=str(SHOTS / "deliveries-rejected.png"), full_page=True)

        for name in ("secrets", "spend"):
            page.goto(f"{base}/dashboard/{name}")
            page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        _check_spend_chart(page)

        page.goto(f"{base}/schema")
        page.wait_for_timeout(1500)
        page.screenshot(path=str(SHOTS / "api-docs.png"))

        page.goto(f"{base}/dashboard/jobs")
        page.click("form.logout button")
        page.wait_for_url("**/login**")
        page.goto(f"{base}/dashboard/jobs")
        assert "/login" in page.url
        page.screenshot(path=str(SHOTS / "logged-out.png"))
        browser.close()

    foreign = {urlsplit(url).hostname for url in requested} - {"127.0.0.1"}
    assert foreign == set(), f"pages pulled third-party URLs: {foreign}"
    assert len(os.listdir(SHOTS)) >= 8


def _check_spend_chart(page: Any) -> None:
    assert page.locator("svg.chart").count() == 1
    assert page.locator("svg.chart rect").count() >= 1


@pytest.fixture
def busy_world(tmp_path: Path, sqlite_url: str) -> Iterator[ReceiverHandle]:
    """What a user a week in sees: jobs made here and elsewhere (images with each LoRA, a
    video), failures, moderation, dropped and duplicated webhooks (so some jobs end by poll
    or sweep), rejected and quarantined deliveries, a destination that failed before it
    answered, and the ledger synced and audited (over- and wrongly billed jobs: findings)."""
    _store_an_hour_of_deliveries(sqlite_url)
    with ExitStack() as stack:
        port = free_port()
        sim = start_simulator(
            stack,
            receiver_port=port,
            seed=15,
            failed_rate=0.2,
            moderation_rate=0.1,
            drop_rate=0.35,
            duplicate_rate=0.3,
            overcharge_rate=0.3,
            bill_failed_rate=0.3,
        )
        receiver = start_receiver(
            stack, receiver_settings(tmp_path / "data", sqlite_url, sim), port=port
        )
        app = DestinationApp(faults=["500", "500", "429"])
        server = start_destination(app)
        stack.callback(server.stop)
        destination = {"url": server.url + "/hooks", "label": "orders app (staging)"}
        created = receiver.client.post("/destinations", json=destination)
        assert created.status_code == 201, created.text
        app.secrets.append(created.json()["secret"])

        for n, lora in enumerate(["cinematic", "anime", "watercolor"] * 3):
            prompt = f"a lighthouse in a storm, take {n}"
            assert receiver.create("image", {"prompt": prompt, "lora_id": lora}).is_success
        assert receiver.create("video", {"prompt": "waves at dusk", "duration": 2}).is_success
        sim.create_direct("image", 8, {"prompt": "made by another backend", "lora_id": "anime"})
        url = f"{receiver.server.url}/webhooks/aurous"
        httpx.post(url, content=b"{}", headers={"Aurous-Webhook-Signature": "t=1,v1=00"})
        garbled = b'{"id": "evt_garbled", "type": 7}'
        httpx.post(url, content=garbled, headers=headers(garbled, WEBHOOK_SECRET))

        def settled() -> bool:
            jobs = receiver.jobs()
            ended = all(j["terminal"] for j in jobs)
            archived = all(o["state"] != "pending" for j in jobs for o in j["outputs"])
            return len(jobs) == 18 and ended and archived

        wait_for(settled, timeout=90, interval=0.5)
        receiver.client.post("/spend/sync")
        yield receiver


def _store_an_hour_of_deliveries(database_url: str) -> None:
    """Traffic from the hour before the test, so the deliveries chart spans more than the one
    minute the test takes: processed every few minutes, now and then a rejection or a body
    that could not be understood."""
    now = utcnow()
    rows = []
    for minute in range(3, 60, 2):
        for n in range(minute % 7 + 1):
            at = now - timedelta(minutes=minute, seconds=n)
            event = f"evt_earlier_{minute:02d}_{n}"
            rows.append(_delivery("processed", at, event_id=event, event_type="image.completed"))
        if minute % 9 == 0:
            at = now - timedelta(minutes=minute)
            rows.append(_delivery("rejected", at, reject_reason="no_matching_signature"))
        if minute % 13 == 0:
            at = now - timedelta(minutes=minute)
            reason = "not a webhook envelope"
            rows.append(
                _delivery("quarantined", at, event_id=f"sha256:{minute:064d}", reject_reason=reason)
            )

    rejected = sum(1 for row in rows if row.status == "rejected")

    def write(conn: Connection) -> None:
        gateway.insert_delivery_records(conn, rows)
        gateway.bump_rejection_counts(conn, {"no_matching_signature": (rejected, now)})

    async def store() -> None:
        db = Database(database_url)
        try:
            await db.write(write)
        finally:
            await db.dispose()

    asyncio.run(store())


def _delivery(status: str, at: datetime, **fields: Any) -> NewDelivery:
    return NewDelivery(
        status=status,
        received_at=at,
        body=b"{}",
        body_size=2,
        headers={},
        remote_addr="127.0.0.1",
        request_id=None,
        **fields,
    )


# Every element of a card ends inside the card, unless it is inside a scroll container that
# does (the container is what the eye sees); every drawing inside its SVG; every timestamp
# on one line; and the page itself never scrolls sideways.
_LAYOUT_PROBLEMS = """() => {
  const problems = [];
  const name = (el) => {
    const classes = el.getAttribute("class");
    const text = (el.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 40);
    return el.tagName.toLowerCase() + (classes ? "." + classes.split(" ").join(".") : "")
      + ` '${text}'`;
  };
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth) {
    problems.push(`the page scrolls sideways: ${root.scrollWidth} > ${root.clientWidth} px`);
  }
  const sticksOut = (el, box) => {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) return false;
    return r.left < box.left - 1 || r.right > box.right + 1;
  };
  for (const card of document.querySelectorAll(".card")) {
    const box = card.getBoundingClientRect();
    for (const el of card.querySelectorAll("*")) {
      const scroller = el.parentElement && el.parentElement.closest(".scroll");
      if (scroller && card.contains(scroller)) continue;
      if (el.closest("svg") || sticksOut(el.parentElement, box)) continue;  // its parent is named
      if (sticksOut(el, box)) problems.push(`${name(el)} is wider than its card`);
    }
  }
  for (const svg of document.querySelectorAll("svg")) {
    const box = svg.getBoundingClientRect();
    for (const el of svg.querySelectorAll("text, rect, line, polyline")) {
      if (sticksOut(el, box)) problems.push(`${name(el)} is cut off by its chart`);
    }
  }
  for (const el of document.querySelectorAll("body *")) {
    const viewport = {left: 0, right: root.clientWidth};
    if (el.closest(".scroll") || sticksOut(el.parentElement, viewport)) continue;
    if (sticksOut(el, viewport)) {
      problems.push(`${name(el)} runs out of the window`);
    }
  }
  for (const time of document.querySelectorAll("time")) {
    if (time.getClientRects().length > 1) problems.push(`${name(time)} wraps`);
  }
  return problems;
}"""


def test_every_page_fits_1280_and_1920_px(browser_path: str, busy_world: ReceiverHandle) -> None:
    from playwright.sync_api import sync_playwright

    base = busy_world.server.url
    jobs = busy_world.jobs()
    image = next(j for j in jobs if j["kind"] == "image" and j["status"] == "succeeded")
    video = next(j for j in jobs if j["kind"] == "video")
    pages = {
        "overview": "/",
        "jobs": "/dashboard/jobs",
        "job-image": f"/dashboard/jobs/{image['id']}",
        "job-video": f"/dashboard/jobs/{video['id']}",
        "deliveries": "/dashboard/deliveries",
        "deliveries-rejected": "/dashboard/deliveries?status=rejected",
        "keyring": "/dashboard/secrets",
        "spend": "/dashboard/spend",
        "destinations": "/dashboard/destinations",
    }
    problems: dict[str, list[str]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, args=chromium.FLAGS)
        for width, height in WINDOWS.items():
            shots = LAYOUT_SHOTS / str(width)
            shots.mkdir(parents=True, exist_ok=True)
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(f"{base}/login")
            problems[f"login@{width}"] = page.evaluate(_LAYOUT_PROBLEMS)
            page.screenshot(path=str(shots / "login.png"), full_page=True)
            page.fill("input[name=token]", ADMIN_TOKEN)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            for name, path in pages.items():
                page.goto(f"{base}{path}")
                problems[f"{name}@{width}"] = page.evaluate(_LAYOUT_PROBLEMS)
                page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
            page.close()
        browser.close()
    print(f"layout screenshots: {LAYOUT_SHOTS}")
    found = {where: found for where, found in problems.items() if found}
    assert found == {}, json.dumps(found, indent=1)
