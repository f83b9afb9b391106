"""`/schema/openapi.json` describes what the API answers: the job, output, delivery, job event,
page and error shapes, with their fields, on the operations that return them."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Any]


def _ref_name(schema: dict[str, Any]) -> str:
    return str(schema["$ref"]).rsplit("/", 1)[-1]


async def _schema(client: Client) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


def _answer(spec: dict[str, Any], path: str, method: str, status: str) -> dict[str, Any]:
    content = spec["paths"][path][method]["responses"][status]["content"]
    schema: dict[str, Any] = next(iter(content.values()))["schema"]
    return spec["components"]["schemas"][_ref_name(schema)]  # type: ignore[no-any-return]


async def test_the_job_shapes_are_described_with_their_fields(sqlite_client: Client) -> None:
    spec = await _schema(sqlite_client)
    job = _answer(spec, "/jobs/{job_id}", "get", "200")
    assert {"id", "kind", "status", "terminal", "cost", "outputs", "completed_at"} <= set(
        job["properties"]
    )
    output = spec["components"]["schemas"][_ref_name(job["properties"]["outputs"]["items"])]
    assert {"index", "state", "sha256", "size", "content_type", "deadline", "url"} <= set(
        output["properties"]
    )
    page = _answer(spec, "/jobs", "get", "200")
    assert set(page["properties"]) == {"data", "has_more", "next_cursor"}
    assert _ref_name(page["properties"]["data"]["items"]) == _ref_name(
        spec["paths"]["/jobs/{job_id}"]["get"]["responses"]["200"]["content"]["application/json"][
            "schema"
        ]
    )
    events = _answer(spec, "/jobs/{job_id}/events", "get", "200")
    event = spec["components"]["schemas"][_ref_name(events["properties"]["data"]["items"])]
    assert {"at", "source", "from_status", "to_status", "applied", "note"} <= set(
        event["properties"]
    )


async def test_deliveries_secrets_spend_and_errors_are_described(sqlite_client: Client) -> None:
    spec = await _schema(sqlite_client)
    deliveries = _answer(spec, "/deliveries", "get", "200")
    delivery = spec["components"]["schemas"][_ref_name(deliveries["properties"]["data"]["items"])]
    assert {"id", "event_id", "event_type", "status", "reason", "received_at"} <= set(
        delivery["properties"]
    )
    secrets = _answer(spec, "/secrets", "get", "200")
    secret = spec["components"]["schemas"][_ref_name(secrets["properties"]["data"]["items"])]
    assert {"id", "preview", "state", "expires_at"} <= set(secret["properties"])
    assert "ciphertext" not in secret["properties"]
    summary = _answer(spec, "/spend/summary", "get", "200")
    assert {"by", "total", "groups", "currency"} <= set(summary["properties"])
    error = _answer(spec, "/jobs/{job_id}", "get", "404")
    body = spec["components"]["schemas"][_ref_name(error["properties"]["error"])]
    assert {"type", "code", "message", "request_id", "param"} <= set(body["properties"])
