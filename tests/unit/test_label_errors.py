"""Suspected label errors: injected flips are found, and no item vouches for its own label."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from governance.audit.label_errors import QUEUE_COLUMNS, find_suspected_errors, vote_strings
from governance.demo.text import compose_review

CLASSES = ["positive", "neutral", "negative"]
NO_VOTES = pd.DataFrame(columns=["item_id", "annotator", "label"])


def items_with_flips(n: int = 600, flip_rate: float = 0.05, seed: int = 1):
    rng = random.Random(seed)
    rows, flipped = [], set()
    for number in range(n):
        label = rng.choice(CLASSES)
        text = compose_review(rng, label).text
        given = label
        if rng.random() < flip_rate:
            given = rng.choice([c for c in CLASSES if c != label])
            flipped.add(f"i{number}")
        rows.append((f"i{number}", text, given, rng.choice(["train", "val", "test"])))
    return pd.DataFrame(rows, columns=["item_id", "text", "label", "split"]), flipped


def consensus_of(items: pd.DataFrame) -> pd.DataFrame:
    return items[["item_id"]].assign(consensus_label=items["label"])


def test_finds_injected_flips_with_high_precision_and_recall() -> None:
    items, flipped = items_with_flips()
    result = find_suspected_errors(items, CLASSES, NO_VOTES, consensus_of(items), folds=5)
    found = set(result.queue["item_id"])
    assert len(flipped) >= 20
    assert len(found & flipped) / len(flipped) >= 0.85
    assert len(found & flipped) / len(found) >= 0.85
    assert result.summary["suspected"] == len(found)
    assert result.summary["rate"] == pytest.approx(len(found) / len(items))


def test_predictions_are_out_of_fold() -> None:
    """Texts of random unique tokens with random labels: a model scoring items it was trained
    on would memorise them (accuracy near 1); out of fold it can only guess (about 1/3)."""
    rng = np.random.default_rng(0)
    n = 450
    texts = [" ".join(f"tok{rng.integers(1_000_000)}" for _ in range(8)) for _ in range(n)]
    items = pd.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(n)],
            "text": texts,
            "label": rng.choice(CLASSES, size=n),
            "split": "train",
        }
    )
    result = find_suspected_errors(items, CLASSES, NO_VOTES, consensus_of(items), folds=5)
    assert result.summary["out_of_fold_accuracy"] < 0.45


def test_queue_is_ranked_by_score_and_shows_the_votes() -> None:
    items, _ = items_with_flips(n=300, flip_rate=0.1, seed=4)
    votes = pd.DataFrame(
        [
            (i, a, label)
            for i, label in zip(items["item_id"], items["label"], strict=True)
            for a in ("ann_01", "ann_02")
        ],
        columns=["item_id", "annotator", "label"],
    )
    queue = find_suspected_errors(items, CLASSES, votes, consensus_of(items)).queue
    assert list(queue.columns) == QUEUE_COLUMNS
    assert queue["rank"].tolist() == list(range(1, len(queue) + 1))
    assert queue["score"].is_monotonic_increasing
    assert (queue["given_label"] != queue["suggested_label"]).all()
    first = queue.iloc[0]
    assert first["votes"] == f"ann_01:{first['given_label']}, ann_02:{first['given_label']}"
    assert first["given_label_probability"] == pytest.approx(first["score"])


def test_unlabelled_items_are_left_out_and_counted() -> None:
    items, _ = items_with_flips(n=200, flip_rate=0.0)
    items.loc[:9, "label"] = None
    result = find_suspected_errors(items, CLASSES, NO_VOTES, consensus_of(items))
    assert result.summary["items"] == 190 and result.summary["unlabelled_items"] == 10
    assert not set(result.queue["item_id"]) & set(items.loc[:9, "item_id"])


def test_too_few_items_are_skipped_with_a_reason() -> None:
    items = pd.DataFrame(
        {"item_id": ["a", "b", "c"], "text": ["x y", "y z", "z w"], "label": ["ham", "ham", "spam"]}
    ).assign(split="train")
    result = find_suspected_errors(items, ["ham", "spam"], NO_VOTES, consensus_of(items))
    assert result.summary is None and result.queue.empty
    assert result.skipped.startswith("suspected label errors:")


def test_vote_strings_keep_vote_order() -> None:
    votes = pd.DataFrame(
        {"item_id": ["a", "a", "b"], "annotator": ["x", "y", "x"], "label": ["p", "n", "p"]}
    )
    assert vote_strings(votes).to_dict() == {"a": "x:p, y:n", "b": "x:p"}
