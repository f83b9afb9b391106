"""Who may use the admin surface: the bearer token (API) or the dashboard's session cookie.

The token comes from RECEIVER_ADMIN_TOKEN, else it is generated once into a 0600 file. One
guard sits on the whole app; the webhook, the probes, the login page and static assets opt out
with `opt={"public": True}`. Dashboard pages (`opt={"page": True}`) redirect to the login form
instead of answering 401.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler

from receiver.settings import Settings
from storage.crypto import read_or_create_private_file

__all__ = [
    "SESSION_COOKIE",
    "TOKEN_FILE",
    "LoginRequired",
    "is_signed_in",
    "require_admin",
    "resolve_admin_token",
    "session_value",
    "token_matches",
]

log = logging.getLogger(__name__)
TOKEN_FILE = "admin.token"
SESSION_COOKIE = "receiver_session"


class LoginRequired(Exception):
    """A dashboard page was asked for without a session: send the browser to the login form."""

    def __init__(self, next_path: str) -> None:
        super().__init__("login required")
        self.location = f"/login?next={quote(next_path, safe='/')}"


def resolve_admin_token(settings: Settings) -> str:
    if settings.admin_token:
        return settings.admin_token
    path = Path(settings.data_dir) / TOKEN_FILE
    token, created = read_or_create_private_file(path, lambda: secrets.token_urlsafe(32))
    log.warning("admin token %s %s", "generated into" if created else "read from", path.resolve())
    return token


def token_matches(presented: str | None, expected: str) -> bool:
    """Constant-time, and any text compares (a str compare refuses non-ASCII with a 500)."""
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8", "replace"), expected.encode())


def session_value(token: str) -> str:
    """The cookie proves knowledge of the token without carrying it; a new token ends
    every session."""
    return hmac.new(
        token.encode(), b"aurous-receiver/dashboard-session/v1", hashlib.sha256
    ).hexdigest()


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    scheme, _, value = connection.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def is_signed_in(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    expected: str = connection.app.state.runtime.admin_token
    if token_matches(bearer_token(connection), expected):
        return True
    cookie = connection.cookies.get(SESSION_COOKIE)
    return cookie is not None and token_matches(cookie, session_value(expected))


async def require_admin(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """The app-wide guard. Async although it never awaits: Litestar runs a sync guard in a
    worker thread, a thread hop on every request, the webhook included."""
    if handler.opt.get("public") or is_signed_in(connection):
        return
    if handler.opt.get("page"):
        path = connection.url.path + (f"?{connection.url.query}" if connection.url.query else "")
        raise LoginRequired(path)
    raise NotAuthorizedException("a valid 'Authorization: Bearer <admin token>' is required")
