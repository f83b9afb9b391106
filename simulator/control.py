"""The control API under /_sim/ (not part of Aurous, no auth): knobs, clock, truth, stats,
and ways to make things happen that no customer asked for (jobs, ledger rows)."""

from __future__ import annotations

import dataclasses
from typing import Any

from litestar import Request, Response, get, post

from simulator.billing import LEDGER_TYPES
from simulator.config import RUNTIME_KNOBS
from simulator.core import Origin, Simulator
from simulator.errors import ApiError
from simulator.http import base_url, json_response, read_json, request_id, sim_of
from simulator.params import parse_image, parse_video
from simulator.truth import truth_snapshot

__all__ = ["CONTROL_ROUTES", "normalise_knobs"]

AnyRequest = Request[Any, Any, Any]

_ALIASES = {
    "reorder": "reorder_rate",
    "output_ttl": "output_ttl_s",
    "rotation_grace": "rotation_grace_s",
    "create_latency": "create_latency_s",
    "create_reply_delay": "create_reply_delay_s",
    "ledger_retention": "ledger_retention_s",
    "bad_signature": "bad_signature_rate",
}
DEFAULT_REORDER_RATE = 0.5


def normalise_knobs(raw: dict[str, Any]) -> dict[str, Any]:
    """Accept field names, CLI spellings (dashes) and short aliases; `reorder: true` = 0.5."""
    knobs: dict[str, Any] = {}
    for name, value in raw.items():
        key = name.replace("-", "_").lstrip("_")
        key = _ALIASES.get(key, key)
        if key == "reorder_rate" and isinstance(value, bool):
            value = DEFAULT_REORDER_RATE if value else 0.0
        knobs[key] = value
    return knobs


def _bad(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, "invalid_request", message, param=param)


async def _object(request: AnyRequest) -> dict[str, Any]:
    _, body = await read_json(request)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise _bad("Body must be a JSON object.")
    return body


def _knobs(sim: Simulator) -> dict[str, Any]:
    config = dataclasses.asdict(sim.config)
    return {name: config[name] for name in sorted(RUNTIME_KNOBS)}


@get("/_sim/faults")
async def read_faults(request: AnyRequest) -> Response[bytes]:
    return json_response(_knobs(sim_of(request)))


@post("/_sim/faults", status_code=200)
async def set_faults(request: AnyRequest) -> Response[bytes]:
    sim = sim_of(request)
    try:
        sim.update_config(normalise_knobs(await _object(request)))
    except ValueError as exc:
        raise _bad(str(exc)) from None
    return json_response(_knobs(sim))


@post("/_sim/advance", status_code=200)
async def advance(request: AnyRequest) -> Response[bytes]:
    sim = sim_of(request)
    seconds = (await _object(request)).get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise _bad("'seconds' must be a non-negative number.", "seconds")
    now = sim.clock.advance(float(seconds))
    settled = sim.settle()
    sim.deliveries.wake.set()
    return json_response({"now_unix": now, "settled": settled})


@get("/_sim/truth")
async def truth(request: AnyRequest) -> Response[bytes]:
    with_sha = request.query_params.get("sha256", "1") not in {"0", "false", "no"}
    return json_response(truth_snapshot(sim_of(request), with_sha256=with_sha))


@get("/_sim/stats")
async def stats(request: AnyRequest) -> Response[bytes]:
    sim = sim_of(request)
    sim.settle()
    snapshot = sim.stats.snapshot()
    snapshot["state"] = {
        "jobs_live": len(sim.jobs),
        "jobs_pruned": sim.jobs.pruned,
        "ledger_rows": len(sim.ledger.rows),
        "deliveries_queued": len(sim.deliveries),
        "idempotency_keys": len(sim.idempotency),
        "endpoints": len(sim.endpoints.all()),
    }
    return json_response(snapshot)


@get("/_sim/acknowledged")
async def acknowledged(request: AnyRequest) -> Response[bytes]:
    """Event ids of endpoint deliveries the receiver answered with a 2xx."""
    return json_response({"event_ids": sorted(sim_of(request).acknowledged)})


@post("/_sim/stats/reset", status_code=200)
async def reset_stats(request: AnyRequest) -> Response[bytes]:
    sim_of(request).stats.reset()
    return json_response({"reset": True})


@post("/_sim/prune", status_code=200)
async def prune(request: AnyRequest) -> Response[bytes]:
    sim = sim_of(request)
    sim.settle()
    return json_response({"pruned": sim.prune(force=True), "jobs_live": len(sim.jobs)})


@post("/_sim/jobs", status_code=201)
async def create_jobs(request: AnyRequest) -> Response[bytes]:
    """Jobs no customer request created (no auth, limits or idempotency): they still hold
    credits, appear in GET /v1/images and fire webhooks, like work started elsewhere."""
    sim = sim_of(request)
    body = await _object(request)
    kind = body.get("kind", "image")
    count = body.get("count", 1)
    if kind not in {"image", "video"}:
        raise _bad("'kind' must be image or video.", "kind")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 10000:
        raise _bad("'count' must be an integer from 1 to 10000.", "count")
    spec = body.get("body") or {"prompt": "simulated background job"}
    params = parse_image(spec) if kind == "image" else parse_video(spec)
    origin = Origin(base_url(request), request_id(request.scope), sim.config.api_version)
    jobs = [sim.create_job(kind, params, origin) for _ in range(count)]
    return json_response({"ids": [job.id for job in jobs]}, 201)


@post("/_sim/ledger", status_code=201)
async def add_ledger_row(request: AnyRequest) -> Response[bytes]:
    """A ledger row the customer never caused, e.g. a charge for a generation id nobody saw."""
    sim = sim_of(request)
    body = await _object(request)
    kind, amount = body.get("type"), body.get("amount")
    if kind not in LEDGER_TYPES:
        raise _bad(f"'type' must be one of {LEDGER_TYPES}.", "type")
    if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
        raise _bad("'amount' must be a non-negative number.", "amount")
    held = {"hold": float(amount), "release": -float(amount)}.get(str(kind), 0.0)
    sim.settle()  # keeps ledger rows in time order
    row = sim.ledger.record(
        str(kind),
        float(amount),
        sim.clock.now(),
        generation_id=body.get("generation_id"),
        hold_id=body.get("hold_id"),
        description=str(body.get("description") or "Manual adjustment"),
        held_delta=held,
    )
    return json_response(row.to_json(), 201)


CONTROL_ROUTES = [
    read_faults,
    set_faults,
    advance,
    truth,
    stats,
    acknowledged,
    reset_stats,
    prune,
    create_jobs,
    add_ledger_row,
]
