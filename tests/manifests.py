"""A complete version manifest with figures chosen by hand, for tests of its readers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from governance.manifest import MANIFEST, VersionManifest
from governance.publish import write_json_atomic


def privacy_figures(items: int, with_pii: int, entities: dict[str, int]) -> dict[str, Any]:
    """The manifest's privacy section for ``with_pii`` of ``items`` items, every entity masked."""
    return {
        "items": items,
        "items_with_pii": with_pii,
        "pii_rate": with_pii / items,
        "entities": entities,
        "actions": {"mask": sum(entities.values())},
        "quarantined_items": 0,
        "quarantined": 0,
        "quarantine_previews": {},
        "policy": dict.fromkeys(entities, "mask"),
    }


def manifest_dict() -> dict[str, Any]:
    """demo_reviews 2026-04-02: 1204 rows in, 43 quarantined, a gate that failed two checks."""
    splits = {"train": (300, 284), "val": (40, 37), "test": (37, 35)}
    return {
        "dataset": "demo_reviews",
        "version": "2026-04-02",
        "published": False,
        "dry_run": False,
        "created_by": {"run_id": "manual__2026-04-02"},
        "contract": {"name": "demo_reviews"},
        "conservation": {
            "rows_in": 1204,
            "quarantined": 43,
            "duplicates": 784,
            "train": 300,
            "val": 40,
            "test": 37,
            "accounted": 1204,
            "holds": True,
        },
        "counts": {
            "rows_in": 1204,
            "quarantined": {
                "total": 43,
                "by_stage": {"parse": 1, "validate": 9, "dedup": 33},
                "by_reason": {
                    "json_error": 1,
                    "text: length outside 20..500": 9,
                    "label_conflict": 23,
                    "bridges_splits": 10,
                },
                "by_kind": {"parse": 1, "check": 9, "conflict": 23, "leakage": 10},
                "reasons": [
                    {"stage": "parse", "kind": "parse", "check": "json_error", "column": None,
                     "rows": 1},
                    {"stage": "validate", "kind": "check", "check": "length outside 20..500",
                     "column": "text", "rows": 9},
                    {"stage": "dedup", "kind": "conflict", "check": "label_conflict",
                     "column": None, "rows": 23},
                    {"stage": "dedup", "kind": "leakage", "check": "bridges_splits",
                     "column": None, "rows": 10},
                ],
            },
            "duplicates": {"exact": 16, "near": 16},
            "conflicts": 7,
            "splits": {
                name: {"rows": rows, "items": items, "by_label": {"pos": items}}
                for name, (rows, items) in splits.items()
            },
        },
        "label_mapping": {},
        "warnings": [],
        "dedup": {},
        "thresholds": {"min_alpha": 0.5},
        "inputs": [],
        "audit": {
            "items": 356,
            "classes": ["pos", "neg"],
            "multi_annotator": True,
            "skipped": [],
            "consensus": {
                "items": 356,
                "requested": "auto",
                "aggregator": "one_coin",
                "reason": "one_coin predicts held-out votes better than plurality",
                "candidates": [
                    {"name": "plurality", "log_likelihood": -0.9, "gain": 0.0,
                     "standard_error": 0.0},
                    {"name": "one_coin", "log_likelihood": -0.8, "gain": 0.1,
                     "standard_error": 0.02},
                ],
                "folds": 5,
                "scored_votes": 1000,
                "fitted_votes": 1068,
                "earlier_votes": 0,
                "no_majority_items": 16,
                "changed_from_plurality": 5,
                "disagrees_with_label": 9,
                "mean_confidence": 0.9,
            },
            "agreement": {
                "krippendorff_alpha": -0.125,
                "fleiss_kappa": -0.1,
                "fleiss_items": 350,
                "annotators": 12,
                "votes": 1068,
                "per_class": {},
            },
            "annotators": {
                "count": 12, "flagged": ["ann_04"], "min_accuracy": 0.6, "min_items": 20,
                "interval_confidence": 0.95, "not_enough_data": 1,
            },
            "label_errors": {
                "method": "cleanlab",
                "model": "tfidf+logreg",
                "folds": 5,
                "items": 356,
                "unlabelled_items": 0,
                "suspected": 11,
                "rate": 0.031,
                "out_of_fold_accuracy": 0.8,
            },
            "drift": {
                "previous_version": "2026-04-01",
                "class_balance": {
                    "current": {"pos": 1.0, "neg": 0.0},
                    "previous": {"pos": 0.6, "neg": 0.4},
                    "max_share_change": 0.4,
                    "chi2": 6.6,
                    "p_value": 0.01,
                },
                "text_length": {
                    "bins": [0.0, 100.0, 200.0],
                    "current_hist": [200, 156],
                    "previous_hist": [180, 170],
                    "current_median": 95.0,
                    "previous_median": 101.0,
                    "ks_statistic": 0.05,
                    "p_value": 0.5,
                },
                "new_vocabulary_share": 0.02,
            },
        },
        "history": {"origin": "2026-04-01", "digest": "d", "versions": []},
        "state": "current",
        "gate": {
            "status": "failed",
            "message": "gate failed",
            "checks": [],
            "failed": ["min_alpha", "max_class_drift"],
        },
    }  # fmt: skip


def sample_manifest(**changes: Any) -> VersionManifest:
    """The manifest above, typed, with top-level sections replaced by ``changes``."""
    return VersionManifest.model_validate(manifest_dict() | changes)


def write_manifest(folder: Path, **changes: Any) -> None:
    """A valid ``manifest.json`` in ``folder`` (a version of ``folder.name``), no data files."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = manifest_dict() | {"version": folder.name, "outputs": {}} | changes
    write_json_atomic(folder / MANIFEST, VersionManifest.model_validate(manifest).written())
