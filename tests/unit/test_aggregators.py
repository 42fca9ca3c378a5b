"""Aggregators against crowd-kit and hand-counted references; ``auto``'s held-out selection."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from governance.audit import aggregators as A
from governance.audit.selection import deal_folds, held_out_scores, select_aggregator
from governance.demo.crowd import REGIMES, generate_crowd
from governance.errors import InvalidInputError

LONG_TAIL, CONFUSED = REGIMES[1], REGIMES[3]


def reference_plurality(votes: list[str], classes: list[str]) -> str:
    """The documented rule, counted by hand: most votes, a tie to the class declared first."""
    counts = Counter(votes)
    return min(classes, key=lambda c: (-counts[c], classes.index(c)))


def test_plurality_breaks_ties_by_the_declared_order() -> None:
    classes = ["d", "b", "a", "c"]
    rng = random.Random(3)
    items = {
        f"i{n}": [rng.choice(classes[1:]) for _ in range(rng.randint(1, 4))] for n in range(300)
    }
    rows = [(item, f"w{k}", vote) for item, votes in items.items() for k, vote in enumerate(votes)]
    frame = pd.DataFrame(rows, columns=["item_id", "annotator", "label"])
    votes = A.Votes.of(frame, classes)
    labels = A.aggregate("plurality", votes).labels
    expected = [reference_plurality(items[item], classes) for item in votes.items]
    assert [classes[code] for code in labels] == expected
    assert sum(len(set(Counter(v).values())) < len(Counter(v)) for v in items.values()) > 30


def test_a_two_way_tie_goes_to_the_class_declared_first() -> None:
    frame = pd.DataFrame(
        {
            "item_id": ["x", "x", "y", "y"],
            "annotator": ["a", "b", "a", "b"],
            "label": ["neg", "pos", "pos", "neg"],
        }
    )
    votes = A.Votes.of(frame, ["pos", "neg"])
    assert A.aggregate("plurality", votes).labels.tolist() == [0, 0]


@pytest.mark.parametrize("regime", REGIMES, ids=lambda r: r.name)
def test_one_coin_matches_crowdkit(regime) -> None:
    crowd = generate_crowd(regime, seed=0)
    votes = A.Votes.of(crowd.votes, crowd.classes)
    ours = A.aggregate("one_coin", votes).probas
    reference = A._crowdkit(A._one_coin)(votes)
    assert np.abs(ours - reference).max() < 1e-6


@pytest.mark.parametrize("regime", REGIMES, ids=lambda r: r.name)
def test_dawid_skene_matches_crowdkit(regime) -> None:
    """Equal wherever every worker used every class they are scored on; crowd-kit leaves a
    (worker, label) pair it never saw out of the normalisation, so on sparse crowds a few
    near-ties may fall the other way."""
    crowd = generate_crowd(regime, seed=0)
    votes = A.Votes.of(crowd.votes, crowd.classes)
    ours = A.aggregate("dawid_skene", votes).probas
    reference = A._crowdkit(A._dawid_skene)(votes)
    assert (ours.argmax(axis=1) == reference.argmax(axis=1)).mean() >= 0.99
    assert np.median(np.abs(ours - reference).max(axis=1)) < 1e-6


def test_wawa_weighs_each_vote_by_its_workers_agreement_with_plurality() -> None:
    crowd = generate_crowd(REGIMES[2], seed=1)
    votes = A.Votes.of(crowd.votes, crowd.classes)
    frame = crowd.votes
    plural = pd.Series(
        np.asarray(crowd.classes)[A.aggregate("plurality", votes).labels], index=votes.items
    )
    skill = (frame["label"] == frame["item_id"].map(plural)).groupby(frame["annotator"]).mean()
    weighted = (
        frame.assign(weight=frame["annotator"].map(skill))
        .pivot_table(index="item_id", columns="label", values="weight", aggfunc="sum")
        .reindex(index=votes.items, columns=crowd.classes)
        .fillna(0.0)
    )
    expected = (weighted.to_numpy().T / weighted.to_numpy().sum(axis=1)).T
    ours = A.aggregate("wawa", votes).probas
    assert np.abs(ours - expected).max() < 1e-9


@pytest.mark.parametrize("name", ["glad", "mmsr"])
def test_crowdkit_aggregators_give_distributions_for_every_item(name) -> None:
    crowd = generate_crowd(REGIMES[0], seed=0)
    votes = A.Votes.of(crowd.votes, crowd.classes)
    probas = A.aggregate(name, votes).probas
    assert probas.shape == (len(votes.items), len(crowd.classes))
    assert np.allclose(probas.sum(axis=1), 1.0) and (probas >= 0).all()
    truth = crowd.truth.reindex(votes.items).to_numpy()
    assert (np.asarray(crowd.classes)[probas.argmax(axis=1)] == truth).mean() > 0.9


def test_votes_outside_the_classes_are_refused_by_name() -> None:
    frame = pd.DataFrame({"item_id": ["x"], "annotator": ["a"], "label": ["maybe"]})
    with pytest.raises(ValueError, match="maybe"):
        A.Votes.of(frame, ["pos", "neg"])


def test_folds_keep_training_votes_for_every_item_in_every_fold() -> None:
    crowd = generate_crowd(LONG_TAIL, seed=0)
    votes = A.Votes.of(crowd.votes, crowd.classes)
    dealt = deal_folds(votes, folds=5, seed=0)
    per_item = pd.crosstab(votes.item, dealt)
    assert (per_item.max(axis=1) - per_item.min(axis=1) <= 1).all()
    assert (per_item.sum(axis=1) - per_item.max(axis=1) >= 1).all()
    assert np.array_equal(dealt, deal_folds(votes, folds=5, seed=0))


def test_held_out_scores_are_log_probabilities_that_reward_the_truth() -> None:
    crowd = generate_crowd(CONFUSED, seed=0)
    votes = A.Votes.of(crowd.votes, crowd.classes)
    dealt = deal_folds(votes, 5, 0)
    train, held = votes.subset(dealt != 0), votes.subset(dealt == 0)
    truth = pd.Index(crowd.classes).get_indexer(crowd.truth.reindex(votes.items))
    plural = A.aggregate("plurality", train).labels
    assert (held_out_scores(train, held, truth) <= 0).all()
    assert held_out_scores(train, held, truth).mean() > held_out_scores(train, held, plural).mean()


def test_auto_adopts_dawid_skene_where_workers_confuse_classes() -> None:
    crowd = generate_crowd(CONFUSED, seed=0)
    votes = A.Votes.of(crowd.votes, crowd.classes)
    selection = select_aggregator(votes, ("plurality", "wawa", "one_coin", "dawid_skene"))
    assert selection.chosen == "dawid_skene"
    by_name = {score.name: score for score in selection.scores}
    assert by_name["plurality"].gain == 0.0
    assert by_name["dawid_skene"].gain > by_name["dawid_skene"].standard_error > 0
    assert "dawid_skene" in selection.reason


def test_auto_keeps_plurality_when_every_worker_is_alike() -> None:
    """Identical workers: no model can know more than the vote count, so none is adopted."""
    rng = np.random.default_rng(5)
    truth = rng.integers(3, size=300)
    rows = [
        (f"i{i}", f"w{w}", f"c{t if rng.random() < 0.8 else (t + rng.integers(1, 3)) % 3}")
        for i, t in enumerate(truth)
        for w in rng.choice(30, 5, replace=False)
    ]
    frame = pd.DataFrame(rows, columns=["item_id", "annotator", "label"])
    votes = A.Votes.of(frame, ["c0", "c1", "c2"])
    selection = select_aggregator(votes, ("plurality", "one_coin", "dawid_skene"))
    assert selection.chosen == "plurality"


@pytest.mark.parametrize("name", A.AGGREGATORS)
def test_an_item_left_without_votes_gets_the_same_distribution_as_any_other(name) -> None:
    """A fold can take every vote of an item: the rest stay fitted, nothing turns NaN; an item
    without evidence gets uniform shares, or a model's class prior."""
    crowd = generate_crowd(REGIMES[0], seed=2)
    votes = A.Votes.of(crowd.votes, crowd.classes)
    emptied = np.isin(votes.item, [0, 1, 2])
    probas = A.aggregate(name, votes.subset(~emptied)).probas
    assert np.isfinite(probas).all() and np.allclose(probas.sum(axis=1), 1.0)
    assert np.allclose(probas[:3], probas[0])
    if name in ("plurality", "wawa"):
        assert np.allclose(probas[0], 1 / len(crowd.classes))
    truth = crowd.truth.reindex(votes.items).to_numpy()[3:]
    assert (np.asarray(crowd.classes)[probas[3:].argmax(axis=1)] == truth).mean() > 0.9


def test_a_crowdkit_model_that_cannot_fit_says_which_and_what_to_do() -> None:
    frame = pd.DataFrame({"item_id": ["x"], "annotator": ["a"], "label": ["pos"]})
    votes = A.Votes.of(frame, ["pos", "neg"])
    with pytest.raises(InvalidInputError, match=r"MMSR cannot be fitted .*audit\.consensus"):
        A.aggregate("mmsr", votes)
