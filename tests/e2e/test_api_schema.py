"""Property-based run (schemathesis) of every operation in /schema/openapi.json against a real
receiver wired to the simulator: no 5xx, and every response matches its declared schema."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from tests.conftest import ADMIN_TOKEN
from tests.support.harness import free_port, receiver_settings, start_receiver, start_simulator

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[str]:
    import shutil

    folder = tmp_path_factory.mktemp("schema")
    shutil.copy(sqlite_template, folder / "receiver.db")
    with ExitStack() as stack:
        port = free_port()
        sim = start_simulator(stack, receiver_port=port, rate_limits=False)
        settings_ = receiver_settings(
            folder / "data", f"sqlite+aiosqlite:///{folder}/receiver.db", sim, background=False
        )
        receiver = start_receiver(stack, settings_, port=port)
        yield receiver.server.url


@pytest.fixture(scope="module")
def api_schema(base_url: str) -> Any:
    spec = httpx.get(f"{base_url}/schema/openapi.json", headers=AUTH).json()
    return schemathesis.openapi.from_dict(spec)


# An endless Server-Sent Events stream has no end to validate; tests/e2e/test_relay_flow.py
# reads it as a consumer does.
ENDLESS = {"/events/stream"}


def operations(api_schema: Any) -> list[Any]:
    found = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if operation.path not in ENDLESS:
            found.append(operation)
    return found


def test_no_operation_fails_or_breaks_its_schema(api_schema: Any, base_url: str) -> None:
    checked = []
    for operation in operations(api_schema):

        @settings(
            max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            if case.query and "wait" in case.query:
                case.query["wait"] = 0  # a long poll would only hold the answer back
            case.call_and_validate(
                base_url=base_url,
                headers=AUTH,
                checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
            )

        run()
        checked.append(operation.label)
    print(f"\nschemathesis: {len(checked)} operations checked")
    assert len(checked) >= 15
