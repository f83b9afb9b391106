from __future__ import annotations

from datetime import timedelta

import pytest

from receiver.archive.archiver import retry_delay
from receiver.errors import ReceiverError
from receiver.jobs.lifecycle import poll_interval
from receiver.web.routes.outputs import byte_range


def test_poll_interval_doubles_to_a_cap() -> None:
    assert poll_interval("image", 0) == timedelta(seconds=30)
    assert poll_interval("image", 1) == timedelta(seconds=60)
    assert poll_interval("video", 0) == timedelta(minutes=3)
    assert poll_interval("image", 40) == timedelta(minutes=30)


def test_archive_retry_delay_grows_with_jitter_and_caps() -> None:
    assert 0.5 <= retry_delay(1) <= 1.5
    assert 1 <= retry_delay(2) <= 3
    assert retry_delay(30) <= 900 * 1.5
    assert retry_delay(30, past_deadline=True) <= 3600 * 1.5


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 10)),
        ("bytes=10-", (10, 100)),
        ("bytes=-10", (90, 100)),
        ("bytes=90-200", (90, 100)),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
    ],
)
def test_byte_ranges(header: str | None, expected: tuple[int, int] | None) -> None:
    assert byte_range(header, 100) == expected


def test_unsatisfiable_range_is_416() -> None:
    with pytest.raises(ReceiverError) as caught:
        byte_range("bytes=100-", 100)
    assert caught.value.status == 416
