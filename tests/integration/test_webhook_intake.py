"""POST /webhooks/aurous against a real database: stored once, forgeries refused, jobs right."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.support.aurous import callback_event, endpoint_event, generation, headers

Client = AsyncTestClient[Any]
JOB = "img_01HXMQ7Z3K8Y2ABCDEFGHJKM"


async def deliver(client: Client, body: bytes, **kwargs: Any) -> Any:
    return await client.post("/webhooks/aurous", content=body, headers=headers(body, **kwargs))


async def test_a_signed_delivery_is_accepted_and_the_job_is_tracked(client: Client) -> None:
    response = await deliver(client, endpoint_event(generation(JOB)))
    assert response.status_code == 200
    assert response.json() == {"status": "accepted"}
    assert response.headers["Receiver-Request-Id"].startswith("rcv_")

    job = (await client.get(f"/jobs/{JOB}")).json()
    assert job["status"] == "succeeded" and job["terminal"] is True
    assert job["first_seen_via"] == "webhook"
    assert job["cost"] == {"amount": 2.0, "state": "charged", "currency": "credit"}
    assert job["completed_at"] == "2026-05-04T10:00:14Z"
    [output] = job["outputs"]
    assert output["state"] == "pending" and output["url"] is None
    assert output["deadline"] == "2026-05-05T10:00:14Z"  # completed_at + 24 h

    events = (await client.get(f"/jobs/{JOB}/events")).json()["data"]
    assert [(e["source"], e["to_status"], e["applied"]) for e in events] == [
        ("webhook:evt_01HXMQ7Z3K8Y2NABCDEFGHJKMN", "succeeded", True)
    ]


async def test_the_same_event_twice_is_a_duplicate(client: Client) -> None:
    body = endpoint_event(generation(JOB))
    assert (await deliver(client, body)).json() == {"status": "accepted"}
    assert (await deliver(client, body)).json() == {"status": "duplicate"}
    events = (await client.get(f"/jobs/{JOB}/events")).json()["data"]
    assert len(events) == 1
    assert (await deliver(client, body)).json() == {"status": "duplicate"}
    stored = (await client.get("/deliveries")).json()["data"]
    assert len(stored) == 1  # a copy is counted on the first delivery, not stored again
    duplicated = (await client.get("/deliveries", params={"status": "duplicate"})).json()["data"]
    assert [(d["id"], d["duplicates"]) for d in duplicated] == [(stored[0]["id"], 2)]
    assert duplicated[0]["last_duplicate_at"] is not None


async def test_per_request_callbacks_dedupe_on_their_body(client: Client) -> None:
    body = callback_event(generation(JOB))
    assert (await deliver(client, body)).json() == {"status": "accepted"}
    assert (await deliver(client, body)).json() == {"status": "duplicate"}


async def test_video_jobs_archive_the_video_url(client: Client) -> None:
    data = generation(
        "vid_01ABC", output_video_url="https://api.aurous-labs.com/v1/videos/v/output"
    )
    await deliver(client, endpoint_event(data, event_id="evt_video"))
    job = (await client.get("/jobs/vid_01ABC")).json()
    assert job["kind"] == "video"
    assert len(job["outputs"]) == 1


async def test_signed_but_undecodable_is_quarantined_and_visible(client: Client) -> None:
    body = b'{"type": "image.completed", "data": "not an object"}'
    response = await deliver(client, body)
    assert response.status_code == 202
    assert response.json() == {"status": "quarantined"}
    assert (await deliver(client, body)).json() == {"status": "duplicate"}
    stored = (await client.get("/deliveries", params={"status": "quarantined"})).json()["data"]
    assert len(stored) == 1 and "not a GenerationResponse" in stored[0]["reason"]
    assert (await client.get("/jobs")).json()["data"] == []


async def test_unknown_event_types_are_stored_and_acknowledged(client: Client) -> None:
    body = json.dumps({"id": "evt_low", "type": "usage.balance_low", "data": {}}).encode()
    assert (await deliver(client, body)).json() == {"status": "accepted"}
    stored = (await client.get("/deliveries")).json()["data"]
    assert stored[0]["event_type"] == "usage.balance_low"


@pytest.mark.parametrize(
    ("make_headers", "status", "code"),
    [
        (lambda body: {}, 401, "missing_signature"),
        (lambda body: {"Aurous-Webhook-Signature": "t=abc"}, 400, "malformed_signature"),
        (lambda body: headers(body, "whsec_wrong_secret_000000"), 401, "no_matching_signature"),
        (lambda body: headers(body + b" "), 401, "no_matching_signature"),
        (lambda body: headers(body, t=1_000_000_000), 401, "timestamp_too_old"),
        (lambda body: headers(body, t=4_000_000_000), 401, "timestamp_in_future"),
    ],
)
async def test_untrusted_requests_are_refused_and_write_no_job_state(
    client: Client, make_headers: Any, status: int, code: str
) -> None:
    body = endpoint_event(generation(JOB))
    response = await client.post("/webhooks/aurous", content=body, headers=make_headers(body))
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert error["request_id"] == response.headers["Receiver-Request-Id"]
    assert (await client.get("/jobs")).json()["data"] == []
    rejected = (await client.get("/deliveries", params={"status": "rejected"})).json()["data"]
    assert [r["reason"] for r in rejected] == [code]
    counts = (await client.get("/deliveries/rejections")).json()["data"]
    assert [(c["reason"], c["count"]) for c in counts] == [(code, 1)]


async def test_a_changed_body_byte_is_refused(client: Client) -> None:
    body = endpoint_event(generation(JOB))
    tampered = body.replace(b'"amount": 2', b'"amount": 3')
    response = await client.post("/webhooks/aurous", content=tampered, headers=headers(body))
    assert response.status_code == 401
    assert (await client.get("/jobs")).json()["data"] == []


async def test_an_oversized_body_is_413(client: Client) -> None:
    body = b"x" * (11 * 1024 * 1024)
    response = await client.post("/webhooks/aurous", content=body, headers=headers(body))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert response.headers["connection"] == "close"  # the rest of the body is never read
    rejected = (await client.get("/deliveries", params={"status": "rejected"})).json()["data"]
    assert rejected[0]["reason"] == "body_too_large"
    assert rejected[0]["body_size"] == len(body)


async def _post_raw(
    client: Client, chunks: list[bytes], request_headers: list[tuple[bytes, bytes]]
) -> list[dict[str, Any]]:
    """POST /webhooks/aurous as the HTTP server hands it over (the test client cannot stream
    a request body, nor send a Content-Length that is not its body's); the messages sent."""
    answer: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        answer.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/webhooks/aurous",
        "raw_path": b"/webhooks/aurous",
        "root_path": "",
        "query_string": b"",
        "headers": request_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    # on the loop the app runs on (the test client's portal), as its own requests are
    await asyncio.to_thread(client.blocking_portal.call, client.app, scope, receive, send)
    return answer


async def test_an_oversized_body_sent_without_a_length_is_413_too(client: Client) -> None:
    # A chunked upload: no Content-Length to refuse it by, so the limit holds while it is read.
    body = b"x" * (11 * 1024 * 1024)
    chunks = [body[start : start + 65536] for start in range(0, len(body), 65536)]
    signature = headers(body)["Aurous-Webhook-Signature"].encode()
    chunked = [(b"transfer-encoding", b"chunked"), (b"aurous-webhook-signature", signature)]
    answer = await _post_raw(client, chunks, chunked)
    assert answer[0]["status"] == 413
    assert json.loads(answer[1]["body"])["error"]["code"] == "body_too_large"
    assert len(chunks) > 0  # it stopped reading once the limit was passed
    rejected = (await client.get("/deliveries", params={"status": "rejected"})).json()["data"]
    assert rejected[0]["reason"] == "body_too_large"


async def test_a_content_length_beyond_any_column_is_413_and_kept(client: Client) -> None:
    body = b"{}"
    huge = [(b"content-length", b"3000000000"), (b"aurous-webhook-signature", b"t=1,v1=x")]
    answer = await _post_raw(client, [body], huge)
    assert answer[0]["status"] == 413
    rejected = (await client.get("/deliveries", params={"status": "rejected"})).json()["data"]
    assert (rejected[0]["reason"], rejected[0]["body_size"]) == ("body_too_large", 2**31 - 1)


async def test_status_never_regresses_and_contradictions_are_kept(client: Client) -> None:
    await deliver(client, endpoint_event(generation(JOB, "succeeded"), event_id="evt_1"))
    await deliver(client, callback_event(generation(JOB, "processing")))
    await deliver(client, endpoint_event(generation(JOB, "failed"), event_id="evt_2"))
    job = (await client.get(f"/jobs/{JOB}")).json()
    assert job["status"] == "succeeded"
    events = (await client.get(f"/jobs/{JOB}/events")).json()["data"]
    assert [(e["to_status"], e["applied"], e["note"]) for e in events] == [
        ("succeeded", True, "first seen"),
        ("failed", False, "contradiction: failed after succeeded"),
    ]


async def test_only_the_newest_rejections_are_kept_but_all_are_counted(
    sqlite_client: Client,
) -> None:
    client = sqlite_client  # the pruning statement is the same on both databases
    body = b"{}"
    await asyncio.gather(
        *[
            client.post(
                "/webhooks/aurous", content=body, headers={"Aurous-Webhook-Signature": "t=1"}
            )
            for _ in range(1050)
        ]
    )
    counts = (await client.get("/deliveries/rejections")).json()["data"]
    assert counts[0]["count"] == 1050
    kept, cursor = 0, None
    while True:
        params: dict[str, Any] = {"status": "rejected", "limit": 200}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/deliveries", params=params)).json()
        kept += len(page["data"])
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert kept == 1000
