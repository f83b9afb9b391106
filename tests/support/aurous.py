"""Build Aurous-shaped payloads and signatures for tests, written from the API contract."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from tests.conftest import TEST_SECRET


def generation(
    job_id: str = "img_01HXMQ7Z3K8Y2ABCDEFGHJKM", status: str = "succeeded", **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "object": "inference",
        "id": job_id,
        "status": status,
        "prompt": "A golden sunset over mountains",
        "created_at": "2026-05-04T10:00:00Z",
        "media_type": "video" if job_id.startswith("vid_") else "image",
        "cost": {"amount": 2, "currency": "credit", "breakdown": {"base": 1, "enhance": 1}},
    }
    if status == "succeeded":
        body["completed_at"] = "2026-05-04T10:00:14Z"
        body["output_urls"] = [f"https://api.aurous-labs.com/v1/images/{job_id}/output/0?token=abc"]
    elif status in ("failed", "cancelled", "expired", "moderation_rejected"):
        body["completed_at"] = "2026-05-04T10:00:14Z"
        body["error_message"] = "Content policy violation" if status != "cancelled" else None
    body.update(fields)
    return body


def endpoint_event(
    data: dict[str, Any],
    event_id: str = "evt_01HXMQ7Z3K8Y2NABCDEFGHJKMN",
    event_type: str | None = None,
) -> bytes:
    kind = "video" if data["id"].startswith("vid_") else "image"
    suffix = {"succeeded": "completed", "cancelled": "cancelled"}.get(data["status"], "failed")
    envelope = {
        "id": event_id,
        "object": "event",
        "type": event_type or f"{kind}.{suffix}",
        "created_at": "2026-05-04T10:00:15Z",
        "synthetic": False,
        "data": data,
    }
    return json.dumps(envelope).encode()


def callback_event(data: dict[str, Any]) -> bytes:
    kind = "video" if data["id"].startswith("vid_") else "image"
    event = f"{kind}.completed" if data["status"] == "succeeded" else f"{kind}.failed"
    return json.dumps({"event": event, "data": data}).encode()


def signature(body: bytes, *secrets: str, t: int | None = None) -> str:
    """`t=…,v1=…` exactly as the docs describe, written here independently of receiver code."""
    t = int(time.time()) if t is None else t
    signed = f"{t}.".encode() + body
    parts = [f"t={t}"] + [
        "v1=" + hmac.new(s.encode(), signed, hashlib.sha256).hexdigest()
        for s in (secrets or (TEST_SECRET,))
    ]
    return ",".join(parts)


def headers(body: bytes, *secrets: str, t: int | None = None) -> dict[str, str]:
    return {
        "Aurous-Webhook-Signature": signature(body, *secrets, t=t),
        "Content-Type": "application/json",
    }
