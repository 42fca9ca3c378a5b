"""Why a record was quarantined, as data: a kind, the check that refused it, the column it names
and a message for a reviewer.

A quarantine row holds its reasons twice: structured (``causes``, a list of reasons, one per
rule the record broke) for counting and filtering, and as the one line a reviewer reads
(``reasons``), rendered from them. Nothing parses the line back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

# The fields of a reason as stored in a quarantine row's ``causes`` list.
CAUSE_FIELDS = ("kind", "check", "column", "message")
SEPARATOR = "; "


class ReasonKind(StrEnum):
    """What sort of refusal a reason is; a reviewer filters the queue by it."""

    LANDING = "landing"  # the file itself was refused: outside the landing folder, compressed...
    PARSE = "parse"  # the record could not be read: encoding, quoting, field count, JSON, length
    SCHEMA = "schema"  # the file lacks the contract's columns, so none of its records is usable
    CHECK = "check"  # a value broke one of the contract's column checks
    DUPLICATE = "duplicate"  # the partition repeats an id or a vote
    CONFLICT = "conflict"  # copies of one item disagree: text under one id, labels in a cluster
    LEAKAGE = "leakage"  # keeping the item would join published splits
    POLICY = "policy"  # a contract policy of a later stage refused the item
    PRIVACY = "privacy"  # the item holds personal data or a secret the contract quarantines


@dataclass(frozen=True)
class Reason:
    """One rule a record broke. ``check`` is stable for a contract; ``message`` is row detail."""

    kind: ReasonKind
    check: str
    column: str | None = None
    message: str = ""

    @property
    def key(self) -> str:
        """What the manifest counts rows by: the check, with its column when it names one."""
        return f"{self.column}: {self.check}" if self.column else self.check

    @property
    def text(self) -> str:
        """The reviewer's line: the key, then the row's detail."""
        return f"{self.key}: {self.message}" if self.message else self.key

    def record(self) -> dict[str, str | None]:
        return {
            "kind": str(self.kind),
            "check": self.check,
            "column": self.column,
            "message": self.message,
        }


def rendered(reasons: Sequence[Reason]) -> str:
    return SEPARATOR.join(reason.text for reason in reasons)


def causes_column(reasons: Iterable[Sequence[Reason]]) -> list[list[dict[str, str | None]]]:
    """The ``causes`` values of quarantine rows, one list of reason records per row."""
    return [[reason.record() for reason in row] for row in reasons]


def from_record(record: Mapping[str, str | None]) -> Reason:
    return Reason(
        kind=ReasonKind(str(record["kind"])),
        check=str(record["check"]),
        column=record["column"],
        message=record["message"] or "",
    )
