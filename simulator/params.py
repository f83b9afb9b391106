"""Create/estimate bodies for images and videos: validation (§2.1, §3) and cost (§8.4)."""

from __future__ import annotations

from typing import Any

from simulator.catalog import find_lora
from simulator.errors import ApiError, validation_error
from simulator.fields import (
    read_bool,
    read_callback_url,
    read_int,
    read_number,
    read_string,
    require_object,
)

__all__ = ["image_cost", "parse_image", "parse_video", "video_cost"]

_TIERS = {"2k": 2048, "4k": 4096}
_RATIOS = {"1_1", "3_2", "2_3", "4_3", "3_4", "16_9", "9_16", "21_9"}
_LEGACY_SIZES = {
    "square": (1024, 1024),
    "hd_square": (2048, 2048),
    "landscape": (1536, 1024),
    "portrait": (1024, 1536),
}
RESOLUTION_FACTORS = {"480p": 1.0, "720p": 1.5, "1080p": 2.5}
_VIDEO_RATIOS = {"16:9", "4:3", "1:1", "3:4", "9:16", "21:9"}
VIDEO_BASE_PER_SECOND = 0.5
MAX_IMAGE_COUNT = 4


def _snap(value: float) -> int:
    return max(32, round(value / 32) * 32)


def _preset_dimensions(size: str) -> tuple[int, int]:
    if size in _LEGACY_SIZES:
        return _LEGACY_SIZES[size]
    tier, _, ratio = size.partition("_")
    if tier not in _TIERS or ratio not in _RATIOS:
        raise validation_error("invalid_format", "size", f"Unknown size preset '{size}'.")
    across, down = (int(part) for part in ratio.split("_"))
    long_side = _TIERS[tier]
    if across >= down:
        return long_side, _snap(long_side * down / across)
    return _snap(long_side * across / down), long_side


def _dimensions(body: dict[str, Any]) -> tuple[str | None, int, int]:
    size = read_string(body, "size", max_len=32)
    has_width, has_height = body.get("width") is not None, body.get("height") is not None
    if size is not None and (has_width or has_height):
        raise validation_error(
            "parameter_invalid_combination", "size", "Give either 'size' or 'width'/'height'."
        )
    if has_width != has_height:
        missing = "height" if has_width else "width"
        raise validation_error("missing_field", missing, "'width' and 'height' go together.")
    if has_width:
        width = read_int(body, "width", 1024, 4096, None)
        height = read_int(body, "height", 1024, 4096, None)
        assert width is not None and height is not None
        return None, _snap(width), _snap(height)
    preset = size or "2k_1_1"
    width, height = _preset_dimensions(preset)
    return preset, width, height


def _image_lora(body: dict[str, Any]) -> dict[str, Any] | None:
    reference = read_string(body, "lora_id", max_len=256)
    if reference is None:
        return None
    lora = find_lora(reference)
    if lora is None:
        raise ApiError(404, "resource_not_found", "No such LoRA.", param="lora_id")
    if lora["media_type"] != "image":
        raise validation_error(
            "unsupported_lora_for_mode", "lora_id", "This LoRA only works for videos."
        )
    return lora


def _file_or_https(value: Any, param: str) -> str:
    if not isinstance(value, str) or len(value) > 2048:
        raise validation_error("invalid_format", param, f"'{param}' must be a string URL or id.")
    if value.startswith(("file_", "https://")):
        return value
    raise validation_error("invalid_format", param, f"'{param}' must be a file_ id or https URL.")


def _references(body: dict[str, Any]) -> list[str]:
    value = body.get("reference_image_urls")
    if value is None:
        return []
    if not isinstance(value, list):
        raise validation_error(
            "invalid_format", "reference_image_urls", "'reference_image_urls' must be an array."
        )
    return [_file_or_https(item, "reference_image_urls") for item in value]


def parse_image(raw: Any) -> dict[str, Any]:
    body = require_object(raw)
    prompt = read_string(body, "prompt", required=True)
    size_preset, width, height = _dimensions(body)
    references = _references(body)
    character_id = read_string(body, "character_id", max_len=256)
    if character_id is not None and references:
        raise validation_error(
            "mutually_exclusive_input",
            "character_id",
            "'character_id' and 'reference_image_urls' cannot be combined.",
        )
    if character_id is not None and not character_id.startswith("char_"):
        raise ApiError(404, "resource_not_found", "No such character.", param="character_id")
    lora = _image_lora(body)
    return {
        "prompt": prompt,
        "negative_prompt": read_string(body, "negative_prompt"),
        "lora": lora,
        "character_id": character_id,
        "size_preset": size_preset,
        "width": width,
        "height": height,
        "steps": read_int(body, "steps", 1, 100, 30),
        "guidance_scale": read_number(body, "guidance_scale", 0.1, 30, 7.5),
        "cfg_rescale": read_number(body, "cfg_rescale", 0, 1, 0),
        "denoise_strength": read_number(body, "denoise_strength", 0, 1, None),
        "seed": read_int(body, "seed", -1, 2**32 - 1, None),
        "count": read_int(body, "count", 1, MAX_IMAGE_COUNT, 1),
        "enhance_prompt": read_bool(body, "enhance_prompt", False),
        "reference_image_urls": references,
        "inference_type": "i2i" if (character_id or references) else "t2i",
        "webhook_url": read_callback_url(body, "webhook_url", required=False),
    }


def _video_lora(body: dict[str, Any], *, required: bool) -> dict[str, Any]:
    reference = read_string(body, "video_lora_id", required=required, max_len=256)
    lora = find_lora(reference or "seedance-1-pro")
    if lora is None:
        raise ApiError(404, "resource_not_found", "No such video LoRA.", param="video_lora_id")
    if lora["media_type"] != "video":
        raise validation_error(
            "unsupported_lora_for_mode", "video_lora_id", "This LoRA only works for images."
        )
    return lora


def _enum(body: dict[str, Any], name: str, allowed: set[str], default: str) -> str:
    value = body.get(name)
    if value is None:
        return default
    if value not in allowed:
        raise validation_error(
            "invalid_format", name, f"'{name}' must be one of {', '.join(sorted(allowed))}."
        )
    return str(value)


def parse_video(raw: Any, *, estimate: bool = False) -> dict[str, Any]:
    body = require_object(raw)
    lora = _video_lora(body, required=estimate)
    first = body.get("first_frame_url")
    last = body.get("last_frame_url")
    if last is not None and first is None:
        raise validation_error(
            "missing_field", "first_frame_url", "'last_frame_url' needs 'first_frame_url'."
        )
    return {
        "prompt": read_string(body, "prompt"),
        "lora": lora,
        "first_frame_url": None if first is None else _file_or_https(first, "first_frame_url"),
        "last_frame_url": None if last is None else _file_or_https(last, "last_frame_url"),
        "resolution": _enum(
            body, "resolution", set(RESOLUTION_FACTORS), lora["default_resolution"]
        ),
        "ratio": _enum(body, "ratio", _VIDEO_RATIOS, lora["default_ratio"]),
        "duration": read_int(body, "duration", 2, 12, lora["default_duration"]),
        "seed": read_int(body, "seed", -1, 2**32 - 1, None),
        "camera_fixed": read_bool(body, "camera_fixed", False),
        "watermark": read_bool(body, "watermark", False),
        "enhance_prompt": read_bool(body, "enhance_prompt", False),
        "inference_type": "i2v" if first is not None else "t2v",
        "webhook_url": read_callback_url(body, "webhook_url", required=False),
    }


def image_cost(params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    base = 1 * params["count"]
    enhance = base if params["enhance_prompt"] else 0
    return float(base + enhance), {"base": base, "enhance": enhance}


def video_cost(params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    factor = RESOLUTION_FACTORS[params["resolution"]]
    amount = VIDEO_BASE_PER_SECOND * factor * params["duration"]
    return amount, {
        "base_per_second": VIDEO_BASE_PER_SECOND,
        "resolution_factor": factor,
        "duration_s": params["duration"],
    }
