"""Webhook endpoint management (§1.2): create, get, delete, rotate_secret, test."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, delete, get, post

from simulator.core import Simulator
from simulator.errors import not_found, validation_error
from simulator.fields import read_callback_url, read_string, require_object
from simulator.http import guard, json_response, read_json
from simulator.jobs import Job
from simulator.webhooks import EVENT_TYPES, Endpoint

__all__ = ["WEBHOOK_ROUTES"]

AnyRequest = Request[Any, Any, Any]
BUCKET = "webhook_endpoints_post"


def _events(body: dict[str, Any]) -> list[str]:
    events = body.get("events")
    if events is None:
        raise validation_error("missing_field", "events", "'events' is required.")
    if not isinstance(events, list) or not events:
        raise validation_error("invalid_format", "events", "'events' must be a non-empty array.")
    for event in events:
        if event != "*" and event not in EVENT_TYPES:
            raise validation_error("invalid_format", "events", f"Unknown event type '{event}'.")
    return [str(event) for event in events]


def _metadata(body: dict[str, Any]) -> dict[str, Any]:
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise validation_error("invalid_format", "metadata", "'metadata' must be an object.")
    if len(metadata) > 50:
        raise validation_error("value_out_of_range", "metadata", "At most 50 metadata keys.")
    for value in metadata.values():
        if not isinstance(value, str) or len(value) > 500:
            raise validation_error(
                "value_out_of_range", "metadata", "Metadata values are strings of ≤ 500 chars."
            )
    return metadata


@post("/v1/webhook_endpoints", status_code=201)
async def create_endpoint(request: AnyRequest) -> Response[bytes]:
    sim = guard(request, BUCKET)
    _, raw = await read_json(request)
    body = require_object(raw)
    url = read_callback_url(body, "url", required=True)
    assert url is not None
    events = _events(body)
    endpoint = sim.endpoints.create(
        url,
        events,
        sim.clock.now(),
        description=read_string(body, "description", max_len=500),
        metadata=_metadata(body),
    )
    return json_response(endpoint.to_json(reveal=True), 201)


def _endpoint(sim: Simulator, endpoint_id: str) -> Endpoint:
    endpoint = sim.endpoints.get(endpoint_id)
    if endpoint is None:
        raise not_found("webhook endpoint", "id")
    return endpoint


@get("/v1/webhook_endpoints/{endpoint_id:str}")
async def retrieve_endpoint(request: AnyRequest) -> Response[bytes]:
    endpoint_id = request.path_params["endpoint_id"]
    sim = guard(request, "get")
    sim.stats.incr("gets", "webhook_endpoint_get")
    return json_response(_endpoint(sim, endpoint_id).to_json())


@delete("/v1/webhook_endpoints/{endpoint_id:str}", status_code=200)
async def delete_endpoint(request: AnyRequest) -> Response[bytes]:
    endpoint_id = request.path_params["endpoint_id"]
    sim = guard(request, BUCKET)
    deleted = sim.endpoints.delete(endpoint_id)
    return json_response({"id": endpoint_id, "object": "webhook_endpoint", "deleted": deleted})


@post("/v1/webhook_endpoints/{endpoint_id:str}/rotate_secret", status_code=200)
async def rotate_secret(request: AnyRequest) -> Response[bytes]:
    endpoint_id = request.path_params["endpoint_id"]
    sim = guard(request, BUCKET)
    endpoint = _endpoint(sim, endpoint_id)
    endpoint.rotate(sim.clock.now(), sim.config.rotation_grace_s)
    sim.stats.incr("deliveries", "rotations")
    return json_response(endpoint.to_json(reveal=True))


def _sample_data(sim: Simulator, event_type: str) -> dict[str, Any]:
    """A plausible payload for a synthetic delivery; nothing is stored or billed."""
    kind, _, outcome = event_type.partition(".")
    now = sim.clock.now()
    if kind == "usage":
        return {
            "object": "balance",
            **sim.ledger.balance(),
            "balance_low_threshold": sim.config.balance_low_threshold,
        }
    if kind == "webhook":
        return {"object": "webhook_endpoint", "id": "we_synthetic", "is_active": False}
    planned = {"completed": "succeeded", "failed": "failed", "cancelled": "succeeded"}[outcome]
    params: dict[str, Any] = {
        "prompt": "Synthetic test delivery",
        "count": 1,
        "width": 2048,
        "height": 2048,
        "size_preset": "2k_1_1",
        "duration": 5,
        "resolution": "1080p",
        "ratio": "16:9",
        "camera_fixed": False,
        "inference_type": "t2i" if kind == "image" else "t2v",
    }
    job = Job(
        sequence=-1,
        id=("img_" if kind == "image" else "vid_") + "0" * 26,
        kind=kind,
        created_at=now - 15,
        queued_at=now - 14,
        processing_at=now - 13,
        finish_at=now,
        outcome=planned,
        extended=False,
        cost=0.0,
        breakdown={},
        params=params,
        base_url="https://api.aurous-labs.com",
        request_id="req_" + "0" * 26,
        api_version=sim.config.api_version,
        output_count=1,
        output_size=0,
    )
    if outcome == "cancelled":
        job.cancelled_at = now
    return sim.render(job)


@post("/v1/webhook_endpoints/{endpoint_id:str}/test", status_code=200)
async def test_fire(request: AnyRequest) -> Response[bytes]:
    endpoint_id = request.path_params["endpoint_id"]
    sim = guard(request, BUCKET)
    endpoint = _endpoint(sim, endpoint_id)
    _, raw = await read_json(request)
    event_type = read_string(require_object(raw), "event_type", required=True, max_len=64)
    if event_type not in EVENT_TYPES:
        raise validation_error("invalid_format", "event_type", f"Unknown event '{event_type}'.")
    if not endpoint.subscribes(event_type):
        raise validation_error(
            "value_out_of_range", "event_type", "The endpoint is not subscribed to this event type."
        )
    event_id = sim.events.emit(
        event_type, _sample_data(sim, event_type), synthetic=True, only=endpoint
    )
    sim.stats.incr("deliveries", "test_fires")
    return json_response(
        {
            "object": "webhook_test_fire",
            "endpoint_id": endpoint.id,
            "event_id": event_id,
            "enqueued": True,
        }
    )


WEBHOOK_ROUTES = [create_endpoint, retrieve_endpoint, delete_endpoint, rotate_secret, test_fire]
