"""Deduplication checked against dataset facts (SOURCE.md), planted duplicates and history."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from governance import frames
from governance.contracts import PROJECT_ROOT, load_contract
from governance.dedup import DedupConfig, DedupResult, deduplicate
from governance.dedup.textnorm import normalise_text

DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"
SMS = DATASETS / "sms_spam_collection" / "SMSSpamCollection"
SENTI = DATASETS / "senti4sd_gold" / "Senti4SD_GoldStandard_EmotionPolarity.csv"


def as_items(texts, labels, ids=None, source="day.tsv") -> pd.DataFrame:
    n = len(texts)
    return pd.DataFrame(
        {
            frames.ITEM_ID: list(ids) if ids is not None else [f"{source}:{i}" for i in range(n)],
            frames.TEXT: list(texts),
            frames.LABEL: pd.array(list(labels), dtype="str"),
            frames.SOURCE_FILE: source,
            frames.SOURCE_LINE: np.arange(1, n + 1),
            frames.N_SOURCE_ROWS: 1,
        }
    )


def as_history(result: DedupResult, split: str | dict[str, str], version: str) -> pd.DataFrame:
    index = result.index.copy()
    index[frames.SPLIT] = index[frames.ITEM_ID].map(split) if isinstance(split, dict) else split
    index["version"] = version
    return index


def assert_conservation(items: pd.DataFrame, result: DedupResult) -> None:
    kept = set(result.assignments.loc[result.assignments["kept"], frames.ITEM_ID])
    dropped = set(result.duplicates[frames.ITEM_ID])
    quarantined = set(result.quarantine[frames.ITEM_ID])
    assert not (kept & dropped) and not (kept & quarantined) and not (dropped & quarantined)
    assert kept | dropped | quarantined == set(items[frames.ITEM_ID])
    assert set(result.index[frames.ITEM_ID]) == kept
    assert len(result.assignments) == len(items)


@pytest.fixture(scope="module")
def sms() -> pd.DataFrame:
    raw = pd.read_csv(
        SMS, sep="\t", header=None, names=["label", "text"], quoting=csv.QUOTE_NONE, dtype=str
    )
    assert len(raw) == 5574
    return as_items(raw["text"], raw["label"], ids=[f"sms-{i}" for i in range(len(raw))])


def test_sms_exact_duplicates_are_dropped(sms: pd.DataFrame) -> None:
    result = deduplicate(
        sms,
        None,
        DedupConfig.from_contract(
            load_contract(PROJECT_ROOT / "include" / "contracts" / "sms_spam.yaml").dedup
        ),
    )
    assert_conservation(sms, result)
    raw_copies = sms[sms.duplicated([frames.TEXT, frames.LABEL])]
    assert len(raw_copies) == 403  # SOURCE.md
    exact = result.duplicates[result.duplicates[frames.DUPLICATE_KIND] == "exact"]
    assert set(raw_copies[frames.ITEM_ID]) <= set(exact[frames.ITEM_ID])
    assert len(exact) >= 403
    # Every group of identical raw texts keeps at most one member, all in one cluster.
    merged = sms.merge(result.assignments, on=frames.ITEM_ID)
    groups = merged.groupby(frames.TEXT)
    assert (groups["kept"].sum() <= 1).all()
    assert (groups[frames.CLUSTER_ID].nunique() == 1).all()
    # An exact drop repeats a normalised text that an earlier item of its cluster has.
    norm = dict(zip(sms[frames.ITEM_ID], sms[frames.TEXT].map(normalise_text), strict=True))
    position = {item: i for i, item in enumerate(sms[frames.ITEM_ID])}
    by_cluster = merged.assign(norm=merged[frames.ITEM_ID].map(norm)).groupby(frames.CLUSTER_ID)
    earlier_texts = {
        item: set(group["norm"].iloc[:k])
        for _, group in by_cluster
        for k, item in enumerate(group[frames.ITEM_ID])
    }
    for item in exact[frames.ITEM_ID]:
        assert norm[item] in earlier_texts[item], item
        assert position[item] > 0
    near = result.duplicates[result.duplicates[frames.DUPLICATE_KIND] == "near"]
    assert (near["similarity"] < 1.0).any() or len(near) == 0
    assert result.stats["conflicts"] == 0  # SOURCE.md: no duplicate text has conflicting labels


def test_senti4sd_conflicting_duplicates_are_quarantined() -> None:
    raw = pd.read_csv(SENTI, dtype=str)
    items = as_items(raw["text"], raw["final"], ids=raw["label"])
    dup = raw[raw["text"].duplicated(keep=False)]
    assert raw["text"].duplicated().sum() == 92  # SOURCE.md: rows repeating an earlier text
    conflicting = dup.groupby("text")["final"].nunique()
    conflicting = conflicting[conflicting > 1].index
    assert len(conflicting) == 5  # SOURCE.md
    result = deduplicate(items, None, DedupConfig(conflict_action="quarantine"))
    assert_conservation(items, result)
    reported = [set(ids.split(",")) for ids in result.conflicts["item_ids"]]
    quarantined = set(result.quarantine[frames.ITEM_ID])
    for text in conflicting:
        group = set(raw.loc[raw["text"] == text, "label"])
        assert any(group <= ids for ids in reported)
        assert group <= quarantined
    assert (result.quarantine["reasons"].str.startswith("label_conflict: cluster c")).all()
    assert (result.conflicts["action"] == "quarantined").all()


def test_majority_resolves_conflicts_and_ties_are_quarantined() -> None:
    items = as_items(
        ["Good product!", "good product", "GOOD product.", "meh then", "Meh, then!"],
        ["positive", "positive", "negative", "neutral", "negative"],
    )
    result = deduplicate(items, None, DedupConfig(conflict_action="majority"))
    assert_conservation(items, result)
    actions = dict(zip(result.conflicts["n_items"], result.conflicts["action"], strict=True))
    assert actions == {3: "majority:positive", 2: "quarantined"}
    assert result.assignments["kept"].tolist() == [True, False, False, False, False]
    assert set(result.quarantine[frames.ITEM_ID]) == {"day.tsv:3", "day.tsv:4"}
    dropped = result.duplicates.set_index(frames.ITEM_ID)
    assert dropped.loc["day.tsv:2", "kept_label"] == "positive"


def planted_day(seed: int, n: int, prefix: str) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    vocab = [f"{prefix}{i}" for i in range(3000)]
    texts = [" ".join(rng.choice(vocab, 16)) for _ in range(n)]
    return texts, ["a" if i % 2 else "b" for i in range(n)]


def near_copy(text: str) -> str:
    words = text.split()
    words[3] = "edited"
    return " ".join(words)


def test_history_attachment_and_rerun_are_stable() -> None:
    texts1, labels1 = planted_day(1, 300, "x")
    day1 = as_items(texts1, labels1, source="d1")
    r1 = deduplicate(day1, None, DedupConfig())
    assert r1.stats["exact_dropped"] == r1.stats["near_dropped"] == 0
    history = as_history(r1, "train", "2026-01-01")
    texts2, labels2 = planted_day(2, 200, "y")
    texts2 += [texts1[0].upper() + "!", near_copy(texts1[1]), texts2[0], near_copy(texts2[5])]
    labels2 += [labels1[0], labels1[1], labels2[0], labels2[5]]
    day2 = as_items(texts2, labels2, source="d2")
    r2 = deduplicate(day2, history, DedupConfig())
    assert_conservation(day2, r2)
    dup = r2.duplicates.set_index(frames.ITEM_ID)
    assert dup.loc["d2:200", [frames.KEPT_ITEM_ID, frames.DUPLICATE_KIND]].tolist() == [
        "d1:0",
        "exact",
    ]
    assert dup.loc["d2:201", [frames.KEPT_ITEM_ID, frames.DUPLICATE_KIND]].tolist() == [
        "d1:1",
        "near",
    ]
    assert dup.loc["d2:200":"d2:201", "in_history"].all()
    assert 0.8 <= dup.loc["d2:201", "similarity"] < 1.0
    assert dup.loc["d2:202", frames.KEPT_ITEM_ID] == "d2:0"
    assert not dup.loc["d2:202", "in_history"]
    assert dup.loc["d2:203", frames.DUPLICATE_KIND] == "near"
    assignments = r2.assignments.set_index(frames.ITEM_ID)
    day1_cluster = r1.assignments.set_index(frames.ITEM_ID).loc["d1:1", frames.CLUSTER_ID]
    assert assignments.loc["d2:201", frames.CLUSTER_ID] == day1_cluster
    assert assignments.loc["d2:201", "history_split"] == "train"
    assert pd.isna(assignments.loc["d2:202", "history_split"])
    assert set(r2.index[frames.ITEM_ID]).isdisjoint(history[frames.ITEM_ID])
    again = deduplicate(day2, history, DedupConfig())
    for name in ("assignments", "duplicates", "quarantine", "conflicts", "index"):
        pd.testing.assert_frame_equal(getattr(r2, name), getattr(again, name))
    assert r2.stats == again.stats


def test_keep_mode_keeps_near_duplicates_and_quarantines_a_bridge() -> None:
    base = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi"
    words = base.split()
    left_text = " ".join([*words[:12], "one", "two"])
    right_text = " ".join([*words[:12], "three", "four"])
    day1 = as_items([left_text, right_text], ["p", "p"], source="d1")
    r1 = deduplicate(day1, None, DedupConfig(threshold=0.9))
    assert r1.stats["near_dropped"] == 0  # Jaccard 12/16 < 0.9: two clusters
    history = as_history(r1, {"d1:0": "train", "d1:1": "test"}, "2026-01-01")
    bridge = " ".join([*words[:12], "one", "two", "three"])  # Jaccard 14/15 and 13/16
    near_left = " ".join([*words[:12], "one", "two", "five"])
    day2 = as_items([bridge, near_left, near_left.upper()], ["p", "p", "p"], source="d2")
    config = DedupConfig(threshold=0.8, near_action="keep")
    r2 = deduplicate(day2, history, config)
    assert_conservation(day2, r2)
    quarantine = r2.quarantine.set_index(frames.ITEM_ID)
    assert quarantine.loc["d2:0", "reasons"].startswith("bridges_splits: cluster c")
    assert "test" in quarantine.loc["d2:0", "reasons"]
    assert "train" in quarantine.loc["d2:0", "reasons"]
    # Without the bridge, the near duplicate stays, in its history split; its copy is dropped.
    r3 = deduplicate(day2.iloc[1:], history, config)
    assert_conservation(day2.iloc[1:], r3)
    row = r3.assignments.set_index(frames.ITEM_ID).loc["d2:1"]
    assert row["kept"] and row["history_split"] == "train"
    assert r3.duplicates[frames.ITEM_ID].tolist() == ["d2:2"]
    assert r3.duplicates[frames.DUPLICATE_KIND].tolist() == ["exact"]


def test_empty_batch_and_bad_input() -> None:
    empty = as_items([], [])
    result = deduplicate(empty, None, DedupConfig())
    assert len(result.assignments) == len(result.index) == 0
    with pytest.raises(ValueError, match="unique"):
        deduplicate(as_items(["a", "b"], ["x", "y"], ids=["same", "same"]), None, DedupConfig())


SCRIPT = textwrap.dedent(
    """
    import hashlib, sys
    import numpy as np
    import pandas as pd
    from governance.dedup import DedupConfig, deduplicate
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(500)]
    texts = [" ".join(rng.choice(vocab, 14)) for _ in range(400)]
    texts += [t.upper() for t in texts[:40]] + [t + " extra" for t in texts[40:80]]
    n = len(texts)
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(n)], "text": texts,
        "label": ["a" if k % 3 else "b" for k in range(n)], "source_file": "f",
        "source_line": range(n), "n_source_rows": 1})
    r = deduplicate(items, None, DedupConfig(conflict_action="majority"))
    digest = hashlib.sha256()
    for frame in (r.assignments, r.duplicates, r.quarantine, r.conflicts, r.index):
        digest.update(frame.to_csv(index=False).encode())
    print(digest.hexdigest(), r.stats["near_dropped"], r.stats["exact_dropped"])
    """
)


def test_deterministic_across_hash_seeds() -> None:
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(PROJECT_ROOT / "include")}
        run = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
        )
        outputs.append(run.stdout.split())
    assert outputs[0] == outputs[1]
    assert int(outputs[0][1]) > 0 and int(outputs[0][2]) > 0


def test_sketch_prefilter_never_changes_the_verified_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pairs right around the threshold, within the day and against history: skipping the
    prefilter (every candidate checked exactly) must give the very same result."""
    from governance.dedup import match as dedup_match

    rng = np.random.default_rng(7)
    texts1, labels1 = planted_day(3, 400, "h")
    r1 = deduplicate(as_items(texts1, labels1, source="d1"), None, DedupConfig())
    history = as_history(r1, "train", "2026-01-01")
    texts2, labels2 = planted_day(4, 400, "n")
    for k in range(200):  # 1 to 5 of 16 words changed: Jaccard from about 0.94 down to 0.5
        source = texts1 if k % 2 else texts2
        words = source[k].split()
        for position in rng.choice(16, size=1 + k % 5, replace=False):
            words[position] = f"edit{k}_{position}"
        texts2.append(" ".join(words))
        labels2.append(labels1[k] if k % 2 else labels2[k])
    day2 = as_items(texts2, labels2, source="d2")
    filtered = deduplicate(day2, history, DedupConfig())
    monkeypatch.setattr(dedup_match, "sketch_margin", lambda threshold, size: 2.0)
    exhaustive = deduplicate(day2, history, DedupConfig())
    assert filtered.stats["checked_pairs"] < exhaustive.stats["checked_pairs"]
    assert filtered.stats["near_dropped"] >= 30  # the single-word edits (Jaccard 15/17)
    for name in ("assignments", "duplicates", "quarantine", "conflicts", "index"):
        pd.testing.assert_frame_equal(getattr(filtered, name), getattr(exhaustive, name))
