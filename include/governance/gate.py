"""The quality gate: is this version fit to train on?

Every threshold of the contract is checked against one observed figure; a check that cannot apply
(no annotators for agreement, no previous version for drift) is recorded as not applicable rather
than passed. The decision carries one message listing every failed check with its value, so the
person on call knows what to fix without opening anything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from governance.contracts import Contract, GateSpec
from governance.errors import InvalidInputError
from governance.frames import SPLITS
from governance.manifest import (
    AuditFigures,
    Conservation,
    GateDecision,
    PrivacyFigures,
    SplitCounts,
    VersionFacts,
)


@dataclass(frozen=True)
class GateFacts:
    """The figures of a version that the gate reads."""

    conservation: Conservation
    splits: Mapping[str, SplitCounts]
    audit: AuditFigures
    privacy: PrivacyFigures | None = None


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    observed: float | None
    threshold: float
    comparison: str  # "<=" or ">="
    detail: str = ""
    percent: bool = True

    @property
    def passed(self) -> bool | None:
        if self.observed is None:
            return None
        if self.comparison == "<=":
            return self.observed <= self.threshold
        return self.observed >= self.threshold

    def show(self, value: float) -> str:
        return f"{value:.1%}" if self.percent else f"{value:.3g}"

    def failure(self) -> str:
        if self.observed is None:
            raise InvalidInputError(f"check {self.name}: not applicable, so it cannot have failed")
        bound = "max" if self.comparison == "<=" else "min"
        limit = f"{bound} {self.show(self.threshold)}"
        text = f"{self.description} {self.show(self.observed)} (limit: {limit})"
        return f"{text}, {self.detail}" if self.detail else text

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "observed": self.observed,
            "threshold": self.threshold,
            "comparison": self.comparison,
            "passed": self.passed,
            "detail": self.detail,
            "shown": {
                "observed": None if self.observed is None else self.show(self.observed),
                "threshold": self.show(self.threshold),
            },
        }


def _share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def smallest_class_in_split(
    splits: Mapping[str, SplitCounts], classes: list[str], fractions: dict[str, float]
) -> tuple[int | None, str]:
    """The fewest items of any class in any split the contract fills, and where that is."""
    cells = [
        (int(splits[split].by_label.get(label, 0)), f"{label} in {split}")
        for split in SPLITS
        if fractions.get(split, 0) > 0
        for label in classes
    ]
    if not cells:
        return None, ""
    return min(cells)


def gate_checks(
    facts: GateFacts, spec: GateSpec, classes: list[str], fractions: dict[str, float]
) -> list[Check]:
    """Every threshold of ``spec`` against the figures of a version."""
    conservation, audit = facts.conservation, facts.audit
    rows_in = conservation.rows_in
    drift = audit.drift
    fewest, where = smallest_class_in_split(facts.splits, classes, fractions)
    return [
        Check(
            "max_quarantine_rate",
            "quarantined share of rows",
            _share(conservation.quarantined, rows_in),
            spec.max_quarantine_rate,
            "<=",
        ),
        Check(
            "max_duplicate_rate",
            "duplicate share of rows",
            _share(conservation.duplicates, rows_in),
            spec.max_duplicate_rate,
            "<=",
        ),
        Check(
            "min_alpha",
            "Krippendorff's alpha",
            audit.agreement.krippendorff_alpha if audit.agreement else None,
            spec.min_alpha,
            ">=",
            percent=False,
        ),
        Check(
            "max_suspected_error_rate",
            "suspected label error rate",
            audit.label_errors.rate if audit.label_errors else None,
            spec.max_suspected_error_rate,
            "<=",
        ),
        Check(
            "min_rows_per_class_per_split",
            "fewest items of a class in a split",
            fewest,
            spec.min_rows_per_class_per_split,
            ">=",
            detail=where,
            percent=False,
        ),
        Check(
            "max_class_drift",
            "largest change of a class share",
            drift.class_balance.max_share_change,
            spec.max_class_drift,
            "<=",
            detail=f"against {drift.previous_version}" if drift.previous_version else "",
        ),
        pii_check(facts.privacy, spec),
    ]


def pii_check(privacy: PrivacyFigures | None, spec: GateSpec) -> Check:
    """Items holding personal data or secrets, whatever the contract does with them: a night
    that suddenly holds many is a leak upstream even when every value is masked."""
    return Check(
        "max_pii_rate",
        "share of items holding personal data or secrets",
        privacy.pii_rate if privacy else None,
        spec.max_pii_rate,
        "<=",
        detail=_entities(privacy),
    )


def _entities(privacy: PrivacyFigures | None) -> str:
    if not privacy or not privacy.entities:
        return ""
    return ", ".join(f"{count} {entity}" for entity, count in privacy.entities.items())


def decide(checks: list[Check], dataset: str, version: str) -> GateDecision:
    """The gate's decision: passed unless a check that applies failed."""
    failed = [check for check in checks if check.passed is False]
    if failed:
        listed = "; ".join(check.failure() for check in failed)
        message = f"gate failed for {dataset} {version}: {listed}"
    else:
        applied = sum(check.passed is not None for check in checks)
        message = f"gate passed for {dataset} {version}: {applied} checks applied, none failed"
    return GateDecision.model_validate(
        {
            "status": "failed" if failed else "passed",
            "message": message,
            "checks": [check.to_dict() for check in checks],
            "failed": [check.name for check in failed],
        }
    )


def evaluate_gate(facts: VersionFacts, contract: Contract) -> GateDecision:
    """The contract's gate applied to a version's figures."""
    figures = GateFacts(facts.conservation, facts.counts.splits, facts.audit, facts.privacy)
    checks = gate_checks(figures, contract.gate, contract.labels.classes, contract.split.fractions)
    return decide(checks, contract.name, facts.version)
