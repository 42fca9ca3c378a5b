"""The gate's decision on figures with known answers."""

from __future__ import annotations

import copy

import pytest

from governance.contracts import GateSpec
from governance.gate import GateFacts, decide, gate_checks
from governance.manifest import AuditFigures, Conservation, PrivacyFigures, SplitCounts
from tests.manifests import manifest_dict, privacy_figures

CLASSES = ["pos", "neg"]
FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
SPEC = GateSpec(
    max_quarantine_rate=0.1,
    max_duplicate_rate=0.3,
    min_alpha=0.5,
    max_suspected_error_rate=0.05,
    min_rows_per_class_per_split=3,
    max_class_drift=0.1,
    max_pii_rate=0.05,
)


def healthy_manifest() -> dict:
    by_label = {"pos": 10, "neg": 5}
    return {
        "version": "2026-01-02",
        "conservation": {
            "rows_in": 100,
            "quarantined": 5,
            "duplicates": 10,
            **{split: 15 for split in FRACTIONS},
            "accounted": 60,
            "holds": False,  # the gate reads the shares only; conservation is publish's check
        },
        "counts": {
            "splits": {s: {"rows": 15, "items": 15, "by_label": dict(by_label)} for s in FRACTIONS},
        },
        "audit": audit(
            agreement={"krippendorff_alpha": 0.8},
            label_errors={"rate": 0.02},
            drift={"previous_version": "2026-01-01", "class_balance": {"max_share_change": 0.05}},
        ),
        "privacy": privacy_figures(100, 2, {"email": 2, "phone": 1}),
    }


def audit(**sections: dict | None) -> dict:
    """The sample manifest's audit with the given sections' figures replaced (None: the section
    does not apply)."""
    figures = copy.deepcopy(manifest_dict()["audit"]) | {"classes": CLASSES}
    for name, changes in sections.items():
        figures[name] = None if changes is None else merged(figures[name], changes)
    return figures


def merged(base: dict, changes: dict) -> dict:
    return {
        key: merged(base[key], value) if isinstance(value, dict) else value
        for key, value in {**base, **changes}.items()
    }


def first_version_drift() -> dict:
    """No previous version: every comparison is None."""
    return {
        "previous_version": None,
        "class_balance": {
            "previous": None,
            "max_share_change": None,
            "chi2": None,
            "p_value": None,
        },
        "text_length": {
            "previous_hist": None,
            "previous_median": None,
            "ks_statistic": None,
            "p_value": None,
        },
        "new_vocabulary_share": None,
    }


def figures(manifest: dict) -> GateFacts:
    """The sections the gate reads, typed as the manifest types them."""
    return GateFacts(
        Conservation.model_validate(manifest["conservation"]),
        {s: SplitCounts.model_validate(c) for s, c in manifest["counts"]["splits"].items()},
        AuditFigures.model_validate(manifest["audit"]),
        PrivacyFigures.model_validate(manifest["privacy"]) if manifest["privacy"] else None,
    )


def run_gate(manifest: dict, spec: GateSpec = SPEC) -> dict:
    checks = gate_checks(figures(manifest), spec, CLASSES, FRACTIONS)
    return decide(checks, "ds", manifest["version"]).model_dump()


def test_a_healthy_version_passes_every_check() -> None:
    decision = run_gate(healthy_manifest())
    assert decision["status"] == "passed" and decision["failed"] == []
    assert all(check["passed"] is True for check in decision["checks"])


BREAKS = {
    "max_quarantine_rate": (("conservation", "quarantined"), 20, "quarantined share of rows 20.0%"),
    "max_duplicate_rate": (("conservation", "duplicates"), 45, "duplicate share of rows 45.0%"),
    "min_alpha": (("audit", "agreement", "krippendorff_alpha"), 0.31, "alpha 0.31"),
    "max_suspected_error_rate": (("audit", "label_errors", "rate"), 0.2, "rate 20.0%"),
    "max_pii_rate": (
        ("privacy", "pii_rate"),
        0.3,
        "share of items holding personal data or secrets 30.0% (limit: max 5.0%), 2 email, 1 phone",
    ),
    "max_class_drift": (
        ("audit", "drift", "class_balance", "max_share_change"),
        0.4,
        "class share 40.0%",
    ),
}


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_each_threshold_fails_alone_with_its_observed_value(name: str) -> None:
    path, value, shown = BREAKS[name]
    manifest = copy.deepcopy(healthy_manifest())
    node = manifest
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    decision = run_gate(manifest)
    assert decision["status"] == "failed" and decision["failed"] == [name]
    assert shown in decision["message"]


def test_too_few_items_of_a_class_names_the_split_and_class() -> None:
    manifest = healthy_manifest()
    manifest["counts"]["splits"]["val"]["by_label"] = {"pos": 12}
    decision = run_gate(manifest)
    assert decision["failed"] == ["min_rows_per_class_per_split"]
    assert "fewest items of a class in a split 0 (limit: min 3), neg in val" in decision["message"]


def test_an_empty_val_split_is_not_checked_when_the_contract_has_none() -> None:
    manifest = healthy_manifest()
    manifest["counts"]["splits"]["val"]["by_label"] = {}
    checks = gate_checks(figures(manifest), SPEC, CLASSES, {"train": 0.9, "val": 0.0, "test": 0.1})
    assert decide(checks, "ds", "v").status == "passed"


def test_checks_that_cannot_apply_are_not_applicable_not_passed() -> None:
    manifest = healthy_manifest()
    manifest["audit"] = audit(agreement=None, label_errors=None, drift=first_version_drift())
    manifest["privacy"] = None  # a version written before the privacy scan
    decision = run_gate(manifest)
    verdicts = {check["name"]: check["passed"] for check in decision["checks"]}
    assert verdicts["min_alpha"] is None and verdicts["max_class_drift"] is None
    assert verdicts["max_pii_rate"] is None
    assert verdicts["max_suspected_error_rate"] is None
    assert decision["status"] == "passed" and "3 checks applied" in decision["message"]


def test_every_failure_is_listed_in_one_message() -> None:
    manifest = healthy_manifest()
    manifest["conservation"]["quarantined"] = 50
    manifest["audit"]["agreement"]["krippendorff_alpha"] = 0.1
    decision = run_gate(manifest)
    assert decision["failed"] == ["max_quarantine_rate", "min_alpha"]
    assert decision["message"].startswith("gate failed for ds 2026-01-02: ")
    assert decision["message"].count("(limit:") == 2
