"""The dashboard in a real browser (Debian's Chromium driven by Playwright) against real
servers: login, filtering, an archived image inline, a rejection's reason, logout. Every page
is screenshotted into tests/artifacts/screenshots, and no request leaves loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, IN_CI
from tests.support import chromium
from tests.support.harness import (
    ReceiverHandle,
    free_port,
    receiver_settings,
    start_receiver,
    start_simulator,
    wait_for,
)

SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
def browser_path() -> str:
    path, reason = chromium.find_or_install()
    if path is None:
        if IN_CI:
            pytest.fail(f"browser tests need Chromium in CI: {reason}")
        pytest.skip(f"browser tests skipped: {reason}")
    return path


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
