"""evaluate_version against hand-built version folders whose right answers are counted by hand,
and against an oracle version built from a generated feed (every stage perfect)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from governance.contracts import PROJECT_ROOT, load_contract
from governance.demo.evaluation import (
    STAGES,
    combine_scores,
    evaluate_feed,
    evaluate_version,
    format_scores,
)
from governance.demo.feed import DATASET, DayTruth, generate_feed
from governance.reasons import Reason, ReasonKind

DAY = "2026-02-01"
SPLIT_COLUMNS = [
    "item_id", "text", "label", "source_file", "source_line", "n_source_rows", "cluster_id",
    "split",
]  # fmt: skip


def _quarantine_row(file: str, line: int | None, n: int, stage: str, check: str, item=None):
    reason = Reason(ReasonKind.CHECK, check)
    return {
        "source_file": file,
        "source_line": line,
        "n_source_rows": n,
        "stage": stage,
        "reasons": reason.text,
        "item_id": item,
        "raw": "",
        "causes": [reason.record()],
    }


def _duplicate_row(item_id: str, kept: str, kind: str) -> dict:
    return {
        "cluster_id": f"c-{kept}",
        "item_id": item_id,
        "kept_item_id": kept,
        "kind": kind,
        "similarity": 1.0 if kind == "exact" else 0.85,
        "in_history": False,
        "source_file": "export-001.jsonl",
        "source_line": 1,
        "n_source_rows": 3,
        "label": "positive",
        "kept_label": "positive",
        "split": None,
    }


def _split(item_ids: list[str], split: str) -> pd.DataFrame:
    rows = [
        {
            "item_id": item_id,
            "text": "a review text long enough",
            "label": "positive",
            "source_file": "export-001.jsonl",
            "source_line": 1,
            "n_source_rows": 3,
            "cluster_id": f"c-{item_id}",
            "split": split,
        }
        for item_id in item_ids
    ]
    return pd.DataFrame(rows, columns=SPLIT_COLUMNS)


def _write_version(
    version: Path,
    splits: dict[str, list[str]],
    quarantine: list[dict],
    duplicates: list[dict],
    annotations: list[tuple[str, str, str, str]],
    queue: list[str] = (),
    flagged: list[str] = (),
) -> Path:
    version.mkdir(parents=True)
    pd.DataFrame({"item_id": pd.Series(list(queue), dtype="str")}).to_parquet(
        version / "review_queue.parquet"
    )
    voters = sorted({a for _, a, _, _ in annotations})
    pd.DataFrame({"annotator": voters, "flagged": [a in flagged for a in voters]}).to_parquet(
        version / "annotator_quality.parquet"
    )
    for split, item_ids in splits.items():
        _split(item_ids, split).to_parquet(version / f"{split}.parquet")
    pd.DataFrame(quarantine).to_parquet(version / "quarantine.parquet")
    pd.DataFrame(duplicates).to_parquet(version / "duplicates.parquet")
    split_of = {i: s for s, ids in splits.items() for i in ids}
    pd.DataFrame(
        [
            {"item_id": i, "annotator": a, "label": lab, "raw_label": raw, "split": split_of.get(i)}
            for i, a, lab, raw in annotations
        ]
    ).to_parquet(version / "annotations.parquet")
    (version / "manifest.json").write_text(json.dumps({"dataset": DATASET, "version": DAY}))
    return version


@pytest.fixture
def hand_built(tmp_path: Path) -> tuple[DayTruth, Path]:
    truth = DayTruth(
        dataset=DATASET,
        day=DAY,
        unparseable=[("export-001.jsonl", 3), ("export-002.jsonl", 7)],
        schema_violations=[
            ("export-001.jsonl", 10),
            ("export-001.jsonl", 11),
            ("export-001.jsonl", 12),
            ("export-002.jsonl", 2),
        ],
        dirty_labels=[("export-001.jsonl", 20, "positive")],  # the (file, line) view; unused here
        exact_duplicates=["e1", "e2", "c1"],
        near_duplicates=["n1", "n2"],
        conflicts=["c1", "c0"],
        dirty_votes=[
            ("p1", "ann_01", "positive"),
            ("p1", "ann_02", "neutral"),
            ("p2", "ann_03", "negative"),
            ("e1", "ann_04", "positive"),  # a dropped duplicate: not published, not scored
        ],
        flipped_items=["p1", "p3", "e1"],  # e1 is not published: not scored
        # ann_04 voted only on e1 and ann_09 not at all: neither is scored
        unreliable_annotators=["ann_01", "ann_04", "ann_05", "ann_09"],
    )
    quarantine = [
        # parse: one caught (path prefix ignored), one clean line flagged, one missed
        _quarantine_row(f"/data/landing/{DATASET}/{DAY}/export-001.jsonl", 3, 1, "parse", "json"),
        _quarantine_row("export-001.jsonl", 5, 1, "parse", "json"),
        # validate: one item row standing for lines 10-12, one clean line flagged, one missed
        _quarantine_row("export-001.jsonl", 10, 3, "validate", "text_min_length", "x1"),
        _quarantine_row("export-002.jsonl", 9, 1, "validate", "annotator_pattern", "x2"),
        # conflicts: c1 caught, e9 wrongly flagged, c0 quarantined for another reason (missed)
        _quarantine_row("export-001.jsonl", 40, 3, "dedup", "label_conflict", "c1"),
        _quarantine_row("export-001.jsonl", 43, 3, "dedup", "label_conflict", "e9"),
        _quarantine_row("export-001.jsonl", 46, 3, "dedup", "bridges_splits", "c0"),
    ]  # fmt: skip
    duplicates = [
        _duplicate_row("k1", "k1", "exact"),  # the kept member itself is no prediction
        _duplicate_row("e1", "k1", "exact"),  # caught
        _duplicate_row("z1", "k1", "exact"),  # wrongly flagged
        _duplicate_row("c1", "k2", "exact"),  # in a conflict: scored by conflicts only
        _duplicate_row("n1", "k3", "near"),  # caught
        _duplicate_row("h1", "k4", "near"),  # a hard negative flagged; n2 is missed
    ]
    annotations = [
        ("p1", "ann_01", "positive", "POSITIVE"),  # right
        ("p1", "ann_02", "positive", "netural"),  # changed but wrong: fp and fn
        ("p2", "ann_05", "neutral", "neutral"),  # unchanged clean vote; p2/ann_03 is missing: fn
        ("p3", "ann_06", "negative", "Negative"),  # changed, not in the truth: fp
        ("e1", "ann_04", "positive", "Positive"),  # not published
    ]
    splits = {"train": ["p1", "p2"], "val": ["p3"], "test": ["k1"]}
    queue = ["p1", "p2"]  # p1 caught, p2 wrongly queued, p3 missed
    flagged = ["ann_05", "ann_06"]  # ann_05 caught, ann_06 wrongly flagged, ann_01 missed
    version = _write_version(
        tmp_path / DAY, splits, quarantine, duplicates, annotations, queue, flagged
    )
    return truth, version


def test_counts_match_the_hand_built_version(hand_built: tuple[DayTruth, Path]) -> None:
    truth, version = hand_built
    scores = evaluate_version(truth, version)
    counts = {stage: (s["tp"], s["fp"], s["fn"]) for stage, s in scores.items()}
    assert counts == {
        "parse": (1, 1, 1),
        "validate": (3, 1, 1),
        "label_canonicalisation": (1, 2, 2),
        "exact_dedup": (1, 1, 1),
        "near_dedup": (1, 1, 1),
        "conflicts": (1, 1, 1),
        "flipped_labels": (1, 1, 1),
        "unreliable_annotators": (1, 1, 1),
    }
    assert scores["validate"]["precision"] == pytest.approx(3 / 4)
    assert scores["validate"]["recall"] == pytest.approx(3 / 4)
    assert scores["label_canonicalisation"]["precision"] == pytest.approx(1 / 3)


def test_missing_manifest_is_refused(hand_built: tuple[DayTruth, Path]) -> None:
    truth, version = hand_built
    (version / "manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match="manifest"):
        evaluate_version(truth, version)


def test_missing_table_is_named(hand_built: tuple[DayTruth, Path]) -> None:
    truth, version = hand_built
    (version / "duplicates.parquet").unlink()
    with pytest.raises(FileNotFoundError, match=r"duplicates\.parquet"):
        evaluate_version(truth, version)


def test_combine_and_format(hand_built: tuple[DayTruth, Path]) -> None:
    truth, version = hand_built
    scores = evaluate_version(truth, version)
    total = combine_scores([scores, scores])
    assert total["validate"]["tp"] == 2 * scores["validate"]["tp"]
    assert total["validate"]["precision"] == pytest.approx(scores["validate"]["precision"])
    empty = combine_scores([])
    assert empty["parse"]["precision"] is None
    table = format_scores(scores).splitlines()
    assert len(table) == 2 + len(STAGES)
    assert all(any(line.startswith(stage) for line in table) for stage in STAGES)
    assert "-" in format_scores(empty).splitlines()[2].split()


def _canonical(raw: str, aliases: dict[str, str], classes: list[str]) -> str | None:
    key = raw.strip().lower()
    return key if key in classes else aliases.get(key)


def _oracle_version(landing: Path, truth: DayTruth, version: Path) -> None:
    """What a perfect pipeline would publish for the day, built from the truth and the files."""
    contract = load_contract(PROJECT_ROOT / "include" / "contracts" / "demo_reviews.yaml")
    bad_lines = set(truth.unparseable) | set(truth.schema_violations)
    dropped = set(truth.exact_duplicates) | set(truth.near_duplicates) | set(truth.conflicts)
    votes, items = [], {}
    for path in sorted((landing / DATASET / truth.day).glob("*.jsonl")):
        for number, raw in enumerate(path.read_bytes().split(b"\n")[:-1], start=1):
            if (path.name, number) in bad_lines:
                continue
            record = json.loads(raw)
            items.setdefault(record["item_id"], record)
            label = _canonical(record["label"], contract.labels.aliases, contract.labels.classes)
            votes.append((record["item_id"], record["annotator"], label, record["label"]))
    published = [i for i in items if i not in dropped]
    quarantine = [_quarantine_row(f, n, 1, "parse", "not json") for f, n in truth.unparseable]
    quarantine += [_quarantine_row(f, n, 1, "validate", "rule") for f, n in truth.schema_violations]
    quarantine += [
        _quarantine_row("x", None, 3, "dedup", "label_conflict", i) for i in truth.conflicts
    ]
    duplicates = [
        _duplicate_row(i, truth.duplicate_of[i], kind)
        for kind, ids in (("exact", truth.exact_duplicates), ("near", truth.near_duplicates))
        for i in ids
        if i not in truth.conflicts
    ]
    flipped = [i for i in truth.flipped_items if i in published]
    voters = {annotator for item, annotator, *_ in votes if item in published}
    unreliable = [a for a in truth.unreliable_annotators if a in voters]
    _write_version(
        version, {"train": published}, quarantine, duplicates, votes, flipped, unreliable
    )


def test_an_oracle_pipeline_scores_perfectly_on_a_generated_feed(tmp_path: Path) -> None:
    truths = generate_feed(tmp_path / "landing", tmp_path / "truth", date(2026, 2, 1), 2, 150)
    for truth in truths:
        _oracle_version(tmp_path / "landing", truth, tmp_path / "curated" / DATASET / truth.day)
    scores = evaluate_feed(
        tmp_path / "truth", tmp_path / "curated", DATASET, [t.day for t in truths]
    )
    for stage in STAGES:
        total = scores["total"][stage]
        assert total["tp"] > 0, stage
        assert (total["precision"], total["recall"]) == (1.0, 1.0), stage
