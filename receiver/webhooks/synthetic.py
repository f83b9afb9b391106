"""Synthetic Aurous deliveries for `aurous-receiver trigger`: the envelope Aurous's own test fire
sends (`synthetic: true`) around a payload of the event type's documented shape.

Job events carry a GenerationResponse as `GET /v1/images/{id}` returns it; its output URLs have
Aurous's form but hold nothing, so archiving them fails like any expired output's would.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from receiver.ids import new_id

__all__ = ["EVENT_TYPES", "job_kind_of", "synthetic_event"]

# The v1.0 event types: the ones Aurous's test fire (`POST /v1/webhook_endpoints/{id}/test`)
# accepts.
EVENT_TYPES = (
    "image.completed",
    "image.failed",
    "image.cancelled",
    "video.completed",
    "video.failed",
    "video.cancelled",
    "usage.balance_low",
    "webhook.endpoint_disabled",
)
JOB_ID_PREFIXES = {"image": "img_", "video": "vid_"}
_STATUS_BY_OUTCOME = {"completed": "succeeded", "failed": "failed", "cancelled": "cancelled"}
_API_VERSION = "2026-05-15"  # v1.0
_VIDEO_SECONDS = 5
_VIDEO_CREDITS = 0.5 * 1.5 * _VIDEO_SECONDS  # v1.0 rate card: base_per_second x 720p factor


def job_kind_of(event_type: str) -> str | None:
    """`image` or `video` for an event about a job, None for the others."""
    kind = event_type.partition(".")[0]
    return kind if kind in JOB_ID_PREFIXES else None


def synthetic_event(
    event_type: str,
    *,
    event_id: str,
    job_id: str | None,
    now: datetime,
    aurous_base_url: str,
) -> bytes:
    """The delivery's body. `job_id` is required for job events, and ignored by the others."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    kind = job_kind_of(event_type)
    if kind is not None:
        if job_id is None:
            raise ValueError(f"{event_type} is about a job: give its id")
        outcome = event_type.partition(".")[2]
        data = _generation(kind, _STATUS_BY_OUTCOME[outcome], job_id, now, aurous_base_url)
    elif event_type == "usage.balance_low":
        data = _balance()
    else:
        data = _disabled_endpoint(now)
    envelope = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created_at": _iso(now),
        "synthetic": True,
        "data": data,
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def _generation(
    kind: str, status: str, job_id: str, now: datetime, base_url: str
) -> dict[str, object]:
    succeeded = status == "succeeded"
    body: dict[str, object] = {
        "object": "inference",
        "id": job_id,
        "status": status,
        "prompt": "A lighthouse at dusk (synthetic test delivery)",
        "created_at": _iso(now - timedelta(seconds=15)),
        "completed_at": _iso(now),
        "media_type": kind,
        "error_message": "provider_error" if status == "failed" else None,
        "duration_ms": 14820,
        "aurous_version": _API_VERSION,
        "creation_request_id": new_id("req_"),
    }
    if kind == "image":
        credits = 1 if succeeded else 0  # a failed or cancelled job's hold is released
        body |= {
            "output_urls": [f"{base_url}/v1/images/{job_id}/output/0?token=synthetic"]
            if succeeded
            else [],
            "cost": {"amount": credits, "currency": "credit", "breakdown": {"base": credits}},
            "width": 2048,
            "height": 2048,
            "image_count": 1,
            "size_preset": "2k_1_1",
            "inference_type": "t2i",
            "seed": 42,
        }
    else:
        video_credits = _VIDEO_CREDITS if succeeded else 0.0
        body |= {
            "output_video_url": f"{base_url}/v1/videos/{job_id}/output?token=synthetic"
            if succeeded
            else None,
            "cost": {
                "amount": video_credits,
                "currency": "credit",
                "breakdown": {"base": video_credits},
            },
            "video_duration": _VIDEO_SECONDS,
            "video_resolution": "720p",
            "video_ratio": "16:9",
            "inference_type": "t2v",
            "seed": 42,
        }
    return body


def _balance() -> dict[str, object]:
    return {
        "object": "balance",
        "credits": 80,
        "held_credits": 0,
        "available_credits": 80,
        "currency": "credit",
        "billing_mode": "metered",
        "balance_low_threshold": 100,
    }


def _disabled_endpoint(now: datetime) -> dict[str, object]:
    return {
        "object": "webhook_endpoint",
        "id": new_id("we_"),
        "url": "https://hooks.example.com/aurous-webhook",
        "events": ["*"],
        "secret_preview": "whsec_syn...0000",
        "is_active": False,
        "consecutive_failures": 20,
        "last_success_at": None,
        "last_failure_at": _iso(now),
        "metadata": {},
        "created_at": _iso(now - timedelta(days=3)),
        "updated_at": _iso(now),
        "description": "Another endpoint of the team (synthetic)",
        "secret": None,
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
