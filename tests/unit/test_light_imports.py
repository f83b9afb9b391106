"""An idle receiver's memory is mostly its imports (bench/idle.py): what serving does not need
is not loaded. Alembic only when the schema must be upgraded, aiohttp only at the first push."""

from __future__ import annotations

import subprocess
import sys

from alembic.script import ScriptDirectory

from storage.migrate import alembic_config, head_revision


def test_the_head_read_from_the_files_is_alembics_head() -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_the_app_loads_neither_alembic_nor_aiohttp() -> None:
    probe = (
        "import sys, receiver.web.app, receiver.runtime; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'aiohttp'}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert loaded == "[]"
