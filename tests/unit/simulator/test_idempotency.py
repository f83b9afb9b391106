from __future__ import annotations

import pytest

from simulator.errors import ApiError
from simulator.idempotency import WINDOW_S, IdempotencyStore, fingerprint


def test_canonical_json_fingerprint() -> None:
    assert fingerprint(b'{"a":1,"b":2}') == fingerprint(b'{ "b": 2, "a": 1 }')
    assert fingerprint(b'{"a":1}') != fingerprint(b'{"a":2}')
    assert fingerprint(b"not json") == fingerprint(b"not json")
    assert fingerprint(b"not json") != fingerprint(b"not json!")


def test_replay_after_finish() -> None:
    store = IdempotencyStore()
    assert store.begin("k", "/v1/images", "fp", 0.0) is None
    store.finish("k", 201, b"{}")
    replay = store.begin("k", "/v1/images", "fp", 10.0)
    assert replay is not None and (replay.status, replay.body) == (201, b"{}")


@pytest.mark.parametrize(("route", "body"), [("/v1/images", "other"), ("/v1/videos", "fp")])
def test_conflicts(route: str, body: str) -> None:
    store = IdempotencyStore()
    store.begin("k", "/v1/images", "fp", 0.0)
    store.finish("k", 201, b"{}")
    with pytest.raises(ApiError) as caught:
        store.begin("k", route, body, 1.0)
    assert (caught.value.status, caught.value.code) == (409, "idempotency_key_in_use")


def test_in_flight_conflict_then_abandon() -> None:
    store = IdempotencyStore()
    store.begin("k", "/v1/images", "fp", 0.0)
    with pytest.raises(ApiError):
        store.begin("k", "/v1/images", "fp", 0.1)
    store.abandon("k")  # the original failed: the key is free to be evaluated again
    assert store.begin("k", "/v1/images", "fp", 0.2) is None


def test_window_and_purge() -> None:
    store = IdempotencyStore()
    store.begin("k", "/v1/images", "fp", 0.0)
    store.finish("k", 201, b"{}")
    assert store.begin("k", "/v1/images", "other", WINDOW_S) is None  # expired: a new key
    store.finish("k", 201, b"{}")
    assert store.purge(2 * WINDOW_S) == 1 and len(store) == 0


def test_key_length() -> None:
    IdempotencyStore.validate_key("x" * 256)
    for bad in ("", "x" * 257):
        with pytest.raises(ApiError):
            IdempotencyStore.validate_key(bad)
