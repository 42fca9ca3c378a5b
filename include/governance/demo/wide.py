"""A large wide-layout CSV (item_id, text, r1, r2, r3) with defects at realistic rates, fast.

The benchmarks need a million rows in seconds, so everything is vectorised with numpy string
arrays: reviews are recombined from a pool of generated clauses, and each defect overwrites a
random subset of rows. Only counts are returned; the JSON Lines demo feed carries exact truth.
Clean rows repeat each other by chance only rarely (about 0.02% of a million rows).
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from governance.demo.text import (
    CLASS_PRIOR,
    CLASSES,
    INSERTABLE,
    PRODUCTS,
    SHORT_TEXTS,
    SLOTS,
    review_of,
)
from governance.demo.truth import DefectRates
from governance.errors import InvalidInputError

COLUMNS = ("item_id", "text", "r1", "r2", "r3")
CLAUSE_DRAWS = 400  # reviews generated per class and product, whose clauses are recombined
CLAUSES_PER_PRODUCT = 240  # pool length per class and product (distinct clauses, cycled)
VOTE_ERROR_RATE = 0.06
WIDE_DIRTY_SPELLINGS = {
    "positive": ("POSITIVE", "Positive", "postive", "positiva"),
    "neutral": ("NEUTRAL", "Neutral", "netural", "neutal"),
    "negative": ("NEGATIVE", "Negative", "negtive", "negativa"),
}
UNKNOWN_LABEL = "maybe"
CLEAN_HEAD = 10  # rows never given a defect, so the first copy has a source
STRINGS = np.dtypes.StringDType()
# A fourth sentence of independent slots: recombined reviews of one class and product would
# otherwise repeat by chance at a million rows.
ASIDES = (
    "Used it {use} for {time}",
    "Bought it for my {person} {time} ago",
    "Ordered it from {store} for {price}",
)


# A closing sentence of long-tail words (names, models, places in real reviews): without it the
# recombined clauses make unrelated reviews far more alike than real ones are at a million rows.
TAIL_WORDS = 12
TAIL_VOCABULARY = 100_000
TAIL_ZIPF = 1.1
SYLLABLES = (
    "ka",
    "lo",
    "mi",
    "ren",
    "to",
    "va",
    "sel",
    "dor",
    "pi",
    "quin",
    "bra",
    "ne",
    "fu",
    "gar",
    "hel",
    "jo",
    "ix",
    "mon",
    "ru",
    "zet",
)


# Share of rows (of votes for the label defects) that carry each defect; the wide file has no
# look-alikes and no flipped items.
WIDE_RATES = DefectRates(
    unparseable=0.003,
    bad_text=0.005,
    bad_vote=0.002,
    dirty_label=0.03,
    exact_duplicate=0.03,
    near_duplicate=0.03,
    hard_negative=0.0,
    conflict=0.005,
    flipped=0.0,
)


@dataclass(frozen=True)
class WideFeedSummary:
    """How many rows of each defect were written; label and text defects are counted in the rows
    a CSV reader can split into the five columns."""

    path: str
    rows: int
    unparseable: int
    schema_violations: int
    dirty_labels: int
    exact_duplicates: int
    near_duplicates: int
    conflicts: int


def _clause_pools(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Opener, detail and closer clauses, shape (class, product, CLAUSES_PER_PRODUCT) each.

    Recombining clauses of one class and one product keeps every review coherent. Each pool
    cycles through distinct clauses, so a uniform pick is a uniform pick of a distinct clause.
    """
    rng = random.Random(f"wide:{seed}")
    pools: list[list[list[list[str]]]] = [[], [], []]
    for label in CLASSES:
        per_product: list[list[list[str]]] = [[], [], []]
        for product in sorted(PRODUCTS):
            reviews = [review_of(rng, label, product) for _ in range(CLAUSE_DRAWS)]
            clauses = [review.text.split(". ") for review in reviews]
            for part in range(3):
                distinct = sorted({c[part].rstrip(".") for c in clauses})
                per_product[part].append(list(np.resize(distinct, CLAUSES_PER_PRODUCT)))
        for part in range(3):
            pools[part].append(per_product[part])
    opener, detail, closer = (np.array(p, dtype=object) for p in pools)  # fast to gather
    return opener, detail, closer


def _asides() -> np.ndarray:
    """Every filling of the aside templates, in a fixed order."""
    values = []
    for template in ASIDES:
        names = re.findall(r"{(\w+)}", template)
        for combo in itertools.product(*(SLOTS[name] for name in names)):
            values.append(template.format(**dict(zip(names, combo, strict=True))))
    return np.array(values, dtype=object)


def _defect_rows(rng: np.random.Generator, rates: DefectRates, n: int) -> dict[str, np.ndarray]:
    """Disjoint sorted row sets per row defect; the first rows stay clean to be copied."""
    kinds = ("exact", "near", "conflict", "bad_text", "unparseable")
    shares = (
        rates.exact_duplicate,
        rates.near_duplicate,
        rates.conflict,
        rates.bad_text,
        rates.unparseable,
    )
    order = CLEAN_HEAD + rng.permutation(n - CLEAN_HEAD)
    bounds = np.cumsum([0, *(round(share * n) for share in shares)])
    if bounds[-1] > order.size:
        raise InvalidInputError("the defect rates add up to more than every row")
    return {k: np.sort(order[a:b]) for k, a, b in zip(kinds, bounds, bounds[1:], strict=False)}


def _clean_sources(rng: np.random.Generator, rows: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """For each row, a random clean row written before it (the row it copies)."""
    clean_before = np.searchsorted(clean, rows)
    return clean[(rng.random(rows.size) * clean_before).astype(np.int64)]


def _tail_vocabulary() -> np.ndarray:
    """Pronounceable made-up words, standing in for a real corpus's long tail of rare words."""
    words = ("".join(parts) for parts in itertools.product(SYLLABLES, repeat=4))
    return np.array(list(itertools.islice(words, TAIL_VOCABULARY)), dtype=object)


def _tails(rng: np.random.Generator, rows: int) -> list[str]:
    """Zipf-distributed rare words per review: a few common, most seldom seen."""
    vocabulary = _tail_vocabulary()
    ranks = (rng.zipf(TAIL_ZIPF, size=(rows, TAIL_WORDS)) - 1) % vocabulary.size
    return [" ".join(words) for words in vocabulary[ranks].tolist()]


def _reviews(rng: np.random.Generator, seed: int, rows: int) -> tuple[list[str], np.ndarray]:
    """Coherent review texts and their class indices."""
    opener, detail, closer = _clause_pools(seed)
    asides = _asides()
    labels = rng.choice(len(CLASSES), size=rows, p=CLASS_PRIOR)
    products = rng.integers(0, len(PRODUCTS), size=rows)
    first, middle, last = (
        pool[labels, products, rng.integers(0, CLAUSES_PER_PRODUCT, size=rows)].tolist()
        for pool in (opener, detail, closer)
    )
    aside = asides[rng.integers(0, asides.size, size=rows)].tolist()
    tail = _tails(rng, rows)
    texts = [
        f"{a}. {b}. {c}. {d}. Noted: {e}."
        for a, b, c, d, e in zip(first, aside, middle, last, tail, strict=True)
    ]
    return texts, labels


def _inject_copies(
    rng: np.random.Generator, texts: list[str], labels: np.ndarray, defects: dict[str, np.ndarray]
) -> None:
    """Exact, near and conflicting copies of clean earlier rows, then junk texts."""
    has_defect = np.zeros(len(texts), dtype=bool)
    for rows in defects.values():
        has_defect[rows] = True
    clean = np.flatnonzero(~has_defect)
    for kind in ("exact", "near", "conflict"):
        copies = defects[kind]
        sources = _clean_sources(rng, copies, clean)
        labels[copies] = labels[sources]
        if kind == "conflict":
            labels[copies] = (labels[sources] + rng.integers(1, 3, copies.size)) % 3
        words = rng.integers(0, len(INSERTABLE), copies.size)
        inserted: set[tuple[int, int]] = set()  # two near copies of one source must differ
        pairs = zip(copies.tolist(), sources.tolist(), words.tolist(), strict=True)
        for row, source, word in pairs:
            if kind == "exact":
                texts[row] = texts[source].upper()
            elif kind == "near":
                while (source, word) in inserted:
                    word = (word + 1) % len(INSERTABLE)
                inserted.add((source, word))
                texts[row] = f"{INSERTABLE[word]} {texts[source]}"
            else:
                texts[row] = texts[source]
    junk = (*SHORT_TEXTS, "")
    picks = rng.integers(0, len(junk), defects["bad_text"].size).tolist()
    for row, pick in zip(defects["bad_text"].tolist(), picks, strict=True):
        texts[row] = junk[pick]


def _votes(
    rng: np.random.Generator, labels: np.ndarray, rates: DefectRates
) -> tuple[list[list[str]], np.ndarray, np.ndarray]:
    """Three spelled votes per row (r1, r2, r3), the dirty mask and the unknown-label mask."""
    votes = np.repeat(labels[:, None], 3, axis=1)
    wrong = rng.random(votes.shape) < VOTE_ERROR_RATE
    votes[wrong] = (votes[wrong] + rng.integers(1, 3, int(wrong.sum()))) % 3
    spelled = np.array(CLASSES, dtype=STRINGS)[votes]
    dirty = rng.random(votes.shape) < rates.dirty_label
    dirty_table = np.array([WIDE_DIRTY_SPELLINGS[c] for c in CLASSES], dtype=STRINGS)
    spelled[dirty] = dirty_table[votes[dirty], rng.integers(0, 4, int(dirty.sum()))]
    unknown = (rng.random(votes.shape) < rates.bad_vote) & ~dirty
    spelled[unknown] = UNKNOWN_LABEL
    return [spelled[:, column].tolist() for column in range(3)], dirty, unknown


def write_wide_csv(
    path: Path, rows: int, seed: int = 7, rates: DefectRates = WIDE_RATES
) -> WideFeedSummary:
    """Write ``rows`` data rows (plus a header) to ``path``; the same seed gives the same bytes."""
    if rows < 100:
        raise InvalidInputError(f"rows must be at least 100, got {rows}")
    rng = np.random.default_rng(seed)
    texts, labels = _reviews(rng, seed, rows)
    defects = _defect_rows(rng, rates, rows)
    _inject_copies(rng, texts, labels, defects)
    (r1, r2, r3), dirty, unknown = _votes(rng, labels, rates)
    lines = [
        f"w{row:07d},{text},{a},{b},{c}"
        for row, text, a, b, c in zip(range(rows), texts, r1, r2, r3, strict=True)
    ]
    broken = defects["unparseable"]
    for number, row in enumerate(broken.tolist()):  # too few fields, then too many
        lines[row] = f"w{row:07d},{texts[row]}" if number % 2 else lines[row] + ",extra,fields"

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(",".join(COLUMNS) + "\n")
        out.write("\n".join(lines))
        out.write("\n")
    readable = np.ones(rows, dtype=bool)
    readable[broken] = False
    invalid = cast(np.ndarray, unknown.any(axis=1))  # one flag per row, never a scalar
    invalid[defects["bad_text"]] = True
    return WideFeedSummary(
        path=str(path),
        rows=rows,
        unparseable=int(broken.size),
        schema_violations=int((invalid & readable).sum()),
        dirty_labels=int(dirty[readable].sum()),
        exact_duplicates=int(defects["exact"].size),
        near_duplicates=int(defects["near"].size),
        conflicts=int(defects["conflict"].size),
    )
