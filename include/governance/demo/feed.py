"""A landing feed of multi-annotator product reviews with injected defects of known ground truth.

The real datasets cannot ship with the project, so the demo generates its own: each day a few JSON
Lines exports (one line per vote) land under ``<landing_root>/<dataset>/<YYYY-MM-DD>/`` and the
truth about every injected defect goes to ``<truth_root>/<dataset>/<YYYY-MM-DD>.json``, outside
the landing area so ingestion never sees it. ``governance.demo.evaluation`` scores each stage
against it.

Generation is deterministic (same seed, same bytes) and carries state across days: duplicates of
earlier days only ever copy texts that were valid, unique and therefore published on those days.
A day depends on the days before it, so regenerate from the same ``start`` to extend a feed.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from governance.demo.text import (
    CLASS_PRIOR,
    CLASSES,
    SHORT_TEXTS,
    Review,
    compose_review,
    jaccard,
    normalise,
    perturb,
    refill_review,
    respell,
    word_set,
)
from governance.demo.truth import DayTruth, DefectRates, atomic_write, load_truth, truth_path
from governance.demo.wide import WideFeedSummary, write_wide_csv
from governance.errors import InvalidInputError

__all__ = [
    "DATASET",
    "DayTruth",
    "DefectRates",
    "WideFeedSummary",
    "generate_feed",
    "load_truth",
    "write_wide_csv",
]

DATASET = "demo_reviews"
ANNOTATORS = tuple(f"ann_{number:02d}" for number in range(1, 13))
RANDOM_ANNOTATOR = "ann_04"  # votes uniformly at random
CONFUSED_ANNOTATOR = "ann_09"  # mixes up the classes in a fixed way
UNRELIABLE_ANNOTATORS = (RANDOM_ANNOTATOR, CONFUSED_ANNOTATOR)
CONFUSION = {"positive": "neutral", "neutral": "positive", "negative": "neutral"}
CONFUSION_RATE = 0.8
RELIABLE_ERROR_RATE = 0.04
VOTES_PER_ITEM = 3

# Kept in step with include/contracts/demo_reviews.yaml.
TEXT_MIN_LENGTH, TEXT_MAX_LENGTH = 20, 500
DIRTY_SPELLINGS = {
    "positive": ("POSITIVE", "Positive", "postive", "positiva"),
    "neutral": ("NEUTRAL", "Neutral", "netural", "neutal"),
    "negative": ("NEGATIVE", "Negative", "negtive", "negativa"),
}
BAD_ANNOTATOR_IDS = ("ann_7", "ANN_07", "annotator_07", "ann-07", "", None)  # None: key missing
UNKNOWN_LABELS = ("maybe", "unsure", "mixed", "??", "5 stars")
NON_OBJECT_LINES = (b'["ann_03", "positive"]', b"42", b'"export finished"', b"null", b"true")
EXPORT_PATTERN = "export-{:03d}.jsonl"
READY_MARKER = "_SUCCESS"

# Similarity bands (word-set Jaccard) that keep the truth unambiguous for a 0.8 threshold.
FRESH_MAX_SIMILARITY = 0.7  # a new review stays this far from everything generated so far
NEAR_MIN_SIMILARITY = 0.82  # a near duplicate stays this close to its source
NEAR_MAX_OTHER_SIMILARITY = 0.75  # ... and this far from everything outside its cluster
HARD_NEGATIVE_BAND = (0.5, 0.75)  # same templates, alike, but not duplicates
MAX_ATTEMPTS = 2000


@dataclass
class _Vote:
    annotator: str | None  # None: the key is missing from the line
    label: str
    intended: str  # the class the spelling stands for
    defect: str = ""  # "", "dirty", "bad_annotator" or "bad_label"


@dataclass
class _Item:
    uid: int  # identity while item ids are not given yet
    key: float  # position in the day, before ids are given in file order
    label: str  # the true label
    review: Review
    text: str | None  # as written; None: the key is missing from the lines
    role: str  # fresh, bad_text, flipped, exact, near, conflict, hard_negative
    source: _Item | None = None  # the item an exact, near or conflicting duplicate copies
    lookalike_of: _Item | None = None  # the item a hard negative imitates
    conflict_source: bool = False
    item_id: str = ""
    votes: list[_Vote] = field(default_factory=list)

    @property
    def root(self) -> int:
        """Identity of its duplicate cluster."""
        return (self.source or self).uid


class _SimilarityIndex:
    """Word sets of every text generated so far, bucketed by pairs of clause templates.

    Only reviews sharing two clause templates come near the similarities that matter here
    (>= 0.7), so comparing a candidate with its buckets finds every text it could be confused
    with, without comparing all pairs.
    """

    def __init__(self) -> None:
        self._buckets: dict[tuple, list[tuple[int, frozenset[str]]]] = defaultdict(list)
        self.normalised: set[str] = set()

    def add(self, review: Review, text: str, root: int) -> None:
        words = word_set(text)
        for key in review.clause_keys:
            self._buckets[key].append((root, words))
        self.normalised.add(normalise(text))

    def max_similarity(self, review: Review, words: frozenset[str], ignore_root: int = 0) -> float:
        return max(
            (
                jaccard(words, other)
                for key in review.clause_keys
                for root, other in self._buckets[key]
                if root != ignore_root
            ),
            default=0.0,
        )


@dataclass
class _History:
    """What earlier days published (sources of cross-day duplicates) and every text seen."""

    published: list[_Item] = field(default_factory=list)
    index: _SimilarityIndex = field(default_factory=_SimilarityIndex)
    created: int = 0

    def next_uid(self) -> int:
        self.created += 1
        return self.created


def _count(rate: float, population: int) -> int:
    """At least one of each enabled defect every day, so every stage is scored every day."""
    return 0 if rate <= 0 else max(1, round(rate * population))


def _fresh_review(rng: random.Random, label: str, index: _SimilarityIndex) -> Review:
    for _ in range(MAX_ATTEMPTS):
        review = compose_review(rng, label)
        if normalise(review.text) in index.normalised:
            continue
        if index.max_similarity(review, word_set(review.text)) < FRESH_MAX_SIMILARITY:
            return review
    raise RuntimeError("the review vocabulary is exhausted; lower items_per_day or days")


def _near_text(rng: random.Random, source: _Item, index: _SimilarityIndex) -> str | None:
    text = source.text or ""
    if len(text.split()) < 12:
        return None
    source_words = word_set(text)
    for _ in range(50):
        candidate = perturb(rng, text, edits=rng.choice((1, 2)))
        words = word_set(candidate)
        if normalise(candidate) in index.normalised:
            continue
        if jaccard(words, source_words) < NEAR_MIN_SIMILARITY:
            continue
        if index.max_similarity(source.review, words, source.root) < NEAR_MAX_OTHER_SIMILARITY:
            return candidate
    return None


def _lookalike(rng: random.Random, source: _Item, index: _SimilarityIndex) -> Review | None:
    low, high = HARD_NEGATIVE_BAND
    source_words = word_set(source.text or "")
    for _ in range(50):
        review = refill_review(rng, source.review)
        words = word_set(review.text)
        if not low <= jaccard(words, source_words) < high:
            continue
        unseen = normalise(review.text) not in index.normalised
        if unseen and index.max_similarity(review, words) < high:
            return review
    return None


def _bad_text(rng: random.Random) -> str | None:
    kind = rng.choice(("short", "long", "missing", "empty"))
    if kind == "short":
        return rng.choice(SHORT_TEXTS)
    if kind == "long":  # a pasted thread of reviews
        parts: list[str] = []
        while len(" ".join(parts)) <= TEXT_MAX_LENGTH:
            parts.append(compose_review(rng, rng.choice(CLASSES)).text)
        return " ".join(parts)
    return None if kind == "missing" else ""


def _votes(rng: random.Random, label: str, flipped: bool) -> list[_Vote]:
    """Three votes whose majority is the true label, unless the item is deliberately flipped.

    At most one vote disagrees, so every stage that works on the majority label (conflicts,
    splits) sees the truth; the unreliable annotators still stand out over a day's votes.
    """
    while True:
        chosen = rng.sample(ANNOTATORS, VOTES_PER_ITEM)
        if sum(a in UNRELIABLE_ANNOTATORS for a in chosen) <= 1:
            break
    if flipped:
        wrong = rng.choice([c for c in CLASSES if c != label])
        return [_Vote(a, wrong, wrong) for a in chosen]
    given = dict.fromkeys(chosen, label)
    for annotator in chosen:
        if annotator == RANDOM_ANNOTATOR:
            given[annotator] = rng.choice(CLASSES)
        elif annotator == CONFUSED_ANNOTATOR and rng.random() < CONFUSION_RATE:
            given[annotator] = CONFUSION[label]
    for annotator in chosen:
        disagreeing = any(v != label for v in given.values())
        if annotator in UNRELIABLE_ANNOTATORS or disagreeing:
            continue
        if rng.random() < RELIABLE_ERROR_RATE:
            given[annotator] = rng.choice([c for c in CLASSES if c != label])
    return [_Vote(a, given[a], given[a]) for a in chosen]


class _DayItems:
    """Builds one day's items in file order: fresh reviews first, then copies slotted after."""

    def __init__(self, rng: random.Random, n: int, rates: DefectRates, history: _History):
        self.rng, self.n, self.rates, self.history = rng, n, rates, history
        self.n_base = 0

    def build(self, day: date) -> list[_Item]:
        rng, rates = self.rng, self.rates
        counts = {
            "conflict": _count(rates.conflict, self.n),
            "exact": _count(rates.exact_duplicate, self.n),
            "near": _count(rates.near_duplicate, self.n),
            "hard_negative": _count(rates.hard_negative, self.n),
        }
        self.n_base = self.n - sum(counts.values())
        if self.n_base < max(20, self.n // 2):
            raise InvalidInputError(f"items_per_day={self.n} is too small for the defect rates")
        base = [self._fresh(position) for position in range(self.n_base)]
        n_bad, n_flipped = _count(rates.bad_text, self.n), _count(rates.flipped, self.n)
        for number, item in enumerate(rng.sample(base, n_bad + n_flipped)):
            item.role = "bad_text" if number < n_bad else "flipped"
            if item.role == "bad_text":
                item.text = _bad_text(rng)
        pool = [item for item in base if item.role == "fresh"]
        derived = [
            self._derive(role, pool, from_history)
            for role, count in counts.items()
            for from_history in self._from_history(count)
        ]
        ordered = sorted(base + derived, key=lambda item: item.key)
        for number, item in enumerate(ordered, start=1):
            item.item_id = f"rv-{day:%Y%m%d}-{number:04d}"
            item.votes = _votes(rng, item.label, item.role == "flipped")
        return ordered

    def _fresh(self, position: int) -> _Item:
        label = self.rng.choices(CLASSES, CLASS_PRIOR)[0]
        review = _fresh_review(self.rng, label, self.history.index)
        uid = self.history.next_uid()
        item = _Item(uid, float(position), label, review, review.text, "fresh")
        self.history.index.add(review, review.text, item.root)
        return item

    def _from_history(self, count: int) -> list[bool]:
        """Half of the copies take their source from earlier days, when there are any."""
        n_history = count // 2 if self.history.published else 0
        return [True] * n_history + [False] * (count - n_history)

    def _after(self, source: _Item, from_history: bool) -> float:
        """A position after the source's (anywhere when the source is from an earlier day)."""
        start = -1.0 if from_history else source.key
        return start + (1.0 - self.rng.random()) * (self.n_base - start)

    def _derive(self, role: str, pool: list[_Item], from_history: bool) -> _Item:
        sources = self.history.published if from_history else pool
        for _ in range(MAX_ATTEMPTS):
            source = self.rng.choice(sources)
            item = self._derive_from(role, source, from_history)
            if item is not None:
                if role == "conflict":  # a conflicting text is never copied again
                    sources.remove(source)
                    source.conflict_source = not from_history
                return item
        raise RuntimeError(f"cannot derive a {role} item; lower the defect rates")

    def _derive_from(self, role: str, source: _Item, from_history: bool) -> _Item | None:
        rng, index = self.rng, self.history.index
        uid, key = self.history.next_uid(), self._after(source, from_history)
        if role in ("exact", "conflict"):
            label = source.label
            if role == "conflict":
                label = rng.choice([c for c in CLASSES if c != source.label])
            text = respell(rng, source.text or "")
            return _Item(uid, key, label, source.review, text, role, source=source)
        if role == "near":
            near_text = _near_text(rng, source, index)
            if near_text is None:
                return None
            index.add(source.review, near_text, source.root)
            return _Item(uid, key, source.label, source.review, near_text, role, source=source)
        review = _lookalike(rng, source, index)
        if review is None:
            return None
        item = _Item(uid, key, review.label, review, review.text, role, lookalike_of=source)
        index.add(review, review.text, item.root)
        return item


def _inject_vote_defects(rng: random.Random, items: list[_Item], rates: DefectRates) -> None:
    """Malformed votes on unanimous items (the majority survives), then dirty spellings."""
    unanimous = [
        item
        for item in items
        if item.role != "bad_text" and all(v.label == item.label for v in item.votes)
    ]
    for item in rng.sample(unanimous, min(len(unanimous), _count(rates.bad_vote, len(items)))):
        vote = rng.choice(item.votes)
        if rng.random() < 0.5:
            vote.annotator, vote.defect = rng.choice(BAD_ANNOTATOR_IDS), "bad_annotator"
        else:
            vote.label, vote.defect = rng.choice(UNKNOWN_LABELS), "bad_label"
    clean = [v for item in items if item.role != "bad_text" for v in item.votes if not v.defect]
    for vote in rng.sample(clean, min(len(clean), _count(rates.dirty_label, len(clean)))):
        vote.label, vote.defect = rng.choice(DIRTY_SPELLINGS[vote.intended]), "dirty"


def _record(item: _Item, vote: _Vote, created_at: str) -> bytes:
    record: dict[str, str | None] = {"item_id": item.item_id, "product": item.review.product}
    if item.text is not None:
        record["text"] = item.text
    if vote.annotator is not None:
        record["annotator"] = vote.annotator
    record["label"] = vote.label
    record["created_at"] = created_at
    return json.dumps(record, ensure_ascii=False).encode("utf-8")


def _garbage(rng: random.Random, last_record: bytes | None) -> bytes:
    """A line no JSON parser turns into a record; never holds a line-break character.

    A truncated line repeats the start of the last record written, as an interrupted export does.
    """
    kind = rng.choice(("truncated", "binary", "non_object"))
    if kind == "truncated" and last_record is not None:
        return last_record[: rng.randrange(10, len(last_record) - 2)]
    if kind == "binary":
        # No byte that a decoder could turn into a line break (NEL 0x85, U+2028/9 start 0xE2).
        alphabet = [b for b in range(0x20, 0x100) if b not in (0x85, 0xE2)] + [0x00, 0x01, 0x07]
        return b"\xc3\x28" + bytes(rng.choices(alphabet, k=rng.randrange(20, 80)))
    return rng.choice(NON_OBJECT_LINES)


class _Layout:
    """Lays the items out into 2 or 3 export files, garbage lines between items, and records
    where each defect landed."""

    def __init__(self, rng: random.Random, day: date, truth: DayTruth):
        self.rng, self.day, self.truth = rng, day, truth
        self.files: dict[str, list[bytes]] = {}

    def write_items(self, items: list[_Item], n_garbage: int) -> None:
        rng = self.rng
        n_files = rng.choice((2, 3))
        cuts = {0, *rng.sample(range(1, len(items)), n_files - 1)}
        garbage_before: dict[int, int] = defaultdict(int)
        for boundary in rng.choices(range(len(items) + 1), k=n_garbage):
            garbage_before[boundary] += 1
        lines: list[bytes] = []
        last_record: bytes | None = None
        for position, item in enumerate(items):
            if position in cuts:
                lines = self.files.setdefault(EXPORT_PATTERN.format(len(self.files) + 1), [])
            for _ in range(garbage_before[position]):
                self._garbage_line(lines, last_record)
            self._item_lines(lines, item, position / len(items))
            last_record = lines[-1]
        for _ in range(garbage_before[len(items)]):
            self._garbage_line(lines, last_record)
        self.truth.rows = sum(len(file_lines) for file_lines in self.files.values())

    def _where(self, lines: list[bytes]) -> tuple[str, int]:
        return next(reversed(self.files)), len(lines)

    def _garbage_line(self, lines: list[bytes], last_record: bytes | None) -> None:
        lines.append(_garbage(self.rng, last_record))
        self.truth.unparseable.append(self._where(lines))

    def _item_lines(self, lines: list[bytes], item: _Item, share_of_day: float) -> None:
        first_second = 6 * 3600 + int(share_of_day * 14 * 3600)
        for number, vote in enumerate(item.votes):
            second = first_second + 37 * number
            stamp = f"{self.day}T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"
            lines.append(_record(item, vote, stamp))
            where = self._where(lines)
            if item.role == "bad_text" or vote.defect in ("bad_annotator", "bad_label"):
                self.truth.schema_violations.append(where)
            elif vote.defect == "dirty":
                self.truth.dirty_labels.append((*where, vote.intended))
                self.truth.dirty_votes.append((item.item_id, vote.annotator or "", vote.intended))


def _item_truth(truth: DayTruth, items: list[_Item]) -> None:
    for item in items:
        truth.true_labels[item.item_id] = item.label
        if item.source is not None:
            truth.duplicate_of[item.item_id] = item.source.item_id
        if item.role in ("exact", "conflict"):
            truth.exact_duplicates.append(item.item_id)
        if item.role == "near":
            truth.near_duplicates.append(item.item_id)
        if item.role == "conflict" or item.conflict_source:
            truth.conflicts.append(item.item_id)
        if item.role == "flipped":
            truth.flipped_items.append(item.item_id)
        if item.lookalike_of is not None:
            truth.hard_negatives.append((item.item_id, item.lookalike_of.item_id))


def _write_day(day_dir: Path, files: dict[str, list[bytes]]) -> None:
    day_dir.mkdir(parents=True, exist_ok=True)
    (day_dir / READY_MARKER).unlink(missing_ok=True)
    for stale in day_dir.glob("export-*.jsonl"):
        if stale.name not in files:
            stale.unlink()
    for name, lines in files.items():
        atomic_write(day_dir / name, b"".join(line + b"\n" for line in lines))
    atomic_write(day_dir / READY_MARKER, b"")


def generate_feed(
    landing_root: Path,
    truth_root: Path,
    start: date,
    days: int,
    items_per_day: int = 400,
    seed: int = 7,
    dataset: str = DATASET,
    rates: DefectRates | None = None,
) -> list[DayTruth]:
    """Write ``days`` daily partitions from ``start`` and their truth files; return the truths."""
    if days < 1:
        raise InvalidInputError(f"days must be at least 1, got {days}")
    rates = rates or DefectRates()
    history = _History()
    truths = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        rng = random.Random(f"{dataset}:{seed}:{day.isoformat()}")
        builder = _DayItems(rng, items_per_day, rates, history)
        items = builder.build(day)
        _inject_vote_defects(rng, items, rates)
        truth = DayTruth(
            dataset, day.isoformat(), unreliable_annotators=list(UNRELIABLE_ANNOTATORS)
        )
        layout = _Layout(rng, day, truth)
        layout.write_items(items, _count(rates.unparseable, items_per_day))
        _item_truth(truth, items)
        _write_day(Path(landing_root) / dataset / day.isoformat(), layout.files)
        path = truth_path(Path(truth_root), dataset, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, truth.to_json().encode("utf-8"))
        history.published += [
            item
            for item in items
            if item.role in ("fresh", "hard_negative") and not item.conflict_source
        ]
        truths.append(truth)
    return truths
