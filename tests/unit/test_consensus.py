"""Consensus and annotator quality on votes whose truth is known."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from governance.audit.consensus import build_consensus

CLASSES = ["positive", "neutral", "negative"]
RELIABLE = [f"r{n}" for n in range(6)]
RANDOM_VOTER, CONFUSED_VOTER = "x_random", "x_confused"
CONFUSION = {"positive": "neutral", "neutral": "positive", "negative": "neutral"}


def simulate(n_items: int = 600, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Three votes per item from reliable (95%), random and confused annotators."""
    rng = random.Random(seed)
    truth, votes = {}, []
    for number in range(n_items):
        item = f"i{number:04d}"
        label = rng.choice(CLASSES)
        truth[item] = label
        for annotator in rng.sample([*RELIABLE, RANDOM_VOTER, CONFUSED_VOTER], 3):
            if annotator == RANDOM_VOTER:
                given = rng.choice(CLASSES)
            elif annotator == CONFUSED_VOTER:
                given = CONFUSION[label] if rng.random() < 0.8 else label
            else:
                given = label if rng.random() < 0.95 else rng.choice(CLASSES)
            votes.append((item, annotator, given))
    annotations = pd.DataFrame(votes, columns=["item_id", "annotator", "label"])
    majority = {}
    for item, group in annotations.groupby("item_id"):
        (top, count), *_ = Counter(group["label"]).most_common(1)
        majority[item] = top if count * 2 > len(group) else None
    items = pd.DataFrame({"item_id": list(truth), "label": [majority[i] for i in truth]})
    return items, annotations, truth


@pytest.fixture(scope="module")
def simulated():
    items, annotations, truth = simulate()
    return items, annotations, truth, build_consensus(items, annotations, CLASSES, 0.7, 20)


def test_consensus_is_the_majority_wherever_one_exists(simulated) -> None:
    items, _, _, result = simulated
    table = result.consensus.set_index("item_id")
    given = items.set_index("item_id")["label"].reindex(table.index)
    has_majority = given.notna()
    assert (table["consensus_label"][has_majority] == given[has_majority]).all()
    assert (table["method"][has_majority] == "majority").all()
    assert (table["method"][~has_majority] == "dawid_skene").all()
    assert result.summary["majority_items"] == int(has_majority.sum())


def test_dawid_skene_resolves_ties_better_than_chance(simulated) -> None:
    _, _, truth, result = simulated
    table = result.consensus.set_index("item_id")
    ties = table[table["method"] == "dawid_skene"]
    assert len(ties) >= 20
    correct = np.mean([ties.loc[i, "consensus_label"] == truth[i] for i in ties.index])
    assert correct > 0.6  # chance among three disagreeing votes is 1/3
    overall = np.mean([table.loc[i, "consensus_label"] == truth[i] for i in truth])
    assert overall > 0.9


def test_flags_exactly_the_unreliable_annotators(simulated) -> None:
    _, annotations, _, result = simulated
    quality = result.quality.set_index("annotator")
    assert set(quality.index[quality["flagged"]]) == {RANDOM_VOTER, CONFUSED_VOTER}
    assert quality.loc[RANDOM_VOTER, "reason"].startswith("accuracy ")
    consensus = result.consensus.set_index("item_id")["consensus_label"]
    for annotator, group in annotations.groupby("annotator"):
        expected = (group["label"] == group["item_id"].map(consensus)).mean()
        assert quality.loc[annotator, "accuracy"] == pytest.approx(expected, abs=1e-12)
        assert quality.loc[annotator, "n_items"] == len(group)


def test_confusion_matrices_are_distributions_that_show_the_mix_up(simulated) -> None:
    *_, result = simulated
    confusion = result.confusion
    sums = confusion.groupby(["annotator", "true_label"])["probability"].sum()
    assert np.allclose(sums, 1.0)
    assert len(confusion) == 8 * 3 * 3
    confused = confusion.set_index(["annotator", "true_label", "given_label"])["probability"]
    assert confused[(CONFUSED_VOTER, "positive", "neutral")] > 0.6
    assert confused[(RELIABLE[0], "positive", "positive")] > 0.85
    quality = result.quality.set_index("annotator")
    assert quality.loc[RELIABLE[0], "ds_accuracy"] > quality.loc[RANDOM_VOTER, "ds_accuracy"]


def test_confidence_is_a_probability_and_high_on_unanimous_items(simulated) -> None:
    _, annotations, _, result = simulated
    confidence = result.consensus.set_index("item_id")["confidence"]
    assert confidence.between(0, 1).all()
    unanimous = annotations.groupby("item_id")["label"].nunique() == 1
    assert confidence[unanimous[unanimous].index].median() > 0.9


def test_single_label_items_keep_their_label() -> None:
    items = pd.DataFrame({"item_id": ["a", "b"], "label": ["ham", "spam"]})
    empty = pd.DataFrame(columns=["item_id", "annotator", "label"])
    result = build_consensus(items, empty, ["ham", "spam"])
    assert result.consensus["consensus_label"].tolist() == ["ham", "spam"]
    assert set(result.consensus["method"]) == {"given"}
    assert result.quality.empty and result.summary == {}
