"""What the browser tests share: Debian's Chromium, found or installed once per session."""

from __future__ import annotations

import pytest

from tests.conftest import IN_CI
from tests.support import chromium


@pytest.fixture(scope="session")
def browser_path() -> str:
    """Outside CI a machine without Chromium (and no root to install it) skips the browser
    tests, saying why; in CI that is a failure, never a skip."""
    path, reason = chromium.find_or_install()
    if path is None:
        if IN_CI:
            pytest.fail(f"browser tests need Chromium in CI: {reason}")
        pytest.skip(f"browser tests skipped: {reason}")
    return path
