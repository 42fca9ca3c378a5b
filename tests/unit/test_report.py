"""The governance report: parsed back with the stdlib HTML parser and checked against its input."""

from __future__ import annotations

import base64
import io
import re
from collections import defaultdict
from html.parser import HTMLParser
from typing import Any

import pandas as pd
import pytest
from PIL import Image

from governance.audit.consensus import CONFUSION_COLUMNS, QUALITY_COLUMNS
from governance.manifest import VersionManifest
from governance.report import SECTIONS, render_report
from governance.report.html import fmt, pct, sig
from tests.manifests import manifest_dict, sample_manifest

CLASSES = ["negative", "neutral", "positive"]
ANNOTATORS = ["ann_01", "ann_02", "ann_03", "<b>ann_x</b>"]
INJECTED = "<script>alert(1)</script>"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
QUEUE_LEN = 40
# The quarantine reasons of the test feeds: the line a reviewer reads, then its cause
# (stage, kind, check, column).
REASONS = [
    ("text: not_null", "validate", "check", "not_null", "text"),
    ("label: in_set", "validate", "check", "in_set", "label"),
    ("json_error: bad record", "parse", "parse", "json_error", None),
]


# ------------------------------------------------------------------ parsing


class ParsedReport(HTMLParser):
    """What a browser would see: section order, headings, images, links, table cells."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.start_tags: list[str] = []
        self.references: list[str] = []
        self.images: list[str] = []
        self.sections: list[str] = []
        self.h2_count: dict[str, int] = defaultdict(int)
        self.text: dict[str, list[str]] = defaultdict(list)
        self.tables: dict[str, list[tuple[str, list[str]]]] = {}
        self._section: str | None = None
        self._table: str | None = None
        self._in_head = False
        self._row: tuple[str, list[str]] | None = None
        self._cell: list[str] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.start_tags.append(tag)
        self.references += [attributes[k] for k in ("src", "href") if k in attributes]
        if tag == "img":
            self.images.append(attributes["src"])
        elif tag == "section":
            self._section = attributes["id"]
            self.sections.append(self._section)
        elif tag == "h2" and self._section is not None:
            self.h2_count[self._section] += 1
        elif tag == "table":
            self._table = attributes.get("id", f"anonymous-{len(self.tables)}")
            self.tables[self._table] = []
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr" and not self._in_head:
            self._row = (attributes.get("class", ""), [])
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._section = None
        elif tag == "thead":
            self._in_head = False
        elif tag == "td" and self._row is not None and self._cell is not None:
            self._row[1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._section is not None:
            self.text[self._section].append(data)
        if self._cell is not None:
            self._cell.append(data)

    def section_text(self, section: str) -> str:
        return " ".join(" ".join(self.text[section]).split())


# ------------------------------------------------------------------ inputs


def split_frame(split: str, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": [f"{split}-{i:03d}" for i in range(n)],
            "text": [f"{split} text number {i}" for i in range(n)],
            "label": [CLASSES[i % 3] for i in range(n)],
            "source_file": "feed_a.jsonl",
            "source_line": range(1, n + 1),
            "n_source_rows": 1,
            "cluster_id": [f"{split}-{i:03d}" for i in range(n)],
            "split": split,
        }
    )


def duplicates_frame() -> pd.DataFrame:
    """Three clusters kept in train: one exact, two near (similarities 0.91 and 0.84)."""
    return pd.DataFrame(
        {
            "cluster_id": ["c-train-000", "c-train-001", "c-train-002", "c-train-002"],
            "item_id": ["dup-0", "dup-1", "dup-2", "dup-3"],
            "kept_item_id": ["train-000", "train-001", "train-002", "train-002"],
            "kind": ["exact", "near", "near", "exact"],
            "similarity": [1.0, 0.91, 0.84, 1.0],
            "in_history": [False, False, False, False],
            "source_file": "feed_b.jsonl",
            "source_line": [4, 9, 12, 15],
            "n_source_rows": 1,
            "label": ["negative", "neutral", "positive", "positive"],
            "kept_label": ["negative", "neutral", "positive", "positive"],
            "split": "train",
        }
    )


def quarantine_frame(rows: int) -> pd.DataFrame:
    """Mostly one reason, the two others only at the end, as real feeds tend to be."""
    kinds = [0] * (rows - 4) + [1, 1, 2, 2] if rows else []
    return pd.DataFrame(
        {
            "source_file": "feed_a.jsonl",
            "source_line": [100 + i for i in range(rows)],
            "n_source_rows": 1,
            "stage": [REASONS[k][1] for k in kinds],
            "reasons": [REASONS[k][0] for k in kinds],
            "item_id": None,
            "raw": [f'{{"text": "{INJECTED}", "n": {i}}}' for i in range(rows)],
        }
    )


def review_queue(rows: int) -> pd.DataFrame:
    """Stored out of rank order, so the report has to sort it."""
    ranks = list(range(rows, 0, -1))
    return pd.DataFrame(
        {
            "rank": ranks,
            "item_id": [f"train-{r * 7 % rows:03d}" for r in ranks],
            "text": [INJECTED if r == 1 else f"suspect {r} " + "long " * 80 for r in ranks],
            "split": "train",
            "given_label": "negative",
            "suggested_label": "positive",
            "score": [r / (rows + 1) for r in ranks],
            "given_label_probability": 0.1,
            "suggested_label_probability": 0.8,
            "votes": "ann_01:negative, ann_02:positive",
            "consensus_label": "negative",
        }
    )


def annotator_tables() -> dict[str, pd.DataFrame]:
    confusion = [
        {
            "annotator": a,
            "true_label": t,
            "given_label": g,
            "probability": (0.8 if t == g else 0.1) if a != "ann_03" else 1 / 3,
        }
        for a in ANNOTATORS
        for t in CLASSES
        for g in CLASSES
    ]
    pairs = [
        {"annotator_a": a, "annotator_b": b, "n_items": 50, "kappa": 0.6 - 0.1 * i}
        for i, (a, b) in enumerate(
            (a, b) for j, a in enumerate(ANNOTATORS) for b in ANNOTATORS[j + 1 :]
        )
    ]
    quality = pd.DataFrame(
        {
            "annotator": ANNOTATORS,
            "n_items": [120, 118, 90, 40],
            "accuracy": [0.91, 0.88, 0.41, 0.85],
            "accuracy_low": [0.84, 0.8, 0.31, 0.71],
            "accuracy_high": [0.95, 0.93, 0.51, 0.93],
            "assessment": ["reliable", "reliable", "unreliable", "not enough data"],
            "flagged": [False, False, True, False],
            "reason": ["", "", "accuracy 41.0% below 60.0%", ""],
        }
    )
    return {
        "annotator_quality": quality,
        "annotator_confusion": pd.DataFrame(confusion),
        "annotator_pairs": pd.DataFrame(pairs),
    }


def empty_annotator_tables() -> dict[str, pd.DataFrame]:
    return {
        "annotations": pd.DataFrame(columns=["item_id", "annotator", "label", "raw_label"]),
        "annotator_quality": pd.DataFrame(columns=QUALITY_COLUMNS),
        "annotator_confusion": pd.DataFrame(columns=CONFUSION_COLUMNS),
        "annotator_pairs": pd.DataFrame(columns=["annotator_a", "annotator_b", "n_items", "kappa"]),
    }


def splits_counts(tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    return {
        s: {
            "items": len(tables[s]),
            "rows": int(tables[s]["n_source_rows"].sum()),
            "by_label": {
                k: int(v) for k, v in tables[s]["label"].value_counts().sort_index().items()
            },
        }
        for s in ("train", "val", "test")
    }


def quarantine_counts(quarantine: pd.DataFrame) -> dict[str, Any]:
    """The manifest's quarantine counts, from the quarantine table, as the pipeline counts them."""
    per_line = quarantine["reasons"].value_counts()
    reasons = [
        {
            "stage": stage,
            "kind": kind,
            "check": check,
            "column": column,
            "rows": int(per_line[line]),
        }
        for line, stage, kind, check, column in REASONS
        if line in per_line
    ]
    by_kind: dict[str, int] = defaultdict(int)
    for reason in reasons:
        by_kind[reason["kind"]] += reason["rows"]
    return {
        "total": int(quarantine["n_source_rows"].sum()),
        "by_stage": quarantine.groupby("stage").size().to_dict(),
        "by_reason": per_line.to_dict(),
        "by_kind": dict(by_kind),
        "reasons": reasons,
    }


def base_manifest(tables: dict[str, pd.DataFrame], rows_in_extra: int = 0) -> dict[str, Any]:
    """Counts and conservation derived from the tables, as the pipeline does."""
    buckets = {
        "quarantined": int(tables["quarantine"]["n_source_rows"].sum()),
        "duplicates": int(tables["duplicates"]["n_source_rows"].sum()),
        **{s: int(tables[s]["n_source_rows"].sum()) for s in ("train", "val", "test")},
    }
    accounted = sum(buckets.values())
    rows_in = accounted + rows_in_extra
    kinds = tables["duplicates"]["kind"].value_counts()
    return {
        "conservation": {
            "rows_in": rows_in,
            **buckets,
            "accounted": accounted,
            "holds": rows_in == accounted,
        },
        "counts": {
            "rows_in": rows_in,
            "quarantined": quarantine_counts(tables["quarantine"]),
            "duplicates": {"exact": int(kinds.get("exact", 0)), "near": int(kinds.get("near", 0))},
            "conflicts": len(tables["conflicts"]),
            "splits": splits_counts(tables),
        },
        "inputs": [
            {"name": "feed_a.jsonl", "sha256": "a" * 64, "bytes": 2048, "records": 1200},
            {"name": "feed_b.jsonl", "sha256": "b" * 64, "bytes": 512, "records": 100},
        ],
        "label_mapping": {
            "changed": {"POS": {"canonical": "positive", "count": 3}},
            "unknown": {"<i>meh</i>": 2},
        },
        "warnings": ["feed_b.jsonl: 1 line with a byte-order mark"],
        "thresholds": {"near_duplicate_jaccard": 0.8, "max_quarantine_rate": 0.2},
    }


GATE_CHECKS_FAILED = [
    {
        "name": "quarantine_rate",
        "description": "share of source rows quarantined",
        "observed": 0.254,
        "threshold": 0.2,
        "comparison": "<=",
        "passed": False,
        "detail": "too many rows quarantined",
    },
    {
        "name": "krippendorff_alpha",
        "description": "agreement between annotators",
        "observed": 0.671,
        "threshold": 0.6,
        "comparison": ">=",
        "passed": True,
        "detail": "",
    },
    {
        "name": "flagged_annotators",
        "description": "annotators below the accuracy floor",
        "observed": 1,
        "threshold": 0,
        "comparison": "<=",
        "passed": False,
        "detail": "ann_03",
    },
    {
        "name": "drift_p_value",
        "description": "class balance drift",
        "observed": None,
        "threshold": 0.001,
        "comparison": ">=",
        "passed": None,
        "detail": "not applicable",
    },
]


HISTORY_DAY = {
    "version": "2026-03-01",
    "status": "published",
    "digest": "d" * 64,
    "manifest_sha256": "e" * 64,
}


CHANGED_ITEMS = 12


def consensus_frame(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every item's consensus; the first CHANGED_ITEMS differ from plurality, least confident
    last."""
    items = pd.concat([tables[s] for s in ("train", "val", "test")], ignore_index=True)
    changed = items.index < CHANGED_ITEMS
    plural = items["label"].where(~changed, "neutral")
    return pd.DataFrame(
        {
            "item_id": items["item_id"],
            "label": items["label"],
            "consensus_label": items["label"].where(~changed, "negative"),
            "method": "one_coin",
            "confidence": [0.5 + i / 100 if c else 0.99 for i, c in enumerate(changed)],
            "plurality_label": plural,
            "plurality_share": 0.6,
            "n_votes": 5,
            "split": items["split"],
        }
    )


def multi_case() -> tuple[VersionManifest, dict[str, pd.DataFrame]]:
    """Second version of a multi-annotator dataset whose gate failed."""
    tables = {s: split_frame(s, n) for s, n in (("train", 1100), ("val", 50), ("test", 50))}
    tables["consensus"] = consensus_frame(tables)
    tables |= {
        "quarantine": quarantine_frame(12),
        "duplicates": duplicates_frame(),
        "conflicts": pd.DataFrame(
            {
                "cluster_id": ["c-9"],
                "n_items": [2],
                "labels": ["negative=1, positive=1"],
                "action": ["quarantined"],
                "item_ids": ["x1,x2"],
            }
        ),
        "review_queue": review_queue(QUEUE_LEN),
        **annotator_tables(),
    }
    manifest = manifest_dict() | base_manifest(tables)
    manifest |= {
        "dataset": "reviews",
        "version": "2026-03-02",
        "published": False,
        "dry_run": False,
        "created_by": {"run_id": "scheduled__2026-03-02", "dag_id": "govern_reviews"},
        "history": {"origin": "2026-03-01", "digest": "f" * 64, "versions": [HISTORY_DAY]},
        "gate": {
            "status": "failed",
            "message": "2 of 4 checks failed",
            "checks": GATE_CHECKS_FAILED,
            "failed": ["quarantine_rate", "flagged_annotators"],
        },
        "audit": {
            "items": 1200,
            "classes": CLASSES,
            "multi_annotator": True,
            "skipped": [],
            "consensus": {
                "items": 1200,
                "requested": "auto",
                "aggregator": "one_coin",
                "reason": "one_coin predicts held-out votes better than plurality",
                "candidates": [
                    {
                        "name": "plurality",
                        "log_likelihood": -0.9,
                        "gain": 0.0,
                        "standard_error": 0.0,
                    },
                    {
                        "name": "one_coin",
                        "log_likelihood": -0.8,
                        "gain": 0.1,
                        "standard_error": 0.02,
                    },
                ],
                "folds": 5,
                "scored_votes": 1000,
                "fitted_votes": 1068,
                "earlier_votes": 0,
                "no_majority_items": 100,
                "changed_from_plurality": 12,
                "disagrees_with_label": 7,
                "mean_confidence": 0.87,
            },
            "agreement": {
                "krippendorff_alpha": 0.671,
                "fleiss_kappa": 0.664,
                "fleiss_items": 1180,
                "annotators": 4,
                "votes": 3600,
                "per_class": {
                    c: {"krippendorff_alpha": 0.6, "fleiss_kappa": 0.59} for c in CLASSES
                },
            },
            "annotators": {
                "count": 4,
                "flagged": ["ann_03"],
                "min_accuracy": 0.6,
                "min_items": 20,
                "interval_confidence": 0.95,
                "not_enough_data": 1,
            },
            "label_errors": {
                "method": "cleanlab",
                "model": "tfidf+logreg",
                "folds": 5,
                "items": 1200,
                "unlabelled_items": 0,
                "suspected": QUEUE_LEN,
                "rate": QUEUE_LEN / 1200,
                "out_of_fold_accuracy": 0.812,
            },
            "drift": {
                "previous_version": "2026-03-01",
                "class_balance": {
                    "current": {"negative": 0.3, "neutral": 0.3, "positive": 0.4},
                    "previous": {"negative": 0.34, "neutral": 0.33, "positive": 0.33},
                    "max_share_change": 0.07,
                    "chi2": 12.5,
                    "p_value": 0.0019,
                },
                "text_length": {
                    "current_median": 84.0,
                    "previous_median": 80.0,
                    "ks_statistic": 0.052,
                    "p_value": 0.21,
                    "bins": [0, 50, 100, 150, 200],
                    "current_hist": [100, 600, 400, 100],
                    "previous_hist": [120, 580, 380, 90],
                },
                "new_vocabulary_share": 0.043,
            },
        },
    }
    return VersionManifest.model_validate(manifest), tables


def single_case() -> tuple[VersionManifest, dict[str, pd.DataFrame]]:
    """First published version of a single-label dataset: nothing quarantined, gate passed."""
    tables = {s: split_frame(s, n) for s, n in (("train", 80), ("val", 10), ("test", 10))}
    tables |= {
        "quarantine": quarantine_frame(0),
        "duplicates": duplicates_frame().iloc[:1],
        "conflicts": pd.DataFrame(
            columns=["cluster_id", "n_items", "labels", "action", "item_ids"]
        ),
        "review_queue": review_queue(3),
        **empty_annotator_tables(),
    }
    manifest = manifest_dict() | base_manifest(tables)
    manifest |= {
        "dataset": "tickets",
        "version": "2026-01-01",
        "published": True,
        "dry_run": False,
        "created_by": {"run_id": "manual__1"},
        "history": {"origin": "2026-01-01", "digest": "0" * 64, "versions": []},
        "gate": {
            "status": "passed",
            "message": "all checks passed",
            "checks": [{**GATE_CHECKS_FAILED[0], "observed": 0.0, "passed": True, "detail": ""}],
            "failed": [],
        },
        "audit": {
            "items": 100,
            "classes": CLASSES,
            "multi_annotator": False,
            "skipped": [
                "consensus: single-label dataset, the given label stands",
                "agreement: single-label dataset, needs several annotators per item",
                "annotator quality: single-label dataset, no annotators to assess",
            ],
            "consensus": None,
            "agreement": None,
            "annotators": None,
            "label_errors": {
                "method": "cleanlab",
                "model": "tfidf+logreg",
                "folds": 3,
                "items": 100,
                "unlabelled_items": 0,
                "suspected": 3,
                "rate": 0.03,
                "out_of_fold_accuracy": 0.7,
            },
            "drift": {
                "previous_version": None,
                "class_balance": {
                    "current": {"negative": 0.34, "neutral": 0.33, "positive": 0.33},
                    "previous": None,
                    "max_share_change": None,
                    "chi2": None,
                    "p_value": None,
                },
                "text_length": {
                    "current_median": 20.0,
                    "previous_median": None,
                    "ks_statistic": None,
                    "p_value": None,
                    "bins": [0, 10, 20, 30],
                    "current_hist": [10, 60, 30],
                    "previous_hist": None,
                },
                "new_vocabulary_share": None,
            },
        },
        "outputs": {"train.parquet": {"sha256": "c" * 64, "bytes": 4096, "rows": 80}},
    }
    return VersionManifest.model_validate(manifest), tables


def empty_manifest() -> VersionManifest:
    """A version of nothing: every count zero, no class, no check, every optional figure
    missing, nothing published."""
    buckets = ("rows_in", "quarantined", "duplicates", "train", "val", "test", "accounted")
    no_reasons = {"by_stage": {}, "by_reason": {}, "by_kind": {}, "reasons": []}
    drift = {
        "previous_version": None,
        "class_balance": {
            "current": {},
            "previous": None,
            "max_share_change": None,
            "chi2": None,
            "p_value": None,
        },
        "text_length": {
            "bins": [],
            "current_hist": [],
            "previous_hist": None,
            "current_median": None,
            "previous_median": None,
            "ks_statistic": None,
            "p_value": None,
        },
        "new_vocabulary_share": None,
    }
    return sample_manifest(
        conservation={name: 0 for name in buckets} | {"holds": True},
        counts={
            "rows_in": 0,
            "quarantined": {"total": 0, **no_reasons},
            "duplicates": {"exact": 0, "near": 0},
            "conflicts": 0,
            "splits": {},
        },
        thresholds={},
        audit={
            "items": 0,
            "classes": [],
            "multi_annotator": False,
            "skipped": [],
            **dict.fromkeys(("consensus", "agreement", "annotators", "label_errors")),
            "drift": drift,
        },
        history={"origin": "2026-04-02", "digest": "0" * 64, "versions": []},
        gate={"status": "passed", "message": "", "checks": [], "failed": []},
    )


def changed(manifest: VersionManifest, **sections: Any) -> VersionManifest:
    """The manifest with top-level sections replaced, checked again as a written one is."""
    return VersionManifest.model_validate(manifest.written() | sections)


CASES = {"multi": multi_case, "single": single_case}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> tuple[VersionManifest, dict[str, pd.DataFrame], str]:
    manifest, tables = CASES[request.param]()
    return manifest, tables, render_report(manifest, tables)


@pytest.fixture(scope="module")
def multi() -> tuple[VersionManifest, dict[str, pd.DataFrame], ParsedReport]:
    manifest, tables = multi_case()
    return manifest, tables, ParsedReport(render_report(manifest, tables))


@pytest.fixture(scope="module")
def single() -> tuple[VersionManifest, dict[str, pd.DataFrame], ParsedReport]:
    manifest, tables = single_case()
    return manifest, tables, ParsedReport(render_report(manifest, tables))


def expected_images(manifest: VersionManifest, tables: dict[str, pd.DataFrame]) -> int:
    """One chart per drawable block, from the inputs alone."""
    return (
        1  # where the rows went
        + bool(manifest.counts.quarantined.by_reason)
        + 1  # items per class and split
        + (not tables["annotator_pairs"].empty)
        + (not tables["annotator_quality"].empty)  # the whole crowd's accuracy intervals
        + tables["annotator_confusion"]["annotator"].nunique()
        + 2 * (manifest.audit.drift.previous_version is not None)
    )


# ------------------------------------------------------------------ structure


def test_every_section_is_present_in_order_with_a_heading(case: Any) -> None:
    _, _, html = case
    parsed = ParsedReport(html)
    assert tuple(parsed.sections) == SECTIONS
    assert all(parsed.h2_count[section] == 1 for section in SECTIONS)


def test_figures_are_embedded_pngs_one_per_drawable_block(case: Any) -> None:
    manifest, tables, html = case
    parsed = ParsedReport(html)
    assert len(parsed.images) == expected_images(manifest, tables)
    for source in parsed.images:
        prefix = "data:image/png;base64,"
        assert source.startswith(prefix)
        png = base64.b64decode(source[len(prefix) :], validate=True)
        assert png.startswith(PNG_MAGIC)
        Image.open(io.BytesIO(png)).verify()


def test_report_references_nothing_outside_itself(case: Any) -> None:
    _, _, html = case
    parsed = ParsedReport(html)
    assert parsed.references, "the navigation links and images are references"
    for reference in parsed.references:
        assert reference.startswith(("#", "data:")), reference
    assert not {"script", "link", "iframe", "object"} & set(parsed.start_tags)


def test_rendering_is_deterministic(case: Any) -> None:
    manifest, tables, html = case
    assert render_report(manifest, tables) == html


# ------------------------------------------------------------------ content


def test_gate_table_lists_every_check_and_marks_the_failed_ones(multi: Any) -> None:
    manifest, _, parsed = multi
    rows = parsed.tables["gate-checks"]
    checks = manifest.gate.checks
    assert [cells[0] for _, cells in rows] == [c.name for c in checks]
    for (css, cells), check in zip(rows, checks, strict=True):
        observed = check.observed
        expected_observed = (
            "n/a"
            if observed is None
            else f"{observed:.3f}"
            if isinstance(observed, float)
            else str(observed)
        )
        assert cells[2] == expected_observed
        assert cells[3] == check.comparison
        result = {True: "passed", False: "failed", None: "n.a."}[check.passed]
        assert cells[5] == result
        assert (css == "failed") == (check.passed is False)
    assert "failed" in parsed.section_text("summary")


def test_injected_markup_is_shown_as_text_never_as_markup(multi: Any) -> None:
    _, _, parsed = multi
    assert "script" not in parsed.start_tags
    assert "b" not in parsed.start_tags  # the annotator named <b>ann_x</b>
    first = parsed.tables["review-queue-table"][0][1]
    assert first[0] == "1"
    assert first[2] == INJECTED
    assert INJECTED in parsed.section_text("quarantine")
    assert "<b>ann_x</b>" in parsed.section_text("annotators")
    assert "<i>meh</i>" in parsed.section_text("inputs")


@pytest.mark.parametrize("queue_rows", [25, 7])
def test_review_queue_shows_the_top_rows_by_rank(queue_rows: int) -> None:
    manifest, tables = multi_case()
    html = render_report(manifest, tables, queue_rows=queue_rows)
    rows = ParsedReport(html).tables["review-queue-table"]
    assert [int(cells[0]) for _, cells in rows] == list(range(1, queue_rows + 1))
    assert all(len(cells[2]) <= 200 for _, cells in rows)


def test_conservation_equation_shows_every_bucket(case: Any) -> None:
    manifest, _, html = case
    text = ParsedReport(html).section_text("counts")
    cons = manifest.conservation.model_dump()
    terms = " + ".join(
        f"{name} {cons[name]:,}" for name in ("quarantined", "duplicates", "train", "val", "test")
    )
    assert f"rows in {cons['rows_in']:,} = {terms} = {cons['accounted']:,} holds" in text


def test_broken_conservation_says_how_many_rows_are_missing() -> None:
    manifest, tables = single_case()
    manifest = changed(manifest, **base_manifest(tables, rows_in_extra=3))
    text = ParsedReport(render_report(manifest, tables)).section_text("counts")
    assert "does not hold (3 rows unaccounted)" in text


def test_flagged_annotators_come_first_and_are_highlighted(multi: Any) -> None:
    _, tables, parsed = multi
    rows = parsed.tables["annotator-quality"]
    quality = tables["annotator_quality"]
    flagged = set(quality.loc[quality["flagged"], "annotator"])
    assert rows[0][1][0] in flagged
    assert {cells[0] for css, cells in rows if css == "flagged"} == flagged
    assert {cells[0] for _, cells in rows} == set(quality["annotator"])


def test_the_consensus_block_names_the_aggregator_and_what_auto_compared(multi: Any) -> None:
    manifest, _, parsed = multi
    text = parsed.section_text("agreement")
    consensus = manifest.audit.consensus
    assert f"aggregator {consensus.aggregator}" in text and consensus.reason in text
    rows = [cells for _, cells in parsed.tables["consensus-candidates"]]
    assert [cells[0] for cells in rows] == ["one_coin", "plurality"]


def test_items_the_consensus_changed_are_listed_least_confident_first(multi: Any) -> None:
    _, tables, parsed = multi
    rows = [cells for _, cells in parsed.tables["consensus-changed"]]
    consensus = tables["consensus"]
    changed = consensus[consensus["consensus_label"] != consensus["plurality_label"]]
    assert [cells[0] for cells in rows] == changed["item_id"].tolist()
    assert all(cells[2] == "neutral" and cells[4] == "negative" for cells in rows)
    assert rows[0][1] == "train text number 0"


def test_one_figure_shows_every_annotators_interval() -> None:
    manifest, tables = multi_case()
    html = render_report(manifest, tables)
    assert html.count('alt="accuracy of every annotator with its interval"') == 1


def test_annotator_rows_show_the_accuracy_interval_and_assessment(multi: Any) -> None:
    _, _, parsed = multi
    rows = {cells[0]: cells for _, cells in parsed.tables["annotator-quality"]}
    assert rows["ann_03"][3:5] == ["31.00% - 51.00%", "unreliable"]
    assert rows["<b>ann_x</b>"][4] == "not enough data"


def test_split_table_matches_the_split_tables(multi: Any) -> None:
    _, tables, parsed = multi
    rows = {cells[0]: cells[1:] for _, cells in parsed.tables["split-sizes"]}
    for label in CLASSES:
        expected = [f"{(tables[s]['label'] == label).sum():,}" for s in ("train", "val", "test")]
        assert rows[label] == expected
    assert rows["all items"] == [f"{len(tables[s]):,}" for s in ("train", "val", "test")]


def test_examples_are_capped_and_cover_every_reason() -> None:
    manifest, tables = multi_case()
    parsed = ParsedReport(render_report(manifest, tables, examples_per_section=3))
    examples = parsed.tables["quarantine-examples"]
    assert len(examples) == 3
    assert {cells[3] for _, cells in examples} == set(tables["quarantine"]["reasons"])
    text = parsed.section_text("duplicates")
    assert "Example clusters (3 of 3)" in text
    assert text.index("cluster c-train-002") < text.index("cluster c-train-001")  # 0.84 first


def test_single_label_first_version_explains_what_was_skipped(single: Any) -> None:
    _, _, parsed = single
    assert "agreement: single-label dataset" in parsed.section_text("agreement")
    assert "annotator quality: single-label dataset" in parsed.section_text("annotators")
    assert "consensus: single-label dataset" not in parsed.section_text("annotators")
    assert "no previous version: first publication" in parsed.section_text("drift")
    assert "No row was quarantined." in parsed.section_text("quarantine")
    assert "c" * 64 in parsed.section_text("inputs")  # the published output's sha256


def test_skipped_label_error_search_is_explained_where_the_queue_would_be() -> None:
    manifest, tables = single_case()
    reason = "suspected label errors: needs two classes with at least two labelled items each"
    audit = manifest.audit.model_dump() | {"label_errors": None, "skipped": [reason]}
    manifest = changed(manifest, audit=audit)
    tables["review_queue"] = tables["review_queue"].iloc[:0]
    parsed = ParsedReport(render_report(manifest, tables))
    assert reason in parsed.section_text("review-queue")
    assert "The review queue is empty." in parsed.section_text("review-queue")
    assert reason not in parsed.section_text("agreement")


def test_a_version_of_nothing_still_renders_every_section() -> None:
    html = render_report(empty_manifest(), {})
    parsed = ParsedReport(html)
    assert tuple(parsed.sections) == SECTIONS
    assert len(parsed.images) == 1  # where the rows went: the only block drawn from counts alone
    assert "n/a" in parsed.section_text("summary")
    for section in ("agreement", "annotators", "review-queue"):
        assert "Not computed for this version." in parsed.section_text(section)
    assert "no previous version: first publication" in parsed.section_text("drift")
    assert "the gate was not evaluated" in parsed.section_text("gate")
    assert "none: the dataset's first day" in parsed.section_text("history")
    assert "Not written (nothing published yet)." in parsed.section_text("inputs")


def test_quarantine_counts_rows_by_kind(multi: Any) -> None:
    manifest, _, parsed = multi
    text = parsed.section_text("quarantine")
    assert manifest.counts.quarantined.by_kind
    for kind, rows in manifest.counts.quarantined.by_kind.items():
        assert f"{kind} {rows:,}" in text


def test_history_lists_every_settled_day_read(multi: Any, single: Any) -> None:
    _, _, parsed = multi
    text = parsed.section_text("history")
    assert "read the 1 settled day(s)" in text
    expected = [
        HISTORY_DAY["version"],
        HISTORY_DAY["status"],
        HISTORY_DAY["digest"][:16],
        HISTORY_DAY["manifest_sha256"][:16],
    ]
    assert expected in [cells for rows in parsed.tables.values() for _, cells in rows]
    assert "none: the dataset's first day" in single[2].section_text("history")


def test_inputs_list_every_file_read_and_whether_files_were_written(
    multi: Any, single: Any
) -> None:
    manifest, _, parsed = multi
    text = parsed.section_text("inputs")
    for file in manifest.inputs:
        assert file.name in text and file.sha256 in text
    assert "Not written (nothing published yet)." in text
    assert "Not written" not in single[2].section_text("inputs")


@pytest.mark.parametrize(
    ("manifest", "tables", "kwargs", "message"),
    [
        ([], {}, {}, "manifest must be a VersionManifest"),
        (manifest_dict(), {}, {}, "manifest must be a VersionManifest, got dict"),
        (sample_manifest(), {"train": [1, 2]}, {}, "table 'train' must be a DataFrame"),
        (sample_manifest(), {}, {"queue_rows": -1}, "queue_rows must be a non-negative integer"),
    ],
)
def test_bad_arguments_are_rejected_with_a_clear_message(
    manifest: Any, tables: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        render_report(manifest, tables, **kwargs)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "n/a"),
        (float("nan"), "n/a"),
        (pd.NA, "n/a"),
        (1234567, "1,234,567"),
        (0.25, "0.250"),
        (0.00012, "1.20e-04"),
        (True, "yes"),
        ("<b>", "<b>"),  # escaping is the markup's job, not the formatter's
    ],
)
def test_values_format_one_way_everywhere(value: Any, text: str) -> None:
    assert fmt(value) == text


def test_rates_and_p_values_keep_their_meaningful_digits() -> None:
    assert pct(0.0123) == "1.23%"
    assert pct(None) == "n/a"
    assert sig(0.0019) == "0.0019"
    assert sig(3.2e-12) == "3.2e-12"


# --- a crowd: the report draws a bounded number of annotators --------------------------------


def crowd_tables(size: int, flagged: set[str]) -> dict[str, pd.DataFrame]:
    """``size`` annotators whose accuracy falls with their number; every pair overlaps."""
    names = [f"w{i:03d}" for i in range(size)]
    accuracy = {name: 0.95 - 0.01 * i for i, name in enumerate(names)}
    quality = pd.DataFrame(
        {
            "annotator": names,
            "n_items": 30,
            "accuracy": [accuracy[n] for n in names],
            "accuracy_low": [accuracy[n] - 0.1 for n in names],
            "accuracy_high": [accuracy[n] + 0.05 for n in names],
            "assessment": ["unreliable" if n in flagged else "reliable" for n in names],
            "flagged": [n in flagged for n in names],
            "reason": ["" for _ in names],
        }
    )
    confusion = pd.DataFrame(
        [
            {"annotator": a, "true_label": t, "given_label": g, "probability": 0.5}
            for a in names
            for t in CLASSES
            for g in CLASSES
        ]
    )
    pairs = pd.DataFrame(
        [
            {"annotator_a": a, "annotator_b": b, "n_items": 12, "kappa": 0.5}
            for j, a in enumerate(names)
            for b in names[j + 1 :]
        ]
    )
    return {
        "annotator_quality": quality,
        "annotator_confusion": confusion,
        "annotator_pairs": pairs,
    }


def test_a_crowd_is_drawn_one_by_one_only_for_the_flagged_and_the_least_accurate() -> None:
    manifest, tables = multi_case()
    flagged = {"w003", "w010"}
    tables = tables | crowd_tables(30, flagged)
    audit = manifest.audit.model_copy(
        update={
            "annotators": manifest.audit.annotators.model_copy(update={"flagged": sorted(flagged)})
        }
    )
    manifest = manifest.model_copy(update={"audit": audit})
    html = render_report(manifest, tables, detail_annotators=5)
    drawn = re.findall(r'alt="confusion matrix of ([^"]+)"', html)
    # the flagged first, then the three least accurate of the rest (the highest numbers)
    assert drawn == ["w003", "w010", "w027", "w028", "w029"]
    assert html.count("Drawn one by one: 5 of 30 annotators") == 2  # matrices and pairwise kappa
    parsed = ParsedReport(html)
    assert "w015" in parsed.section_text("annotators"), "the table still lists every annotator"
    everyone = render_report(manifest, tables, detail_annotators=30)
    assert len(re.findall(r'alt="confusion matrix of ', everyone)) == 30
    assert "Drawn one by one" not in everyone
