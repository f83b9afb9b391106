"""Fuzzing the untrusted edges: whatever arrives, `verify` either matches or raises its one
typed rejection, and `decode_envelope` either decodes or raises EnvelopeError. Nothing else."""

from __future__ import annotations

import json
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receiver.webhooks.envelope import EnvelopeError, decode_envelope
from receiver.webhooks.signing import Keyring, KeyringEntry, SignatureRejected, sign, verify

SECRET = "whsec_fuzz_8jKpQ4nXabc1234abcdef5"
RING = Keyring((KeyringEntry(1, SECRET.encode()),))
NOW = 1_780_000_000
FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))

header_parts = st.one_of(
    st.builds(lambda t: f"t={t}", st.one_of(st.integers(), st.text(max_size=12))),
    st.builds(lambda v: f"v1={v}", st.text(alphabet=string.hexdigits + "zü", max_size=70)),
    st.builds(lambda k, v: f"{k}={v}", st.text(max_size=5), st.text(max_size=20)),
    st.text(max_size=30),
)
headers = st.one_of(
    st.none(),
    st.text(max_size=300),
    st.lists(header_parts, max_size=8).map(",".join),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.integers(min_value=10**30, max_value=10**40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=30,
)
generation = st.fixed_dictionaries(
    {
        "id": st.one_of(st.text(max_size=30), st.integers(), st.just("img_01ABC")),
        "status": st.one_of(
            st.sampled_from(["succeeded", "failed", "processing", "weird"]),
            st.text(max_size=10),
            st.integers(),
        ),
    },
    optional={
        "output_urls": json_values,
        "output_video_url": json_values,
        "cost": json_values,
        "completed_at": json_values,
        "created_at": json_values,
        "media_type": json_values,
        "loras": json_values,
        "error_message": json_values,
    },
)
envelopes = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["image.completed", "video.failed", "x"])},
        optional={"id": json_values, "data": generation | json_values, "synthetic": json_values},
    ),
    st.fixed_dictionaries({"event": st.text(max_size=20)}, optional={"data": generation}),
    json_values,
).map(lambda value: json.dumps(value).encode())
bodies = st.one_of(
    st.binary(max_size=600),
    envelopes,
    st.integers(1, 5000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(1, 5000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
)


@FUZZ
@given(body=bodies, header=headers, now=st.integers(0, 2**40))
def test_verify_only_matches_or_rejects(body: bytes, header: str | None, now: int) -> None:
    status = 200
    try:
        verify(body, header, RING, now=now, tolerance_s=300)
    except SignatureRejected as rejected:
        status = rejected.reason.http_status
    assert status in (200, 400, 401)


@FUZZ
@given(body=bodies, t=st.integers(0, 2**33))
def test_a_correct_signature_always_verifies_within_tolerance(body: bytes, t: int) -> None:
    assert verify(body, sign(body, [SECRET], t), RING, now=t, tolerance_s=300).secret_id == 1


@FUZZ
@given(body=bodies)
def test_decode_only_decodes_or_quarantines(body: bytes) -> None:
    try:
        envelope = decode_envelope(body)
    except EnvelopeError:
        return
    assert envelope.event_type
    assert len(envelope.event_key) <= 200
    if envelope.generation is not None:
        assert envelope.generation.id
        envelope.generation.output_sources()
        envelope.generation.model()
