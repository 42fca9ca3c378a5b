"""The project's exception classes, one hierarchy under ``GovernanceError``.

Airflow tasks retry on failure. Each class says through ``retryable`` whether another try of the
same task can succeed; the retry policy and the task wrappers read that one attribute, so a bad
file or contract fails the run at once with a message a person can act on, and a day waiting for
an earlier one is tried again.
"""

from __future__ import annotations

from typing import ClassVar


class GovernanceError(Exception):
    """Base of every error the governance package raises on purpose."""

    retryable: ClassVar[bool] = False


class NonRetryableError(GovernanceError):
    """A retry cannot fix it (bad schema, bad contract, failed gate): the input must change."""

    retryable: ClassVar[bool] = False


class RetryableError(GovernanceError):
    """A later try can succeed once something else has happened (an earlier day settled)."""

    retryable: ClassVar[bool] = True


class InvalidInputError(NonRetryableError, ValueError):
    """A value, table or setting a function was given cannot be used as it is."""


class MissingInputError(NonRetryableError, FileNotFoundError):
    """A file that must exist does not (not a transient I/O error: retrying finds it missing)."""


class IngestError(NonRetryableError):
    """The day's landing files cannot be read as the contract says."""


class PartitionMissingError(IngestError):
    """The day's folder does not exist."""


class EmptyPartitionError(IngestError):
    """The day's folder holds no data row: no file matching the contract's source.pattern, or
    only files that are empty or hold a header alone."""


class DaySkipped(GovernanceError):
    """The day settled as skipped (an empty partition the contract allows): nothing is
    published and nothing downstream runs. Not a failure, and not retried."""


class GateFailedError(NonRetryableError):
    """The version missed a quality threshold; the data must change, not the attempt."""


def is_retryable(exception: BaseException) -> bool | None:
    """What the project says of an exception: ``None`` when it is not one of its own."""
    if isinstance(exception, GovernanceError):
        return exception.retryable
    return None
