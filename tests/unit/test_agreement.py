"""Agreement statistics against krippendorff, statsmodels, sklearn and published worked examples."""

from __future__ import annotations

import itertools
import json
import math
import warnings

import krippendorff
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from governance.audit.agreement import (
    agreement_summary,
    coincidence_matrix,
    fleiss_kappa,
    krippendorff_alpha_nominal,
    modal_vote_items,
    pairwise_cohen_kappa,
    per_class_alpha,
    per_class_fleiss_kappa,
    vote_counts,
)
from governance.contracts import PROJECT_ROOT, load_contract
from governance.labels import LabelCanon
from tests.conftest import SENTI4SD_CSV

TOL = 1e-9
CLASSES = ["positive", "neutral", "negative"]
SENTI4SD_CONTRACT = PROJECT_ROOT / "include" / "contracts" / "senti4sd_gold.yaml"


def frame(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["item_id", "annotator", "label"])


def random_votes(seed: int, n_items: int = 300, n_annotators: int = 6) -> pd.DataFrame:
    """Items with 1..5 votes from random annotators; each vote right with probability 0.7."""
    rng = np.random.default_rng(seed)
    rows = []
    for item in range(n_items):
        truth = rng.integers(len(CLASSES))
        chosen = rng.choice(n_annotators, size=rng.integers(1, 6), replace=False)
        for annotator in chosen:
            label = truth if rng.random() < 0.7 else rng.integers(len(CLASSES))
            rows.append((f"item{item:04d}", f"ann{annotator}", CLASSES[label]))
    return frame(rows)


# ---- independent references, built from the raw votes rather than from our counts -------------


def reliability_data(votes: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """annotators x units, class index as float, NaN where an annotator did not vote."""
    codes = votes["label"].map({name: float(i) for i, name in enumerate(classes)})
    wide = votes.assign(code=codes).pivot(index="annotator", columns="item_id", values="code")
    return wide.to_numpy(dtype=float)


def reference_alpha(data: np.ndarray) -> float:
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


def modal_wide(votes: pd.DataFrame) -> np.ndarray:
    """items x raters (rater = vote position) for the items with the modal number of votes >= 2."""
    sizes = votes.groupby("item_id")["label"].size()
    frequency = sizes[sizes >= 2].value_counts()
    modal = max(frequency[frequency == frequency.max()].index)
    kept = votes[votes["item_id"].isin(sizes.index[sizes == modal])]
    return np.array([group.to_numpy() for _, group in kept.groupby("item_id")["label"]])


def reference_fleiss(votes: pd.DataFrame, classes: list[str]) -> tuple[float, int]:
    wide = np.vectorize(classes.index)(modal_wide(votes))
    table, _ = aggregate_raters(wide, n_cat=len(classes))
    return float(sm_fleiss_kappa(table)), len(table)


def reference_pairs(votes: pd.DataFrame, min_overlap: int) -> dict[tuple[str, str], tuple]:
    by_annotator = {
        name: group.set_index("item_id")["label"] for name, group in votes.groupby("annotator")
    }
    result = {}
    for a, b in itertools.combinations(sorted(by_annotator), 2):
        common = by_annotator[a].index.intersection(by_annotator[b].index)
        if len(common) >= min_overlap:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                kappa = cohen_kappa_score(by_annotator[a][common], by_annotator[b][common])
            result[(a, b)] = (len(common), float(kappa))
    return result


def assert_close(ours: float, reference: float) -> None:
    if math.isnan(reference):
        assert math.isnan(ours)
    else:
        assert ours == pytest.approx(reference, abs=TOL)


def assert_matches_references(votes: pd.DataFrame, classes: list[str], min_overlap: int) -> None:
    _, counts = vote_counts(votes, classes)
    data = reliability_data(votes, classes)
    assert_close(krippendorff_alpha_nominal(counts), reference_alpha(data))
    for index, alpha in enumerate(per_class_alpha(counts, classes).values()):
        binary = np.where(np.isnan(data), np.nan, (data == index).astype(float))
        assert_close(alpha, reference_alpha(binary))

    kappa, used = fleiss_kappa(counts)
    expected_kappa, expected_used = reference_fleiss(votes, classes)
    assert used == expected_used
    assert_close(kappa, expected_kappa)
    table, _ = aggregate_raters(np.vectorize(classes.index)(modal_wide(votes)), n_cat=len(classes))
    raters = table.sum(axis=1, keepdims=True)
    for index, (_, class_kappa) in enumerate(per_class_fleiss_kappa(counts, classes).items()):
        binarised = np.column_stack([table[:, index], raters[:, 0] - table[:, index]])
        assert_close(class_kappa, float(sm_fleiss_kappa(binarised)))

    pairs = pairwise_cohen_kappa(votes, classes, min_overlap=min_overlap)
    expected = reference_pairs(votes, min_overlap)
    assert list(zip(pairs["annotator_a"], pairs["annotator_b"], strict=True)) == list(expected)
    for row in pairs.itertuples(index=False):
        n_items, kappa = expected[(row.annotator_a, row.annotator_b)]
        assert row.n_items == n_items
        assert_close(row.kappa, kappa)


# ---- agreement with the reference libraries -----------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_votes_with_missing_and_varying_votes_match_references(seed):
    votes = random_votes(seed)
    assert votes.groupby("item_id").size().nunique() > 1  # the case the brief is about
    assert_matches_references(votes, CLASSES, min_overlap=10)


def test_perfect_agreement_gives_one_everywhere():
    votes = random_votes(7)
    truth = votes.groupby("item_id")["label"].transform("first")
    perfect = votes.assign(label=truth)
    assert_matches_references(perfect, CLASSES, min_overlap=10)
    _, counts = vote_counts(perfect, CLASSES)
    assert krippendorff_alpha_nominal(counts) == pytest.approx(1.0, abs=TOL)
    assert fleiss_kappa(counts)[0] == pytest.approx(1.0, abs=TOL)
    kappas = pairwise_cohen_kappa(perfect, CLASSES)["kappa"].to_list()
    assert kappas and kappas == pytest.approx([1.0] * len(kappas), abs=TOL)


def senti4sd_votes() -> pd.DataFrame:
    contract = load_contract(SENTI4SD_CONTRACT)
    canon = LabelCanon(contract.labels)
    raw = pd.read_csv(SENTI4SD_CSV, dtype=str, keep_default_na=False)
    long = raw.melt(id_vars="label", value_vars=["r1", "r2", "r3"], var_name="annotator")
    long = long.rename(columns={"label": "item_id", "value": "label"})
    long["label"] = long["label"].map(canon.lookup)
    return long.dropna(subset=["label"]).reset_index(drop=True)


def test_senti4sd_gold_matches_references():
    if not SENTI4SD_CSV.exists():
        pytest.skip(f"{SENTI4SD_CSV} is absent")
    votes = senti4sd_votes()
    classes = load_contract(SENTI4SD_CONTRACT).labels.classes
    assert votes["item_id"].nunique() == 4423
    assert_matches_references(votes, classes, min_overlap=10)
    summary = agreement_summary(votes, classes)
    complete = votes.groupby("item_id").size().eq(3).sum()
    assert summary["fleiss_items"] == complete
    assert summary["annotators"] == 3
    assert summary["votes"] == len(votes)
    assert 0.0 < summary["krippendorff_alpha"] < 1.0


# ---- published worked examples ------------------------------------------------------------------

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: four observers,
# twelve units, values 1..5, gaps are missing. Unit 12 has a single value and must not count.
TEXTBOOK = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}
TEXTBOOK_CLASSES = ["1", "2", "3", "4", "5"]


def textbook_votes() -> pd.DataFrame:
    return frame(
        [
            (f"u{unit:02d}", observer, str(value))
            for observer, values in TEXTBOOK.items()
            for unit, value in enumerate(values, start=1)
            if value is not None
        ]
    )


def test_krippendorff_textbook_coincidences_and_alpha():
    _, counts = vote_counts(textbook_votes(), TEXTBOOK_CLASSES)
    third = 1 / 3
    published = np.array(
        [
            [7, 4 * third, third, third, 0],
            [4 * third, 10, 4 * third, third, 0],
            [third, 4 * third, 8, third, 0],
            [third, third, third, 4, 0],
            [0, 0, 0, 0, 3],
        ]
    )
    np.testing.assert_allclose(coincidence_matrix(counts), published, atol=TOL)
    # alpha = ((n-1) sum o_cc - sum n_c (n_c - 1)) / (n (n-1) - sum n_c (n_c - 1)), n = 40
    assert krippendorff_alpha_nominal(counts) == pytest.approx(904 / 1216, abs=TOL)
    assert round(krippendorff_alpha_nominal(counts), 3) == 0.743  # the figure the paper prints


def test_fleiss_wikipedia_example():
    """Fleiss' kappa article: 10 subjects, 14 raters, 5 categories, kappa = 0.210."""
    table = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    kappa, used = fleiss_kappa(table)
    assert used == 10
    assert round(kappa, 3) == 0.210
    assert kappa == pytest.approx(sm_fleiss_kappa(table), abs=TOL)


def test_cohen_wikipedia_example():
    """Cohen's kappa article: 50 proposals, yes/yes 20, yes/no 5, no/yes 10, no/no 15: kappa 0.4."""
    cells = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10 + [("no", "no")] * 15
    rows = []
    for index, (a, b) in enumerate(cells):
        rows += [(f"p{index}", "A", a), (f"p{index}", "B", b)]
    pairs = pairwise_cohen_kappa(frame(rows), ["yes", "no"])
    assert pairs.to_dict("records") == [
        {"annotator_a": "A", "annotator_b": "B", "n_items": 50, "kappa": pytest.approx(0.4)}
    ]


# ---- edge cases ---------------------------------------------------------------------------------


def test_single_class_present_is_nan_not_a_crash():
    votes = frame([(f"i{i}", a, "neutral") for i in range(20) for a in ("x", "y", "z")])
    _, counts = vote_counts(votes, CLASSES)
    assert math.isnan(krippendorff_alpha_nominal(counts))
    assert math.isnan(fleiss_kappa(counts)[0])
    assert all(math.isnan(v) for v in per_class_alpha(counts, CLASSES).values())
    assert all(math.isnan(v) for v in per_class_fleiss_kappa(counts, CLASSES).values())
    assert pairwise_cohen_kappa(votes, CLASSES)["kappa"].isna().all()
    summary = agreement_summary(votes, CLASSES)
    assert summary["krippendorff_alpha"] is None
    assert summary["per_class"]["neutral"] == {"krippendorff_alpha": None, "fleiss_kappa": None}
    json.dumps(summary, allow_nan=False)
    with pytest.raises(ValueError, match="more than one value"):
        reference_alpha(reliability_data(votes, CLASSES))  # the reference agrees it is undefined


def test_items_with_one_vote_are_ignored():
    votes = random_votes(11)
    lonely = frame([(f"solo{i}", f"ann{i % 6}", CLASSES[i % 3]) for i in range(40)])
    padded = pd.concat([votes, lonely], ignore_index=True)
    for statistic in (krippendorff_alpha_nominal, fleiss_kappa):
        assert statistic(vote_counts(padded, CLASSES)[1]) == statistic(
            vote_counts(votes, CLASSES)[1]
        )
    pd.testing.assert_frame_equal(
        pairwise_cohen_kappa(padded, CLASSES), pairwise_cohen_kappa(votes, CLASSES)
    )
    assert agreement_summary(padded, CLASSES)["votes"] == len(votes) + 40


def test_fleiss_uses_the_modal_vote_count_and_prefers_more_votes_on_a_tie():
    counts = np.array([[2, 0, 0], [1, 1, 0], [3, 0, 0], [1, 1, 1], [1, 0, 0], [0, 0, 0]])
    assert modal_vote_items(counts).tolist() == [False, False, True, True, False, False]
    kappa, used = fleiss_kappa(counts)
    assert used == 2
    assert kappa == pytest.approx(sm_fleiss_kappa(counts[2:4]), abs=TOL)


def test_pairs_below_min_overlap_are_left_out():
    votes = random_votes(5, n_items=60)
    every = pairwise_cohen_kappa(votes, CLASSES, min_overlap=1)
    threshold = int(every["n_items"].median()) + 1
    some = pairwise_cohen_kappa(votes, CLASSES, min_overlap=threshold)
    assert 0 < len(some) < len(every)
    expected = every[every["n_items"] >= threshold].reset_index(drop=True)
    pd.testing.assert_frame_equal(some, expected)


def test_no_votes_gives_nan_and_empty_pairs():
    votes = frame([])
    items, counts = vote_counts(votes, CLASSES)
    assert len(items) == 0
    assert counts.shape == (0, 3)
    assert math.isnan(krippendorff_alpha_nominal(counts))
    assert fleiss_kappa(counts)[1] == 0
    pairs = pairwise_cohen_kappa(votes, CLASSES)
    assert list(pairs.columns) == ["annotator_a", "annotator_b", "n_items", "kappa"]
    assert pairs.empty


@pytest.mark.parametrize(
    ("votes", "message"),
    [
        (frame([("i1", "a", "positive"), ("i1", "b", "happy")]), "outside classes.*happy"),
        (frame([("i1", "a", "positive"), ("i1", "a", "neutral")]), "repeated vote.*'i1', 'a'"),
        (frame([("i1", None, "positive")]), "annotations.annotator: 1 empty"),
        (
            pd.DataFrame({"item_id": ["i1"], "label": ["positive"]}),
            r"missing columns \['annotator'\]",
        ),
    ],
)
def test_bad_annotations_are_rejected_with_the_reason(votes, message):
    with pytest.raises(ValueError, match=message):
        vote_counts(votes, CLASSES)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="min_overlap"):
        pairwise_cohen_kappa(random_votes(0, n_items=5), CLASSES, min_overlap=0)
    with pytest.raises(ValueError, match="integer vote counts"):
        krippendorff_alpha_nominal(np.array([[0.5, 1.5]]))
    with pytest.raises(ValueError, match="2 names for 3 count columns"):
        per_class_alpha(np.zeros((2, 3), dtype=int), ["a", "b"])
    with pytest.raises(ValueError, match="classes: must be unique"):
        vote_counts(random_votes(0, n_items=5), ["positive", "positive"])
