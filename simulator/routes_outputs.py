"""Output downloads (§2.7, §3): token or key auth, Range/206, 410 after the TTL, 422 when none.

Bytes are produced piece by piece while the client reads (uvicorn applies back-pressure), so a
multi-gigabyte video costs one piece of memory. A truncation fault drops the connection after
part of the body by raising mid-stream, which makes the server close the socket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, Response, get
from litestar.response import Redirect, Stream

from simulator.core import Simulator
from simulator.errors import ApiError, not_found
from simulator.faults import inject_get_faults, plan_download
from simulator.http import api_key_of, authenticate, guard
from simulator.jobs import Job
from simulator.media import Media

__all__ = ["OUTPUT_ROUTES", "TruncatedDownload", "install_log_filter"]

AnyRequest = Request[Any, Any, Any]
SLOW_CHUNK = 16 * 1024


class TruncatedDownload(Exception):
    """Raised inside the body stream on purpose to cut the connection short."""


class _HideInjectedTruncation(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _caused_by_truncation(record.exc_info[1] if record.exc_info else None)


def _caused_by_truncation(error: BaseException | None) -> bool:
    while error is not None:
        if isinstance(error, TruncatedDownload):
            return True
        if isinstance(error, BaseExceptionGroup) and any(
            _caused_by_truncation(inner) for inner in error.exceptions
        ):
            return True
        error = error.__cause__ or error.__context__
    return False


def install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideInjectedTruncation) for f in logger.filters):
        logger.addFilter(_HideInjectedTruncation())


def _authorize(request: AnyRequest, sim: Simulator, job_id: str, index: int) -> None:
    token = request.query_params.get("token")
    if api_key_of(request) is not None or token is None:
        authenticate(request)
    elif not sim.token_ok(job_id, index, token):
        raise ApiError(401, "invalid_api_key", "The output token is not valid for this output.")


def _available(sim: Simulator, job: Job, index: int) -> None:
    now = sim.clock.now()
    if not job.has_outputs(now):
        raise ApiError(
            422,
            "output_not_available",
            f"Generation is {job.status(now)}; it has no output to serve.",
        )
    if not 0 <= index < job.output_count:
        raise not_found("output", "n")
    completed = job.completed_at or now
    if now >= completed + sim.config.output_ttl_s:
        sim.stats.incr("outputs", "expired_served_410")
        raise ApiError(410, "output_expired", "This output has expired; it is no longer stored.")


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end-exclusive) for one satisfiable range; None = serve everything."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if not first:
            suffix = int(last)
            return (max(0, size - suffix), size) if suffix > 0 else _unsatisfiable(size)
        start = int(first)
        end = min(int(last) + 1, size) if last else size
    except ValueError:
        return None
    if start >= size or end <= start:
        return _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> tuple[int, int]:
    raise ApiError(
        416,
        "range_not_satisfiable",
        "The requested range is not satisfiable.",
        headers={"Content-Range": f"bytes */{size}"},
    )


async def _body(
    media: Media, start: int, end: int, cut_after: int | None, bytes_per_second: float
) -> AsyncIterator[bytes]:
    sent = 0
    for piece in media.iter_range(start, end):
        step = SLOW_CHUNK if bytes_per_second > 0 else len(piece)
        for offset in range(0, len(piece), step):
            chunk = piece[offset : offset + step]
            if cut_after is not None and sent + len(chunk) >= cut_after:
                yield chunk[: cut_after - sent]
                raise TruncatedDownload(f"injected truncation after {cut_after} bytes")
            yield chunk
            sent += len(chunk)
            if bytes_per_second > 0:
                await asyncio.sleep(len(chunk) / bytes_per_second)


def _stream(request: AnyRequest, sim: Simulator, job: Job, index: int, kind: str) -> Response[Any]:
    media = sim.media_for(job, index)
    span = _parse_range(request.headers.get("range"), media.size)
    start, end = span or (0, media.size)
    plan = plan_download(sim, end - start)
    headers = {
        "Content-Length": str(end - start),
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=86400",
    }
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{media.size}"
    sim.stats.incr("outputs", f"{kind}_downloads")
    return Stream(
        _body(media, start, end, plan.cut_after, plan.bytes_per_second),
        status_code=206 if span is not None else 200,
        media_type=media.content_type,
        headers=headers,
    )


def _index(raw: str) -> int:
    if not raw.isdigit():
        raise not_found("output", "n")
    return int(raw)


@get("/v1/images/{job_id:str}/output/{n:str}")
async def image_output(request: AnyRequest) -> Response[Any]:
    job_id = request.path_params["job_id"]
    n = request.path_params["n"]
    sim = guard(request, "get", authenticated=False)
    index = _index(n)
    _authorize(request, sim, job_id, index)
    inject_get_faults(sim, "image_output")
    job = _image_job(sim, job_id)
    _available(sim, job, index)
    if sim.config.redirect_outputs:
        sim.stats.incr("faults", "redirect")
        location = f"{job.base_url}/_cdn/{job.id}/{index}?token={sim.output_token(job.id, index)}"
        return Redirect(location, status_code=302)
    return _stream(request, sim, job, index, "image")


def _image_job(sim: Simulator, job_id: str) -> Job:
    job = sim.jobs.get(job_id)
    if job is None or job.kind != "image":
        raise not_found("image generation", "id")
    return job


@get("/v1/videos/{job_id:str}/output")
async def video_output(request: AnyRequest) -> Response[Any]:
    job_id = request.path_params["job_id"]
    sim = guard(request, "get", authenticated=False)
    _authorize(request, sim, job_id, 0)
    inject_get_faults(sim, "video_output")
    job = sim.jobs.get(job_id)
    if job is None or job.kind != "video":
        raise not_found("video generation", "id")
    _available(sim, job, 0)
    return _stream(request, sim, job, 0, "video")


@get("/_cdn/{job_id:str}/{n:str}")
async def cdn_output(request: AnyRequest) -> Response[Any]:
    job_id = request.path_params["job_id"]
    n = request.path_params["n"]
    """The 'live provider URL' an image output redirects to: token-only, no Aurous headers."""
    sim: Simulator = request.app.state.simulator
    sim.settle()
    index = _index(n)
    if not sim.token_ok(job_id, index, request.query_params.get("token", "")):
        raise ApiError(403, "forbidden", "Signature does not match.")
    job = _image_job(sim, job_id)
    sim.stats.incr("gets", "cdn_output")
    _available(sim, job, index)
    return _stream(request, sim, job, index, "cdn")


OUTPUT_ROUTES = [image_output, video_output, cdn_output]
