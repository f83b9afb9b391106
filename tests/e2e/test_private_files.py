"""Issue 14, attack 8: what the receiver writes (bodies, prompts, keys, outputs) is readable
by its own user only, through the real command."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.conftest import MASTER_KEY, TEST_SECRET


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_data_folder_and_everything_written_in_it_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)  # as a usual umask leaves it
    key = data / "master.key"
    key.write_text(MASTER_KEY + "\n")
    os.chmod(key, 0o644)  # a key file others could read
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECEIVER_", "AUROUS_"))}
    env |= {"RECEIVER_DATA_DIR": str(data), "RECEIVER_DATABASE_URL": f"sqlite:///{data}/r.db"}
    warnings = ""
    for command in (["migrate"], ["secrets", "add", TEST_SECRET], ["jobs", "list"]):
        done = subprocess.run(
            [sys.executable, "-m", "receiver", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        warnings += done.stderr

    assert mode(data) == 0o700
    written = [p for p in data.rglob("*") if p.is_file()]
    assert {p.name for p in written} >= {"r.db", "master.key"}
    for path in written:
        assert mode(path) & 0o077 == 0, (path.name, oct(mode(path)))
    assert "was readable by others (644)" in warnings
