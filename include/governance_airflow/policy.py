"""The cluster policy: no task of any DAG runs unattended without the retry settings it needs.

Every task must retry at least twice, back off exponentially, cap the delay and have a timeout, so
a transient outage at night is retried without flooding a service, and a hung task is killed. A
DAG that breaks the rule fails to load (an import error naming the DAG, the task and the setting)
instead of running without them. Airflow calls ``task_policy`` on every task of every DAG it
bags; ``airflow_local_settings`` (in the plugins folder) registers it.
"""

from __future__ import annotations

from typing import Any

from airflow.exceptions import AirflowClusterPolicyViolation

MIN_RETRIES = 2


def backoff_multiplier(task: Any) -> float:
    """The task's backoff multiplier as the scheduler reads it: ``True`` means 2, ``False`` 0."""
    value = task.retry_exponential_backoff
    if isinstance(value, bool):
        return 2.0 if value else 0.0
    return float(value or 0)


def missing_retry_settings(task: Any) -> list[str]:
    """Each required retry setting the task lacks, as ``setting=value (what it needs)``."""
    missing = []
    if (task.retries or 0) < MIN_RETRIES:
        missing.append(f"retries={task.retries} (needs >= {MIN_RETRIES})")
    if backoff_multiplier(task) <= 1:
        missing.append(
            f"retry_exponential_backoff={task.retry_exponential_backoff} (needs a multiplier > 1)"
        )
    if not task.max_retry_delay:
        missing.append("max_retry_delay not set (needs a cap on the backoff)")
    if not task.execution_timeout:
        missing.append("execution_timeout not set (needs a timeout)")
    return missing


def task_policy(task: Any) -> None:
    """Refuse a task without retries, exponential backoff, a delay cap and a timeout."""
    missing = missing_retry_settings(task)
    if missing:
        raise AirflowClusterPolicyViolation(
            f"DAG {task.dag_id!r} task {task.task_id!r} breaks the retry policy: "
            + "; ".join(missing)
        )
