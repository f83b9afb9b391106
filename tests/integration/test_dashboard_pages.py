"""The dashboard: login with the admin token, pages render, unauthenticated visits redirect."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import ADMIN_TOKEN
from tests.support.aurous import endpoint_event, generation, headers

Client = AsyncTestClient[Any]
PAGES = [
    "/",
    "/dashboard/jobs",
    "/dashboard/jobs?status=succeeded&kind=image",
    "/dashboard/jobs/table",
    "/dashboard/deliveries",
    "/dashboard/deliveries?status=rejected",
    "/dashboard/secrets",
]


async def log_in(client: Client) -> None:
    del client.headers["Authorization"]
    response = await client.post(
        "/login", data={"token": ADMIN_TOKEN, "next": "/dashboard/jobs"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/jobs"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    assert ADMIN_TOKEN not in cookie


@pytest.mark.parametrize("path", PAGES)
async def test_pages_redirect_to_login_without_a_session(sqlite_client: Client, path: str) -> None:
    del sqlite_client.headers["Authorization"]
    response = await sqlite_client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


async def test_wrong_token_is_refused_on_the_form(sqlite_client: Client) -> None:
    del sqlite_client.headers["Authorization"]
    response = await sqlite_client.post("/login", data={"token": "nope", "next": "/"})
    assert response.status_code == 401
    assert "not the admin token" in response.text
    assert "set-cookie" not in response.headers


async def test_pages_render_after_login_and_logout_ends_the_session(sqlite_client: Client) -> None:
    body = endpoint_event(generation("img_dash"))
    await sqlite_client.post("/webhooks/aurous", content=body, headers=headers(body))
    await sqlite_client.post("/webhooks/aurous", content=b"{}", headers={})
    await log_in(sqlite_client)
    for path in [*PAGES, "/dashboard/jobs/img_dash"]:
        response = await sqlite_client.get(path)
        assert response.status_code == 200, path
        assert "text/html" in response.headers["content-type"]
    assert "img_dash" in (await sqlite_client.get("/dashboard/jobs")).text
    assert "missing_signature" in (await sqlite_client.get("/dashboard/deliveries")).text
    assert (await sqlite_client.get("/jobs")).status_code == 200  # the API honours the session
    page = (await sqlite_client.get("/")).text
    form = {"csrf_token": re.findall(r'name="csrf_token" value="([^"]+)"', page)[0]}
    origin = {"Origin": str(sqlite_client.base_url).rstrip("/")}
    await sqlite_client.post("/logout", data=form, headers=origin, follow_redirects=False)
    assert (await sqlite_client.get("/", follow_redirects=False)).status_code == 303


async def test_login_only_follows_local_paths(sqlite_client: Client) -> None:
    del sqlite_client.headers["Authorization"]
    response = await sqlite_client.post(
        "/login",
        data={"token": ADMIN_TOKEN, "next": "https://evil.example/"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"


async def test_api_docs_need_the_token_and_load_nothing_remote(sqlite_client: Client) -> None:
    docs = await sqlite_client.get("/schema")
    assert docs.status_code == 200
    assert "/static/rapidoc-min.js" in docs.text
    assert "https://" not in docs.text
    spec = (await sqlite_client.get("/schema/openapi.json")).json()
    operations = [op for path in spec["paths"].values() for op in path.values()]
    assert all(op.get("operationId") for op in operations)
    del sqlite_client.headers["Authorization"]
    assert (await sqlite_client.get("/schema/openapi.json")).status_code == 401
    assert (await sqlite_client.get("/static/htmx.min.js")).status_code == 200


async def test_an_older_page_stays_itself_through_refreshes_and_leads_back(
    sqlite_client: Client,
) -> None:
    """Page 2 of the jobs and of the deliveries is reachable, its live refresh returns page 2
    (it returned page 1), and a link leads back to the newest."""
    for n in range(53):
        body = endpoint_event(generation(f"img_page{n:02d}"), event_id=f"evt_page{n:02d}")
        await sqlite_client.post("/webhooks/aurous", content=body, headers=headers(body))
    await log_in(sqlite_client)

    first = (await sqlite_client.get("/dashboard/jobs")).text
    [older] = re.findall(r'href="/dashboard/jobs\?(cursor=[^"]+)">older jobs', first)
    second = (await sqlite_client.get(f"/dashboard/jobs?{older}")).text
    [refresh] = re.findall(r'hx-get="(/dashboard/jobs/table\?[^"]*)"', second)
    refreshed = (await sqlite_client.get(refresh.replace("&amp;", "&"))).text
    older_jobs = {f"img_page{n:02d}" for n in range(3)}  # the newest 50 are on page 1
    for page in (second, refreshed):
        assert set(re.findall(r">(img_page\d\d)</a>", page)) == older_jobs
    assert 'href="/dashboard/jobs?">← newest jobs' in second

    deliveries = await sqlite_client.get("/dashboard/deliveries?cursor=4")
    assert re.findall(r"<td>(\d+)</td><td>", deliveries.text) == ["3", "2", "1"]
    assert "← newest deliveries" in deliveries.text


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/jobs?status=succeded",
        "/dashboard/jobs?kind=imag",
        "/dashboard/deliveries?status=rejectd",
    ],
)
async def test_a_mistyped_filter_is_a_400_not_everything(sqlite_client: Client, path: str) -> None:
    await log_in(sqlite_client)
    response = await sqlite_client.get(path)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_parameter"
    assert (await sqlite_client.get(path.split("=")[0] + "=")).status_code == 200  # "any"


async def test_the_duplicate_tab_says_how_many_copies_came(sqlite_client: Client) -> None:
    body = endpoint_event(generation("img_twice"), event_id="evt_twice")
    for _ in range(3):
        await sqlite_client.post("/webhooks/aurous", content=body, headers=headers(body))
    await log_in(sqlite_client)
    page = (await sqlite_client.get("/dashboard/deliveries?status=duplicate")).text
    assert "+2 copies" in page and "img_twice" in page


@pytest.mark.parametrize("job_id", ["img_a/b", "img_q?x=1#frag", "img_%2e%2e", "../../spend"])
async def test_an_odd_job_id_is_tracked_and_its_link_leads_nowhere_else(
    sqlite_client: Client, job_id: str
) -> None:
    """Aurous documents `img_<ULID>`, but a job is never refused for its id (its outputs must
    be archived): its dashboard link encodes every / ? # and %, so it cannot point to
    another page (`../`) or end early."""
    body = endpoint_event(generation(job_id), event_id="evt_odd")
    answer = await sqlite_client.post("/webhooks/aurous", content=body, headers=headers(body))
    assert answer.json() == {"status": "accepted"}
    await log_in(sqlite_client)
    page = (await sqlite_client.get("/dashboard/jobs")).text
    [link] = re.findall(r'href="/dashboard/jobs/([^"]+)">', page)
    assert not set(link) & set("/?#") and unquote(link) == job_id
