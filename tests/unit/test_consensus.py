"""Consensus and annotator quality on votes whose truth is known."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from governance.audit.consensus import build_consensus
from governance.contracts import AuditSpec

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
    return items, annotations, truth, build_consensus(items, annotations, CLASSES)


def accuracy(labels: pd.Series, truth: dict) -> float:
    return float(np.mean([labels[item] == label for item, label in truth.items()]))


def test_auto_beats_plurality_where_two_workers_are_unreliable(simulated) -> None:
    _, _, truth, result = simulated
    table = result.consensus.set_index("item_id")
    assert result.summary["aggregator"] != "plurality"
    assert (table["method"] == result.summary["aggregator"]).all()
    assert accuracy(table["consensus_label"], truth) > accuracy(table["plurality_label"], truth)
    assert accuracy(table["consensus_label"], truth) > 0.95


def test_every_item_carries_its_plurality_and_the_changed_ones_are_counted(simulated) -> None:
    _, annotations, _, result = simulated
    table = result.consensus.set_index("item_id")
    for item, group in annotations.groupby("item_id"):
        counts = Counter(group["label"])
        top = max(counts.values())
        assert counts[table.loc[item, "plurality_label"]] == top
        assert table.loc[item, "plurality_share"] == pytest.approx(top / len(group))
        assert table.loc[item, "n_votes"] == len(group)
    changed = (table["consensus_label"] != table["plurality_label"]).sum()
    assert result.summary["changed_from_plurality"] == changed > 0
    no_majority = annotations.groupby("item_id")["label"].agg(
        lambda votes: Counter(votes).most_common(1)[0][1] * 2 <= len(votes)
    )
    assert result.summary["no_majority_items"] == int(no_majority.sum())


def test_the_summary_records_what_auto_compared(simulated) -> None:
    *_, result = simulated
    summary = result.summary
    names = [candidate["name"] for candidate in summary["candidates"]]
    assert names[0] == "plurality" and summary["aggregator"] in names
    chosen = next(c for c in summary["candidates"] if c["name"] == summary["aggregator"])
    assert chosen["gain"] > chosen["standard_error"] > 0
    assert summary["requested"] == "auto" and summary["folds"] == 10
    assert summary["scored_votes"] == summary["fitted_votes"] == 1800


def test_a_named_aggregator_runs_without_a_comparison(simulated) -> None:
    items, annotations, *_ = simulated
    result = build_consensus(items, annotations, CLASSES, AuditSpec(consensus="plurality"))
    table = result.consensus
    assert (table["consensus_label"] == table["plurality_label"]).all()
    assert set(table["method"]) == {"plurality"}
    assert result.summary["candidates"] == [] and result.summary["changed_from_plurality"] == 0
    assert result.summary["reason"] == "named by the contract (plurality)"


def test_accuracy_intervals_flag_exactly_the_unreliable_annotators(simulated) -> None:
    _, annotations, _, result = simulated
    quality = result.quality.set_index("annotator")
    assert set(quality.index[quality["flagged"]]) == {RANDOM_VOTER, CONFUSED_VOTER}
    assert set(quality.index[quality["assessment"] == "unreliable"]) == {
        RANDOM_VOTER,
        CONFUSED_VOTER,
    }
    assert quality.loc[RANDOM_VOTER, "reason"].startswith("accuracy ")
    consensus = result.consensus.set_index("item_id")["consensus_label"]
    for annotator, group in annotations.groupby("annotator"):
        hits = int((group["label"] == group["item_id"].map(consensus)).sum())
        n = len(group)
        low, high = wilson(hits, n)
        assert quality.loc[annotator, "accuracy"] == pytest.approx(hits / n, abs=1e-12)
        assert quality.loc[annotator, "accuracy_low"] == pytest.approx(low, abs=1e-12)
        assert quality.loc[annotator, "accuracy_high"] == pytest.approx(high, abs=1e-12)
        assert quality.loc[annotator, "n_items"] == n


def wilson(hits: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval, from its formula."""
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_a_worker_with_three_wrong_votes_is_not_enough_data_not_unreliable(simulated) -> None:
    items, annotations, *_ = simulated
    first = items["item_id"].head(3).tolist()
    consensus = build_consensus(items, annotations, CLASSES).consensus.set_index("item_id")
    wrong = [
        next(c for c in CLASSES if c != consensus.loc[item, "consensus_label"]) for item in first
    ]
    newcomer = pd.DataFrame({"item_id": first, "annotator": "newcomer", "label": wrong})
    result = build_consensus(items, pd.concat([annotations, newcomer]), CLASSES)
    row = result.quality.set_index("annotator").loc["newcomer"]
    assert row["n_items"] == 3 and row["accuracy_high"] < 0.7
    assert row["assessment"] == "not enough data" and not row["flagged"]
    reliable = result.quality.set_index("annotator").loc[RELIABLE[0]]
    assert reliable["assessment"] == "reliable" and reliable["accuracy_low"] >= 0.7


def test_confusion_matrices_are_distributions_that_show_the_mix_up(simulated) -> None:
    *_, result = simulated
    confusion = result.confusion
    sums = confusion.groupby(["annotator", "true_label"])["probability"].sum()
    assert np.allclose(sums, 1.0)
    assert len(confusion) == 8 * 3 * 3
    confused = confusion.set_index(["annotator", "true_label", "given_label"])["probability"]
    assert confused[(CONFUSED_VOTER, "positive", "neutral")] > 0.6
    assert confused[(RELIABLE[0], "positive", "positive")] > 0.85


def test_confidence_is_a_probability_and_high_on_unanimous_items(simulated) -> None:
    _, annotations, _, result = simulated
    confidence = result.consensus.set_index("item_id")["confidence"]
    assert confidence.between(0, 1).all()
    unanimous = annotations.groupby("item_id")["label"].nunique() == 1
    assert confidence[unanimous[unanimous].index].median() > 0.9


def test_earlier_votes_join_the_fit_but_not_the_tables(simulated) -> None:
    items, annotations, _, _ = simulated
    earlier_items, earlier, _ = simulate(n_items=600, seed=1)
    tonight = items.head(60)
    votes = annotations[annotations["item_id"].isin(tonight["item_id"])]
    joined = build_consensus(tonight, votes, CLASSES, history=earlier)
    assert joined.consensus["item_id"].tolist() == tonight["item_id"].tolist()
    assert set(joined.quality["annotator"]) == set(votes["annotator"])
    assert joined.summary["earlier_votes"] == len(earlier)
    assert joined.summary["fitted_votes"] == len(votes) + len(earlier)
    union_items = pd.concat(
        [tonight, earlier_items.assign(item_id="earlier:" + earlier_items["item_id"])]
    )
    union_votes = pd.concat([votes, earlier.assign(item_id="earlier:" + earlier["item_id"])])
    union = build_consensus(union_items, union_votes, CLASSES).consensus.set_index("item_id")
    labels = joined.consensus.set_index("item_id")["consensus_label"]
    assert labels.equals(union.loc[tonight["item_id"], "consensus_label"])
    assert joined.summary["aggregator"] == union["method"].iloc[0]
    again = build_consensus(tonight, votes, CLASSES, history=earlier)
    pd.testing.assert_frame_equal(again.consensus, joined.consensus)


def test_single_label_items_keep_their_label() -> None:
    items = pd.DataFrame({"item_id": ["a", "b"], "label": ["ham", "spam"]})
    empty = pd.DataFrame(columns=["item_id", "annotator", "label"])
    result = build_consensus(items, empty, ["ham", "spam"])
    assert result.consensus["consensus_label"].tolist() == ["ham", "spam"]
    assert set(result.consensus["method"]) == {"given"}
    assert result.quality.empty and result.summary == {}
