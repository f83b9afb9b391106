"""The status order: forward only, terminal is final, contradictions are kept not applied."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from receiver.jobs.lifecycle import NON_TERMINAL, TERMINAL, decide

KNOWN = [*NON_TERMINAL, *sorted(TERMINAL)]


def test_first_observation_always_applies() -> None:
    for status in [*KNOWN, "upscaling"]:
        assert decide(None, status).apply


def test_forward_moves_apply_and_backward_ones_do_not() -> None:
    assert decide("pending", "queued").apply
    assert decide("queued", "processing").apply
    assert decide("processing", "succeeded").apply
    assert not decide("processing", "pending").apply
    assert not decide("processing", "processing").apply


def test_terminal_never_changes() -> None:
    late = decide("succeeded", "processing")
    assert not late.apply and late.event_note is None
    contradiction = decide("succeeded", "failed")
    assert not contradiction.apply
    assert contradiction.event_note == "contradiction: failed after succeeded"


def test_a_repeated_success_refreshes_output_urls() -> None:
    assert decide("succeeded", "succeeded").refresh_outputs
    assert not decide("failed", "failed").refresh_outputs


def test_unknown_statuses_are_recorded_not_applied() -> None:
    decision = decide("processing", "upscaling")
    assert not decision.apply and decision.event_note is not None
    assert decide("upscaling", "processing").apply


@given(st.sampled_from(sorted(TERMINAL)), st.sampled_from([*KNOWN, "weird"]))
def test_nothing_moves_a_terminal_status(current: str, observed: str) -> None:
    assert not decide(current, observed).apply
