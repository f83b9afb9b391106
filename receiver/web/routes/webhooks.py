"""POST /webhooks/aurous: raw bytes are verified before anything parses them; a delivery is
acknowledged only once it and its job change are committed."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response
from litestar.exceptions.http_exceptions import RequestEntityTooLarge

from receiver.errors import ReceiverError
from receiver.runtime import Runtime
from receiver.web.http import api_post, current_request_id, error_response
from receiver.webhooks.envelope import EnvelopeError, decode_envelope
from receiver.webhooks.intake import (
    IntakeClosed,
    RejectedRequest,
    RequestFacts,
    VerifiedDelivery,
)
from receiver.webhooks.signing import HEADER, RejectReason, SignatureRejected
from storage.states import DeliveryStatus

__all__ = ["receive_webhook"]

_KEPT_HEADERS = frozenset(
    (
        "content-type",
        "content-length",
        "user-agent",
        "aurous-request-id",
        "aurous-webhook-signature",
        "x-forwarded-for",
    )
)
_SIGNATURE_HEADER = HEADER.lower()
# What the sender is told: a new delivery is "accepted", the rest are named as stored.
_ANSWERS = {
    DeliveryStatus.PROCESSED: ("accepted", 200),
    DeliveryStatus.DUPLICATE: ("duplicate", 200),
    DeliveryStatus.QUARANTINED: ("quarantined", 202),
}
_BODIES = {status: b'{"status":"%s"}' % name.encode() for status, (name, _) in _ANSWERS.items()}


@api_post(
    "/webhooks/aurous",
    "receiveAurousWebhook",
    "Receive an Aurous webhook",
    opt={"public": True},
    status_code=200,
    include_in_schema=True,
)
async def receive_webhook(request: Request[Any, Any, Any]) -> Response[bytes]:
    # The hot path reads the runtime from app state directly: dependency resolution would
    # cost more than everything else this handler does before it reaches the database.
    runtime: Runtime = request.app.state.runtime
    facts, signature = _facts(request)
    try:
        body = await request.body()
    except RequestEntityTooLarge:
        size = request.content_length or 0
        rejected = SignatureRejected(
            RejectReason.BODY_TOO_LARGE,
            f"body is larger than {runtime.settings.max_body_bytes} bytes",
        )
        return await _reject(runtime, rejected, b"", size, facts)
    started = time.perf_counter()
    try:
        match = await runtime.secrets.verify(
            body, signature, tolerance_s=runtime.settings.signature_tolerance_s
        )
    except SignatureRejected as rejected:
        return await _reject(runtime, rejected, body, len(body), facts)
    finally:
        runtime.metrics.verify_seconds.observe(time.perf_counter() - started)
    try:
        delivery = VerifiedDelivery(body, match, facts, decode_envelope(body))
    except EnvelopeError as exc:
        delivery = VerifiedDelivery(body, match, facts, None, str(exc)[:500])
    try:
        outcome = await runtime.intake.submit(delivery)
    except IntakeClosed:
        return error_response(
            ReceiverError(503, "unavailable", "the receiver is shutting down; retry")
        )
    answer, status = _ANSWERS[outcome]
    runtime.metrics.deliveries.labels(answer, "").inc()
    return Response(_BODIES[outcome], status_code=status, media_type="application/json")


async def _reject(
    runtime: Runtime, rejected: SignatureRejected, body: bytes, size: int, facts: RequestFacts
) -> Response[bytes]:
    runtime.metrics.deliveries.labels("rejected", rejected.reason.value).inc()
    with contextlib.suppress(IntakeClosed):  # the answer is a rejection either way
        await runtime.intake.submit(
            RejectedRequest(rejected.reason.value, rejected.message, body, size, facts)
        )
    reason = rejected.reason
    return error_response(ReceiverError(reason.http_status, reason.value, rejected.message))


def _facts(request: Request[Any, Any, Any]) -> tuple[RequestFacts, str | None]:
    """What we keep about the request, and its signature header (raw ASGI headers: cheaper)."""
    headers: dict[str, str] = {}
    signature: str | None = None
    for raw_name, raw_value in request.scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        if name in _KEPT_HEADERS and name not in headers:
            value = raw_value.decode("latin-1")
            headers[name] = value[:1000]
            signature = value if name == _SIGNATURE_HEADER else signature
    client = request.scope.get("client")
    facts = RequestFacts(
        received_at=datetime.now(UTC),
        headers=headers,
        remote_addr=client[0] if client else None,
        request_id=current_request_id(),
    )
    return facts, signature
