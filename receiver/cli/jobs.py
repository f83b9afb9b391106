"""Inspecting and tracking jobs."""

from __future__ import annotations

import json
from typing import Any

import click

from receiver.cli.common import (
    print_table,
    run,
    settings_from,
    with_db,
)
from receiver.jobs import views as jobs
from storage.db import Database

__all__ = ["jobs_group"]


@click.group(name="jobs")
def jobs_group() -> None:
    """Inspect and track jobs."""


@jobs_group.command("list")
@click.option("--status")
@click.option("--kind", type=click.Choice(["image", "video", "unknown"]))
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 200))
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
@click.pass_context
def jobs_list(
    ctx: click.Context, status: str | None, kind: str | None, limit: int, as_json: bool
) -> None:
    """List tracked jobs, newest first."""
    page = run(
        with_db(
            settings_from(ctx),
            lambda db: jobs.list_jobs(db, status=status, kind=kind, cursor=None, limit=limit),
        )
    )
    if as_json:
        click.echo(json.dumps(page, indent=2))
        return
    table = [("ID", "KIND", "STATUS", "SEEN VIA", "COST", "OUTPUTS", "CREATED")]
    for job in page["data"]:
        states = ",".join(o["state"] for o in job["outputs"]) or "-"
        amount = job["cost"]["amount"]
        table.append(
            (
                job["id"],
                job["kind"],
                job["status"],
                job["first_seen_via"],
                "-" if amount is None else f"{amount:g}",
                states,
                job["created_at"] or "-",
            )
        )
    print_table(table)


@jobs_group.command("show")
@click.argument("job_id")
@click.pass_context
def jobs_show(ctx: click.Context, job_id: str) -> None:
    """Show one job with its outputs and event history (JSON)."""

    async def fetch(db: Database) -> dict[str, Any] | None:
        job = await jobs.get_job(db, job_id)
        if job is not None:
            job["events"] = await jobs.job_events(db, job_id)
        return job

    job = run(with_db(settings_from(ctx), fetch))
    if job is None:
        raise click.ClickException(f"no job {job_id!r} is tracked here")
    click.echo(json.dumps(job, indent=2))


@jobs_group.command("track")
@click.argument("job_id")
@click.pass_context
def jobs_track(ctx: click.Context, job_id: str) -> None:
    """Start tracking JOB_ID (img_… or vid_…); polling fills in its state."""
    from receiver.web.routes.jobs import JOB_ID

    if not JOB_ID.match(job_id):
        raise click.BadParameter("must look like img_… or vid_…", param_hint="JOB_ID")
    job, created = run(with_db(settings_from(ctx), lambda db: jobs.track(db, job_id)))
    click.echo(f"{'now tracking' if created else 'already tracked'}: {job['id']} ({job['status']})")
