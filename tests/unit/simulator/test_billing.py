from __future__ import annotations

from simulator.billing import Ledger, money


def test_hold_charge_release_arithmetic() -> None:
    ledger = Ledger()
    ledger.record("topup", 100, 0.0)
    ledger.record("hold", 6.25, 1.0, generation_id="vid_a", hold_id="hold_a", held_delta=6.25)
    assert (ledger.credits, ledger.held, ledger.available) == (100, 6.25, 93.75)
    ledger.record("charge", 6.25, 2.0, generation_id="vid_a", hold_id="hold_a", held_delta=-6.25)
    ledger.record("hold", 2, 3.0, generation_id="img_b", hold_id="hold_b", held_delta=2)
    ledger.record("release", 2, 4.0, generation_id="img_b", hold_id="hold_b", held_delta=-2)
    assert ledger.balance() == {
        "credits": 93.75,
        "held_credits": 0,
        "available_credits": 93.75,
        "currency": "credit",
        "billing_mode": "metered",
    }
    rows = [row.to_json() for row in ledger.rows]
    assert all(row["amount"] > 0 and row["id"].startswith("uev_") for row in rows)
    assert rows[0]["description"] == "Stripe top-up"
    assert rows[2]["description"] == "Charge for vid_a"


def test_pages_newest_first_with_filter() -> None:
    ledger = Ledger()
    for n in range(5):
        ledger.record("topup" if n % 2 else "adjustment", 1, float(n))
    rows, more = ledger.page(limit=2, starting_after=None, kind=None)
    assert [r.created_at for r in rows] == [4.0, 3.0] and more
    rows, more = ledger.page(limit=2, starting_after=rows[-1].id, kind=None)
    assert [r.created_at for r in rows] == [2.0, 1.0] and more
    rows, more = ledger.page(limit=10, starting_after=None, kind="topup")
    assert [r.created_at for r in rows] == [3.0, 1.0] and not more
    assert ledger.prune(before=2.0) == 2 and len(ledger.rows) == 3
    assert not ledger.has("nope")


def test_money() -> None:
    assert money(2.0) == 2 and isinstance(money(2.0), int)
    assert money(6.25) == 6.25 and money(0.1 + 0.2) == 0.3
