"""Inspecting and tracking jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from receiver.cli.common import print_json, print_table, run, settings_from, when, with_db
from storage.states import JobKind, JobStatus

if TYPE_CHECKING:  # imported by the commands themselves, so that --help starts quickly
    from receiver.jobs import views as jobs
    from storage.db import Database

__all__ = ["jobs_group"]


@click.group(name="jobs")
def jobs_group() -> None:
    """Inspect and track jobs."""


@jobs_group.command("list")
@click.option("--status", type=click.Choice([status.value for status in JobStatus]))
@click.option("--kind", type=click.Choice([kind.value for kind in JobKind]))
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 200))
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
@click.pass_context
def jobs_list(
    ctx: click.Context, status: str | None, kind: str | None, limit: int, as_json: bool
) -> None:
    """List tracked jobs, newest first."""
    from receiver.jobs import views as jobs

    page = run(
        with_db(
            settings_from(ctx),
            lambda db: jobs.list_jobs(db, status=status, kind=kind, cursor=None, limit=limit),
        )
    )
    if as_json:
        print_json(page)
        return
    table = [("ID", "KIND", "STATUS", "SEEN VIA", "COST", "OUTPUTS", "CREATED")]
    for job in page.data:
        states = ",".join(o.state for o in job.outputs) or "-"
        amount = job.cost.amount
        table.append(
            (
                job.id,
                job.kind,
                job.status,
                job.first_seen_via,
                "-" if amount is None else f"{amount:g}",
                states,
                when(job.created_at),
            )
        )
    print_table(table)


@jobs_group.command("show")
@click.argument("job_id")
@click.pass_context
def jobs_show(ctx: click.Context, job_id: str) -> None:
    """Show one job with its outputs and event history (JSON)."""
    import msgspec

    from receiver.jobs import views as jobs

    async def fetch(db: Database) -> tuple[jobs.Job | None, list[jobs.JobEvent] | None]:
        return await jobs.get_job(db, job_id), await jobs.job_events(db, job_id)

    job, events = run(with_db(settings_from(ctx), fetch))
    if job is None:
        raise click.ClickException(f"no job {job_id!r} is tracked here")
    print_json(msgspec.to_builtins(job) | {"events": events})


@jobs_group.command("track")
@click.argument("job_id")
@click.pass_context
def jobs_track(ctx: click.Context, job_id: str) -> None:
    """Start tracking JOB_ID (img_… or vid_…); polling fills in its state."""
    from receiver.generation import JOB_ID_PATTERN
    from receiver.jobs import views as jobs
    from receiver.jobs.tracker import JobTracker

    if not JOB_ID_PATTERN.match(job_id):
        raise click.BadParameter("must look like img_… or vid_…", param_hint="JOB_ID")

    async def track(db: Database) -> tuple[bool, jobs.Job | None]:
        created = await JobTracker(db, output_ttl_s=settings.output_ttl_s).track(job_id)
        return created, await jobs.get_job(db, job_id)

    settings = settings_from(ctx)
    created, job = run(with_db(settings, track))
    status = job.status if job else "unknown"
    click.echo(f"{'now tracking' if created else 'already tracked'}: {job_id} ({status})")
