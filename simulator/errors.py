"""The Aurous error envelope (§4): one exception type carries everything a response needs."""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError", "envelope", "not_found", "validation_error"]

DOC_BASE = "https://docs.aurous-labs.com/errors#"

_TYPE_BY_STATUS = {
    400: "invalid_request",
    401: "authentication",
    402: "invalid_request",
    403: "authentication",
    404: "not_found",
    405: "invalid_request",
    409: "invalid_request",
    410: "not_found",
    413: "invalid_request",
    416: "invalid_request",
    422: "invalid_request",
    429: "rate_limit",
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.error_type = error_type or _TYPE_BY_STATUS.get(status, "server_error")
        self.headers = headers or {}


def envelope(error: ApiError, request_id: str) -> dict[str, Any]:
    return {
        "error": {
            "type": error.error_type,
            "code": error.code,
            "message": error.message,
            "param": error.param,
            "doc_url": DOC_BASE + error.code,
            "request_id": request_id,
        }
    }


def validation_error(code: str, param: str, message: str) -> ApiError:
    return ApiError(400, code, message, param=param)


def not_found(what: str, param: str | None = None) -> ApiError:
    return ApiError(404, "resource_not_found", f"No such {what}.", param=param)
