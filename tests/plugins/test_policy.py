"""The retry rules: the cluster policy refuses a DAG without them, the retry policy fails at once
what a retry cannot fix, and retries wait longer and longer, up to the cap."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from airflow.sdk import RetryAction

from governance.contracts import ContractError
from governance.errors import (
    GateFailedError,
    IngestError,
    InvalidInputError,
    MissingInputError,
    NonRetryableError,
)
from governance.history import HistoryNotSettledError
from governance.publish import ConservationError
from governance_airflow.factory import task_defaults
from governance_airflow.retries import GOVERNANCE_RETRY_POLICY

PROJECT_ROOT = Path(__file__).resolve().parents[2]

DAG_FILE = """
import datetime as dt

from airflow.sdk import DAG, task

from governance_airflow.factory import task_defaults

with DAG(
    {dag_id!r},
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    default_args=task_defaults("qa"),
):

    @task
    def compliant():
        return 1

    @task(**{overrides})
    def offending():
        return 2

    compliant() >> offending()
"""

BROKEN_SETTINGS = {
    "retries": "dict(retries=1)",
    "retry_exponential_backoff": "dict(retry_exponential_backoff=1.0)",
    "max_retry_delay": "dict(max_retry_delay=None)",
    "execution_timeout": "dict(execution_timeout=None)",
}


def write_dag(folder: Path, dag_id: str, overrides: str = "{}") -> Path:
    path = folder / f"{dag_id}.py"
    path.write_text(DAG_FILE.format(dag_id=dag_id, overrides=overrides))
    return path


def dag_bag(folder: Path):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(folder))


@pytest.fixture(scope="module")
def shipped_bag():
    return dag_bag(PROJECT_ROOT / "dags")


@pytest.mark.parametrize("setting", sorted(BROKEN_SETTINGS))
def test_a_task_without_a_retry_setting_fails_to_load(tmp_path: Path, setting: str) -> None:
    dag_id = f"lacks_{setting}"
    path = write_dag(tmp_path, dag_id, BROKEN_SETTINGS[setting])
    bag = dag_bag(tmp_path)
    assert bag.dag_ids == []
    error = bag.import_errors[str(path)]
    assert error.startswith("AirflowClusterPolicyViolation:")
    assert f"DAG {dag_id!r} task 'offending'" in error
    named = {s for s in BROKEN_SETTINGS if s in error}
    assert named == {setting}


def test_a_dag_with_every_setting_loads(tmp_path: Path) -> None:
    write_dag(tmp_path, "compliant")
    bag = dag_bag(tmp_path)
    assert bag.import_errors == {}
    assert bag.dag_ids == ["compliant"]


def test_every_shipped_dag_passes_the_active_policy(shipped_bag, tmp_path: Path) -> None:
    from airflow import settings

    assert shipped_bag.import_errors == {}
    assert shipped_bag.dag_ids
    hooks = settings.get_policy_plugin_manager().hook.task_policy.get_hookimpls()
    assert [h.plugin_name for h in hooks] == ["AirflowLocalSettingsPolicy"]
    # the same bag refuses a DAG that breaks the policy
    bad = write_dag(tmp_path, "breaks_policy", BROKEN_SETTINGS["retries"])
    assert shipped_bag.process_file(str(bad)) == []
    assert "AirflowClusterPolicyViolation" in shipped_bag.import_errors[str(bad)]
    assert "breaks_policy" not in shipped_bag.dag_ids


def test_airflow_finds_the_policy_through_its_plugins_folder_alone(tmp_path: Path) -> None:
    """As in ``make run``: nothing but ``[core] plugins_folder`` tells Airflow where it is."""
    write_dag(tmp_path, "breaks_policy", BROKEN_SETTINGS["execution_timeout"])
    script = textwrap.dedent(
        f"""
        import json, sys
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(tmp_path)!r})
        print(json.dumps([sys.modules["airflow_local_settings"].__file__, bag.import_errors]))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {
        "AIRFLOW_HOME": str(tmp_path / "home"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
    }
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    found, errors = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(found) == PROJECT_ROOT / "plugins" / "airflow_local_settings.py"
    (error,) = errors.values()
    assert "AirflowClusterPolicyViolation" in error and "execution_timeout" in error


def test_every_shipped_task_carries_the_retry_policy(shipped_bag) -> None:
    for dag in shipped_bag.dags.values():
        for task in dag.tasks:
            assert task.retry_policy is GOVERNANCE_RETRY_POLICY, f"{dag.dag_id}.{task.task_id}"


def decide(exception: BaseException):
    return GOVERNANCE_RETRY_POLICY.evaluate(exception, try_number=1, max_tries=2)


def project_errors() -> list[type[BaseException]]:
    """Every exception class the core defines, found by importing each of its modules."""
    import importlib
    import inspect
    import pkgutil

    import governance

    found = []
    for module in pkgutil.iter_modules(governance.__path__):
        loaded = importlib.import_module(f"governance.{module.name}")
        for _, cls in inspect.getmembers(loaded, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__.startswith("governance"):
                found.append(cls)
    return sorted(set(found), key=lambda cls: cls.__qualname__)


def test_every_error_of_the_core_is_a_governance_error_that_says_if_a_retry_helps() -> None:
    from governance.errors import GovernanceError

    errors = project_errors()
    assert len(errors) >= 10
    for cls in errors:
        assert issubclass(cls, GovernanceError), cls
        assert isinstance(cls.retryable, bool), cls


@pytest.mark.parametrize(
    "exception",
    [
        GateFailedError("gate"),
        IngestError("schema"),
        NonRetryableError("contract"),
        ContractError("demo.yaml: key 'name'"),
        ConservationError("3 rows unaccounted"),
        # an OSError to Python, which a retry would not bring back
        MissingInputError("truth.json: missing from the published version"),
        InvalidInputError("fractions must sum to 1"),
    ],
    ids=type,
)
def test_errors_a_retry_cannot_fix_fail_at_once(exception: BaseException) -> None:
    assert decide(exception).action is RetryAction.FAIL


def test_a_day_waiting_for_an_earlier_one_is_retried() -> None:
    decision = decide(HistoryNotSettledError("waiting for 2026-11-04 to settle"))
    assert decision.action is RetryAction.RETRY
    assert decision.retry_delay is None


@pytest.mark.parametrize(
    ("error", "fails"),
    [(GateFailedError("refused"), True), (HistoryNotSettledError("later"), False)],
    ids=lambda value: type(value).__name__,
)
def test_task_wrappers_fail_fast_on_what_the_policy_fails(error: Exception, fails: bool) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from governance_airflow.retries import failing_fast

    expected = AirflowFailException if fails else type(error)
    with pytest.raises(expected, match=str(error)), failing_fast("demo 2026-11-04 gate"):
        raise error


@pytest.mark.parametrize(
    "exception",
    [
        OSError("disk"),
        ConnectionResetError("reset"),
        TimeoutError("slow"),
        BrokenPipeError("pipe"),
        FileNotFoundError("nfs hiccup"),
    ],
    ids=type,
)
def test_transient_errors_are_retried_with_the_tasks_backoff(exception: BaseException) -> None:
    decision = decide(exception)
    assert decision.action is RetryAction.RETRY
    assert decision.retry_delay is None  # the exponential backoff stays in charge


@pytest.mark.parametrize(
    ("error_code", "status", "action"),
    [
        ("INTERNAL_ERROR", 500, RetryAction.RETRY),
        ("TEMPORARILY_UNAVAILABLE", 503, RetryAction.RETRY),
        ("REQUEST_LIMIT_EXCEEDED", 429, RetryAction.RETRY),
        ("RESOURCE_DOES_NOT_EXIST", 404, RetryAction.FAIL),
        ("INVALID_PARAMETER_VALUE", 400, RetryAction.FAIL),
    ],
)
def test_mlflow_rest_errors_are_judged_by_their_http_status(
    error_code: str, status: int, action: RetryAction
) -> None:
    from mlflow.exceptions import RestException

    error = RestException({"error_code": error_code, "message": "from the tracking server"})
    assert error.get_http_status_code() == status
    decision = decide(error)
    assert decision.action is action
    assert str(status) in decision.reason


def test_other_errors_keep_airflows_default() -> None:
    assert decide(ValueError("bug")).action is RetryAction.DEFAULT


def backoff_bounds(retry_delay: float, multiplier: float, cap: float, try_number: int):
    """Airflow's documented backoff: retry_delay * multiplier**(try-1), with up to as much again
    of jitter, capped at max_retry_delay."""
    low = retry_delay * multiplier ** (try_number - 1)
    return min(low, cap), min(2 * low - 1, cap)


def test_retry_delays_grow_exponentially_up_to_the_cap(shipped_bag) -> None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.serialization.serialized_objects import create_scheduler_operator

    defaults = task_defaults("qa")
    base = defaults["retry_delay"].total_seconds()
    cap = defaults["max_retry_delay"].total_seconds()
    task = create_scheduler_operator(
        shipped_bag.dags["govern_sms_spam"].get_task("ingest_validate")
    )
    ti = TaskInstance(task=task, run_id="scheduled__2026-03-01", dag_version_id=uuid.uuid4())
    ti.end_date = dt.datetime(2026, 3, 1, 1, tzinfo=dt.UTC)
    delays = []
    for try_number in range(1, 9):
        ti.try_number = try_number
        delay = (ti.next_retry_datetime() - ti.end_date).total_seconds()
        low, high = backoff_bounds(base, defaults["retry_exponential_backoff"], cap, try_number)
        assert low <= delay <= high, (try_number, delay)
        delays.append(delay)
    uncapped = [d for d in delays if d < cap]
    assert len(uncapped) >= 4 and uncapped == sorted(set(uncapped))
    assert delays[-1] == cap and max(delays) == cap


RETRY_PROBE = """
import datetime as dt
from pathlib import Path

from airflow.sdk import DAG, task

from governance.errors import GateFailedError
from governance_airflow.factory import task_defaults

COUNTER = Path({counter!r})

with DAG(
    "retry_probe",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    default_args={{**task_defaults("qa"), "retry_delay": dt.timedelta(0)}},
):

    @task
    def refused():
        raise GateFailedError("the gate refused the version")

    @task(retry_policy=None)
    def refused_without_policy():
        raise GateFailedError("the gate refused the version")

    @task
    def flaky():
        tries = int(COUNTER.read_text()) + 1
        COUNTER.write_text(str(tries))
        if tries < 3:
            raise ConnectionResetError(f"try {{tries}}: connection reset by peer")
        return tries

    refused()
    refused_without_policy()
    flaky()
"""


@pytest.mark.airflow
def test_a_run_fails_refusals_at_once_and_retries_transient_errors(
    airflow_db: Path, tmp_path: Path
) -> None:
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import sync_bag_to_db
    from airflow.models.taskinstancehistory import TaskInstanceHistory
    from airflow.utils.session import create_session

    from tests.integration.helpers import task_states

    counter = tmp_path / "flaky_tries"
    counter.write_text("0")
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "retry_probe.py").write_text(RETRY_PROBE.format(counter=str(counter)))
    bag = dag_bag(folder)
    assert bag.import_errors == {}
    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(bag, "dags-folder", None)

    dag_run = bag.dags["retry_probe"].test()

    assert task_states(dag_run) == {
        "refused": ("failed", 1),
        "refused_without_policy": ("failed", 3),
        "flaky": ("success", 3),
    }
    with create_session() as session:
        earlier = session.query(TaskInstanceHistory).filter_by(
            dag_id="retry_probe", run_id=dag_run.run_id, task_id="flaky"
        )
        reasons = {h.try_number: h.retry_reason for h in earlier}
    assert reasons == {1: "transient I/O or network error", 2: "transient I/O or network error"}
