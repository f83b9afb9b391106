"""POST /webhooks/aurous: raw bytes are verified before anything parses them; a delivery is
acknowledged only once it and its job change are committed.

The endpoint is the one every Aurous delivery hits, so it is answered by a plain ASGI app,
`serve_webhook`, placed as the route handler's own middleware: Litestar still routes it (405 for
other methods), documents it in the OpenAPI document and runs the app's request middleware
(request id, security headers, body limits, metrics) and exception handlers around it, but none of
its per-request machinery (request object, guard, handler signature, response object), which cost
more CPU than verifying and decoding the delivery (issue 16's measurement). The handler function
itself only declares the operation."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime

import msgspec
from litestar.types import ASGIApp, Receive, Scope, Send

from receiver.errors import ReceiverError
from receiver.runtime import Runtime
from receiver.web.http import api_post, current_request_id, error_body
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
_CONTENT_LENGTH = b"content-length"
_CLOSE = (b"connection", b"close")
_MAX_SIZE_KEPT = 2**31 - 1  # a declared size is stored as it is, up to what the column holds


class WebhookAnswer(msgspec.Struct):
    """What the sender is told about a delivery it may stop retrying."""

    status: str  # accepted, duplicate or quarantined


def _endpoint(app: ASGIApp) -> ASGIApp:
    """The handler's middleware: it answers in place of the handler's app, never calling it."""
    del app
    return serve_webhook


@api_post(
    "/webhooks/aurous",
    "receiveAurousWebhook",
    "Receive an Aurous webhook",
    opt={"public": True},
    status_code=200,
    include_in_schema=True,
    middleware=[_endpoint],
    description=(
        "A signed Aurous delivery. 200 `accepted` (new) or `duplicate` (already stored), "
        "202 `quarantined` (correctly signed but not understood, kept for inspection); "
        "401 for a signature that does not verify, 413 for a body over the limit."
    ),
)
async def receive_webhook() -> WebhookAnswer:
    raise RuntimeError("answered by serve_webhook, the handler's middleware")


async def serve_webhook(scope: Scope, receive: Receive, send: Send) -> None:
    # The runtime comes from app state directly: dependency injection would cost more than
    # everything else done here before the database.
    runtime: Runtime = scope["litestar_app"].state.runtime
    facts, signature, declared_size = _facts(scope)
    limit = runtime.settings.max_body_bytes
    body = None if declared_size > limit else await _read_body(receive, limit)
    if body is None:
        rejected = SignatureRejected(
            RejectReason.BODY_TOO_LARGE, f"body is larger than {limit} bytes"
        )
        await _reject(runtime, rejected, b"", declared_size, facts, send)
        return
    started = time.perf_counter()
    try:
        match = await runtime.secrets.verify(
            body, signature, tolerance_s=runtime.settings.signature_tolerance_s
        )
    except SignatureRejected as rejected:
        await _reject(runtime, rejected, body, len(body), facts, send)
        return
    finally:
        runtime.metrics.verify_seconds.observe(time.perf_counter() - started)
    try:
        delivery = VerifiedDelivery(body, match, facts, decode_envelope(body))
    except EnvelopeError as exc:
        delivery = VerifiedDelivery(body, match, facts, None, str(exc)[:500])
    try:
        outcome = await runtime.intake.submit(delivery)
    except IntakeClosed:
        raise ReceiverError(503, "unavailable", "the receiver is shutting down; retry") from None
    answer, status = _ANSWERS[outcome]
    runtime.metrics.deliveries.labels(answer, "").inc()
    await _answer(send, status, _BODIES[outcome])


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None once it grows past `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the sender hung up: nobody to answer
            raise ReceiverError(400, "client_disconnected", "the client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _answer(send: Send, status: int, body: bytes, *, close: bool = False) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (_CONTENT_LENGTH, str(len(body)).encode()),
    ]
    if close:  # what is left of the body is not read: the connection cannot carry on
        headers.append(_CLOSE)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _reject(
    runtime: Runtime,
    rejected: SignatureRejected,
    body: bytes,
    size: int,
    facts: RequestFacts,
    send: Send,
) -> None:
    runtime.metrics.deliveries.labels("rejected", rejected.reason.value).inc()
    with contextlib.suppress(IntakeClosed):  # the answer is a rejection either way
        await runtime.intake.submit(
            RejectedRequest(rejected.reason.value, rejected.message, body, size, facts)
        )
    reason = rejected.reason
    error = ReceiverError(reason.http_status, reason.value, rejected.message)
    body_left = reason is RejectReason.BODY_TOO_LARGE
    await _answer(send, error.http_status, error_body(error, facts.request_id), close=body_left)


def _facts(scope: Scope) -> tuple[RequestFacts, str | None, int]:
    """What we keep about the request, its signature header and its declared body size."""
    headers: dict[str, str] = {}
    signature: str | None = None
    declared_size = 0
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        if name in _KEPT_HEADERS and name not in headers:
            value = raw_value.decode("latin-1")
            headers[name] = value[:1000]
            signature = value if name == _SIGNATURE_HEADER else signature
            if name == "content-length":
                declared_size = _declared_size(value)
    client = scope.get("client")
    facts = RequestFacts(
        received_at=datetime.now(UTC),
        headers=headers,
        remote_addr=client[0] if client else None,
        request_id=current_request_id(),
    )
    return facts, signature, declared_size


def _declared_size(content_length: str) -> int:
    """A Content-Length as a size to keep: 0 if it is no number, at most what the column holds."""
    if not (content_length.isascii() and content_length.isdigit()):
        return 0
    return _MAX_SIZE_KEPT if len(content_length) > 10 else min(int(content_length), _MAX_SIZE_KEPT)
