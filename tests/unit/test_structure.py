"""The house's rules, checked by reading the code: one path changes job state, storage imports
nothing of the service, and no untyped row or loose dict crosses the storage boundary."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import storage.gateway

ROOT = Path(__file__).resolve().parents[2]
TRACKER = "receiver/jobs/tracker.py"
JOB_WRITERS = "storage.gateway.job_writes"
OUTBOX = "receiver/jobs/outbox.py"  # the tracker's own: writes the events of its transactions
OUTBOX_WRITERS = "storage.gateway.outbox"
# Columns that say what state a job or an output is in.
STATE_COLUMNS = {"status", "terminal", "completed_at", "state", "sha256", "archived_at"}


def modules(*folders: str) -> Iterator[tuple[str, ast.Module]]:
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if "/migrations/" not in name:
                yield name, ast.parse(path.read_text(), name)


def imported_modules(tree: ast.Module) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def importers_of(module: str) -> list[str]:
    return [
        name
        for name, tree in modules("receiver", "storage")
        if any(m.startswith(module) for m in imported_modules(tree))
    ]


def test_only_the_tracker_imports_the_writers_of_job_state_and_of_the_outbox() -> None:
    assert importers_of(JOB_WRITERS) == [TRACKER]
    assert importers_of(OUTBOX_WRITERS) == [OUTBOX]


def test_the_gateway_does_not_hand_out_the_writers_of_job_state() -> None:
    from storage.gateway import job_writes, outbox

    assert not set(job_writes.__all__) & set(storage.gateway.__all__)
    assert not set(outbox.__all__) & set(storage.gateway.__all__)


def _updated_table(call: ast.Call) -> str | None:
    """The table of `update(TABLE)…values(…)`, if this `values` call is on one."""
    node: ast.expr = call.func
    while isinstance(node, ast.Attribute | ast.Call):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "update" and node.args:
                table = node.args[0]
                return table.id if isinstance(table, ast.Name) else None
            node = func
        else:
            node = node.value
    return None


def test_no_other_gateway_module_writes_a_job_or_output_state() -> None:
    offenders = []
    for name, tree in modules("storage/gateway"):
        if name.endswith("job_writes.py"):
            continue
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "values"
            ):
                continue
            if _updated_table(node) in ("JOB", "OUTPUT"):
                written = {k.arg for k in node.keywords} & STATE_COLUMNS
                offenders += [f"{name}:{node.lineno} writes {sorted(written)}"] if written else []
    assert offenders == []


def test_storage_imports_nothing_of_the_service() -> None:
    for name, tree in modules("storage"):
        assert not [m for m in imported_modules(tree) if m.startswith("receiver")], name


def test_no_untyped_row_or_loose_dict_crosses_the_storage_boundary() -> None:
    # Where raw JSON or text from outside is parsed, a loose dict is the honest type.
    parsing_outside_input = {
        "receiver/aurous.py",  # RawJson: Aurous's billing and endpoint answers
        "receiver/settings.py",  # the environment
        "receiver/web/templating.py",  # the OpenAPI document, as Litestar hands it over
    }
    for folder in ("receiver", "storage/gateway"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            text = path.read_text()
            assert "Row[" not in text, name
            if name not in parsing_outside_input:
                assert "dict[str, Any]" not in text, name
