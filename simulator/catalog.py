"""The LoRA catalogue the simulated team can see (GET /v1/loras)."""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["LORAS", "find_lora"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CREATED = "2026-04-01T00:00:00Z"


def _stable_id(slug: str) -> str:
    value = int.from_bytes(hashlib.sha256(slug.encode()).digest()[:17], "big") >> 6
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "lora_01" + "".join(chars)[2:]


def _image_lora(slug: str, name: str, description: str) -> dict[str, Any]:
    return {
        "id": _stable_id(slug),
        "name": name,
        "is_public": True,
        "created_at": _CREATED,
        "slug": slug,
        "description": description,
        "preview_image_url": f"https://cdn.aurous-labs.com/previews/{slug}.png",
        "default_denoise_strength": 0.8,
        "default_guidance_scale": 7.5,
        "default_steps": 30,
        "has_template": True,
        "media_type": "image",
    }


def _video_lora() -> dict[str, Any]:
    return {
        "id": _stable_id("seedance-1-pro"),
        "name": "Seedance 1 Pro",
        "is_public": True,
        "created_at": _CREATED,
        "slug": "seedance-1-pro",
        "description": "BytePlus Seedance text/image-to-video",
        "preview_image_url": None,
        "preview_video_url": "https://cdn.aurous-labs.com/previews/seedance-1-pro.mp4",
        "default_denoise_strength": None,
        "default_guidance_scale": None,
        "default_steps": None,
        "has_template": False,
        "default_resolution": "1080p",
        "default_ratio": "16:9",
        "default_duration": 5,
        "media_type": "video",
    }


LORAS: list[dict[str, Any]] = [
    _image_lora("cinematic", "Cinematic", "Film-still lighting and grading"),
    _image_lora("anime", "Anime", "Cel-shaded anime style"),
    _image_lora("watercolor", "Watercolor", "Soft watercolor washes"),
    _video_lora(),
]


def find_lora(reference: str) -> dict[str, Any] | None:
    """By canonical id or by slug (slugs are mutable upstream, ids are not)."""
    for lora in LORAS:
        if reference in (lora["id"], lora["slug"]):
            return lora
    return None
