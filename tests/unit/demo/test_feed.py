"""The demo feed's truth must agree with the files it writes, checked by re-reading them.

Every check re-implements the rule it verifies (JSON parsing, the contract's rules, text
normalisation, word-set Jaccard via scikit-learn) instead of reusing the generator's helpers.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer

from governance.contracts import PROJECT_ROOT, Contract, load_contract
from governance.demo.feed import DATASET, DayTruth, generate_feed, load_truth, write_wide_csv

START = date(2026, 3, 1)
DAYS = 3
ITEMS_PER_DAY = 200
CONTRACT_PATH = PROJECT_ROOT / "include" / "contracts" / "demo_reviews.yaml"
BENCH_CONTRACT_PATH = PROJECT_ROOT / "bench" / "contracts" / "bench_wide.yaml"


@dataclass
class Line:
    day: int
    file: str
    number: int  # 1-based
    raw: bytes
    record: dict | None  # None when the line is not a JSON object


@dataclass
class Feed:
    root: Path
    truths: list[DayTruth]
    lines: list[Line]  # every line of every day, in day, file and line order


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract(CONTRACT_PATH)


def _parse(raw: bytes) -> dict | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _read_lines(landing: Path) -> list[Line]:
    lines = []
    for day_number, day_dir in enumerate(sorted((landing / DATASET).iterdir())):
        for path in sorted(day_dir.glob("*.jsonl")):
            raws = path.read_bytes().split(b"\n")
            assert raws[-1] == b"", f"{path} must end with a newline"
            for number, raw in enumerate(raws[:-1], start=1):
                lines.append(Line(day_number, path.name, number, raw, _parse(raw)))
    return lines


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Feed:
    root = tmp_path_factory.mktemp("feed")
    truths = generate_feed(root / "landing", root / "truth", START, DAYS, ITEMS_PER_DAY, seed=11)
    return Feed(root, truths, _read_lines(root / "landing"))


def _canonical(label: object, contract: Contract) -> str | None:
    """The contract's label rule, written out independently."""
    if not isinstance(label, str):
        return None
    key = label.strip().lower() if contract.labels.case_insensitive else label.strip()
    if key in contract.labels.classes:
        return key
    aliases = {k.lower(): v for k, v in contract.labels.aliases.items()}
    return aliases.get(key)


def _broken_rules(record: dict, contract: Contract) -> list[str]:
    broken = []
    text = record.get(contract.text.column)
    if not isinstance(text, str):
        broken.append("text missing")
    elif not contract.text.min_length <= len(text) <= contract.text.max_length:
        broken.append("text length")
    for check in contract.checks:
        value = record.get(check.column)
        if check.required and value is None:
            broken.append(f"{check.column} required")
        if check.pattern and value is not None and not re.search(check.pattern, str(value)):
            broken.append(f"{check.column} pattern")
    if _canonical(record.get(contract.annotators.label_column), contract) is None:
        broken.append("label unknown")
    return broken


def _normalised(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def _words(text: str) -> set[str]:
    return set(_normalised(text).split())


def _items(feed: Feed, contract: Contract) -> dict[str, dict]:
    """item_id -> day, first line position, text, votes; for items with a valid text."""
    items: dict[str, dict] = {}
    for position, line in enumerate(feed.lines):
        record = line.record
        if record is None or any(r.startswith("text") for r in _broken_rules(record, contract)):
            continue
        item = items.setdefault(
            record["item_id"],
            {"day": line.day, "position": position, "text": record["text"], "votes": []},
        )
        if not _broken_rules(record, contract):
            item["votes"].append((record["annotator"], _canonical(record["label"], contract)))
    return items


def test_contracts_load_and_describe_the_feed(contract: Contract) -> None:
    assert contract.source.format == "jsonl"
    assert contract.id.column == "item_id"
    assert contract.annotators.layout == "long"
    assert set(contract.labels.classes) == {"positive", "neutral", "negative"}
    bench = load_contract(BENCH_CONTRACT_PATH)
    assert bench.annotators.layout == "wide"
    assert bench.annotators.columns == ["r1", "r2", "r3"]


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_gives_identical_bytes_and_rewrites_idempotently(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for root in (first, second):
        generate_feed(root / "landing", root / "truth", START, 2, 120, seed=3)
    assert _snapshot(first) == _snapshot(second)
    before = _snapshot(first)
    generate_feed(first / "landing", first / "truth", START, 2, 120, seed=3)
    assert _snapshot(first) == before


def test_different_seed_gives_a_different_feed(tmp_path: Path) -> None:
    generate_feed(tmp_path / "a" / "landing", tmp_path / "a" / "truth", START, 1, 120, seed=3)
    generate_feed(tmp_path / "b" / "landing", tmp_path / "b" / "truth", START, 1, 120, seed=4)
    assert _snapshot(tmp_path / "a" / "landing") != _snapshot(tmp_path / "b" / "landing")


def test_day_layout_and_truth_files(feed: Feed) -> None:
    for truth in feed.truths:
        day_dir = feed.root / "landing" / DATASET / truth.day
        exports = sorted(p.name for p in day_dir.glob("*.jsonl"))
        assert 2 <= len(exports) <= 3
        assert (day_dir / "_SUCCESS").exists()
        assert truth.rows == sum(line.day == feed.truths.index(truth) for line in feed.lines)
        assert load_truth(feed.root / "truth", DATASET, truth.day) == truth
        assert DayTruth.from_json(truth.to_json()) == truth
    assert sum(t.rows for t in feed.truths) == len(feed.lines)


def test_unparseable_lines_are_exactly_those_no_json_parser_reads(feed: Feed) -> None:
    for day, truth in enumerate(feed.truths):
        unreadable = {(ln.file, ln.number) for ln in feed.lines if ln.day == day and not ln.record}
        assert unreadable == set(truth.unparseable)
        assert len(truth.unparseable) >= 1
    for line in feed.lines:  # one line stays one line whichever way a reader splits it
        assert len(line.raw.decode("utf-8", errors="replace").splitlines()) == 1
        assert len(line.raw.decode("latin-1").splitlines()) == 1


def test_schema_violations_are_exactly_the_lines_breaking_a_contract_rule(
    feed: Feed, contract: Contract
) -> None:
    kinds: Counter[str] = Counter()
    for day, truth in enumerate(feed.truths):
        violating = set()
        for line in feed.lines:
            if line.day == day and line.record is not None:
                broken = _broken_rules(line.record, contract)
                kinds.update(broken)
                if broken:
                    violating.add((line.file, line.number))
        assert violating == set(truth.schema_violations)
    assert {"text length", "annotator pattern", "label unknown"} <= set(kinds)


def test_dirty_labels_canonicalise_to_their_true_label(feed: Feed, contract: Contract) -> None:
    for day, truth in enumerate(feed.truths):
        dirty = {(f, n): label for f, n, label in truth.dirty_labels}
        assert dirty
        by_key = {(ln.file, ln.number): ln for ln in feed.lines if ln.day == day}
        for key, label in dirty.items():
            raw = by_key[key].record["label"]
            assert raw not in contract.labels.classes
            assert _canonical(raw, contract) == label
        spelled_off = {
            key
            for key, ln in by_key.items()
            if ln.record
            and not _broken_rules(ln.record, contract)
            and ln.record["label"] not in contract.labels.classes
        }
        assert spelled_off == set(dirty)
        votes = {(by_key[k].record["item_id"], by_key[k].record["annotator"]) for k in dirty}
        assert votes == {(i, a) for i, a, _ in truth.dirty_votes}


def test_exact_duplicates_copy_an_earlier_published_text(feed: Feed, contract: Contract) -> None:
    items = _items(feed, contract)
    labels = {k: v for t in feed.truths for k, v in t.true_labels.items()}
    exact = {i for t in feed.truths for i in t.exact_duplicates}
    near = {i for t in feed.truths for i in t.near_duplicates}
    conflicts = {i for t in feed.truths for i in t.conflicts}
    sources = {k: v for t in feed.truths for k, v in t.duplicate_of.items()}
    first_of_text: dict[str, str] = {}
    found = set()
    for item_id, item in sorted(items.items(), key=lambda kv: kv[1]["position"]):
        key = _normalised(item["text"])
        if key in first_of_text:
            found.add(item_id)
            assert sources[item_id] == first_of_text[key]
        else:
            first_of_text[key] = item_id
    assert found == exact
    for item_id in exact:
        source = sources[item_id]
        assert items[source]["position"] < items[item_id]["position"]
        assert source not in exact | near
        if items[source]["day"] < items[item_id]["day"]:  # an earlier day published it
            assert source not in conflicts
        assert (labels[item_id] != labels[source]) == (item_id in conflicts)
    for day, truth in enumerate(feed.truths):
        copies = [i for i in truth.exact_duplicates if i not in truth.conflicts]
        assert copies and set(truth.conflicts) & set(truth.exact_duplicates)
        if day:
            assert any(items[sources[i]]["day"] < day for i in copies)


def _pairwise_jaccard(texts: list[str]) -> np.ndarray:
    """Reference word-set Jaccard of all pairs, by scikit-learn's tokenizer and a matrix product."""
    vectors = CountVectorizer(binary=True, lowercase=True, token_pattern=r"[a-z0-9]+")
    matrix = vectors.fit_transform(texts).astype(np.int32)
    shared = (matrix @ matrix.T).toarray()
    sizes = np.asarray(matrix.sum(axis=1)).ravel()
    return shared / (sizes[:, None] + sizes[None, :] - shared)


def test_near_duplicates_and_hard_negatives_sit_on_either_side_of_the_threshold(
    feed: Feed, contract: Contract
) -> None:
    items = _items(feed, contract)
    near = {i for t in feed.truths for i in t.near_duplicates}
    sources = {k: v for t in feed.truths for k, v in t.duplicate_of.items()}
    ids = sorted(items, key=lambda i: items[i]["position"])
    index = {item_id: n for n, item_id in enumerate(ids)}
    similarity = _pairwise_jaccard([items[i]["text"] for i in ids])
    for item_id in near:
        source = sources[item_id]
        assert len(items[source]["text"].split()) >= 12
        assert _normalised(items[item_id]["text"]) != _normalised(items[source]["text"])
        assert similarity[index[item_id], index[source]] >= 0.8
        assert items[source]["position"] < items[item_id]["position"]
    hard = [pair for t in feed.truths for pair in t.hard_negatives]
    assert hard
    for first, second in hard:
        assert similarity[index[first], index[second]] < 0.8

    cluster = {i: sources.get(i, i) for i in ids}
    rows, cols = np.nonzero(np.triu(similarity >= 0.8, k=1))
    for a, b in zip(rows, cols, strict=True):
        assert cluster[ids[a]] == cluster[ids[b]], (ids[a], ids[b])
    related = np.array([[cluster[a] == cluster[b] for b in ids] for a in ids])
    unrelated = similarity[np.triu(~related, k=1)]
    assert np.mean(unrelated >= 0.5) < 0.01
    for day in range(1, DAYS):
        day_near = [i for i in feed.truths[day].near_duplicates]
        assert any(items[sources[i]]["day"] < day for i in day_near)


def test_votes_carry_the_truth_except_for_flipped_items(feed: Feed, contract: Contract) -> None:
    items = _items(feed, contract)
    labels = {k: v for t in feed.truths for k, v in t.true_labels.items()}
    flipped = {i for t in feed.truths for i in t.flipped_items}
    unreliable = set(feed.truths[0].unreliable_annotators)
    agreement: dict[bool, list[bool]] = {True: [], False: []}
    for item_id, item in items.items():
        votes = Counter(label for _, label in item["votes"])
        majority, count = votes.most_common(1)[0]
        assert count >= 2
        assert (majority != labels[item_id]) == (item_id in flipped)
        if item_id not in flipped:
            for annotator, label in item["votes"]:
                agreement[annotator in unreliable].append(label == labels[item_id])
    assert flipped
    assert np.mean(agreement[True]) < 0.5 < 0.9 < np.mean(agreement[False])


def test_wide_csv_matches_its_summary_and_contract(tmp_path: Path) -> None:
    contract = load_contract(BENCH_CONTRACT_PATH)
    path = tmp_path / "wide.csv"
    summary = write_wide_csv(path, 5000, seed=5)
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["item_id", "text", "r1", "r2", "r3"]
    body = rows[1:]
    assert len(body) == summary.rows == 5000
    well_formed = [row for row in body if len(row) == 5]
    assert len(body) - len(well_formed) == summary.unparseable > 0
    invalid = [
        row
        for row in well_formed
        if not contract.text.min_length <= len(row[1]) <= contract.text.max_length
        or any(_canonical(vote, contract) is None for vote in row[2:])
    ]
    assert len(invalid) == summary.schema_violations > 0
    votes = [vote for row in well_formed for vote in row[2:]]
    dirty = [v for v in votes if v not in contract.labels.classes and _canonical(v, contract)]
    assert len(dirty) == summary.dirty_labels > 0
    seen: set[str] = set()
    repeats = 0
    for row in well_formed:
        key = _normalised(row[1])
        repeats += key in seen and len(row[1]) >= contract.text.min_length
        seen.add(key)
    assert repeats == summary.exact_duplicates + summary.conflicts
    write_wide_csv(tmp_path / "again.csv", 5000, seed=5)
    assert (tmp_path / "again.csv").read_bytes() == path.read_bytes()


def test_the_command_line_writes_the_feed_it_describes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from governance.demo.__main__ import main

    landing, truth_root = tmp_path / "landing", tmp_path / "truth"
    where = ["--landing-root", str(landing), "--truth-root", str(truth_root)]
    main(["feed", *where, "--start", "2026-03-01", "--days", "2", "--items-per-day", "60"])
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in printed] == ["2026-03-01", "2026-03-02"]
    for line in printed:
        truth = load_truth(truth_root, DATASET, line.split(":")[0])
        assert line.startswith(f"{truth.day}: {truth.rows} lines, {len(truth.unparseable)} ")
        assert (landing / DATASET / truth.day / "_SUCCESS").is_file()
    main(["wide", str(tmp_path / "wide.csv"), "--rows", "500", "--seed", "1"])
    assert "500" in capsys.readouterr().out
    with (tmp_path / "wide.csv").open() as handle:
        assert sum(1 for _ in handle) >= 500
