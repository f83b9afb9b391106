"""Signature verification as a sender following the Aurous docs would exercise it."""

from __future__ import annotations

import pytest

from receiver.webhooks.signing import (
    Keyring,
    KeyringEntry,
    RejectReason,
    SignatureRejected,
    sign,
    verify,
)
from tests.support.aurous import signature

NOW = 1_780_000_000
OLD, NEW = "whsec_old_secret_value_1234", "whsec_new_secret_value_5678"
BODY = b'{"id":"evt_1","type":"image.completed","data":{}}'


def check(
    header: str | None, keyring: Keyring | None = None, *, body: bytes = BODY, now: float = NOW
) -> int | None:
    keyring = keyring or Keyring((KeyringEntry(1, OLD.encode()),))
    return verify(body, header, keyring, now=now, tolerance_s=300).secret_id


def reason(header: str | None, **kwargs: object) -> RejectReason:
    with pytest.raises(SignatureRejected) as caught:
        check(header, **kwargs)  # type: ignore[arg-type]
    return caught.value.reason


def test_a_signature_made_as_documented_verifies() -> None:
    assert check(signature(BODY, OLD, t=NOW)) == 1


def test_the_helper_signs_the_same_way_as_the_docs() -> None:
    assert sign(BODY, [OLD, NEW], NOW) == signature(BODY, OLD, NEW, t=NOW)


def test_any_v1_matching_any_secret_passes_and_names_the_secret() -> None:
    ring = Keyring((KeyringEntry(1, OLD.encode()), KeyringEntry(2, NEW.encode())))
    assert check(signature(BODY, NEW, t=NOW), ring) == 2
    assert check(signature(BODY, "whsec_unrelated_1234", NEW, t=NOW), ring) == 2
    assert check(signature(BODY, OLD, NEW, t=NOW), ring) in (1, 2)


def test_unknown_schemes_and_spacing_are_tolerated() -> None:
    header = signature(BODY, OLD, t=NOW).replace(",", " , ") + ",v0=deadbeef,x=1"
    assert check(header) == 1


def test_uppercase_hex_is_accepted() -> None:
    t, v1 = signature(BODY, OLD, t=NOW).split(",")
    assert check(f"{t},{v1.upper().replace('V1=', 'v1=')}") == 1


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_header_is_401(header: str | None) -> None:
    assert reason(header) is RejectReason.MISSING_SIGNATURE
    assert RejectReason.MISSING_SIGNATURE.http_status == 401


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "t=abc,v1=00",
        "v1=00",
        f"t={NOW}",
        f"t={NOW},v0=00",
        f"t={NOW},t={NOW},v1=00",
        f"t=-{NOW},v1=00",
        "t=١٢٣,v1=00",
    ],
)
def test_malformed_headers_are_400(header: str) -> None:
    assert reason(header) is RejectReason.MALFORMED_SIGNATURE
    assert RejectReason.MALFORMED_SIGNATURE.http_status == 400


def test_wrong_secret_is_401() -> None:
    assert reason(signature(BODY, "whsec_wrong_secret_0000", t=NOW)) is (
        RejectReason.NO_MATCHING_SIGNATURE
    )


def test_one_changed_body_byte_is_401() -> None:
    header = signature(BODY, OLD, t=NOW)
    tampered = BODY.replace(b"image", b"imagf")
    assert reason(header, body=tampered) is RejectReason.NO_MATCHING_SIGNATURE


def test_changing_t_breaks_the_signature() -> None:
    header = signature(BODY, OLD, t=NOW).replace(f"t={NOW}", f"t={NOW + 1}")
    assert reason(header) is RejectReason.NO_MATCHING_SIGNATURE


def test_tolerance_applies_in_both_directions() -> None:
    assert check(signature(BODY, OLD, t=NOW - 300)) == 1
    assert check(signature(BODY, OLD, t=NOW + 300)) == 1
    assert reason(signature(BODY, OLD, t=NOW - 301)) is RejectReason.TIMESTAMP_TOO_OLD
    assert reason(signature(BODY, OLD, t=NOW + 301)) is RejectReason.TIMESTAMP_IN_FUTURE


def test_an_expired_secret_no_longer_verifies() -> None:
    ring = Keyring(
        (KeyringEntry(1, OLD.encode(), expires_at=NOW + 10), KeyringEntry(2, NEW.encode()))
    )
    assert check(signature(BODY, OLD, t=NOW), ring, now=NOW) == 1
    assert reason(signature(BODY, OLD, t=NOW + 10), keyring=ring, now=NOW + 10) is (
        RejectReason.NO_MATCHING_SIGNATURE
    )
    assert check(signature(BODY, NEW, t=NOW + 10), ring, now=NOW + 10) == 2


def test_an_empty_keyring_says_so() -> None:
    assert reason(signature(BODY, OLD, t=NOW), keyring=Keyring(())) is (
        RejectReason.NO_ACTIVE_SECRET
    )


def test_non_ascii_signature_values_are_just_a_mismatch() -> None:
    assert reason(f"t={NOW},v1=ü") is RejectReason.NO_MATCHING_SIGNATURE
