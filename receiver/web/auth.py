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
from urllib.parse import quote, urlsplit

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler

from receiver.errors import ReceiverError
from receiver.settings import Settings
from storage.crypto import read_or_create_private_file

__all__ = [
    "SESSION_COOKIE",
    "TOKEN_FILE",
    "LoginRequired",
    "csrf_token",
    "is_signed_in",
    "require_admin",
    "resolve_admin_token",
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


def csrf_token(admin_token: str, session_cookie: str) -> str:
    """What the dashboard's forms carry (field `csrf_token`, or header `X-CSRF-Token`): a page
    of another site cannot know it, and it dies with its session."""
    message = b"aurous-receiver/csrf/v2/" + session_cookie.encode("utf-8", "replace")
    return hmac.new(admin_token.encode(), message, hashlib.sha256).hexdigest()


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    scheme, _, value = connection.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def is_signed_in(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    return await _credential(connection) is not None


async def _credential(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """`bearer`, `cookie` (a live dashboard session), or None."""
    runtime = connection.app.state.runtime
    if token_matches(bearer_token(connection), runtime.admin_token):
        return "bearer"
    cookie = connection.cookies.get(SESSION_COOKIE)
    return "cookie" if cookie and await runtime.sessions.is_valid(cookie) else None


async def require_admin(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """The app-wide guard (async: Litestar would run a sync guard in a worker thread, a thread
    hop on every request, the webhook included)."""
    if handler.opt.get("public"):
        return
    credential = await _credential(connection)
    if credential is None:
        if handler.opt.get("page"):
            query = f"?{connection.url.query}" if connection.url.query else ""
            raise LoginRequired(connection.url.path + query)
        raise NotAuthorizedException("a valid 'Authorization: Bearer <admin token>' is required")
    unsafe = connection.scope.get("method", "GET") not in SAFE_METHODS
    if unsafe and handler.opt.get("json"):
        _require_json(connection)
    if unsafe and credential == "cookie":
        _require_same_origin(connection)
        await _require_csrf_token(connection)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _require_json(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """A JSON operation reads only JSON: a form or text/plain body (what a page of another site
    can send without asking) is refused."""
    headers = connection.headers
    has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if has_body and not (media_type == "application/json" or media_type.endswith("+json")):
        raise ReceiverError(415, "unsupported_media_type", "send the body as application/json")


def _require_same_origin(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """A change made with the session cookie must come from a page of this service."""
    origin = connection.headers.get("origin") or _origin_of(connection.headers.get("referer"))
    own = f"{connection.url.scheme}://{connection.headers.get('host', '')}"
    if origin != own:
        raise ReceiverError(
            403, "cross_site_request", "changes must come from the dashboard's own pages"
        )


def _origin_of(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


async def _require_csrf_token(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    presented = connection.headers.get("x-csrf-token")
    media_type = connection.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if presented is None and media_type in _FORM_TYPES and isinstance(connection, Request):
        presented = str((await connection.form()).get("csrf_token") or "") or None
    cookie = connection.cookies.get(SESSION_COOKIE, "")
    expected = csrf_token(connection.app.state.runtime.admin_token, cookie)
    if not token_matches(presented, expected):
        raise ReceiverError(403, "csrf_token_missing", "reload the page and try again")


_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
