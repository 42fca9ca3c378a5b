"""ARCHITECTURE.md is the code's map: its stage table is the stage table, it names every module,
and the layers it draws hold (the core imports neither Airflow nor the demo generators)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

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


CORE = PROJECT_ROOT / "include" / "governance"
AIRFLOW_PACKAGE = PROJECT_ROOT / "include" / "governance_airflow"


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_every_module_is_on_the_map() -> None:
    text = (PROJECT_ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    named = set(re.findall(r"[a-z_]+", text))
    modules = [
        path
        for package in (CORE, AIRFLOW_PACKAGE)
        for path in package.rglob("*.py")
        if not path.stem.startswith("__")
    ]
    assert len(modules) > 40
    assert [str(p.relative_to(PROJECT_ROOT)) for p in modules if p.stem not in named] == []


def test_the_core_imports_neither_airflow_nor_the_demo_generators() -> None:
    core = [path for path in CORE.rglob("*.py") if "demo" not in path.relative_to(CORE).parts]
    leaks = {
        str(path.relative_to(PROJECT_ROOT)): sorted(
            name
            for name in imported_modules(path)
            if name.split(".")[0] in ("airflow", "governance_airflow")
            or name.startswith("governance.demo")
        )
        for path in core
    }
    assert {path: names for path, names in leaks.items() if names} == {}


MAX_MODULE_LINES, MAX_FUNCTION_LINES = 500, 60


def production_modules() -> list[Path]:
    return sorted(p for package in (CORE, AIRFLOW_PACKAGE) for p in package.rglob("*.py"))


def test_modules_and_functions_stay_small_enough_to_read() -> None:
    long_modules, long_functions = [], []
    for path in production_modules():
        text = path.read_text(encoding="utf-8")
        where = str(path.relative_to(PROJECT_ROOT))
        if len(text.splitlines()) > MAX_MODULE_LINES:
            long_modules.append(where)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long_functions.append(f"{where}:{node.lineno} {node.name} ({lines} lines)")
    assert long_modules == []
    assert long_functions == []
