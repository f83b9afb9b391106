"""GET /jobs/{id}/outputs/{n}: the archived bytes, streamed from the blob store, with Range."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from receiver.errors import ReceiverError
from receiver.relay.links import LINK_PREFIX
from receiver.runtime import Runtime, RuntimeDep
from receiver.web.http import api_get
from storage import gateway
from storage.blobs import BlobNotFound, BlobStoreUnavailable, servable_type
from storage.states import OutputState

__all__ = ["follow_link", "get_output"]

_MAX_OUTPUTS = 10_000  # far above any real job; keeps absurd indexes away from the database
_CACHE = "private, max-age=31536000, immutable"
_RANGE = re.compile(r"^bytes=([0-9]{0,18})-([0-9]{0,18})$")  # ASCII digits, below 2**63
def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, end) for a single satisfiable `Range`, None for the whole body."""
    if not header or "," in header:
        return None
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        start, end = max(0, size - int(last)), size
    else:
        start, end = int(first), min(size, int(last) + 1) if last else size
    if start >= size or start >= end:
        raise ReceiverError(
            416,
            "range_not_satisfiable",
            f"the output has {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return start, end


@api_get(
    "/jobs/{job_id:str}/outputs/{index:int}",
    "getJobOutput",
    "The archived bytes of one output (Range supported)",
    response_description="The output's bytes, as its image or video type; 206 for a Range; "
    "304 when If-None-Match names its ETag (the sha256)",
)
async def get_output(
    request: Request[Any, Any, Any],
    runtime: RuntimeDep,
    job_id: FromPath[str],
    index: FromPath[int],
) -> Response[Any]:
    return await stream_output(request, runtime, job_id, index)


@get(
    f"{LINK_PREFIX}/{{job_id:str}}/{{index:int}}",
    opt={"public": True},
    include_in_schema=False,
)
async def follow_link(
    request: Request[Any, Any, Any],
    runtime: RuntimeDep,
    job_id: FromPath[str],
    index: FromPath[int],
    expires: FromQuery[str] = "",
    signature: FromQuery[str] = "",
) -> Response[Any]:
    """A download link from an event: no admin token, but a valid, unexpired signature."""
    runtime.links.check(job_id, index, expires, signature)
    return await stream_output(request, runtime, job_id, index)


async def stream_output(
    request: Request[Any, Any, Any], runtime: Runtime, job_id: str, index: int
) -> Response[Any]:
    """The archived bytes of one output, whole or the asked-for range."""
    output = None
    if 0 <= index < _MAX_OUTPUTS:
        output = await runtime.db.read(lambda conn: gateway.get_output(conn, job_id, index))
    if output is None or output.state != OutputState.ARCHIVED or output.sha256 is None:
        state = output.state if output else "unknown"
        raise ReceiverError(
            404,
            "output_not_archived",
            f"output {index} of {job_id} is not archived (state: {state})",
        )
    etag = f'"{output.sha256}"'
    if _matches(request.headers.get("if-none-match"), etag):  # bytes never change: reuse yours
        return Response(b"", status_code=304, headers={"ETag": etag, "Cache-Control": _CACHE})
    size = output.size or 0
    span = byte_range(request.headers.get("range"), size)
    start, end = span or (0, size)
    media_type = servable_type(output.content_type)
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Content-Length": str(end - start),
        "Cache-Control": _CACHE,
        "Content-Security-Policy": "sandbox",  # (nosniff is on every answer)
    }
    if media_type == "application/octet-stream":
        headers["Content-Disposition"] = f'attachment; filename="output-{index}.bin"'
    if span:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    return Stream(
        await _opened(runtime.blobs.read(output.sha256, start, end), job_id, index),
        status_code=206 if span else 200,
        media_type=media_type,
        headers=headers,
    )


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


async def _opened(chunks: AsyncIterator[bytes], job_id: str, index: int) -> AsyncIterator[bytes]:
    """The bytes, once the store has begun to give them: a blob that is missing, or a store
    that cannot be read, is an error answer, not a 200 whose body breaks off."""
    try:
        first = await anext(chunks, b"")
    except BlobNotFound:
        message = f"output {index} of {job_id} is archived, but its bytes are not in the store"
        raise ReceiverError(
            404, "output_missing", message + "; `aurous-receiver archive verify` lists them"
        ) from None
    except BlobStoreUnavailable as error:
        raise ReceiverError(503, "store_unavailable", str(error)[:300]) from None

    async def rest() -> AsyncIterator[bytes]:
        yield first
        async for chunk in chunks:
            yield chunk

    return rest()
