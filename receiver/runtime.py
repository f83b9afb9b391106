"""Everything a running service holds, opened and closed by the app's lifespan."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from litestar.di import NamedDependency

from receiver.auth import resolve_admin_token
from receiver.intake import Intake
from receiver.keyring import SecretStore
from receiver.metrics import Metrics
from receiver.settings import Settings
from storage.crypto import (
    SecretBox,
    decode_master_key,
    new_master_key_text,
    read_or_create_private_file,
)
from storage.db import Database
from storage.migrate import current_revision, head_revision

__all__ = ["NotMigrated", "Runtime", "RuntimeDep", "open_runtime"]

log = logging.getLogger(__name__)
MASTER_KEY_FILE = "master.key"


class NotMigrated(RuntimeError):
    """The database schema is behind the code."""


@dataclass
class Runtime:
    settings: Settings
    db: Database
    secrets: SecretStore
    intake: Intake
    metrics: Metrics
    admin_token: str
    head_revision: str | None

    async def close(self) -> None:
        await self.intake.stop()
        await self.db.dispose()


RuntimeDep: TypeAlias = NamedDependency[Runtime]
"""How a route handler asks for the runtime."""


def load_secret_box(settings: Settings) -> SecretBox:
    if settings.master_key:
        return SecretBox(decode_master_key(settings.master_key))
    path = Path(settings.data_dir) / MASTER_KEY_FILE
    text, created = read_or_create_private_file(path, new_master_key_text)
    if created:
        log.warning("master key generated into %s; back it up with the database", path.resolve())
    return SecretBox(decode_master_key(text))


async def open_runtime(settings: Settings) -> Runtime:
    db = Database(settings.database_url)
    head = head_revision()
    async with db.read() as conn:
        current = await current_revision(conn)
    if current != head:
        await db.dispose()
        raise NotMigrated(
            f"database is at revision {current or 'none'}, code expects {head}; "
            "run `aurous-receiver migrate`"
        )
    secrets = SecretStore(db, load_secret_box(settings))
    await secrets.bootstrap(settings.bootstrap_secrets)
    runtime = Runtime(
        settings=settings,
        db=db,
        secrets=secrets,
        intake=Intake(db, output_ttl_s=settings.output_ttl_s, writers=1 if db.is_sqlite else 4),
        metrics=Metrics(),
        admin_token=resolve_admin_token(settings),
        head_revision=head,
    )
    await runtime.intake.start()
    return runtime
