"""The admin token: from RECEIVER_ADMIN_TOKEN, else generated once into a 0600 file."""

from __future__ import annotations

import hmac
import logging
import secrets
from pathlib import Path
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler

from receiver.settings import Settings
from storage.crypto import read_or_create_private_file

__all__ = ["TOKEN_FILE", "require_admin", "resolve_admin_token", "token_matches"]

log = logging.getLogger(__name__)
TOKEN_FILE = "admin.token"


def resolve_admin_token(settings: Settings) -> str:
    if settings.admin_token:
        return settings.admin_token
    path = Path(settings.data_dir) / TOKEN_FILE
    token, created = read_or_create_private_file(path, lambda: secrets.token_urlsafe(32))
    log.warning("admin token %s %s", "generated into" if created else "read from", path.resolve())
    return token


def token_matches(presented: str | None, expected: str) -> bool:
    return presented is not None and hmac.compare_digest(presented.encode(), expected.encode())


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    scheme, _, value = connection.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def require_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Litestar guard for every route but the webhook and the health probes."""
    expected: str = connection.app.state.runtime.admin_token
    if not token_matches(bearer_token(connection), expected):
        raise NotAuthorizedException("a valid 'Authorization: Bearer <admin token>' is required")
