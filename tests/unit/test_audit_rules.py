"""The audit's rules without I/O: normalizing both ledger contracts and both sign conventions,
and when money and jobs disagree enough to be a finding (each anomaly exactly one finding)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace

from receiver.spend.ledger import Watermark, newer_than
from receiver.spend.rules import (
    JobMoney,
    credits_text,
    drift_finding,
    duplicate_findings,
    hold_overdue,
    money_findings,
    normalize_row,
    signed,
    unknown_job_finding,
)

TOL = 100
T0 = datetime(2026, 5, 4, 10, tzinfo=UTC)


def ledger_row(kind: str, amount: float, **extra: object) -> dict[str, object]:
    return {
        "id": extra.pop("id", f"uev_{kind}"),
        "object": "usage_event",
        "type": kind,
        "amount": amount,
        "currency": "credit",
        "created_at": "2026-05-04T10:00:00Z",
        "generation_id": "img_1",
        "hold_id": "hold_1",
        "description": f"{kind} for img_1",
        **extra,
    }


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("hold", -2_000_000),
        ("charge", -2_000_000),
        ("release", 2_000_000),
        ("refund", 2_000_000),
        ("topup", 2_000_000),
    ],
)
@pytest.mark.parametrize("sent", [2, -2, "2", "-2.0"])
def test_either_sign_convention_normalizes_by_type(kind: str, expected: int, sent: object) -> None:
    entry = normalize_row(ledger_row(kind, sent))  # type: ignore[arg-type]
    assert entry is not None
    assert entry.amount_micros == expected
    assert entry.contract == "ledger" and entry.generation_id == "img_1"


def test_an_adjustment_keeps_its_sign() -> None:
    assert normalize_row(ledger_row("adjustment", -1.25)).amount_micros == -1_250_000  # type: ignore[union-attr]
    assert normalize_row(ledger_row("adjustment", 0.5)).amount_micros == 500_000  # type: ignore[union-attr]


def test_micro_credits_are_exact() -> None:
    entry = normalize_row(ledger_row("charge", 0.0291))
    assert entry is not None and entry.amount_micros == -29_100
    assert signed("charge", 29_100) == signed("charge", -29_100) == -29_100


def test_a_per_request_usage_row_is_a_charge_for_its_own_id() -> None:
    row = {
        "id": "img_01HX",
        "type": "image",
        "model": "aurous-grow",
        "status": "completed",
        "created_at": "2026-05-20T08:14:23.491Z",
        "completed_at": "2026-05-20T08:14:25.137Z",
        "credits_charged": 0.0291,
        "request_id": "req_1",
    }
    entry = normalize_row(row)
    assert entry is not None
    assert (entry.uev_id, entry.type, entry.generation_id) == (
        "img_01HX",
        "charge",
        "img_01HX",
    )
    assert entry.amount_micros == -29_100 and entry.contract == "usage"
    # the time the stream is listed by, so that a walk's watermark compares like with like
    assert entry.created_at == datetime(2026, 5, 20, 8, 14, 23, 491000, tzinfo=UTC)
    assert entry.description == "image aurous-grow completed"


@pytest.mark.parametrize(
    "row",
    [
        {"type": "charge", "amount": 1},  # no id
        {"id": "uev_1", "type": "charge"},  # no amount
        {"id": "uev_1", "type": "charge", "amount": True},
        {"id": "uev_1", "type": "charge", "amount": "lots"},
        {"id": "uev_1", "type": "teleport", "something": 1},
        {"id": "", "credits_charged": 1},
    ],
)
def test_rows_that_are_neither_contract_are_skipped(row: dict[str, object]) -> None:
    assert normalize_row(row) is None


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_credits_text_round_trips(micros: int) -> None:
    assert round(float(credits_text(micros)) * 1_000_000) == micros


def money(**changes: object) -> JobMoney:
    base = JobMoney(
        "img_1",
        True,
        "succeeded",
        True,
        2_000_000,
        "charged",
        held=2_000_000,
        released=0,
        charges=2_000_000,
        refunded=0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def codes(m: JobMoney, overdue: bool = True) -> list[str]:
    return [d.code for d in money_findings(m, TOL, hold_overdue=overdue)]


def test_a_clean_success_and_a_clean_failure_are_not_findings() -> None:
    assert codes(money()) == []
    assert codes(money(status="failed", cost_micros=0, charges=0, released=2_000_000)) == []
    cancelled_by_refund = money(status="cancelled", cost_micros=0, charges=0, refunded=2_000_000)
    assert codes(cancelled_by_refund) == []


def test_bill_failed_is_one_finding_charge_not_succeeded() -> None:
    billed = money(status="failed", cost_micros=0, charges=2_000_000)
    [finding] = money_findings(billed, TOL, hold_overdue=True)
    assert finding.code == "charge_not_succeeded"
    assert (finding.job_id, finding.expected_micros, finding.actual_micros) == (
        "img_1",
        0,
        2_000_000,
    )
    assert "ended failed but was charged 2 credits" in finding.reason
    assert codes(replace(billed, refunded=2_000_000)) == []  # refunded: resolved


def test_overcharge_is_one_finding_charge_mismatch() -> None:
    [finding] = money_findings(money(charges=3_500_000), TOL, hold_overdue=True)
    assert finding.code == "charge_mismatch"
    assert (finding.expected_micros, finding.actual_micros) == (2_000_000, 3_500_000)
    assert "charged 3.5 credits but its cost is 2 credits (+1.5)" in finding.reason


def test_the_tolerance_is_a_hundred_micro_credits() -> None:
    assert codes(money(charges=2_000_100)) == []
    assert codes(money(charges=2_000_101)) == ["charge_mismatch"]
    assert codes(money(charges=1_999_899)) == ["charge_mismatch"]


def test_a_charge_not_yet_synced_or_a_running_job_is_not_a_mismatch() -> None:
    assert codes(money(charges=0, held=2_000_000), overdue=False) == []
    running = money(status="processing", terminal=False, cost_state="held", charges=0)
    assert codes(running) == []


def test_skip_release_is_one_finding_only_after_the_grace_period() -> None:
    leftover = money(status="failed", cost_micros=0, charges=0)
    assert codes(leftover, overdue=False) == []
    [finding] = money_findings(leftover, TOL, hold_overdue=True)
    assert finding.code == "hold_not_released" and finding.actual_micros == 2_000_000
    assert "2 held credits were never released or charged" in finding.reason


def test_a_success_never_charged_is_a_hold_never_released() -> None:
    assert codes(money(charges=0)) == ["hold_not_released"]


def test_grace_counts_from_when_the_receiver_saw_the_end_to_a_later_complete_sync() -> None:
    grace = timedelta(seconds=30)
    assert not hold_overdue(None, T0, grace)
    assert not hold_overdue(T0, None, grace)
    assert not hold_overdue(T0, T0 + timedelta(seconds=29), grace)
    assert hold_overdue(T0, T0 + timedelta(seconds=30), grace)


def test_unknown_job_reason_lists_what_moved() -> None:
    ghost = money(known=False, status=None, held=0, charges=3_000_000, cost_micros=None)
    assert codes(ghost) == []  # the job rules need a job
    finding = unknown_job_finding(ghost)
    assert (finding.code, finding.subject, finding.actual_micros) == (
        "unknown_job",
        "img_1",
        3_000_000,
    )
    assert "(3 charged)" in finding.reason and "never seen" in finding.reason


def test_balance_drift_beyond_the_tolerance() -> None:
    assert drift_finding(1, 2, -5_000_000, -5_000_000, TOL) is None
    assert drift_finding(1, 2, -5_000_050, -5_000_000, TOL) is None
    found = drift_finding(1, 2, -7_000_000, -5_000_000, TOL)
    assert found is not None and found.subject == "snapshots:1:2"
    assert "unexplained: -2" in found.reason


def request(fingerprint: str, job: str, at: float, kind: str = "image") -> SimpleNamespace:
    return SimpleNamespace(
        fingerprint=fingerprint,
        job_id=job,
        kind=kind,
        created_at=T0 + timedelta(seconds=at),
        cost_micros=2_000_000,
    )


def test_identical_requests_within_the_window_are_duplicates() -> None:
    window = timedelta(seconds=60)
    rows = [
        request("a", "img_1", 0),
        request("a", "img_2", 10),
        request("a", "img_3", 200),
        request("b", "img_4", 0),
        request("c", "img_5", 0),
        request("c", "img_5", 1),
    ]
    found = duplicate_findings(rows, window)
    assert [(d.code, d.subject) for d in found] == [("duplicate_request", "img_2")]
    assert "same request as img_1 10.0 s earlier (POST /jobs/images)" in found[0].reason


def test_the_walk_stops_at_the_watermark_and_dedupes() -> None:
    rows = [
        ledger_row("charge", 2, id="uev_3"),
        ledger_row("charge", 2, id="uev_3"),
        ledger_row("hold", 2, id="uev_2"),
        ledger_row("hold", 2, id="uev_1"),
    ]
    entries, reached = newer_than(rows, Watermark("uev_2", None))
    assert reached and [e.uev_id for e in entries] == ["uev_3"]
    entries, reached = newer_than(rows, None)
    assert not reached and [e.uev_id for e in entries] == ["uev_3", "uev_2", "uev_1"]


def test_a_pruned_watermark_is_passed_by_time() -> None:
    mark = Watermark("uev_gone", datetime(2026, 5, 4, 10, 0, 1, tzinfo=UTC))
    entries, reached = newer_than([ledger_row("hold", 2, id="uev_9")], mark)  # 10:00:00
    assert reached and entries == []


def test_a_usage_row_made_after_the_watermark_but_done_before_it_is_not_skipped() -> None:
    """The usage stream is listed by created_at; a request that finished sooner than the
    watermark's row, but was made after it, is still new."""

    def usage_row(row_id: str, created: str, completed: str) -> dict[str, object]:
        return {
            "id": row_id,
            "credits_charged": 3,
            "created_at": f"2026-05-20T{created}:00Z",
            "completed_at": f"2026-05-20T{completed}:00Z",
        }

    watermark_row = normalize_row(usage_row("img_W", "10:00", "10:05"))
    assert watermark_row is not None
    mark = Watermark(watermark_row.uev_id, watermark_row.created_at)
    rows = [usage_row("img_N", "10:01", "10:02"), usage_row("img_W", "10:00", "10:05")]
    entries, reached = newer_than(rows, mark)
    assert reached and [e.uev_id for e in entries] == ["img_N"]
