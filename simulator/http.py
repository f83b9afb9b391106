"""Request plumbing shared by the Aurous routes: ids, headers, auth, rate limits, JSON replies.

Headers that every response needs (request id, version, rate-limit numbers) are collected in
the ASGI scope state and stamped onto the response start message by `stamp_headers`, so error
responses produced by exception handlers carry them too.
"""

from __future__ import annotations

import math
import re
from typing import Any, cast

import msgspec
from litestar import Request, Response
from litestar.types import Message, Scope

from simulator.core import TEAM, Simulator
from simulator.errors import ApiError
from simulator.ids import new_id

__all__ = [
    "api_key_of",
    "authenticate",
    "base_url",
    "guard",
    "json_response",
    "read_json",
    "request_id",
    "set_header",
    "sim_of",
    "stamp_headers",
]

_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")
AnyRequest = Request[Any, Any, Any]


def sim_of(request: AnyRequest) -> Simulator:
    return cast(Simulator, request.app.state.simulator)


def _state(scope: Scope) -> dict[str, Any]:
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


def request_id(scope: Scope) -> str:
    state = _state(scope)
    if "aurous_request_id" not in state:
        app_state = scope["app"].state
        clock = app_state.simulator.clock
        state["aurous_request_id"] = new_id("req_", clock.now())
    return cast(str, state["aurous_request_id"])


def set_header(scope: Scope, name: str, value: str) -> None:
    _state(scope).setdefault("aurous_headers", {})[name] = value


async def stamp_headers(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    if scope["path"].startswith("/_sim/"):
        return
    state = _state(scope)
    extra = {
        "aurous-request-id": request_id(scope),
        "aurous-version": state.get("aurous_version") or _default_version(scope),
    }
    extra.update({k.lower(): v for k, v in state.get("aurous_headers", {}).items()})
    existing = {bytes(k).lower() for k, _ in message.get("headers", [])}
    headers = list(message.get("headers", []))
    headers.extend(
        (name.encode(), value.encode())
        for name, value in extra.items()
        if name.encode() not in existing
    )
    message["headers"] = headers


def _default_version(scope: Scope) -> str:
    return cast(str, scope["app"].state.simulator.config.api_version)


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(data),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


async def read_json(request: AnyRequest) -> tuple[bytes, Any]:
    raw = await request.body()
    try:
        return raw, msgspec.json.decode(raw) if raw else None
    except msgspec.DecodeError as exc:
        raise ApiError(400, "invalid_format", "Request body is not valid JSON.") from exc


def base_url(request: AnyRequest) -> str:
    configured = sim_of(request).config.public_url
    if configured:
        return configured.rstrip("/")
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}"


def api_key_of(request: AnyRequest) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def authenticate(request: AnyRequest) -> None:
    key = api_key_of(request)
    if key is None:
        raise ApiError(401, "missing_api_key", "Send your API key in the X-Api-Key header.")
    if key != sim_of(request).config.api_key:
        raise ApiError(401, "invalid_api_key", "The API key is not valid.")


def _check_version(request: AnyRequest) -> None:
    version = request.headers.get("aurous-version")
    if version is None:
        return
    if not _VERSION.match(version):
        raise ApiError(
            400,
            "invalid_format",
            "Aurous-Version must look like YYYY-MM-DD.",
            param="Aurous-Version",
        )
    _state(request.scope)["aurous_version"] = version


def rate_limit(request: AnyRequest, bucket_class: str) -> None:
    sim = sim_of(request)
    decision = sim.limiter.check(
        TEAM, bucket_class, sim.clock.now(), enforce=sim.config.rate_limits
    )
    # Reset/Retry-After are in wall-clock terms: that is what a client's sleep measures.
    reset = math.ceil(sim.clock.wall() + sim.clock.to_real(decision.full_in_s))
    set_header(request.scope, "X-RateLimit-Limit", str(decision.limit))
    set_header(request.scope, "X-RateLimit-Remaining", str(decision.remaining))
    set_header(request.scope, "X-RateLimit-Reset", str(reset))
    if not decision.allowed:
        retry_after = max(1, math.ceil(sim.clock.to_real(decision.retry_in_s)))
        sim.stats.incr("requests", "rate_limited")
        raise ApiError(
            429,
            "too_many_requests",
            f"Rate limit exceeded for {bucket_class}. Retry after {retry_after}s.",
            headers={"Retry-After": str(retry_after)},
        )


def guard(request: AnyRequest, bucket_class: str, *, authenticated: bool = True) -> Simulator:
    """Version check, auth, rate limit and lazy settling: the preamble of every Aurous route."""
    sim = sim_of(request)
    _check_version(request)
    if authenticated:
        authenticate(request)
    rate_limit(request, bucket_class)
    sim.settle()
    return sim
