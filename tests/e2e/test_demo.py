"""`aurous-receiver demo` (what `make demo` runs) settles, leaves open only the spend finding it
injects on purpose, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

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
        open_findings = _open_findings("".join(lines))
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
    assert " ERROR " not in output + rest

    # The workload is an honest account: the only open finding is the duplicate request the
    # demo sent on purpose, and the demo says so.
    injected = re.search(r"Injected on purpose: .*the audit should report (\S+) as a", output)
    assert injected is not None, output
    assert [(f["code"], f["subject"]) for f in open_findings] == [
        ("duplicate_request", injected.group(1))
    ]
    assert "Spend audit: 1 open finding(s)." in output
    assert "injected on purpose: duplicate_request" in output
    assert "not injected" not in output


def _open_findings(output: str) -> list[dict[str, object]]:
    """The receiver's open findings, asked through its API with the token the demo printed."""
    dashboard = re.search(r"Dashboard\s+(http://\S+/)\s+log in with the admin token: (\S+)", output)
    assert dashboard is not None, output
    url, token = dashboard.groups()
    answer = httpx.get(
        f"{url}spend/findings",
        params={"status": "open"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    answer.raise_for_status()
    findings: list[dict[str, object]] = answer.json()["data"]
    return findings
