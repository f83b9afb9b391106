"""The audit's rules, without I/O: how a ledger row of either documented contract becomes a
signed movement, and when money and jobs disagree enough to be a finding.

Sign convention (ours; Aurous documents none): amounts are integer micro-credits from the
team's side. hold and charge are debits (negative), release, refund and topup are credits
(positive), whatever sign Aurous sent; an adjustment keeps the sign it came with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec

from receiver.generation import looks_like_job_id, parse_timestamp, to_micros
from storage.records import (
    FindingRecord,
    FindingUpdate,
    JobMoney,
    NewFinding,
    NewLedgerEntry,
    RepeatedRequest,
)
from storage.states import JobStatus, LedgerType

__all__ = [
    "HISTORICAL",
    "LEDGER_TYPES",
    "STATEFUL",
    "Draft",
    "JobMoney",
    "charged",
    "credits_text",
    "drift_finding",
    "duplicate_findings",
    "hold_overdue",
    "is_job_id",
    "money_findings",
    "normalize_row",
    "outstanding",
    "signed",
    "unknown_job_finding",
    "unsettled",
]

LEDGER_TYPES = frozenset(LedgerType)
DEBITS = frozenset({LedgerType.HOLD, LedgerType.CHARGE})
CREDITS = frozenset({LedgerType.RELEASE, LedgerType.REFUND, LedgerType.TOPUP})
# Findings about a state that can still change are resolved when it does; the others are
# facts about the past and stay.
STATEFUL = ("charge_not_succeeded", "charge_mismatch", "hold_not_released")
HISTORICAL = frozenset({"unknown_job", "balance_drift", "duplicate_request"})
_MAX_TEXT = 500


def signed(kind: str, micros: int) -> int:
    if kind in DEBITS:
        return -abs(micros)
    if kind in CREDITS:
        return abs(micros)
    return micros


def credits_text(micros: int | None) -> str:
    """Micro-credits as a plain decimal number of credits: 3500000 -> '3.5'."""
    if micros is None:
        return "-"
    whole, fraction = divmod(abs(micros), 1_000_000)
    text = f"{'-' if micros < 0 else ''}{whole}.{fraction:06d}"
    return text.rstrip("0").rstrip(".")


def is_job_id(value: str) -> bool:
    return looks_like_job_id(value)


def _micros(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return to_micros(value)
    if isinstance(value, str):
        try:
            return to_micros(float(value))
        except ValueError:
            return None
    return None


def _text(value: Any) -> str | None:
    """Upstream text as storage holds it (PostgreSQL text holds no NUL)."""
    if not isinstance(value, str) or not value:
        return None
    return value[:_MAX_TEXT].replace("\x00", "\ufffd")


def _storable(raw: Mapping[str, object]) -> dict[str, object]:
    """The row as it came, but with no NUL anywhere (PostgreSQL's JSON holds none)."""
    encoded = msgspec.json.encode(raw)
    if b"\\u0000" not in encoded:
        return dict(raw)
    return msgspec.json.decode(encoded.replace(b"\\u0000", b"\\ufffd"), type=dict[str, object])


def unsettled(raw: Mapping[str, Any]) -> bool:
    """A usage-stream row of a request still running: what it costs is not known yet."""
    return "credits_charged" in raw and raw.get("status") in ("processing", "pending")


def normalize_row(raw: Mapping[str, Any]) -> NewLedgerEntry | None:
    """A row of the credit ledger (contract (a): `uev_…` with type and amount) or of the usage
    event stream (contract (b): one billed request with `credits_charged`, taken as a charge
    whose generation is the row's own id); None when it is neither."""
    row_id = raw.get("id")
    if not isinstance(row_id, str) or not row_id or len(row_id) > 200 or not row_id.isprintable():
        return None
    kind = raw.get("type")
    if kind in LEDGER_TYPES and "amount" in raw:
        amount = _micros(raw.get("amount"))
        contract, generation = "ledger", _text(raw.get("generation_id"))
        created = parse_timestamp(raw.get("created_at"))
        description = _text(raw.get("description"))
    elif "credits_charged" in raw:
        kind, amount = LedgerType.CHARGE, _micros(raw.get("credits_charged"))
        contract, generation = "usage", row_id
        # the stream is listed by created_at: the watermark must compare the same time
        created = parse_timestamp(raw.get("created_at") or raw.get("completed_at"))
        parts = (raw.get("type"), raw.get("model"), raw.get("status"))
        description = " ".join(str(p) for p in parts if p) or None
    else:
        return None
    if amount is None:
        return None
    return NewLedgerEntry(
        uev_id=row_id,
        type=str(kind),
        amount_micros=signed(str(kind), amount),
        currency=_text(raw.get("currency")) or "credit",
        generation_id=generation,
        hold_id=_text(raw.get("hold_id")),
        created_at=created,
        description=description,
        contract=contract,
        raw=_storable(raw),
    )


@dataclass(frozen=True)
class Draft:
    """A finding as the rules see it, before it is stored."""

    code: str
    subject: str
    reason: str
    job_id: str | None
    expected_micros: int | None
    actual_micros: int | None

    def row(self, now: datetime) -> NewFinding:
        """Open, first and last seen now, nothing done about it yet."""
        amounts = (self.expected_micros, self.actual_micros)
        return NewFinding(
            self.code, self.subject, self.job_id, *amounts, None, now, now, None, self.reason
        )

    def changed(self, stored: FindingRecord) -> bool:
        """The stored finding says something else now (or was resolved meanwhile)."""
        was = (stored.expected_micros, stored.actual_micros, stored.reason, stored.resolved_at)
        return was != (self.expected_micros, self.actual_micros, self.reason, None)

    def refresh(self, now: datetime) -> FindingUpdate:
        """Still true: current amounts, and open again if it had been resolved."""
        return FindingUpdate(
            expected_micros=self.expected_micros,
            actual_micros=self.actual_micros,
            reason=self.reason,
            last_seen_at=now,
            resolved_at=None,
        )


def charged(m: JobMoney) -> int:
    return m.charges - m.refunded


def outstanding(m: JobMoney) -> int:
    """Held and neither released nor refunded. A charge settles its whole hold (the hold is
    an upper bound; what it did not charge goes back to available), so a charged job holds
    nothing."""
    return 0 if m.charges > 0 else m.held - m.released - m.refunded


def money_findings(m: JobMoney, tolerance: int, *, hold_overdue: bool) -> list[Draft]:
    if not m.known:
        return []
    found = []
    if m.terminal and m.status != JobStatus.SUCCEEDED and charged(m) > tolerance:
        found.append(_charge_not_succeeded(m))
    elif _mismatched(m, tolerance):
        found.append(_charge_mismatch(m))
    if m.terminal and hold_overdue and outstanding(m) > tolerance:
        found.append(_hold_not_released(m))
    return found


def _mismatched(m: JobMoney, tolerance: int) -> bool:
    if m.status != JobStatus.SUCCEEDED or m.cost_state != "charged" or m.cost_micros is None:
        return False
    return m.charges > 0 and abs(charged(m) - m.cost_micros) > tolerance


def _charge_not_succeeded(m: JobMoney) -> Draft:
    reason = (
        f"{m.job_id} ended {m.status} but was charged {credits_text(charged(m))} credits; "
        "a job that does not succeed should cost nothing."
    )
    return Draft("charge_not_succeeded", m.job_id, reason, m.job_id, 0, charged(m))


def _charge_mismatch(m: JobMoney) -> Draft:
    difference = charged(m) - (m.cost_micros or 0)
    reason = (
        f"{m.job_id} was charged {credits_text(charged(m))} credits but its cost is "
        f"{credits_text(m.cost_micros)} credits ({'+' if difference > 0 else ''}"
        f"{credits_text(difference)})."
    )
    return Draft("charge_mismatch", m.job_id, reason, m.job_id, m.cost_micros, charged(m))


def _hold_not_released(m: JobMoney) -> Draft:
    reason = (
        f"{m.job_id} ended {m.status} but {credits_text(outstanding(m))} held credits were "
        "never released or charged."
    )
    return Draft("hold_not_released", m.job_id, reason, m.job_id, 0, outstanding(m))


def hold_overdue(seen_at: datetime | None, synced: datetime | None, grace: timedelta) -> bool:
    """A hold is overdue once a complete ledger sync started at least `grace` after the
    receiver saw its job finish (both on the receiver's clock: Aurous's may differ)."""
    return seen_at is not None and synced is not None and seen_at + grace <= synced


def unknown_job_finding(m: JobMoney) -> Draft:
    flows = {"held": m.held, "released": m.released, "charged": m.charges, "refunded": m.refunded}
    moved = [f"{credits_text(amount)} {label}" for label, amount in flows.items() if amount]
    reason = (
        f"The ledger moved credits for {m.job_id} ({', '.join(moved) or 'nothing'}), "
        "a job the receiver had never seen."
    )
    actual = charged(m) or m.held
    return Draft("unknown_job", m.job_id, reason, m.job_id, None, actual)


def drift_finding(
    before_id: int, after_id: int, delta: int, ledger_effect: int, tolerance: int
) -> Draft | None:
    drift = delta - ledger_effect
    if abs(drift) <= tolerance:
        return None
    reason = (
        f"Total credits changed by {credits_text(delta)} between balance snapshots "
        f"#{before_id} and #{after_id}, but the ledger rows between them account for "
        f"{credits_text(ledger_effect)} (unexplained: {credits_text(drift)})."
    )
    return Draft(
        "balance_drift", f"snapshots:{before_id}:{after_id}", reason, None, ledger_effect, delta
    )


def duplicate_findings(requests: Sequence[RepeatedRequest], window: timedelta) -> list[Draft]:
    """Rows ordered by (fingerprint, created_at): each request that repeats the previous one
    with the same fingerprint within `window`, under another idempotency key."""
    found: list[Draft] = []
    previous: RepeatedRequest | None = None
    for request in requests:
        if (
            previous is not None
            and previous.fingerprint == request.fingerprint
            and previous.job_id != request.job_id
            and request.created_at - previous.created_at <= window
        ):
            gap = (request.created_at - previous.created_at).total_seconds()
            reason = (
                f"{request.job_id} was created from the same request as {previous.job_id} "
                f"{gap:.1f} s earlier (POST /jobs/{request.kind}s); both are billed."
            )
            found.append(
                Draft(
                    "duplicate_request",
                    request.job_id,
                    reason,
                    request.job_id,
                    None,
                    request.cost_micros,
                )
            )
        previous = request
    return found
