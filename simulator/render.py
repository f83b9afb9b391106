"""GenerationResponse (§2.3), the one shape used by create, GET, list, cancel and webhooks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simulator.billing import money
from simulator.clock import iso
from simulator.jobs import Job

__all__ = ["generation_json", "output_paths"]

TokenFor = Callable[[str, int], str]


def output_paths(job: Job) -> list[str]:
    if job.kind == "video":
        return [f"/v1/videos/{job.id}/output"]
    return [f"/v1/images/{job.id}/output/{n}" for n in range(job.output_count)]


def _urls(
    job: Job, now: float, token_for: TokenFor, video_in_list: bool
) -> tuple[list[str], str | None]:
    if not job.has_outputs(now):
        return [], None
    urls = [
        f"{job.base_url}{path}?token={token_for(job.id, n)}"
        for n, path in enumerate(output_paths(job))
    ]
    if job.kind == "video":
        return (urls if video_in_list else []), urls[0]
    return urls, None


def _cost(job: Job, now: float) -> dict[str, Any]:
    # While running, cost is the hold; once terminal it is what was charged (0 if nothing).
    terminal = job.is_terminal(now)
    amount = job.cost if not terminal or job.has_outputs(now) else 0.0
    return {"amount": money(amount), "currency": "credit", "breakdown": dict(job.breakdown)}


def generation_json(
    job: Job, now: float, token_for: TokenFor, *, video_in_list: bool = False
) -> dict[str, Any]:
    params = job.params
    output_urls, video_url = _urls(job, now, token_for, video_in_list)
    finished = job.finished_at(now)
    lora = params.get("lora")
    is_video = job.kind == "video"
    return {
        "object": "inference",
        "id": job.id,
        "status": job.status(now),
        "prompt": params.get("prompt"),
        "created_at": iso(job.created_at),
        "media_type": job.kind,
        "negative_prompt": params.get("negative_prompt"),
        "output_urls": output_urls,
        "output_video_url": video_url,
        "reference_image_urls": list(params.get("reference_image_urls") or []),
        "error_message": job.error_message(now),
        "duration_ms": None if finished is None else int((finished - job.created_at) * 1000),
        "cost": _cost(job, now),
        "width": params.get("width"),
        "height": params.get("height"),
        "image_count": None if is_video else params["count"],
        "size_preset": params.get("size_preset"),
        "inference_type": params["inference_type"],
        "cfg_rescale": params.get("cfg_rescale"),
        "denoise_strength": params.get("denoise_strength"),
        "seed": params.get("seed"),
        "video_duration": params.get("duration") if is_video else None,
        "video_resolution": params.get("resolution") if is_video else None,
        "video_ratio": params.get("ratio") if is_video else None,
        # The documented example shows an object here, so videos carry one; images null.
        "video_camera_fixed": {"camera_fixed": params["camera_fixed"]} if is_video else None,
        "character_id": params.get("character_id"),
        "bundle_name": None,
        "loras": None if lora is None else [{"id": lora["id"], "name": lora["name"]}],
        "aurous_version": job.api_version,
        "creation_request_id": job.request_id,
        "completed_at": iso(finished),
    }
