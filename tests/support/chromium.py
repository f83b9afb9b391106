"""Debian's Chromium for the browser tests: found on the machine, or installed from Debian's
packages by the test set-up (never a browser download by a test tool)."""

from __future__ import annotations

import os
import shutil
import subprocess

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def find_or_install() -> tuple[str | None, str]:
    """The chromium binary, or None and why there is none."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found, ""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "chromium is not installed and this user cannot install Debian packages"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (
        ["apt-get", "install", "-y", "-q", "chromium"],
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "chromium"],
    ):
        result = subprocess.run(command, env=env, capture_output=True, timeout=900, check=False)
        if result.returncode == 0 and shutil.which("chromium"):
            return shutil.which("chromium"), ""
    return None, f"apt-get could not install chromium: {result.stderr.decode()[-300:]}"
