"""One error type from the domain to the HTTP envelope, and the envelope itself.

Aurous answers errors as `{"error": {"type", "code", "message", "param", "request_id"}}`, and
the receiver answers its own the same way, so one declaration serves both: decoding Aurous's
errors and describing ours in the OpenAPI document.
"""

from __future__ import annotations

import msgspec

__all__ = ["ErrorBody", "ErrorEnvelope", "ReceiverError", "decode_error_envelope", "error_type"]

_TYPE_BY_STATUS = {
    400: "invalid_request",
    401: "authentication",
    403: "authentication",
    404: "not_found",
    429: "rate_limit",
}


def error_type(status: int) -> str:
    """The envelope's `type` for an HTTP status, as Aurous names them."""
    if status in _TYPE_BY_STATUS:
        return _TYPE_BY_STATUS[status]
    return "server_error" if status >= 500 else "invalid_request"


class ErrorBody(msgspec.Struct):
    type: str = "server_error"
    code: str = "unknown"
    message: str = ""
    request_id: str | None = None
    param: str | None = None


class ErrorEnvelope(msgspec.Struct):
    """Every error answer, the receiver's and Aurous's."""

    error: ErrorBody


_decoder = msgspec.json.Decoder(ErrorEnvelope)


def decode_error_envelope(body: bytes) -> ErrorBody | None:
    """Aurous's error body, or None when the answer is not an error envelope."""
    try:
        return _decoder.decode(body).error
    except msgspec.DecodeError:
        return None


class ReceiverError(Exception):
    """A clear, expected failure: it becomes the error envelope with this status and code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, str | None] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.headers = headers or {}
        self.extra = extra or {}

    @property
    def http_status(self) -> int:
        """The status the receiver answers with."""
        return self.status
