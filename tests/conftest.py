"""Test settings: a private Airflow home and data root, so tests never touch a user's state.

Airflow reads its configuration at first import, so the environment is set here, before any test
module imports it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"
SENTI4SD_CSV = SHARED_DATASETS / "senti4sd_gold" / "Senti4SD_GoldStandard_EmotionPolarity.csv"
SMS_SPAM_TSV = SHARED_DATASETS / "sms_spam_collection" / "SMSSpamCollection"
TEST_AIRFLOW_HOMES = PROJECT_ROOT / ".airflow-test"
# One home per test process, so two test runs side by side never share a metadata database.
TEST_AIRFLOW_HOME = TEST_AIRFLOW_HOMES / str(os.getpid())


def embedded_airflow_env(home: Path) -> dict[str, str]:
    """An embedded Airflow (SQLite, LocalExecutor) with its home at ``home`` and this project's
    DAGs and plugins, offline."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "HF_HUB_OFFLINE": "1",
    }


os.environ.update(embedded_airflow_env(TEST_AIRFLOW_HOME))


def _pid_alive(name: str) -> bool:
    try:
        os.kill(int(name), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


# Every test run starts from an empty metadata database, before anything imports Airflow;
# homes of finished runs are removed.
if TEST_AIRFLOW_HOMES.is_dir():
    for home in TEST_AIRFLOW_HOMES.iterdir():
        if not _pid_alive(home.name):
            shutil.rmtree(home, ignore_errors=True)
shutil.rmtree(TEST_AIRFLOW_HOME, ignore_errors=True)
TEST_AIRFLOW_HOME.mkdir(parents=True)
for folder in ("plugins", "dags"):
    if str(PROJECT_ROOT / folder) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT / folder))


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A freshly migrated metadata database for tests that run DAGs through Airflow."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    return TEST_AIRFLOW_HOME / "airflow.db"


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data root for one test."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("GOVERNANCE_DATA_ROOT", str(root))
    return root


@pytest.fixture
def shared_datasets() -> Path:
    assert SHARED_DATASETS.is_dir(), f"the shared datasets must lie at {SHARED_DATASETS}"
    return SHARED_DATASETS


@contextlib.contextmanager
def private_mlflow(base: Path) -> Iterator[Path]:
    """A data root, artifact root and sqlite MLflow store under ``base``; MLflow's global
    settings are undone afterwards."""
    import mlflow

    uri = f"sqlite:///{base / 'store' / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOVERNANCE_DATA_ROOT", str(base / "data"))
        patch.setenv("GOVERNANCE_MLFLOW_ARTIFACTS", str(base / "artifacts"))
        # tracking.configure() exports both; undoing these patches removes them again
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_REGISTRY_URI", uri)
        yield base
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
