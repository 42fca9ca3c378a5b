"""The Makefile's user-facing targets, read as ``make -n`` prints them (nothing runs)."""

from __future__ import annotations

import subprocess

from tests.conftest import PROJECT_ROOT


def dry_run(target: str) -> str:
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", target],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_make_ui_listens_on_loopback_only() -> None:
    # admin/admin is the embedded UI's login: it must not be reachable from another machine.
    recipe = dry_run("ui")
    assert "0.0.0.0" not in recipe
    assert "AIRFLOW__API__HOST=127.0.0.1" in recipe
    (mlflow,) = [line for line in recipe.splitlines() if "mlflow ui" in line]
    assert "--host 127.0.0.1" in mlflow


def test_make_test_installs_the_browser_and_runs_every_test() -> None:
    recipe = dry_run("test")
    assert "-m pytest" in recipe
    assert "-m pytest -m" not in recipe and " -k " not in recipe, "make test selects tests"
