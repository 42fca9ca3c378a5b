"""The labeling audit of one version: consensus, agreement, annotators, label errors, drift.

Runs on the items kept for publication (every split), so its figures describe exactly what a
fine-tune would train and test on. Single-label datasets skip what needs several annotators and
say so in ``skipped``; nothing is silently left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from governance import frames as F
from governance.audit.agreement import agreement_summary, pairwise_cohen_kappa
from governance.audit.consensus import build_consensus
from governance.audit.drift import compare_versions
from governance.audit.label_errors import find_suspected_errors
from governance.contracts import AuditSpec, Contract

AUDIT_TABLES = (
    "consensus",
    "annotator_quality",
    "annotator_confusion",
    "annotator_pairs",
    "review_queue",
)
SINGLE_LABEL = "single-label dataset, one label per item"


@dataclass(frozen=True)
class AuditResult:
    tables: dict[str, pd.DataFrame]
    summary: dict[str, Any]


def _with_split(table: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    return table.merge(items[[F.ITEM_ID, F.SPLIT]], on=F.ITEM_ID, how="left")


def _annotator_figures(quality: pd.DataFrame, spec: AuditSpec) -> dict[str, Any]:
    return {
        "count": len(quality),
        "flagged": quality.loc[quality["flagged"], "annotator"].tolist(),
        "min_accuracy": spec.min_annotator_accuracy,
        "min_items": spec.min_annotator_items,
        "interval_confidence": spec.interval_confidence,
        "not_enough_data": int((quality["assessment"] == "not enough data").sum()),
    }


def run_audit(
    contract: Contract,
    items: pd.DataFrame,
    annotations: pd.DataFrame,
    previous: pd.DataFrame | None = None,
    previous_version: str | None = None,
    earlier_votes: pd.DataFrame | None = None,
) -> AuditResult:
    """Audit ``items`` (with their split) and their votes against the previous version;
    ``earlier_votes`` (of earlier versions) join the consensus fit."""
    classes = list(contract.labels.classes)
    spec = contract.audit
    annotations = annotations[annotations[F.ITEM_ID].isin(items[F.ITEM_ID])]
    multi = not annotations.empty
    skipped: list[str] = []
    consensus = build_consensus(items, annotations, classes, spec, earlier_votes)
    pairs = pairwise_cohen_kappa(annotations, classes, spec.min_pair_overlap)
    if multi:
        agreement = agreement_summary(annotations, classes)
        annotators = _annotator_figures(consensus.quality, spec)
    else:
        agreement, annotators = None, None
        skipped += [
            f"consensus: {SINGLE_LABEL}, the given label stands",
            f"agreement: {SINGLE_LABEL}, needs several annotators per item",
            f"annotator quality: {SINGLE_LABEL}, no annotators to assess",
        ]
    errors = find_suspected_errors(
        items, classes, annotations, consensus.consensus, spec.folds, spec.seed
    )
    if errors.skipped:
        skipped.append(errors.skipped)
    summary = {
        "items": len(items),
        "classes": classes,
        "multi_annotator": multi,
        "skipped": skipped,
        "consensus": consensus.summary or None,
        "agreement": agreement,
        "annotators": annotators,
        "label_errors": errors.summary,
        "drift": compare_versions(items, previous, classes, previous_version),
    }
    tables = {
        "consensus": _with_split(consensus.consensus, items),
        "annotator_quality": consensus.quality,
        "annotator_confusion": consensus.confusion,
        "annotator_pairs": pairs,
        "review_queue": errors.queue,
    }
    return AuditResult(tables, summary)
