"""Signatures as the README's "The webhook endpoint" describes them (HMAC-SHA256 of `t` + `.` +
the raw body, keyed with the whole `whsec_…` secret), checked against a plain hmac written here."""

from __future__ import annotations

import hashlib
import hmac

from simulator.webhooks import EndpointStore, secret_preview, sign, signature_header


def plain(secret: str, t: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def test_sign_matches_plain_hmac() -> None:
    body = b'{"id":"evt_1","type":"image.completed"}'
    assert sign("whsec_abc", 1714752900, body) == plain("whsec_abc", 1714752900, body)
    assert sign("whsec_abc", 1714752900, body) == sign("whsec_abc", 1714752900, body).lower()


def test_header_lists_one_v1_per_secret() -> None:
    header = signature_header(1714752900, ["whsec_new", "whsec_old"], b"{}")
    assert header == (
        f"t=1714752900,v1={plain('whsec_new', 1714752900, b'{}')},"
        f"v1={plain('whsec_old', 1714752900, b'{}')}"
    )


def test_preview() -> None:
    assert secret_preview("whsec_8jKpQ4nXabc1234abcdef567890") == "whsec_8jK...7890"


def _endpoint():  # type: ignore[no-untyped-def]
    return EndpointStore().create("https://e.com/h", ["*"], 0.0, secret="whsec_first")


def test_rotation_with_grace_dual_and_single() -> None:
    endpoint = _endpoint()
    new = endpoint.rotate(100.0, grace_s=50.0)
    assert endpoint.signing_secrets(120.0, dual_sign=True) == [new, "whsec_first"]
    assert endpoint.signing_secrets(120.0, dual_sign=False) == ["whsec_first"]
    assert endpoint.signing_secrets(151.0, dual_sign=True) == [new]
    assert endpoint.signing_secrets(151.0, dual_sign=False) == [new]


def test_rotation_without_grace_is_immediate() -> None:
    endpoint = _endpoint()
    new = endpoint.rotate(100.0, grace_s=0.0)
    assert endpoint.signing_secrets(100.0, dual_sign=True) == [new]
    assert len(endpoint.secrets) == 1


def test_wildcard_expands_at_create_time() -> None:
    assert len(_endpoint().events) == 8


def test_auto_disable_needs_twenty_failures_and_a_silent_day() -> None:
    endpoint = _endpoint()
    endpoint.record_success(0.0)
    assert not any(endpoint.record_failure(1000.0 + i) for i in range(30))
    assert endpoint.is_active  # succeeded less than 24 h ago
    assert endpoint.record_failure(86_401.0)
    assert not endpoint.is_active and endpoint.consecutive_failures == 31
