"""What the receiver keeps is for its own user only: request bodies, prompts, outputs, keys.
New files are 0600 and new folders 0700 (the process umask); the data folder is tightened to
0700 if it was looser, and a key or token file that others could read is made 0600, with a
warning, since whoever could read it may have."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

__all__ = ["PRIVATE_UMASK", "keep_private", "private_file"]

PRIVATE_UMASK = 0o077
log = logging.getLogger(__name__)


def keep_private(data_dir: Path) -> None:
    """From now on this process writes private files; the data folder is 0700."""
    os.umask(PRIVATE_UMASK)
    data_dir.mkdir(parents=True, exist_ok=True)
    _tighten(data_dir, 0o700, "the data folder")


def private_file(path: Path) -> None:
    """A key or token file that group or others can read is made 0600, with a warning."""
    _tighten(path, 0o600, "a secret file")


def _tighten(path: Path, mode: int, what: str) -> None:
    current = stat.S_IMODE(path.stat().st_mode)
    if current & PRIVATE_UMASK:
        os.chmod(path, mode)
        log.warning(
            "%s %s was readable by others (%o); now %o. If others could read it, treat what it "
            "holds as disclosed.",
            what,
            path.resolve(),
            current,
            mode,
        )
