"""`aurous-receiver demo` (what `make demo` runs) settles and stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.harness import free_port


def test_demo_settles_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = dict(os.environ, RECEIVER_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "receiver",
            "demo",
            "--port",
            str(free_port()),
            "--simulator-port",
            str(free_port()),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "Ctrl-C stops them" in line:
                break
        else:
            raise AssertionError("demo did not settle in two minutes:\n" + "".join(lines[-20:]))
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    output = "".join(lines)
    assert "settled." in output
    assert "Everything settled." in output
    assert "your app <- job.succeeded" in output and "your app <- output.archived" in output
    assert process.returncode == 0
    assert "demo stopped" in rest
    assert "Traceback" not in output + rest
