"""The archive: verify every blob against its hash."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from receiver.cli.common import (
    run,
    settings_from,
    with_db,
)

if TYPE_CHECKING:  # imported by the command itself, so that --help starts quickly
    from storage.db import Database

__all__ = ["archive"]


@click.group()
def archive() -> None:
    """Inspect the archive of outputs."""


@archive.command("verify")
@click.pass_context
def archive_verify(ctx: click.Context) -> None:
    """Re-hash every archived blob; exit 1 if any is missing or corrupt."""
    from storage import gateway
    from storage.blobs import BlobStore

    settings = settings_from(ctx)

    async def verify(db: Database) -> tuple[str, int, int, list[str]]:
        # Opened once the database is known to exist: opening a folder store makes the folder.
        blobs = BlobStore.from_url(settings.media_url)
        rows = await db.read(gateway.archived_blobs)
        problems: list[str] = []
        total = 0
        with click.progressbar(rows, label="verifying", file=sys.stderr) as bar:
            for row in bar:
                problem = await _check_blob(blobs, row.sha256, row.size)
                total += row.size or 0
                if problem:
                    problems.append(f"{row.sha256} (e.g. {row.job_id}): {problem}")
        return blobs.describe(), len(rows), total, problems

    where, count, total, problems = run(with_db(settings, verify))
    for problem in problems:
        click.echo(problem)
    click.echo(
        f"checked {count} blobs ({total} bytes) in {where}: "
        f"{len(problems)} missing or corrupt"
    )
    if problems:
        raise SystemExit(1)


async def _check_blob(blobs: Any, sha256: str, size: int | None) -> str | None:
    from storage.blobs import BlobNotFound, BlobStoreUnavailable

    try:
        actual = await blobs.rehash(sha256)
        info = await blobs.head(sha256)
    except BlobNotFound:
        return "missing"
    except BlobStoreUnavailable as error:  # said for this blob; the others are still checked
        return f"unreadable: {error}"
    if actual != sha256:
        return f"corrupt: content hashes to {actual}"
    if info is not None and size is not None and info.size != size:
        return f"size {info.size}, expected {size}"
    return None
