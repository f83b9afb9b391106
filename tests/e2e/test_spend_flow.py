"""Issue 6 end to end: the spend audit against the simulator, real servers on loopback.

A clean run is charged exactly what the simulator's ledger says and raises nothing; every
injected billing anomaly is reported exactly once and nothing else is; the CSV adds up to the
summary; a receiver killed mid-sync neither duplicates nor skips ledger rows."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from receiver.cli import cli
from tests.support.harness import (
    ReceiverHandle,
    ReceiverProcess,
    SimHandle,
    free_port,
    receiver_settings,
    settings_env,
    start_receiver,
    start_simulator,
    wait_for,
)

SWEEP_S = 1.0  # the audit runs this often; a hold gets three of these as grace
GRACE_S = 3 * SWEEP_S
FAST = {"rate_limits": False, "time_scale": 200.0, "output_size": 1024}
CODE_FOR_ANOMALY = {
    "overcharge": "charge_mismatch",
    "bill_failed": "charge_not_succeeded",
    "skip_release": "hold_not_released",
}


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def start(
    stack: ExitStack, tmp_path: Path, url: str, **sim_knobs: Any
) -> tuple[SimHandle, ReceiverHandle]:
    port = free_port()
    sim = start_simulator(stack, receiver_port=port, **FAST, **sim_knobs)
    settings = receiver_settings(tmp_path / "data", url, sim, sweep_interval_s=SWEEP_S)
    return sim, start_receiver(stack, settings, port=port)


def create_jobs(receiver: ReceiverHandle, count: int) -> None:
    def create(n: int) -> None:
        response = receiver.create("image", {"prompt": f"spend audit job {n}"})
        assert response.status_code == 201, response.text

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(count)))


def settled(receiver: ReceiverHandle, sim: SimHandle) -> bool:
    """Every job terminal at the simulator and at the receiver."""
    truth = sim.truth()["jobs"]
    if not all(job["terminal"] for job in truth):
        return False
    return sum(job["terminal"] for job in receiver.jobs()) == len(truth)


def audit_after_grace(receiver: ReceiverHandle) -> dict[str, Any]:
    """One pass that starts after the grace period (it waits for a running tick)."""
    time.sleep(GRACE_S + 0.2)
    report: dict[str, Any] = receiver.client.post("/spend/sync").json()
    assert report["ran"] and report["complete"], report
    return report


def sim_money(sim: SimHandle) -> dict[str, Decimal]:
    flows: Counter[str] = Counter()
    for row in sim.truth()["ledger"]:
        if row["generation_id"]:
            flows[row["type"]] += Decimal(str(row["amount"]))
    return {
        "charged": flows["charge"] - flows["refund"],
        "held": flows["hold"],
        "released": flows["release"],
        "refunded": flows["refund"],
    }


def local_ids(receiver: ReceiverHandle) -> list[str]:
    ids: list[str] = []
    params: dict[str, Any] = {"limit": 500}
    while True:
        page = receiver.client.get("/spend/ledger", params=params).json()
        ids += [e["id"] for e in page["data"]]
        if not page["has_more"]:
            return ids
        params["cursor"] = page["next_cursor"]


def findings(receiver: ReceiverHandle) -> set[tuple[str, str]]:
    data = receiver.client.get("/spend/findings").json()["data"]
    return {(f["code"], f["job_id"]) for f in data}


def check_csv_adds_up(receiver: ReceiverHandle) -> list[dict[str, str]]:
    response = receiver.client.get("/spend/export.csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    total = receiver.client.get("/spend/summary", params={"by": "status"}).json()["total"]
    assert len(rows) == total["jobs"]
    for column in ("held", "charged", "released", "refunded"):
        assert sum(Decimal(r[column]) for r in rows) == Decimal(str(total[column])), column
    return rows


def run_cli(receiver: ReceiverHandle, *args: str) -> str:
    result = CliRunner().invoke(cli, list(args), env=settings_env(receiver.settings))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_clean_run_of_1000_jobs_is_charged_exactly_and_finds_nothing(
    stack: ExitStack, tmp_path: Path, sqlite_url: str
) -> None:
    sim, receiver = start(stack, tmp_path, sqlite_url)
    started = time.monotonic()
    create_jobs(receiver, 1000)
    wait_for(lambda: settled(receiver, sim), timeout=60, interval=0.5)
    audit_after_grace(receiver)

    summary = receiver.client.get("/spend/summary", params={"by": "kind"}).json()
    truth = sim_money(sim)
    total = summary["total"]
    print(f"\n1000 jobs audited in {time.monotonic() - started:.1f}s: {total}")
    assert abs(Decimal(str(total["charged"])) - truth["charged"]) <= Decimal("0.0001")
    assert total["jobs"] == 1000 and total["held"] == float(truth["held"])
    assert sorted(local_ids(receiver)) == sorted(r["id"] for r in sim.truth()["ledger"])
    assert run_cli(receiver, "spend", "findings").strip() == "no open findings"
    assert json.loads(run_cli(receiver, "spend", "findings", "--json")) == []
    report = run_cli(receiver, "spend", "report", "--by", "status")
    assert "succeeded" in report and "runway:" in report and "days" in report
    check_csv_adds_up(receiver)


def test_every_billing_anomaly_is_reported_exactly_once_and_nothing_else(
    stack: ExitStack, tmp_path: Path, sqlite_url: str
) -> None:
    sim, receiver = start(
        stack,
        tmp_path,
        sqlite_url,
        failed_rate=0.3,
        bill_failed_rate=0.25,
        skip_release_rate=0.25,
        overcharge_rate=0.1,
        balance_low_threshold=2_000_000.0,  # every movement is "low": one debounced webhook
    )
    create_jobs(receiver, 300)
    ghost = sim._control(  # money for a job the receiver never saw (Aurous does not know it)
        "POST", "ledger", {"type": "charge", "amount": 3, "generation_id": "img_01NEVERSEEN"}
    )
    wait_for(lambda: settled(receiver, sim), timeout=60, interval=0.5)
    truth = sim.truth()
    injected = Counter(j["ledger_anomaly"] for j in truth["jobs"] if j["ledger_anomaly"])
    expected = {
        (CODE_FOR_ANOMALY[j["ledger_anomaly"]], j["id"])
        for j in truth["jobs"]
        if j["ledger_anomaly"]
    }
    expected.add(("unknown_job", ghost["generation_id"]))
    # Background passes report each one once it is past its grace period…
    wait_for(lambda: findings(receiver) >= expected, timeout=GRACE_S + 15, interval=0.5)
    audit_after_grace(receiver)  # …and a later pass finds nothing more
    found = findings(receiver)
    print(f"\ninjected {dict(injected)} + 1 unknown job; found {Counter(c for c, _ in found)}")
    assert found == expected
    stats = sim.stats()["faults"]
    reported = Counter(code for code, _ in found)
    for anomaly, code in CODE_FOR_ANOMALY.items():
        assert stats.get(anomaly, 0) == reported[code] > 0, anomaly
    [unknown] = [
        f
        for f in receiver.client.get("/spend/findings").json()["data"]
        if f["code"] == "unknown_job"
    ]
    assert unknown["action"] == "not_found" and unknown["actual"] == 3.0

    assert receiver.client.post("/spend/sync").json()["new_findings"] == []  # never twice
    assert "findings: 0 new, 0 resolved" in run_cli(receiver, "spend", "sync")
    rows = {r["id"]: r for r in check_csv_adds_up(receiver)}
    for code, job_id in expected:
        assert code in rows[job_id]["findings"].split(";")
    with sqlite3.connect(sqlite_url.split("///", 1)[1]) as conn:
        [(low,)] = conn.execute(
            "SELECT count(*) FROM balance_snapshot WHERE trigger = 'balance_low'"
        )
    assert low >= 1  # the usage.balance_low webhook took a snapshot of its own


def ledger_rows(db_path: str) -> list[str]:
    with sqlite3.connect(db_path) as conn:
        return [
            r[0] for r in conn.execute("SELECT uev_id FROM ledger_entry ORDER BY position DESC")
        ]


def watermark(db_path: str) -> str | None:
    with sqlite3.connect(db_path) as conn:
        row = conn.execute("SELECT value FROM sync_state WHERE key = 'ledger.watermark'").fetchone()
    return row[0] if row else None


def test_a_receiver_killed_mid_sync_neither_duplicates_nor_skips_rows(
    stack: ExitStack, tmp_path: Path, sqlite_url: str
) -> None:
    sim = start_simulator(stack, rate_limits=False)
    for n in range(1500):
        kind = "adjustment" if n % 3 == 0 else "topup"
        sim._control("POST", "ledger", {"type": kind, "amount": n % 7 + 1})
    # Six GETs a minute: the first few pages come at once, then one every ten seconds.
    # The dead receiver's audit lease lapses after lease_s: then the new one walks again.
    slow = receiver_settings(tmp_path / "data", sqlite_url, sim, poll_budget_per_min=6, lease_s=3)
    db_path = sqlite_url.split("///", 1)[1]
    port = free_port()
    first = ReceiverProcess(slow, port)
    stack.callback(first.stop)
    first.start()
    wait_for(lambda: ledger_rows(db_path), timeout=20, interval=0.05)
    first.kill()
    partial = ledger_rows(db_path)
    upstream = [r["id"] for r in sim.truth()["ledger"]][::-1]  # newest first
    assert 0 < len(partial) < len(upstream) and watermark(db_path) is None
    for n in range(20):  # the ledger moves on while the receiver is down
        sim._control("POST", "ledger", {"type": "topup", "amount": 1, "description": f"late {n}"})

    second = ReceiverProcess(slow.with_overrides(poll_budget_per_min=6000), port)
    stack.callback(second.stop)
    second.start()
    wait_for(lambda: watermark(db_path), timeout=30, interval=0.2)
    upstream = [r["id"] for r in sim.truth()["ledger"]][::-1]
    stored = ledger_rows(db_path)
    print(
        f"\nkilled after {len(partial)} of {len(upstream) - 20} rows; after restart {len(stored)}"
    )
    assert stored == upstream  # each row once, none missing, in Aurous's order
