"""The operator dashboard: server-rendered pages (Jinja), htmx for live parts, no CDN."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TypeAlias
from urllib.parse import urlencode

from litestar import MediaType, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from receiver.admin_sessions import LOGIN_ATTEMPTS_PER_MINUTE
from receiver.errors import ReceiverError
from receiver.jobs import views as jobs
from receiver.jobs.lifecycle import NON_TERMINAL, TERMINAL
from receiver.runtime import Runtime, RuntimeDep
from receiver.web import dashboard
from receiver.web.auth import SESSION_COOKIE, csrf_token, is_signed_in, token_matches
from receiver.webhooks import views as webhooks
from storage.states import DeliveryStatus, JobKind

__all__ = ["DASHBOARD_ROUTES"]

PAGE = {"page": True}
PUBLIC = {"public": True}
STATUSES = [*NON_TERMINAL, *sorted(TERMINAL)]
KINDS = [JobKind.IMAGE, JobKind.VIDEO]
DELIVERY_STATUSES = list(DeliveryStatus)
RETIRE_GRACE = timedelta(hours=24)


def _page(request: Request[Any, Any, Any], name: str, page: str, **context: Any) -> Template:
    """A signed-in page: its forms carry the session's CSRF token."""
    admin_token = request.app.state.runtime.admin_token
    csrf = csrf_token(admin_token, request.cookies.get(SESSION_COOKIE, ""))
    return Template(
        template_name=name, context={"page": page, "signed_in": True, "csrf": csrf, **context}
    )


def _local(path: str | None) -> str:
    """Only same-site paths are followed after login."""
    return path if path and path.startswith("/") and not path.startswith("//") else "/"


@get("/login", opt=PUBLIC, include_in_schema=False, media_type=MediaType.HTML)
async def show_login(request: Request[Any, Any, Any], next: FromQuery[str] = "/") -> Any:
    if await is_signed_in(request):
        return Redirect(_local(next))
    return Template(template_name="login.html", context={"next": _local(next), "error": None})


@post("/login", opt=PUBLIC, include_in_schema=False, media_type=MediaType.HTML, status_code=303)
async def log_in(request: Request[Any, Any, Any]) -> Any:
    runtime: Runtime = request.app.state.runtime
    client = request.client.host if request.client else "unknown"
    form = await request.form()
    target = _local(str(form.get("next") or "/"))
    if not runtime.sessions.may_try(client):
        error = f"More than {LOGIN_ATTEMPTS_PER_MINUTE} wrong tokens in a minute: wait a minute."
        return Template(
            template_name="login.html",
            context={"next": target, "error": error},
            status_code=429,
            headers={"Retry-After": "60"},
        )
    if not token_matches(str(form.get("token") or ""), runtime.admin_token):
        runtime.sessions.failed(client)
        context = {"next": target, "error": "That token is not the admin token."}
        return Template(template_name="login.html", context=context, status_code=401)
    response = Redirect(target, status_code=303)
    secure = runtime.settings.cookie_secure
    response.set_cookie(
        SESSION_COOKIE,
        await runtime.sessions.start(),
        max_age=int(runtime.sessions.ttl.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" if secure is None else secure,
        path="/",
    )
    return response


@post("/logout", opt=PAGE, include_in_schema=False, media_type=MediaType.HTML, status_code=303)
async def log_out(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Redirect:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await runtime.sessions.end(cookie)  # the cookie is worthless from now on, anywhere
    response = Redirect("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@get("/", opt=PAGE, include_in_schema=False, media_type=MediaType.HTML)
async def show_overview(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Template:
    return _page(
        request,
        "overview.html",
        "overview",
        o=await dashboard.overview(runtime),
        credits=await dashboard.credits_card(runtime),
    )


def _choice(name: str, value: str | None, choices: Sequence[str]) -> str | None:
    """A filter's value; empty is "any", and a value not offered is a 400, not everything."""
    if not value:
        return None
    if value not in choices:
        raise ReceiverError(
            400,
            "invalid_parameter",
            f"{name} must be one of {', '.join(choices)} (or empty for any)",
            param=name,
        )
    return value


async def _jobs_listing(
    runtime: RuntimeDep,
    status: FromQuery[str | None] = None,
    kind: FromQuery[str | None] = None,
    cursor: FromQuery[str | None] = None,
) -> dict[str, object]:
    """The jobs page's table, for the page and for its live refresh alike."""
    status = status or None  # an undocumented one that jobs have is listed, as in the API
    kind = _choice("kind", kind, KINDS)
    page = await jobs.list_jobs(runtime.db, status=status, kind=kind, cursor=cursor, limit=50)
    filters = {k: v for k, v in (("status", status), ("kind", kind)) if v}
    return {
        "listing": page,
        "status": status,
        "kind": kind,
        "statuses": STATUSES,
        "kinds": KINDS,
        "query": urlencode(filters),
        # the live refresh keeps the page it refreshes
        "this_page": urlencode({**filters, "cursor": cursor} if cursor else filters),
        "older": page.next_cursor and urlencode({**filters, "cursor": page.next_cursor}),
        "newer_exist": cursor is not None,
    }


_JOBS_LISTING = {"jobs_listing": Provide(_jobs_listing)}
JobsListing: TypeAlias = NamedDependency[dict[str, object]]


@get(
    "/dashboard/jobs",
    opt=PAGE,
    include_in_schema=False,
    media_type=MediaType.HTML,
    dependencies=_JOBS_LISTING,
)
async def show_jobs(request: Request[Any, Any, Any], jobs_listing: JobsListing) -> Template:
    return _page(request, "jobs.html", "jobs", **jobs_listing)


@get(
    "/dashboard/jobs/table",
    opt=PAGE,
    include_in_schema=False,
    media_type=MediaType.HTML,
    dependencies=_JOBS_LISTING,
)
async def show_jobs_table(jobs_listing: JobsListing) -> Template:
    return Template(template_name="partials/jobs_table.html", context=jobs_listing)


@get("/dashboard/jobs/{job_id:str}", opt=PAGE, include_in_schema=False, media_type=MediaType.HTML)
async def show_job(
    request: Request[Any, Any, Any], runtime: RuntimeDep, job_id: FromPath[str]
) -> Template:
    found = await dashboard.job_page(runtime, job_id)
    if found is None:
        raise ReceiverError(404, "job_not_found", f"no job {job_id!r} is tracked here")
    job, events = found
    return _page(request, "job.html", "jobs", job=job, events=events)


@get("/dashboard/deliveries", opt=PAGE, include_in_schema=False, media_type=MediaType.HTML)
async def show_deliveries(
    request: Request[Any, Any, Any],
    runtime: RuntimeDep,
    status: FromQuery[str | None] = None,
    cursor: FromQuery[str | None] = None,
) -> Template:
    status = _choice("status", status, DELIVERY_STATUSES)
    page = await webhooks.list_deliveries(runtime.db, status=status, cursor=cursor, limit=200)
    rejections = await webhooks.rejection_counts(runtime.db)
    filters = {"status": status} if status else {}
    return _page(
        request,
        "deliveries.html",
        "deliveries",
        deliveries=page.data,
        status=status or "",
        rejections=rejections,
        older=page.next_cursor and urlencode({**filters, "cursor": page.next_cursor}),
        query=urlencode(filters),
        newer_exist=cursor is not None,
    )


@get("/dashboard/secrets", opt=PAGE, include_in_schema=False, media_type=MediaType.HTML)
async def show_secrets(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Template:
    secrets = await runtime.secrets.list()
    active = [s for s in secrets if s.state == "active"]
    retirable = {s.id for s in active if dashboard.safe_to_retire(s, len(active) - 1, RETIRE_GRACE)}
    return _page(request, "secrets.html", "secrets", secrets=secrets, retirable=retirable)


@get("/dashboard/spend", opt=PAGE, include_in_schema=False, media_type=MediaType.HTML)
async def show_spend(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Template:
    return _page(request, "spend.html", "spend", **await dashboard.spend_page(runtime))


@get("/dashboard/destinations", opt=PAGE, include_in_schema=False, media_type=MediaType.HTML)
async def show_destinations(
    request: Request[Any, Any, Any], runtime: RuntimeDep, notice: FromQuery[str | None] = None
) -> Template:
    context = await dashboard.destinations_page(runtime)
    return _page(request, "destinations.html", "destinations", notice=notice, **context)


@post(
    "/dashboard/destinations/{destination_id:str}/{action:str}",
    opt=PAGE,
    include_in_schema=False,
    status_code=303,
)
async def act_on_destination(
    request: Request[Any, Any, Any],
    runtime: RuntimeDep,
    destination_id: FromPath[str],
    action: FromPath[str],
) -> Redirect:
    """Enable, disable, or replay since a moment, from the dashboard's forms."""
    form = await request.form()
    notice = await dashboard.act_on_destination(runtime, destination_id, action, form.get("since"))
    return Redirect("/dashboard/destinations?" + urlencode({"notice": notice}), status_code=303)


DASHBOARD_ROUTES = [
    show_login,
    log_in,
    log_out,
    show_overview,
    show_jobs,
    show_jobs_table,
    show_job,
    show_deliveries,
    show_secrets,
    show_spend,
    show_destinations,
    act_on_destination,
]
