"""Credits: balance, holds and the append-only ledger behind GET /v1/balance and /v1/usage/events.

Every movement is a `uev_` row with a positive amount; the type says which way money moved:
topup/refund/adjustment add credits, hold/release move credits in and out of `held`, charge
takes credits (and consumes the hold it names).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

from simulator.clock import iso
from simulator.ids import new_id

__all__ = ["LEDGER_TYPES", "Ledger", "LedgerRow", "money"]

LEDGER_TYPES = ("hold", "release", "charge", "refund", "topup", "adjustment")


def money(value: float) -> float | int:
    """Credits as JSON numbers: whole values print as integers, others keep 4 decimals."""
    rounded = round(value, 4)
    return int(rounded) if rounded == int(rounded) else rounded


@dataclass(slots=True)
class LedgerRow:
    sequence: int
    id: str
    type: str
    amount: float
    created_at: float
    generation_id: str | None
    hold_id: str | None
    description: str | None  # None: the standard text, built on output (saves memory)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "usage_event",
            "type": self.type,
            "amount": money(self.amount),
            "currency": "credit",
            "created_at": iso(self.created_at),
            "generation_id": self.generation_id,
            "hold_id": self.hold_id,
            "description": self.description or _describe(self.type, self.generation_id),
        }


def _describe(kind: str, generation_id: str | None) -> str:
    if kind == "topup":
        return "Stripe top-up"
    if generation_id is None:
        return "Manual adjustment"
    return f"{kind.capitalize()} for {generation_id}"


class Ledger:
    def __init__(self) -> None:
        self.rows: list[LedgerRow] = []
        self._sequence_by_id: dict[str, int] = {}
        self._sequences: list[int] = []
        self._next = 0
        self.credits = 0.0
        self.held = 0.0

    @property
    def available(self) -> float:
        return self.credits - self.held

    def record(
        self,
        kind: str,
        amount: float,
        now: float,
        *,
        generation_id: str | None = None,
        hold_id: str | None = None,
        description: str | None = None,
        held_delta: float = 0.0,
    ) -> LedgerRow:
        if kind not in LEDGER_TYPES or amount < 0:
            raise ValueError(f"bad ledger row: {kind} {amount}")
        row = LedgerRow(
            self._next, new_id("uev_", now), kind, amount, now, generation_id, hold_id, description
        )
        self._next += 1
        self.rows.append(row)
        self._sequence_by_id[row.id] = row.sequence
        self._sequences.append(row.sequence)
        self.credits += _credit_effect(kind, amount)
        self.held += held_delta
        return row

    def balance(self) -> dict[str, Any]:
        return {
            "credits": money(self.credits),
            "held_credits": money(self.held),
            "available_credits": money(self.available),
            "currency": "credit",
            "billing_mode": "metered",
        }

    def prune(self, before: float) -> int:
        """Forget the oldest rows (created before `before`); balances are unaffected."""
        keep_from = 0
        while keep_from < len(self.rows) and self.rows[keep_from].created_at < before:
            keep_from += 1
        for row in self.rows[:keep_from]:
            del self._sequence_by_id[row.id]
        del self.rows[:keep_from]
        del self._sequences[:keep_from]
        return keep_from

    def has(self, row_id: str) -> bool:
        return row_id in self._sequence_by_id

    def page(
        self, *, limit: int, starting_after: str | None, kind: str | None
    ) -> tuple[list[LedgerRow], bool]:
        """Newest first; starting_after returns strictly older rows."""
        stop = len(self.rows)
        if starting_after is not None:
            stop = bisect.bisect_left(self._sequences, self._sequence_by_id[starting_after])
        picked: list[LedgerRow] = []
        for position in range(stop - 1, -1, -1):
            row = self.rows[position]
            if kind is None or row.type == kind:
                if len(picked) == limit:
                    return picked, True
                picked.append(row)
        return picked, False


def _credit_effect(kind: str, amount: float) -> float:
    if kind in {"topup", "refund", "adjustment"}:
        return amount
    if kind == "charge":
        return -amount
    return 0.0
