"""ARCHITECTURE.md's stage table is the stage table: same stages, tasks and order."""

from __future__ import annotations

from governance.stages import STAGES
from tests.conftest import PROJECT_ROOT


def documented_stages() -> list[tuple[str, str]]:
    text = (PROJECT_ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    table = text.split("## The stage table", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:]]
    return [(row[0], row[1]) for row in cells if not set(row[0]) <= {"-", " "}]


def test_the_documented_stages_are_the_declared_ones_in_order() -> None:
    assert documented_stages() == [(stage.name, stage.task_id) for stage in STAGES]
