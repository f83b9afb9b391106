"""Both documented envelope shapes decode; anything else is quarantined, never guessed at."""

from __future__ import annotations

import json

import pytest

from receiver.generation import parse_timestamp, to_micros
from receiver.webhooks.envelope import EnvelopeError, decode_envelope
from tests.support.aurous import callback_event, endpoint_event, generation


def test_endpoint_envelope_uses_the_event_id() -> None:
    envelope = decode_envelope(endpoint_event(generation(), event_id="evt_A"))
    assert envelope.event_key == "evt_A"
    assert envelope.event_type == "image.completed"
    assert envelope.generation is not None
    assert envelope.generation.status == "succeeded"


def test_callback_envelope_without_id_is_keyed_by_its_body() -> None:
    body = callback_event(generation())
    first, again = decode_envelope(body), decode_envelope(body)
    assert first.event_key == again.event_key
    assert first.event_key.startswith("sha256:")
    assert first.event_type == "image.completed"


def test_video_outputs_prefer_the_video_url() -> None:
    data = generation("vid_01ABC", output_video_url="https://x/v.mp4", output_urls=["https://x/a"])
    envelope = decode_envelope(endpoint_event(data))
    assert envelope.generation is not None
    assert envelope.generation.output_sources() == ["https://x/v.mp4"]
    del data["output_video_url"]
    envelope = decode_envelope(endpoint_event(data))
    assert envelope.generation is not None
    assert envelope.generation.output_sources() == ["https://x/a"]


def test_unknown_event_types_decode_without_a_generation() -> None:
    body = json.dumps({"id": "evt_B", "type": "usage.balance_low", "data": {"x": 1}}).encode()
    envelope = decode_envelope(body)
    assert envelope.generation is None
    assert envelope.event_type == "usage.balance_low"


def test_numbers_as_strings_and_extra_fields_are_tolerated() -> None:
    data = generation(cost={"amount": "2.5", "currency": "credit"}, brand_new_field=[1, 2])
    envelope = decode_envelope(endpoint_event(data))
    assert envelope.generation is not None and envelope.generation.cost is not None
    assert to_micros(envelope.generation.cost.amount) == 2_500_000


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'"x"',
        b"\xff\xfe",
        b'{"data": {}}',
        b'{"type": "image.completed"}',
        b'{"type": "image.completed", "data": null}',
        b'{"type": "image.completed", "data": {"id": 5, "status": "succeeded"}}',
        b'{"type": "image.completed", "data": {"id": "", "status": "succeeded"}}',
        b'{"type": "image.completed", "data": {"id": "img_1"}}',
    ],
)
def test_undecodable_bodies_raise(body: bytes) -> None:
    with pytest.raises(EnvelopeError):
        decode_envelope(body)


def test_timestamps_in_several_forms() -> None:
    assert parse_timestamp("2026-05-04T10:00:14Z").isoformat() == "2026-05-04T10:00:14+00:00"
    assert parse_timestamp("2026-05-04T10:00:14.491Z") is not None
    assert parse_timestamp(1777888814).year == 2026
    assert parse_timestamp(1777888814000).year == 2026
    assert parse_timestamp("yesterday") is None
    assert parse_timestamp(None) is None


def test_micro_credits_are_exact() -> None:
    assert to_micros(0.0291) == 29_100
    assert to_micros(1023.49) == 1_023_490_000
    assert to_micros(None) is None
