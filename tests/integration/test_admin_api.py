"""The admin API: token required, one error envelope, jobs listed and tracked."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from receiver.settings import Settings
from receiver.web.app import create_app
from tests.conftest import make_settings
from tests.support.aurous import endpoint_event, generation, headers

Client = AsyncTestClient[Any]
ADMIN_GETS = [
    "/jobs",
    "/jobs/img_1",
    "/jobs/img_1/events",
    "/deliveries",
    "/deliveries/rejections",
    "/secrets",
    "/metrics",
]


@pytest.mark.parametrize("path", ADMIN_GETS)
@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Basic dGVzdA==", "Bearer "])
async def test_admin_routes_need_the_token(client: Client, path: str, auth: str | None) -> None:
    del client.headers["Authorization"]
    response = await client.get(path, headers={"Authorization": auth} if auth else {})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_track_needs_the_token(client: Client) -> None:
    del client.headers["Authorization"]
    response = await client.post("/jobs/track", json={"id": "img_1"})
    assert response.status_code == 401


async def test_probes_are_open(client: Client) -> None:
    del client.headers["Authorization"]
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


async def test_tracking_a_job_by_id(client: Client) -> None:
    created = await client.post("/jobs/track", json={"id": "vid_01ABC"})
    assert created.status_code == 201
    assert created.json()["status"] == "pending"
    assert created.json()["kind"] == "video"
    again = await client.post("/jobs/track", json={"id": "vid_01ABC"})
    assert again.status_code == 200
    events = (await client.get("/jobs/vid_01ABC/events")).json()["data"]
    assert [e["note"] for e in events] == ["tracked by id"]


@pytest.mark.parametrize("body", [{"id": "nope"}, {"id": ""}, {"x": 1}, [], "img_1"])
async def test_bad_track_requests_get_the_envelope(client: Client, body: Any) -> None:
    response = await client.post("/jobs/track", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request"


async def test_unknown_job_is_404_in_the_envelope(client: Client) -> None:
    response = await client.get("/jobs/img_missing")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "job_not_found"
    assert error["request_id"] == response.headers["Receiver-Request-Id"]


async def test_unknown_route_and_bad_query_use_the_envelope(client: Client) -> None:
    assert (await client.get("/nowhere")).json()["error"]["type"] == "not_found"
    bad = await client.get("/jobs", params={"limit": 0})
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "limit"
    assert (await client.get("/jobs", params={"cursor": "%%%"})).status_code == 400
    typo = await client.get("/jobs", params={"status": "succeded"})  # it was 200 and empty
    assert typo.status_code == 400 and typo.json()["error"]["param"] == "status"


async def test_jobs_list_filters_and_pages(client: Client) -> None:
    for n in range(5):
        job_id = f"img_{n:03d}"
        status = "succeeded" if n % 2 else "failed"
        body = endpoint_event(generation(job_id, status), event_id=f"evt_{n}")
        await client.post("/webhooks/aurous", content=body, headers=headers(body))
    await client.post("/jobs/track", json={"id": "vid_999"})

    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/jobs", params=params)).json()
        seen += [job["id"] for job in page["data"]]
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
    assert seen == ["vid_999", "img_004", "img_003", "img_002", "img_001", "img_000"]

    failed = (await client.get("/jobs", params={"status": "failed"})).json()["data"]
    assert [j["id"] for j in failed] == ["img_004", "img_002", "img_000"]
    videos = (await client.get("/jobs", params={"kind": "video"})).json()["data"]
    assert [j["id"] for j in videos] == ["vid_999"]


async def test_generated_admin_token_is_written_0600(tmp_path: Path, sqlite_url: str) -> None:
    settings: Settings = make_settings(tmp_path / "data", sqlite_url, admin_token=None)
    async with AsyncTestClient(app=create_app(settings)) as client:
        token_file = tmp_path / "data" / "admin.token"
        assert oct(token_file.stat().st_mode & 0o777) == "0o600"
        token = token_file.read_text().strip()
        response = await client.get("/jobs", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200


async def test_metrics_count_deliveries_by_outcome(client: Client) -> None:
    today = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = endpoint_event(generation(completed_at=today))
    await client.post("/webhooks/aurous", content=body, headers=headers(body))
    await client.post("/webhooks/aurous", content=body, headers={})
    text = (await client.get("/metrics")).text
    assert 'receiver_webhook_deliveries_total{outcome="accepted",reason=""} 1.0' in text
    assert 'outcome="rejected",reason="missing_signature"} 1.0' in text
    assert 'receiver_job_transitions_total{source="webhook",status="succeeded"} 1.0' in text
    assert f'receiver_missed_webhook_rate{{day="{today[:10]}"}} 0.0' in text
    assert "receiver_ledger_sync_lag_seconds -1.0" in text
    assert "receiver_http_requests_total{" in text


def _http_requests(text: str, path: str, status: str) -> float:
    wanted = {"method": "GET", "path": path, "status_code": status}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "receiver_http_requests_total"
                and wanted.items() <= sample.labels.items()
            ):
                return sample.value
    return 0.0


async def test_metrics_count_requests_by_route_template_and_status(client: Client) -> None:
    before = (await client.get("/metrics")).text
    for job_id in ("img_missing_1", "img_missing_2"):
        response = await client.get(f"/jobs/{job_id}")
        assert response.status_code == 404
        assert response.headers["Receiver-Request-Id"].startswith("rcv_")
    after = (await client.get("/metrics")).text
    template = "/jobs/{job_id}"
    assert _http_requests(after, template, "404") - _http_requests(before, template, "404") == 2
    assert "img_missing_1" not in after  # ids in URLs never become labels
    assert "/static" not in after


NUL_REQUESTS = [
    "/jobs/img_%00",
    "/jobs/img_%00/events",
    "/jobs/img_%00/outputs/0",
    "/jobs?status=%00",
    "/spend/ledger?job=%00",
    "/destinations/dst_%00",
    "/dashboard/jobs/img_%00",
]


@pytest.mark.parametrize("path", NUL_REQUESTS)
async def test_a_nul_in_an_id_or_a_filter_is_a_clear_400(client: Client, path: str) -> None:
    """PostgreSQL refuses a NUL in text: it was a 500 there."""
    response = await client.get(path)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter" and "NUL" in error["message"]
    assert response.headers["Receiver-Request-Id"] == error["request_id"]


async def test_a_status_aurous_does_not_document_lists_the_jobs_that_have_it(
    client: Client,
) -> None:
    body = endpoint_event(generation("img_odd", "moderating"), event_id="evt_odd")
    await client.post("/webhooks/aurous", content=body, headers=headers(body))
    listed = (await client.get("/jobs", params={"status": "moderating"})).json()["data"]
    assert [job["id"] for job in listed] == ["img_odd"]
