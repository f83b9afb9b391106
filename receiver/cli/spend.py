"""`aurous-receiver spend …`: spend reports, findings and an audit pass from the command line.

Reports read the local database (what the last audit pass synced); `spend sync` runs a pass now.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from receiver.cli.common import open_runtime, print_json, print_table, run, settings_from, with_db

if TYPE_CHECKING:  # imported by the commands themselves, so that --help starts quickly
    from receiver.spend import reports
    from storage.db import Database

__all__ = ["spend"]

# What `--by` accepts: `reports.GROUPINGS`, written out so that --help needs no database code
# (tests/unit/test_cli_fast.py checks that the two agree).
GROUPINGS = ("day", "kind", "model", "status")
_LEASE_WAITS = 90  # seconds to wait for another pass (a running service's) to end
_MONEY = ("charged", "held", "released", "refunded")


def _db_action(ctx: click.Context, action: Any) -> Any:
    return run(with_db(settings_from(ctx), action))


def _checked(report: Any) -> Any:
    from receiver.errors import ReceiverError

    async def go(db: Database) -> Any:
        try:
            return await report(db)
        except ReceiverError as exc:
            raise click.BadParameter(exc.message, param_hint=f"--{exc.param}") from None

    return go


def _table(rows: Sequence[Sequence[str]]) -> None:
    print_table(rows)


def _credits(value: float | None) -> str:
    from receiver.spend.rules import credits_text

    return "-" if value is None else credits_text(round(value * 1_000_000))


@click.group()
def spend() -> None:
    """Audit credit spend: where the credits went, and where money and jobs disagree."""


@spend.command("report", short_help="Credits charged, held, released and refunded.")
@click.option("--by", type=click.Choice(GROUPINGS), default="day", show_default=True)
@click.option("--since", help="From this date or time (UTC), e.g. 2026-05-01.")
@click.option("--until", help="Up to (not including) this date or time (UTC).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@click.pass_context
def spend_report(
    ctx: click.Context, by: str, since: str | None, until: str | None, fmt: str
) -> None:
    """Credits charged, held, released and refunded per day, kind, model or status."""
    import msgspec

    from receiver.spend import reports
    from storage.types import utcnow

    async def report(db: Database) -> tuple[reports.SpendSummary, reports.Runway]:
        start = reports.parse_moment(since, "since")
        end = reports.parse_moment(until, "until")
        summary = await reports.summary(db, by, start, end)
        return summary, await reports.runway(db, utcnow())

    summary, runway = _db_action(ctx, _checked(report))
    if fmt == "json":
        print_json(msgspec.to_builtins(summary) | {"runway": runway.view()})
    elif fmt == "csv":
        _write_csv(summary)
    else:
        _table(_summary_rows(summary))
        click.echo(reports.runway_line(runway))


def _groups(summary: reports.SpendSummary) -> list[tuple[str, reports.Money]]:
    return [*((g.key, g) for g in summary.groups), ("total", summary.total)]


def _summary_rows(summary: reports.SpendSummary) -> list[Sequence[str]]:
    rows: list[Sequence[str]] = [(summary.by.upper(), *(m.upper() for m in _MONEY), "JOBS")]
    for key, money in _groups(summary):
        rows.append((key, *_amounts(money), str(money.jobs)))
    return rows


def _write_csv(summary: reports.SpendSummary) -> None:
    from receiver.csv_cells import SafeWriter

    writer = SafeWriter(sys.stdout)
    writer.writerow((summary.by, *_MONEY, "jobs"))
    for key, money in _groups(summary):
        writer.writerow((key, *_amounts(money), money.jobs))


def _amounts(money: reports.Money) -> list[str]:
    return [_credits(getattr(money, name)) for name in _MONEY]


@spend.command("findings", short_help="Where money and jobs disagree, and why.")
@click.option(
    "--status", type=click.Choice(["open", "resolved", "all"]), default="open", show_default=True
)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
@click.pass_context
def spend_findings(ctx: click.Context, status: str, as_json: bool) -> None:
    """Where money and jobs disagree, each with its job, amounts and reason."""
    from receiver.spend import reports

    found = _db_action(ctx, _checked(lambda db: reports.findings(db, status))).data
    if as_json:
        print_json(found)
        return
    if not found:
        click.echo(f"no {status if status != 'all' else ''} findings".replace("  ", " "))
        return
    rows: list[Sequence[str]] = [("ID", "CODE", "JOB", "EXPECTED", "ACTUAL", "SINCE", "REASON")]
    for f in found:
        rows.append(
            (
                str(f.id),
                f.code,
                f.job_id or f.subject,
                _credits(f.expected),
                _credits(f.actual),
                f.first_seen_at.strftime("%Y-%m-%dT%H:%M:%S"),
                f.reason + (f" [{f.action}]" if f.action else ""),
            )
        )
    _table(rows)


@spend.command("sync")
@click.pass_context
def spend_sync(ctx: click.Context) -> None:
    """Sync the ledger, snapshot the balance and evaluate findings now."""
    from receiver.spend import reports
    from storage.types import utcnow

    async def go() -> Any:
        runtime = await open_runtime(settings_from(ctx), needs_aurous=True)
        try:
            click.echo("syncing the ledger…", err=True)
            report = await runtime.audit.run("manual")
            for _ in range(_LEASE_WAITS):  # a running service may be mid-pass: let it finish
                if report.ran:
                    break
                await asyncio.sleep(1)
                report = await runtime.audit.run("manual")
            return report, await reports.runway(runtime.db, utcnow())
        finally:
            await runtime.close()

    report, runway = run(go())
    if not report.ran:
        raise click.ClickException("another replica is auditing right now; try again shortly")
    sync = report.sync
    if report.error:
        click.echo(f"Aurous could not be read ({report.error}); findings from what is stored")
    click.echo(
        f"ledger: {sync.pages} pages, {sync.new} new rows"
        + ("" if sync.complete else " (incomplete: the next pass continues)")
    )
    click.echo(
        f"balance snapshot #{report.snapshot_id}"
        + ("" if report.consistent else " (the ledger moved while it was read: not compared)")
    )
    click.echo(
        f"findings: {len(report.new_findings)} new, {report.resolved} resolved; "
        f"{report.adopted} unknown jobs adopted"
    )
    click.echo(reports.runway_line(runway))
