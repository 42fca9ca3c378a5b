"""The ensemble of the top trials: who is in it, what it predicts, when it replaces the best
single trial (probabilities with known answers)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from governance.errors import InvalidInputError
from governance.finetune import ensemble
from governance.finetune.evaluation import average_probabilities

CLASSES = ["negative", "neutral", "positive"]


def trial(index: int, value: float, state: str = "complete") -> dict:
    return {"index": index, "val_macro_f1": value, "state": state, "run_id": f"run{index}"}


def test_the_members_are_the_top_finished_trials_and_need_two() -> None:
    results = [trial(0, 0.7), trial(1, 0.9), trial(2, 0.95, "pruned"), trial(3, 0.9)]
    assert [m["index"] for m in ensemble.members(results, 2)] == [1, 3]
    assert [m["index"] for m in ensemble.members(results, 10)] == [1, 3, 0]
    assert ensemble.members(results, 1) == [], "k = 1 asks for no ensemble"
    assert ensemble.members([trial(0, 0.7), trial(1, 0.9, "pruned")], 3) == []
    grid = [{"index": 0, "val_macro_f1": 0.5}, {"index": 1, "val_macro_f1": 0.6}]
    assert [m["index"] for m in ensemble.members(grid, 2)] == [1, 0], "grid trials are finished"


def test_the_average_keeps_probabilities_and_refuses_mismatched_members() -> None:
    left = np.array([[0.8, 0.1, 0.1], [0.2, 0.2, 0.6]])
    right = np.array([[0.4, 0.5, 0.1], [0.0, 0.0, 1.0]])
    mean = average_probabilities([left, right])
    assert np.allclose(mean, [[0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    assert np.allclose(mean.sum(axis=1), 1.0)
    with pytest.raises(InvalidInputError, match="shape"):
        average_probabilities([left, right[:1]])
    with pytest.raises(InvalidInputError, match="at least one"):
        average_probabilities([])


def test_members_wrong_on_different_items_are_right_together() -> None:
    labels = np.array([0, 1, 2, 0])
    # the best trial is confidently wrong on item 1 only, the other on item 2 only, mildly
    best = np.array([[0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1]])
    other = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.1, 0.5, 0.4], [0.9, 0.05, 0.05]])
    summary, winner = ensemble.compete(
        trial(0, 0.9), [trial(1, 0.8)], best, lambda member: other, labels, CLASSES, 0.005
    )
    assert summary["chosen"] and summary["test_macro_f1"] == pytest.approx(1.0)
    assert summary["best_single_test_macro_f1"] < 0.8
    assert [m["index"] for m in summary["members"]] == [0, 1]
    assert np.allclose(winner, (best + other) / 2)

    worse = np.roll(best, 1, axis=1)  # wrong everywhere: the mean loses to the best alone
    summary, winner = ensemble.compete(
        trial(0, 0.9), [trial(1, 0.8)], best, lambda member: worse, labels, CLASSES, 0.005
    )
    assert not summary["chosen"] and winner is best
    assert "not better by more than the margin 0.005" in summary["reason"]


def test_an_ensemble_must_beat_the_best_trial_by_more_than_the_margin() -> None:
    assert ensemble.judge(0.91, 0.90, 0.005).chosen
    assert not ensemble.judge(0.905, 0.90, 0.005).chosen
    assert not ensemble.judge(0.90, 0.90, 0.0).chosen


def test_the_member_tag_names_every_trial_run() -> None:
    tag = ensemble.member_tag([trial(2, 0.9), trial(0, 0.8)])
    assert json.loads(tag) == [{"trial": 2, "run_id": "run2"}, {"trial": 0, "run_id": "run0"}]
