"""Which task failures are worth another try.

Airflow's retry policy (``airflow.sdk.RetryPolicy``) is evaluated in the worker with the real
exception: the project's own errors say through ``GovernanceError.retryable`` whether a retry can
help (bad data, bad contract, failed gate: no; an earlier day not settled yet: yes); an MLflow
request refused with a 4xx fails the task at once, and a transient error (network, disk, time-out;
an MLflow server error or rate limit) is retried. No rule overrides the delay, so retries keep the
task's exponential backoff up to ``max_retry_delay``. The task wrappers use ``failing_fast``,
which reads the same attribute.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryDecision, RetryRule
from airflow.sdk.exceptions import AirflowFailException

from governance.errors import GovernanceError, is_retryable

TRANSIENT_HTTP_STATUSES = frozenset({408, 429})

RULES = [
    RetryRule(
        exception=[ConnectionError, TimeoutError, OSError],
        action=RetryAction.RETRY,
        reason="transient I/O or network error",
    ),
]


def mlflow_http_status(exception: BaseException) -> int | None:
    """The HTTP status of an MLflow REST error; ``None`` for any other exception.

    MLflow is looked up in ``sys.modules`` instead of imported: an MLflow error can only have been
    raised once MLflow was imported, and parsing a DAG must not import it.
    """
    exceptions = sys.modules.get("mlflow.exceptions")
    if exceptions is None or not isinstance(exception, exceptions.RestException):
        return None
    return int(exception.get_http_status_code())


class GovernanceRetryPolicy(ExceptionRetryPolicy):
    """The project's rules, plus MLflow REST errors judged by their HTTP status."""

    def __init__(self) -> None:
        super().__init__(rules=RULES, default=RetryAction.DEFAULT)

    def evaluate(
        self,
        exception: BaseException,
        try_number: int,
        max_tries: int,
        context: Any = None,
    ) -> RetryDecision:
        retryable = is_retryable(exception)
        if retryable is not None:
            if retryable:
                return RetryDecision.retry(reason=f"{type(exception).__name__}: retryable")
            return RetryDecision.fail(
                reason=f"{type(exception).__name__}: the input must change, not the attempt"
            )
        status = mlflow_http_status(exception)
        if status is None:
            return super().evaluate(exception, try_number, max_tries, context)
        if status >= 500 or status in TRANSIENT_HTTP_STATUSES:
            return RetryDecision.retry(reason=f"MLflow server answered {status}: transient")
        return RetryDecision.fail(reason=f"MLflow refused the request with {status}")

    def serialize(self) -> dict[str, Any]:
        return {"__type": type(self).__name__}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> GovernanceRetryPolicy:
        return cls()


GOVERNANCE_RETRY_POLICY = GovernanceRetryPolicy()


@contextlib.contextmanager
def failing_fast(what: str) -> Iterator[None]:
    """A project error a retry cannot fix ends the task with ``AirflowFailException`` (no retry
    whatever the task's policy), named after ``what``; every other error goes on to the retry
    policy."""
    try:
        yield
    except GovernanceError as exc:
        if exc.retryable:
            raise
        raise AirflowFailException(f"{what}: {exc}") from exc
