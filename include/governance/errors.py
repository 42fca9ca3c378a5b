"""The project's exception classes.

Airflow tasks retry on failure; these classes tell the wiring which failures a retry cannot fix, so
a bad file or contract fails the run at once with a message a person can act on.
"""

from __future__ import annotations


class GovernanceError(Exception):
    """Base of every error the governance package raises on purpose."""


class NonRetryableError(GovernanceError):
    """A retry cannot fix it (bad schema, bad contract, failed gate)."""


class IngestError(NonRetryableError):
    """The day's landing files cannot be read as the contract says."""


class PartitionMissingError(IngestError):
    """The day's folder does not exist."""


class EmptyPartitionError(IngestError):
    """The day's folder exists but holds no file matching the contract's source.pattern."""


class GateFailedError(NonRetryableError):
    """The version missed a quality threshold; the data must change, not the attempt."""
