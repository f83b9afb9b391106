"""Ids the receiver hands out (request ids, event ids): opaque, fixed length, and sorted by
when they were made, so a listing by id is a listing by time."""

from __future__ import annotations

import time

from receiver.ids import new_id

CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def test_ids_are_26_crockford_digits_after_their_prefix() -> None:
    made = {new_id("evt_") for _ in range(1000)}
    assert len(made) == 1000
    for one in made:
        assert one.startswith("evt_") and len(one) == 30
        assert set(one[4:]) <= CROCKFORD


def test_later_ids_sort_after_earlier_ones() -> None:
    earlier = new_id("rcv_")
    time.sleep(0.002)
    assert new_id("rcv_") > earlier
    millis = int(time.time() * 1000)
    digits = new_id("")[:10]  # the first 10 digits carry the milliseconds
    decoded = 0
    for digit in digits:
        decoded = decoded * 32 + "0123456789ABCDEFGHJKMNPQRSTVWXYZ".index(digit)
    assert abs(decoded - millis) < 1000
