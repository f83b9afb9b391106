"""The simulator's images and videos, as Aurous documents them: create, estimate, retrieve,
list, cancel, LoRAs."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.e2e.simulator.conftest import Sim, wait_for

GENERATION_FIELDS = {
    "object",
    "id",
    "status",
    "prompt",
    "created_at",
    "media_type",
    "negative_prompt",
    "output_urls",
    "output_video_url",
    "reference_image_urls",
    "error_message",
    "duration_ms",
    "cost",
    "width",
    "height",
    "image_count",
    "size_preset",
    "inference_type",
    "cfg_rescale",
    "denoise_strength",
    "seed",
    "video_duration",
    "video_resolution",
    "video_ratio",
    "video_camera_fixed",
    "character_id",
    "bundle_name",
    "loras",
    "aurous_version",
    "creation_request_id",
    "completed_at",
}
ULID = r"[0-9A-HJKMNP-TV-Z]{26}"
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
FIVE_STATUSES = {"pending", "processing", "succeeded", "failed", "cancelled"}


def test_create_image_returns_201_generation_response(sim: Sim) -> None:
    response = sim.client.post(
        "/v1/images", json={"prompt": "A golden sunset", "negative_prompt": "blurry"}
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == GENERATION_FIELDS
    assert re.fullmatch("img_" + ULID, body["id"])
    assert body["object"] == "inference" and body["media_type"] == "image"
    assert body["status"] in {"pending", "processing"}
    assert body["prompt"] == "A golden sunset" and body["negative_prompt"] == "blurry"
    assert re.fullmatch(ISO, body["created_at"]) and body["completed_at"] is None
    assert body["cost"] == {
        "amount": 1,
        "currency": "credit",
        "breakdown": {"base": 1, "enhance": 0},
    }
    assert body["creation_request_id"] == response.headers["aurous-request-id"]
    assert body["aurous_version"] == "2026-05-15"
    assert body["image_count"] == 1 and body["inference_type"] == "t2i"


def test_create_video_and_poll_it_through_images(sim: Sim) -> None:
    response = sim.client.post(
        "/v1/videos", json={"prompt": "waves", "resolution": "720p", "duration": 4, "ratio": "9:16"}
    )
    assert response.status_code == 201
    body = response.json()
    assert re.fullmatch("vid_" + ULID, body["id"]) and body["media_type"] == "video"
    assert body["video_duration"] == 4 and body["video_resolution"] == "720p"
    assert body["video_ratio"] == "9:16"
    assert body["cost"]["amount"] == 0.5 * 1.5 * 4  # base_per_second x factor x duration
    done = sim.wait_terminal(body["id"], timeout=15)
    assert done["status"] == "succeeded"
    assert done["output_video_url"].startswith(f"{sim.url}/v1/videos/{body['id']}/output?token=")
    assert done["duration_ms"] > 0 and re.fullmatch(ISO, done["completed_at"])


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({}, "prompt", "missing_field"),
        ({"prompt": "   "}, "prompt", "invalid_format"),
        ({"prompt": "x" * 4001}, "prompt", "value_out_of_range"),
        ({"prompt": "x", "steps": 0}, "steps", "value_out_of_range"),
        ({"prompt": "x", "steps": 101}, "steps", "value_out_of_range"),
        ({"prompt": "x", "guidance_scale": 31}, "guidance_scale", "value_out_of_range"),
        ({"prompt": "x", "width": 1024}, "height", "missing_field"),
        ({"prompt": "x", "width": 512, "height": 1024}, "width", "value_out_of_range"),
        (
            {"prompt": "x", "size": "2k_1_1", "width": 1024, "height": 1024},
            "size",
            "parameter_invalid_combination",
        ),
        (
            {"prompt": "x", "character_id": "char_1", "reference_image_urls": ["https://a/b.png"]},
            "character_id",
            "mutually_exclusive_input",
        ),
        ({"prompt": "x", "lora_id": "seedance-1-pro"}, "lora_id", "unsupported_lora_for_mode"),
    ],
)
def test_image_validation_errors_name_the_param(
    sim: Sim, body: dict, param: str, code: str
) -> None:
    response = sim.client.post("/v1/images", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error == {**error, "type": "invalid_request", "code": code, "param": param}
    assert error["request_id"] == response.headers["aurous-request-id"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"duration": 1}, "duration"),
        ({"duration": 13}, "duration"),
        ({"resolution": "4k"}, "resolution"),
        ({"ratio": "2:1"}, "ratio"),
        ({"last_frame_url": "https://a/b.png"}, "first_frame_url"),
        ({"video_lora_id": "cinematic"}, "video_lora_id"),
    ],
)
def test_video_validation_errors(sim: Sim, body: dict, param: str) -> None:
    response = sim.client.post("/v1/videos", json={"prompt": "x", **body})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_size_presets_and_snapping(sim: Sim) -> None:
    wide = sim.client.post("/v1/images", json={"prompt": "x", "size": "4k_16_9"}).json()
    assert (wide["width"], wide["height"], wide["size_preset"]) == (4096, 2304, "4k_16_9")
    custom = sim.client.post(
        "/v1/images", json={"prompt": "x", "width": 1030, "height": 2010}
    ).json()
    assert custom["width"] % 32 == 0 and custom["height"] % 32 == 0
    assert (custom["width"], custom["height"]) == (1024, 2016)


def test_estimates_hold_nothing(sim: Sim) -> None:
    before = sim.client.get("/v1/balance").json()
    image = sim.client.post("/v1/images/estimate", json={"prompt": "x", "enhance_prompt": True})
    assert image.status_code == 200
    assert image.json() == {
        "object": "estimate",
        "currency": "credit",
        "estimated_cost": {"amount": 2, "breakdown": {"base": 1, "enhance": 1}},
    }
    video = sim.client.post(
        "/v1/videos/estimate",
        json={"video_lora_id": "seedance-1-pro", "resolution": "1080p", "duration": 6},
    )
    assert video.status_code == 200
    assert video.json()["estimated_cost"]["amount"] == 0.5 * 2.5 * 6
    assert (
        sim.client.post("/v1/videos/estimate", json={"duration": 6}).json()["error"]["param"]
        == "video_lora_id"
    )
    assert sim.client.post("/v1/images/estimate", json={}).status_code == 400
    assert sim.client.get("/v1/balance").json() == before
    assert sim.client.get("/v1/images").json()["data"] == []
    assert "x-ratelimit-limit" in image.headers and image.headers["x-ratelimit-limit"] == "240"


def test_lifecycle_reaches_succeeded_with_outputs(sim: Sim) -> None:
    job = sim.client.post("/v1/images", json={"prompt": "x", "count": 3}).json()
    seen = {job["status"]}

    def done() -> dict | None:
        body = sim.client.get(f"/v1/images/{job['id']}").json()
        seen.add(body["status"])
        return body if body["status"] == "succeeded" else None

    final = wait_for(done, timeout=10, interval=0.005)
    assert seen <= FIVE_STATUSES and "processing" in seen
    assert len(final["output_urls"]) == 3
    for n, url in enumerate(final["output_urls"]):
        assert url.startswith(f"{sim.url}/v1/images/{job['id']}/output/{n}?token=")
    assert final["output_video_url"] is None and final["error_message"] is None


def test_unknown_generation_is_404_envelope(sim: Sim) -> None:
    response = sim.client.get("/v1/images/img_01HXMQ7Z3K8Y2ABCDEFGHJKM")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "not_found" and error["code"] == "resource_not_found"


def test_list_is_newest_first_with_cursors(sim: Sim) -> None:
    ids = [sim.client.post("/v1/images", json={"prompt": f"n{i}"}).json()["id"] for i in range(5)]
    ids.append(sim.client.post("/v1/videos", json={"prompt": "v"}).json()["id"])
    newest_first = ids[::-1]
    everything = sim.client.get("/v1/images").json()
    assert everything["object"] == "list" and everything["has_more"] is False
    assert everything["next_cursor"] is None
    assert [g["id"] for g in everything["data"]] == newest_first
    page1 = sim.client.get("/v1/images", params={"limit": 2}).json()
    assert [g["id"] for g in page1["data"]] == newest_first[:2]
    assert page1["has_more"] is True and page1["next_cursor"] == newest_first[1]
    page2 = sim.client.get(
        "/v1/images", params={"limit": 2, "starting_after": page1["next_cursor"]}
    ).json()
    assert [g["id"] for g in page2["data"]] == newest_first[2:4]
    last = sim.client.get("/v1/images", params={"limit": 2, "starting_after": newest_first[3]})
    assert [g["id"] for g in last.json()["data"]] == newest_first[4:]
    assert last.json()["has_more"] is False and last.json()["next_cursor"] is None
    newer = sim.client.get("/v1/images", params={"ending_before": newest_first[3]}).json()
    assert [g["id"] for g in newer["data"]] == newest_first[:3]
    closest = sim.client.get(
        "/v1/images", params={"ending_before": newest_first[3], "limit": 1}
    ).json()
    assert [g["id"] for g in closest["data"]] == [newest_first[2]]
    assert closest["has_more"] is True


@pytest.mark.parametrize("limit", ["0", "101", "abc"])
def test_list_limit_bounds(sim: Sim, limit: str) -> None:
    response = sim.client.get("/v1/images", params={"limit": limit})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "limit"


def test_list_limit_accepts_edges(sim: Sim) -> None:
    for limit in ("1", "100"):
        assert sim.client.get("/v1/images", params={"limit": limit}).status_code == 200


def test_cancel_semantics(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(time_scale=1)
    job = sim.client.post("/v1/images", json={"prompt": "x"}).json()
    cancelled = sim.client.post(f"/v1/images/{job['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["id"] == job["id"]
    again = sim.client.post(f"/v1/images/{job['id']}/cancel")
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    video = sim.client.post("/v1/videos", json={"prompt": "v"}).json()
    assert sim.client.post(f"/v1/images/{video['id']}/cancel").json()["status"] == "cancelled"
    finished = sim.client.post("/v1/images", json={"prompt": "y"}).json()
    sim.advance(60)
    refused = sim.client.post(f"/v1/images/{finished['id']}/cancel")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "generation_not_cancellable"
    assert refused.json()["error"]["type"] == "invalid_request"
    missing = sim.client.post("/v1/images/img_nope/cancel")
    assert missing.status_code == 404
    assert cancelled.headers["x-ratelimit-limit"] == "120"  # images_post bucket


def test_failed_and_moderated_in_five_value_set(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(moderation_rate=1.0)
    job = sim.client.post("/v1/images", json={"prompt": "x"}).json()
    done = sim.wait_terminal(job["id"])
    assert done["status"] == "failed" and done["error_message"]
    assert done["output_urls"] == [] and done["cost"]["amount"] == 0


def test_extended_statuses(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(extended_statuses=True, moderation_rate=0.5, expired_rate=0.5, time_scale=1)
    jobs = [sim.client.post("/v1/images", json={"prompt": f"x{i}"}).json() for i in range(8)]
    sim.advance(1.0)
    statuses = {sim.client.get(f"/v1/images/{j['id']}").json()["status"] for j in jobs}
    assert "queued" in statuses
    sim.advance(60)
    finals = {sim.client.get(f"/v1/images/{j['id']}").json()["status"] for j in jobs}
    assert finals == {"moderation_rejected", "expired"}


def test_loras_bare_array_with_video_slug(sim: Sim) -> None:
    response = sim.client.get("/v1/loras")
    assert response.status_code == 200
    loras = response.json()
    assert isinstance(loras, list)
    assert "seedance-1-pro" in {lora["slug"] for lora in loras}
    for lora in loras:
        assert lora["id"].startswith("lora_")
        assert {"name", "is_public", "created_at", "slug", "description"} <= set(lora)
    image_lora = next(lora for lora in loras if lora["slug"] != "seedance-1-pro")
    created = sim.client.post("/v1/images", json={"prompt": "x", "lora_id": image_lora["slug"]})
    assert created.json()["loras"] == [{"id": image_lora["id"], "name": image_lora["name"]}]
