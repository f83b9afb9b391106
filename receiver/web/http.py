"""What every HTTP response shares: the error envelope (shaped like Aurous's own) and the
`Receiver-Request-Id` header, plus the exception handlers that produce them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Request, Response, delete, get, patch, post
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    Scope,
    Send,
)

from receiver.errors import ErrorEnvelope, ReceiverError, error_type
from receiver.ids import new_id
from receiver.logs import REQUEST_ID, current_request_id
from receiver.metrics import HTTP_METRICS
from receiver.web.limits import BodyLimits

__all__ = [
    "ERROR_RESPONSES",
    "REQUEST_ID_HEADER",
    "api_get",
    "api_post",
    "current_request_id",
    "error_body",
    "error_response",
    "exception_handlers",
    "request_middleware",
]

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "Receiver-Request-Id"
_REQUEST_ID_NAME = REQUEST_ID_HEADER.lower().encode()
_UNCOUNTED_PREFIX = "/static"  # asset fetches would only dilute the request figures
# On every answer: no sniffing, no framing, no referrer to other sites, and a policy under
# which pages run only this service's own scripts (the dashboard has no inline script).
_CSP = b"content-security-policy"
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]
_PAGE_POLICY = (
    _CSP,
    b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data: blob:; media-src 'self' blob:; object-src 'none'; "
    b"base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
)

_CLOSE = (b"connection", b"close")
_ROUTER_ERROR_HEADERS = {
    name.decode(): value.decode() for name, value in [*_SECURITY_HEADERS, _PAGE_POLICY]
}

_CODE_BY_STATUS = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "resource_not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    503: "unavailable",
}


def error_response(error: ReceiverError) -> Response[bytes]:
    """The envelope for `error`, with this request's id."""
    request_id = current_request_id()
    headers = error.headers
    if request_id is None:  # the router refused (404, 405) before any middleware ran
        request_id = new_id("rcv_")
        headers = {**_ROUTER_ERROR_HEADERS, REQUEST_ID_HEADER: request_id, **headers}
    return Response(
        error_body(error, request_id),
        status_code=error.http_status,
        media_type="application/json",
        headers=headers,
    )


def error_body(error: ReceiverError, request_id: str | None) -> bytes:
    """The error envelope's JSON."""
    body: dict[str, str | None] = {
        "type": error_type(error.http_status),
        "code": error.code,
        "message": error.message,
        "request_id": request_id,
    }
    if error.param is not None:
        body["param"] = error.param
    body.update(error.extra)
    return msgspec.json.encode({"error": body})


def request_middleware(bodies: BodyLimits) -> Callable[[ASGIApp], ASGIApp]:
    """Give every HTTP request its `Receiver-Request-Id` and the security headers, hold its
    body to the body limits, and count it by route template and status. One wrapper, one send
    hook: each layer of middleware costs the webhook path as much as verifying a signature
    does."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            request_id = new_id("rcv_")
            token = REQUEST_ID.set(request_id)
            header = (_REQUEST_ID_NAME, request_id.encode())
            status = 500  # unless the app starts a response
            body = bodies.reader(receive)

            async def send_with_id(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    headers = [*message.get("headers", ()), header, *_SECURITY_HEADERS]
                    if not any(name.lower() == _CSP for name, _ in headers):
                        headers.append(_PAGE_POLICY)
                    if body.cut_off:  # the rest of the body is still on the wire: close
                        headers.append(_CLOSE)
                    message["headers"] = headers
                await send(message)

            started = time.perf_counter()
            try:
                if _holds_nul(scope):
                    await _send_error(send_with_id, _NUL_IN_REQUEST, request_id)
                else:
                    await app(scope, body.receive, send_with_id)
            finally:
                body.release()
                REQUEST_ID.reset(token)
                path = scope.get("path_template", "")
                if not path.startswith(_UNCOUNTED_PREFIX):
                    elapsed = time.perf_counter() - started
                    HTTP_METRICS.record(scope["method"], path, status, elapsed)

        return middleware

    return wrap


_NUL_IN_REQUEST = ReceiverError(
    400, "invalid_parameter", "the path or the query holds a NUL character (%00)"
)


def _holds_nul(scope: Scope) -> bool:
    """No id, filter or cursor holds a NUL, and PostgreSQL would refuse one with an error."""
    query = scope.get("query_string", b"")
    return "\x00" in scope["path"] or b"%00" in query or b"\x00" in query


async def _send_error(send: Send, error: ReceiverError, request_id: str) -> None:
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": error.http_status,
        "headers": [(b"content-type", b"application/json")],
    }
    end: HTTPResponseBodyEvent = {
        "type": "http.response.body",
        "body": error_body(error, request_id),
        "more_body": False,
    }
    await send(start)
    await send(end)


def _receiver_error(_: Request[Any, Any, Any], exc: ReceiverError) -> Response[bytes]:
    return error_response(exc)


def _validation_error(_: Request[Any, Any, Any], exc: ValidationException) -> Response[bytes]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    param = next((str(e.get("key")) for e in extra if isinstance(e, dict) and e.get("key")), None)
    detail = "; ".join(str(e.get("message")) for e in extra if isinstance(e, dict))
    message = f"{exc.detail}: {detail}" if detail else str(exc.detail)
    return error_response(ReceiverError(400, "invalid_parameter", message, param=param))


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    headers = dict(exc.headers or {})
    if isinstance(exc, NotAuthorizedException):
        headers.setdefault("WWW-Authenticate", 'Bearer realm="aurous-receiver"')
    code = _CODE_BY_STATUS.get(status, "server_error" if status >= 500 else "invalid_request")
    return error_response(ReceiverError(status, code, str(exc.detail), headers=headers))


def _unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        ReceiverError(500, "internal_error", "the receiver hit an unexpected error")
    )


exception_handlers: dict[Any, Any] = {
    ReceiverError: _receiver_error,
    ValidationException: _validation_error,
    HTTPException: _http_error,
    Exception: _unexpected_error,
}


def _error_spec(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=ErrorEnvelope, description=description, generate_examples=False
    )


ERROR_RESPONSES: dict[int, ResponseSpec] = {
    400: _error_spec("Bad input: the message and `param` say what to change"),
    401: _error_spec("Missing or wrong admin token (or webhook signature)"),
    404: _error_spec("No such resource"),
}


def api_get(path: str, operation_id: str, summary: str, **options: Any) -> HTTPRouteHandler:
    """A GET operation of the API: documented, with the error envelope on its error answers."""
    options.setdefault("responses", ERROR_RESPONSES)
    return get(path, operation_id=operation_id, summary=summary, **options)


def api_post(path: str, operation_id: str, summary: str, **options: Any) -> HTTPRouteHandler:
    """A POST operation of the API, documented like `api_get`; its body, if any, is JSON."""
    options["opt"] = {"json": True, **options.get("opt", {})}
    return post(
        path, responses=ERROR_RESPONSES, operation_id=operation_id, summary=summary, **options
    )


def api_patch(path: str, operation_id: str, summary: str, **options: Any) -> HTTPRouteHandler:
    """A PATCH operation of the API, documented like `api_post`."""
    options["opt"] = {"json": True, **options.get("opt", {})}
    return patch(
        path, responses=ERROR_RESPONSES, operation_id=operation_id, summary=summary, **options
    )


def api_delete(path: str, operation_id: str, summary: str, **options: Any) -> HTTPRouteHandler:
    """A DELETE operation of the API, documented like `api_get`."""
    return delete(
        path, responses=ERROR_RESPONSES, operation_id=operation_id, summary=summary, **options
    )
