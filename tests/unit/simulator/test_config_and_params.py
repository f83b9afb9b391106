from __future__ import annotations

import pytest

from simulator.config import SimulatorConfig, apply_overrides
from simulator.control import normalise_knobs
from simulator.errors import ApiError
from simulator.params import image_cost, parse_image, parse_video, video_cost


def test_overrides_are_type_checked() -> None:
    config = SimulatorConfig()
    changed = apply_overrides(
        config, {"drop_rate": 1, "output_size": 2048.0, "extended_statuses": True}
    )
    assert (changed.drop_rate, changed.output_size, changed.extended_statuses) == (1.0, 2048, True)
    for bad in (
        {"drop_rate": 1.5},
        {"output_size": "big"},
        {"dual_sign": 1},
        {"api_key": "x"},
        {"no_such_knob": 1},
        {"failed_rate": 0.6, "moderation_rate": 0.6},
    ):
        with pytest.raises(ValueError):  # noqa: PT011
            apply_overrides(config, bad)


def test_knob_aliases() -> None:
    assert normalise_knobs({"drop-rate": 0.1, "reorder": True, "output_ttl": 5}) == {
        "drop_rate": 0.1,
        "reorder_rate": 0.5,
        "output_ttl_s": 5,
    }


def test_image_cost_formula() -> None:
    assert image_cost(parse_image({"prompt": "x"}))[0] == 1
    assert image_cost(parse_image({"prompt": "x", "count": 3, "enhance_prompt": True})) == (
        6,
        {"base": 3, "enhance": 3},
    )


@pytest.mark.parametrize(("resolution", "factor"), [("480p", 1), ("720p", 1.5), ("1080p", 2.5)])
def test_video_cost_formula(resolution: str, factor: float) -> None:
    params = parse_video({"resolution": resolution, "duration": 8})
    assert video_cost(params)[0] == 0.5 * factor * 8


def test_video_defaults_come_from_the_lora() -> None:
    params = parse_video({"prompt": "x"})
    assert (params["resolution"], params["ratio"], params["duration"]) == ("1080p", "16:9", 5)
    assert params["lora"]["slug"] == "seedance-1-pro"
    with pytest.raises(ApiError) as caught:
        parse_video({"prompt": "x"}, estimate=True)
    assert caught.value.param == "video_lora_id"


def test_bool_is_not_an_integer() -> None:
    with pytest.raises(ApiError) as caught:
        parse_image({"prompt": "x", "steps": True})
    assert caught.value.code == "invalid_format" and caught.value.param == "steps"
