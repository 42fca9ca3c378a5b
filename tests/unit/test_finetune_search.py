"""The Bayesian search's study across tasks: shared by processes, found again by a retry, and
guided by earlier trials (TPE against random search on a function with a known optimum)."""

from __future__ import annotations

import math
import multiprocessing
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from governance.contract_finetune import SearchSpace
from governance.contracts import Contract
from governance.finetune import search
from tests.contracts import shipped_contract

SPACE = SearchSpace()
BEST_LEARNING_RATE = 3e-4


def settings(storage: str, study: str = "finetune_x/manual__1", **changes) -> search.SearchSettings:
    values = {
        "study": study,
        "storage": storage,
        "space": SPACE.model_dump(),
        "pruner": "median",
        "startup_trials": 3,
        "seed": 0,
        **changes,
    }
    return search.SearchSettings(**values)


def score(params: dict) -> float:
    """A known objective: best at learning rate 3e-4, weight decay 0 and warm-up 0.1."""
    distance = math.log10(params["learning_rate"] / BEST_LEARNING_RATE) ** 2
    return 1.0 - distance - params["weight_decay"] - abs(params["warmup_ratio"] - 0.1)


@pytest.fixture
def sqlite(tmp_path: Path) -> str:
    return search.storage_url(tmp_path, None)


@pytest.fixture
def postgres() -> Iterator[str]:
    """A database of its own on the machine's PostgreSQL, dropped afterwards."""
    psycopg2 = pytest.importorskip("psycopg2")
    name = f"governance_optuna_test_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def test_the_search_space_is_checked_when_the_contract_loads() -> None:
    raw = shipped_contract("demo_reviews").model_dump()

    def with_finetune(**changes) -> Contract:
        return Contract.model_validate({**raw, "finetune": {**raw["finetune"], **changes}})

    space = raw["finetune"]["search_space"]
    refused = {
        "is above high": {"search_space": {**space, "epochs": {"low": 3, "high": 1}}},
        "log-scale": {"search_space": {**space, "learning_rate": {"low": 0, "high": 1, "log": 1}}},
        "warm-up": {"search_space": {**space, "warmup_ratio": {"low": 0, "high": 1.0}}},
        "distinct sizes": {"search_space": {**space, "batch_size": [16, 16]}},
        "at most 7 trials": {"search": "grid", "trials": 8},
    }
    for message, changes in refused.items():
        with pytest.raises(ValueError, match=message):
            with_finetune(**changes)
    assert with_finetune(search="bayesian", trials=40).finetune.trials == 40


def test_a_retried_task_gets_its_trial_back_and_a_told_trial_trains_nothing(sqlite: str) -> None:
    asked = settings(sqlite)
    search.create_study(asked, {"dataset": "x"})
    first = search.propose(search.load_study(asked, 0), 0, SPACE)
    second = search.propose(search.load_study(asked, 1), 1, SPACE)
    assert (first.number, second.number) == (0, 1)
    assert first.params != second.params, "each task's sampler is seeded apart"
    for proposal in (first, second):
        low, high = SPACE.learning_rate.low, SPACE.learning_rate.high
        assert low <= proposal.params["learning_rate"] <= high
        assert proposal.params["batch_size"] in SPACE.batch_size
        assert SPACE.epochs.low <= proposal.params["epochs"] <= SPACE.epochs.high

    study = search.load_study(asked, 0)
    retried = search.propose(study, 0, SPACE)
    assert (retried.number, retried.params, retried.state) == (0, first.params, "running")
    assert retried.trial is not None
    assert search.tell(study, retried, 0.5, pruned=False) == search.COMPLETE

    again = search.propose(search.load_study(asked, 0), 0, SPACE)
    assert (again.trial, again.state, again.params) == (None, search.COMPLETE, first.params)
    assert search.tell(study, again, 0.9, pruned=False) == search.COMPLETE  # told once only
    rows = search.trial_rows(search.load_study(asked))
    assert [(r["number"], r["state"], r["value"]) for r in rows] == [
        (0, "complete", 0.5),
        (1, "running", None),
    ]
    assert search.close(study) == [1]
    assert search.trial_rows(study)[1]["state"] == search.FAILED


def test_a_proposal_replaces_only_the_searched_settings() -> None:
    params = {"learning_rate": 1e-4, "batch_size": 16, "weight_decay": 0.05}
    proposal = search.Proposal(0, {**params, "warmup_ratio": 0.1, "epochs": 2}, None)
    base = {"learning_rate": 5e-5, "batch_size": 8, "max_seq_length": 48, "seed": 3}
    assert proposal.configure(base) == {
        **params,
        "warmup_ratio": 0.1,
        "epochs": 2,
        "max_seq_length": 48,
        "seed": 3,
    }


def _one_task(storage: str, index: int) -> None:
    asked = settings(storage)
    study = search.load_study(asked, index)
    proposal = search.propose(study, index, SPACE)
    search.tell(study, proposal, score(proposal.params), pruned=False)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_trial_tasks_in_separate_processes_share_one_study(backend: str, request) -> None:
    storage = request.getfixturevalue(backend)
    search.create_study(settings(storage), {})
    fork = multiprocessing.get_context("fork")  # each task opens its own storage engine
    workers = [fork.Process(target=_one_task, args=(storage, index)) for index in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    rows = search.trial_rows(search.load_study(settings(storage)))
    assert sorted(r[search.MAP_INDEX_ATTR] for r in rows) == [0, 1, 2, 3]
    assert sorted(r["number"] for r in rows) == [0, 1, 2, 3]
    assert {r["state"] for r in rows} == {search.COMPLETE}
    assert len({r["params"]["learning_rate"] for r in rows}) == 4


def _search(storage: str, study: str, trials: int, startup: int) -> list[float]:
    """Trials one after another, each in a study loaded afresh as a task would."""
    asked = settings(storage, study=study, startup_trials=startup)
    search.create_study(asked, {})
    values = []
    for index in range(trials):
        task_study = search.load_study(asked, index)
        proposal = search.propose(task_study, index, SPACE)
        values.append(score(proposal.params))
        search.tell(task_study, proposal, values[-1], pruned=False)
    return values


def test_the_sampler_learns_from_the_trials_other_tasks_finished(sqlite: str) -> None:
    """After its random start, TPE draws near the optimum; with a random start as long as the
    whole search (no model of earlier trials) the same trials stay as spread as at first."""
    guided = _search(sqlite, "guided", trials=24, startup=4)
    unguided = _search(sqlite, "unguided", trials=24, startup=24)
    assert guided[:4] == unguided[:4], "the same random start"
    late_guided, late_unguided = sum(guided[12:]) / 12, sum(unguided[12:]) / 12
    assert late_guided > late_unguided + 0.1
    assert max(guided) > 0.9  # within a factor 1.4 of the best learning rate, little decay


def test_the_history_keeps_the_best_so_far_and_plots_pruned_trials() -> None:
    assert search.best_so_far([None, 0.4, None, 0.3, 0.6]) == [None, 0.4, 0.4, 0.4, 0.6]
    rows = [
        {"number": 0, "state": "complete", "value": 0.4, "intermediate_values": {"0": 0.4}},
        {"number": 1, "state": "pruned", "value": None, "intermediate_values": {"0": 0.1}},
    ]
    png = search.history_png(rows, "study")
    assert png.startswith(b"\x89PNG") and png == search.history_png(rows, "study")


def test_importances_need_two_finished_trials_with_different_settings(sqlite: str) -> None:
    _search(sqlite, "one", trials=1, startup=1)
    assert search.importances(search.load_study(settings(sqlite, study="one"))) is None
    _search(sqlite, "eight", trials=8, startup=8)
    found = search.importances(search.load_study(settings(sqlite, study="eight")))
    assert found is not None and set(found) == set(search.SEARCHED)
    assert math.isclose(sum(found.values()), 1.0)
    # batch size and epochs do not enter the score
    assert max(found, key=found.__getitem__) not in ("batch_size", "epochs")
