"""ingest.read_partition: real datasets, injected defects with known answers, and conservation."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import unicodedata
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from governance import frames
from governance.contracts import PROJECT_ROOT, Contract, load_contract
from governance.errors import (
    EmptyPartitionError,
    IngestError,
    NonRetryableError,
    PartitionMissingError,
)
from governance.ingest import IngestResult, plurality_labels, read_partition
from governance.reasons import ReasonKind, from_record, rendered

DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"
SMS_FILE = DATASETS / "sms_spam_collection" / "SMSSpamCollection"
SENTI_FILE = DATASETS / "senti4sd_gold" / "Senti4SD_GoldStandard_EmotionPolarity.csv"
CONTRACTS = PROJECT_ROOT / "include" / "contracts"
DAY = "2026-01-01"
# Which kinds of reason each ingest stage gives.
STAGE_KINDS = {
    "parse": {ReasonKind.LANDING, ReasonKind.PARSE, ReasonKind.SCHEMA},
    "validate": {ReasonKind.CHECK, ReasonKind.DUPLICATE, ReasonKind.CONFLICT},
}


def make_contract(**overrides) -> Contract:
    """A small csv contract (header label,text); keyword sections replace or extend its own."""
    settings = {
        "name": "reviews",
        "source": {"format": "csv", "pattern": "*.csv"},
        "text": {"column": "text", "max_length": 100},
        "labels": {"column": "label", "classes": ["good", "bad"]},
    }
    for key, value in overrides.items():
        settings[key] = settings.get(key, {}) | value if isinstance(value, dict) else value
    return Contract.model_validate(settings)


def with_source(contract: Contract, **changes) -> Contract:
    settings = contract.model_dump()
    settings["source"] |= changes
    return Contract.model_validate(settings)


def landing(tmp_path: Path, files: dict[str, bytes | str]) -> Path:
    folder = tmp_path / DAY
    folder.mkdir()
    for name, content in files.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        (folder / name).write_bytes(data)
    return folder


def copied(tmp_path: Path, source: Path, name: str) -> Path:
    """A partition holding a copy of one shared dataset file (a link out of the landing folder
    would be refused)."""
    folder = tmp_path / DAY
    folder.mkdir()
    shutil.copyfile(source, folder / name)
    return folder


def ingest(contract: Contract, folder: Path) -> IngestResult:
    """read_partition plus the invariants every result must satisfy."""
    result = read_partition(contract, folder)
    assert result.rows_in == (
        result.items[frames.N_SOURCE_ROWS].sum() + result.quarantine[frames.N_SOURCE_ROWS].sum()
    )
    assert result.rows_in == sum(entry["records"] for entry in result.files)
    assert list(result.items.columns) == frames.ITEM_COLUMNS
    assert list(result.annotations.columns) == frames.ANNOTATION_COLUMNS
    assert list(result.quarantine.columns) == frames.QUARANTINE_COLUMNS
    assert result.items[frames.ITEM_ID].is_unique
    assert result.items[frames.ITEM_ID].notna().all()
    assert set(result.quarantine[frames.STAGE]) <= {"parse", "validate"}
    assert (result.quarantine[frames.RAW].str.len() <= frames.RAW_PREVIEW_CHARS).all()
    for stage, line, causes in result.quarantine[
        [frames.STAGE, frames.REASONS, frames.CAUSES]
    ].itertuples(index=False):
        reasons = [from_record(cause) for cause in causes]
        assert reasons and rendered(reasons) == line
        assert {r.kind for r in reasons} <= STAGE_KINDS[stage], (stage, reasons)
    provenance = result.items[[frames.SOURCE_FILE, frames.SOURCE_LINE]]
    assert provenance.equals(provenance.sort_values([frames.SOURCE_FILE, frames.SOURCE_LINE]))
    return result


def quarantined(result: IngestResult) -> dict[int, str]:
    """source_line -> reasons (single-file fixtures)."""
    table = result.quarantine
    return dict(zip(table[frames.SOURCE_LINE], table[frames.REASONS], strict=True))


# --- real datasets ---------------------------------------------------------------------------


def test_sms_spam_keeps_all_5574_messages(tmp_path):
    contract = load_contract(CONTRACTS / "sms_spam.yaml")
    result = ingest(contract, copied(tmp_path, SMS_FILE, "SMSSpamCollection"))
    assert result.rows_in == 5574
    assert result.quarantine.empty
    assert result.items[frames.LABEL].value_counts().to_dict() == {"ham": 4827, "spam": 747}
    reference = pd.read_csv(
        SMS_FILE, sep="\t", header=None, names=["label", "text"], quoting=csv.QUOTE_NONE
    )
    # The contract strips C1 controls (cp1252 punctuation read as Latin-1) and keeps NFC.
    c1 = reference["text"].str.contains("[\u0080-\u009f]", regex=True)
    expected = [
        unicodedata.normalize("NFC", "".join(ch for ch in text if not 0x80 <= ord(ch) <= 0x9F))
        for text in reference["text"]
    ]
    assert result.items[frames.TEXT].tolist() == expected
    assert result.hygiene.control_stripped == int(c1.sum()) == 35
    assert result.items[frames.SOURCE_LINE].tolist() == list(range(1, 5575))
    assert result.files == [
        {
            "name": "SMSSpamCollection",
            "sha256": "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d",
            "bytes": 477_907,
            "records": 5574,
            "status": "read",
            "refused": None,
            "compression": None,
            "encoding": "utf-8",
            "encoding_confidence": 1.0,
            "encoding_method": "valid UTF-8",
        }
    ]


def test_sms_spam_with_minimal_quoting_merges_lines(tmp_path):
    """Unbalanced quotes swallow line breaks: the contract's quoting none is what keeps 5,574."""
    contract = with_source(load_contract(CONTRACTS / "sms_spam.yaml"), quoting="minimal")
    result = ingest(contract, copied(tmp_path, SMS_FILE, "SMSSpamCollection"))
    assert result.rows_in < 5574
    starts = set(result.items[frames.SOURCE_LINE]) | set(result.quarantine[frames.SOURCE_LINE])
    swallowed = set(range(1, 5575)) - starts
    assert len(swallowed) == 5574 - result.rows_in


def read_senti_csv() -> list[dict[str, str]]:
    with SENTI_FILE.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_senti4sd_votes_are_canonicalised_and_final_is_their_majority(tmp_path):
    contract = load_contract(CONTRACTS / "senti4sd_gold.yaml")
    result = ingest(contract, copied(tmp_path, SENTI_FILE, "gold.csv"))
    rows = read_senti_csv()
    assert result.rows_in == len(rows) == 4423
    assert result.quarantine.empty
    assert result.items[frames.ITEM_ID].tolist() == [row["label"] for row in rows]
    assert result.items[frames.LABEL].tolist() == [row["final"] for row in rows]

    # Every changed spelling and its count, computed here with a plain dict.
    changed: dict[str, int] = {}
    for row in rows:
        for raw in (row["r1"], row["r2"], row["r3"], row["final"]):
            if raw and raw not in ("positive", "neutral", "negative"):
                changed[raw] = changed.get(raw, 0) + 1
    report = result.label_mapping
    assert {raw: entry["count"] for raw, entry in report["changed"].items()} == changed
    assert report["unknown"] == {}
    for raw, class_name in [
        ("Positiva", "positive"),
        ("Netural", "neutral"),
        ("POSITIVE", "positive"),
        ("negtive", "negative"),
    ]:
        assert report["changed"][raw]["canonical"] == class_name

    # Empty votes are no votes: 3 * 4423 cells minus the 3 empty ones.
    empty_votes = sum(1 for row in rows for column in ("r1", "r2", "r3") if not row[column])
    assert empty_votes == 3
    assert len(result.annotations) == 3 * len(rows) - empty_votes
    raw_votes = [row[c] for row in rows for c in ("r1", "r2", "r3") if row[c]]
    assert result.annotations[frames.RAW_LABEL].tolist() == raw_votes

    # final equals the strict majority of the canonical votes wherever one exists.
    votes: dict[str, Counter] = {}
    for item_id, label in zip(
        result.annotations[frames.ITEM_ID], result.annotations[frames.LABEL], strict=True
    ):
        votes.setdefault(item_id, Counter())[label] += 1
    final = dict(zip(result.items[frames.ITEM_ID], result.items[frames.LABEL], strict=True))
    with_majority = 0
    for item_id, counts in votes.items():
        label, top = counts.most_common(1)[0]
        if 2 * top > sum(counts.values()):
            with_majority += 1
            assert final[item_id] == label, item_id
    assert with_majority == len(rows)  # SOURCE.md: final is the majority on 100% of rows


def test_item_label_is_the_vote_plurality_without_a_label_column(tmp_path):
    settings = load_contract(CONTRACTS / "senti4sd_gold.yaml").model_dump()
    settings["labels"]["column"] = None
    contract = Contract.model_validate(settings)
    result = ingest(contract, copied(tmp_path, SENTI_FILE, "gold.csv"))
    reference = plurality_by_hand(result.annotations, list(contract.labels.classes))
    labels = result.items.set_index(frames.ITEM_ID)[frames.LABEL]
    voted = labels.index.isin(result.annotations[frames.ITEM_ID])
    assert labels[voted].to_dict() == reference
    assert labels[voted].notna().all()


def plurality_by_hand(annotations: pd.DataFrame, classes: list[str]) -> dict[str, str]:
    votes: dict[str, Counter] = {}
    for item_id, label in zip(annotations[frames.ITEM_ID], annotations[frames.LABEL], strict=True):
        votes.setdefault(item_id, Counter())[label] += 1
    return {
        item_id: min(classes, key=lambda c: (-counts[c], classes.index(c)))
        for item_id, counts in votes.items()
    }


def test_plurality_labels_break_ties_by_the_declared_order():
    annotations = pd.DataFrame(
        {
            frames.ITEM_ID: ["a", "a", "a", "b", "b", "c", "d", "d", "d", "d"],
            frames.ANNOTATOR: ["1", "2", "3", "1", "2", "1", "1", "2", "3", "4"],
            frames.LABEL: ["x", "y", "x", "x", "y", "y", "x", "x", "y", "y"],
        }
    )
    labels = plurality_labels(annotations, ["y", "x"]).to_dict()
    assert labels == {"a": "x", "b": "y", "c": "y", "d": "y"}


# --- partitions ------------------------------------------------------------------------------


def test_missing_folder(tmp_path):
    with pytest.raises(PartitionMissingError, match=DAY):
        read_partition(make_contract(), tmp_path / DAY)


def test_folder_without_matching_files_names_folder_and_pattern(tmp_path):
    folder = landing(tmp_path, {"_SUCCESS": "", ".hidden.csv": "label,text\n", "notes.txt": "x"})
    contract = make_contract(landing={"ready_marker": "_SUCCESS"})
    with pytest.raises(EmptyPartitionError) as caught:
        read_partition(contract, folder)
    assert str(folder) in str(caught.value)
    assert "'*.csv'" in str(caught.value)
    assert isinstance(caught.value, NonRetryableError)


def test_files_in_name_order_skipping_marker_and_hidden_files(tmp_path):
    folder = landing(
        tmp_path,
        {
            "b.csv": "label,text\ngood,from b\n",
            "a.csv": "label,text\nbad,from a\n",
            "READY.csv": "label,text\ngood,marker\n",
            "_tmp.csv": "label,text\ngood,underscore\n",
            ".x.csv": "label,text\ngood,hidden\n",
        },
    )
    result = ingest(make_contract(landing={"ready_marker": "READY.csv"}), folder)
    assert [(entry["name"], entry["status"]) for entry in result.files] == [
        ("a.csv", "read"),
        ("b.csv", "read"),
        (".x.csv", "skipped"),
        ("_tmp.csv", "skipped"),
    ]
    assert result.items[frames.TEXT].tolist() == ["from a", "from b"]


def test_empty_file_is_a_warning_with_no_records(tmp_path):
    folder = landing(tmp_path, {"a.csv": "", "b.csv": "label,text\ngood,fine\n"})
    result = ingest(make_contract(), folder)
    assert result.rows_in == 1
    assert "empty file a.csv" in result.warnings
    assert [entry["records"] for entry in result.files] == [0, 1]


def test_header_missing_a_needed_column_quarantines_that_file(tmp_path):
    folder = landing(
        tmp_path,
        {
            "a.csv": "labl,text\ngood,one\nbad,two\nbad,three\n",
            "b.csv": "text,label\nfour,good\n",
        },
    )
    result = ingest(make_contract(), folder)
    assert result.rows_in == 4
    assert result.items[frames.TEXT].tolist() == ["four"]
    bad = result.quarantine
    assert bad[frames.SOURCE_FILE].tolist() == ["a.csv"] * 3
    assert bad[frames.SOURCE_LINE].tolist() == [2, 3, 4]
    assert set(bad[frames.REASONS]) == {"missing_columns: label"}
    assert any("a.csv" in w and "missing_columns: label" in w for w in result.warnings)


def test_latin1_lines_under_utf8_contract(tmp_path):
    lines = ["label,text", "good,plain", "good,café", "bad,naïve idea", "bad,ascii again"]
    data = ("\n".join(lines) + "\n").encode("latin-1")
    utf8 = with_source(make_contract(), encoding="utf-8")
    result = ingest(utf8, landing(tmp_path, {"a.csv": data}))
    non_ascii = {number for number, line in enumerate(lines, 1) if not line.isascii()}
    assert set(quarantined(result)) == non_ascii == {3, 4}
    assert all(r.startswith("decode_error: utf-8") for r in quarantined(result).values())
    assert result.quarantine[frames.RAW].tolist() == ["good,caf\\xe9", "bad,na\\xefve idea"]
    assert result.items[frames.TEXT].tolist() == ["plain", "ascii again"]
    latin = with_source(make_contract(), encoding="latin-1")
    (tmp_path / "x").mkdir()
    assert ingest(latin, landing(tmp_path / "x", {"a.csv": data})).quarantine.empty
    # The default, auto, places the file (as Windows-1252, a superset here) and reads it whole.
    (tmp_path / "y").mkdir()
    detected = ingest(make_contract(), landing(tmp_path / "y", {"a.csv": data}))
    assert detected.quarantine.empty
    assert detected.items[frames.TEXT].tolist() == ["plain", "café", "naïve idea", "ascii again"]
    assert detected.files[0]["encoding"] in {"cp1252", "iso8859-1"}


def test_truncated_inside_a_quoted_field(tmp_path):
    content = 'label,text\ngood,"one"\nbad,"two, and\nthree"\ngood,"cut off her'
    result = ingest(make_contract(), landing(tmp_path, {"a.csv": content}))
    assert result.rows_in == 3
    assert result.items[frames.TEXT].tolist() == ["one", "two, and\nthree"]
    assert result.items[frames.SOURCE_LINE].tolist() == [2, 3]
    assert list(quarantined(result)) == [5]
    assert quarantined(result)[5].startswith("csv_error:")
    assert result.quarantine[frames.RAW].tolist() == ['good,"cut off her']


def test_truncated_mid_line_with_too_few_fields(tmp_path):
    content = "label,text\ngood,one\nbad,two\ngoo"
    result = ingest(make_contract(), landing(tmp_path, {"a.csv": content}))
    assert quarantined(result) == {4: "field_count: expected 2, got 1"}
    assert result.items[frames.TEXT].tolist() == ["one", "two"]


def test_binary_garbage_mixed_into_a_file(tmp_path):
    garbage = [bytes([0xFF, 0xFE, 0x00, 0x81, 0x9C]) * 7, b"\x00\xc3\x28\x80\xa0\xe2\x82"]
    lines = [b"label,text", b"good,first", garbage[0], b"bad,second", garbage[1], b"good,third"]
    utf8 = with_source(make_contract(), encoding="utf-8")
    result = ingest(utf8, landing(tmp_path, {"a.csv": b"\n".join(lines) + b"\n"}))
    assert set(quarantined(result)) == {3, 5}
    assert all(reason.startswith("decode_error") for reason in quarantined(result).values())
    assert result.items[frames.SOURCE_LINE].tolist() == [2, 4, 6]
    assert result.rows_in == 5


def test_one_enormous_line_among_normal_lines(tmp_path):
    huge = "good," + "x" * 5_000_000
    content = "\n".join(["label,text", "good,before", huge, "bad,after", "good,last"]) + "\n"
    contract = make_contract()
    result = ingest(contract, landing(tmp_path, {"a.csv": content}))
    limit = contract.source.max_line_bytes
    assert quarantined(result) == {3: f"line_too_long: {len(huge)} bytes > {limit}"}
    assert result.items[frames.TEXT].tolist() == ["before", "after", "last"]
    assert result.items[frames.SOURCE_LINE].tolist() == [2, 4, 5]


def test_line_exactly_at_the_limit_is_read(tmp_path):
    line = "good," + "y" * 45
    content = f"label,text\n{line}\r\n{line}x\r\n"
    contract = with_source(make_contract(text={"max_length": 1000}), max_line_bytes=len(line))
    result = ingest(contract, landing(tmp_path, {"a.csv": content}))
    assert result.items[frames.SOURCE_LINE].tolist() == [2]
    assert quarantined(result) == {3: f"line_too_long: {len(line) + 1} bytes > {len(line)}"}


def test_headerless_quoting_none_tsv_with_blank_lines(tmp_path):
    contract = make_contract(
        source={"format": "tsv", "pattern": "*", "header": False, "columns": ["label", "text"]}
        | {"quoting": "none"}
    )
    content = 'good\tsays "hi\n\nbad\ttoo\tmany\ngood\tend"\n'
    result = ingest(contract, landing(tmp_path, {"feed": content}))
    assert result.items[frames.TEXT].tolist() == ['says "hi', 'end"']
    assert quarantined(result) == {3: "field_count: expected 2, got 3"}
    assert "feed: 1 blank lines skipped" in result.warnings


# --- validation inside ingest -----------------------------------------------------------------


def test_unknown_label_fails_validation_with_the_raw_value(tmp_path):
    content = "label,text\n Good ,kept\nhamm,dropped\n,no label\n"
    result = ingest(make_contract(), landing(tmp_path, {"a.csv": content}))
    assert result.items[frames.LABEL].tolist() == ["good"]
    assert quarantined(result) == {
        3: "label: not in classes [good, bad]",
        4: "label: missing",
    }
    assert json.loads(result.quarantine[frames.RAW].iloc[0])["label"] == "hamm"
    assert result.label_mapping == {
        "changed": {" Good ": {"canonical": "good", "count": 1}},
        "unknown": {"hamm": 1},
    }


def test_unknown_wide_vote_fails_but_an_empty_vote_is_no_vote(tmp_path):
    contract = make_contract(
        labels={"column": None}, annotators={"layout": "wide", "columns": ["r1", "r2", "r3"]}
    )
    content = "text,r1,r2,r3\nfirst,good,GOOD,\nsecond,good,xyz,bad\nthird,bad,,\n"
    result = ingest(contract, landing(tmp_path, {"a.csv": content}))
    assert quarantined(result) == {3: "r2: unknown label"}
    assert result.items[frames.LABEL].tolist() == ["good", "bad"]
    assert result.annotations[
        [frames.ANNOTATOR, frames.LABEL, frames.RAW_LABEL]
    ].values.tolist() == [
        ["r1", "good", "good"],
        ["r2", "good", "GOOD"],
        ["r1", "bad", "bad"],
    ]


def test_duplicate_id_quarantines_later_records(tmp_path):
    contract = make_contract(id={"column": "id"})
    content = "id,label,text\n1,good,a\n2,bad,b\n1,bad,c\n"
    result = ingest(contract, landing(tmp_path, {"a.csv": content}))
    assert result.items[frames.ITEM_ID].tolist() == ["1", "2"]
    assert quarantined(result) == {4: "duplicate_id"}
    assert result.quarantine[frames.ITEM_ID].tolist() == ["1"]


def test_derived_ids_hash_the_text_and_number_repeats(tmp_path):
    content = "label,text\ngood,same\nbad,other\ngood,same\nbad,same\n"
    result = ingest(make_contract(), landing(tmp_path, {"a.csv": content}))
    same = hashlib.sha256(b"same").hexdigest()[:16]
    other = hashlib.sha256(b"other").hexdigest()[:16]
    assert result.items[frames.ITEM_ID].tolist() == [same, other, f"{same}-1", f"{same}-2"]


def test_long_layout_groups_votes_and_rejects_inconsistent_text_and_repeat_votes(tmp_path):
    contract = make_contract(
        source={"format": "jsonl", "pattern": "*.jsonl"},
        id={"column": "id"},
        labels={"column": None},
        annotators={"layout": "long", "annotator_column": "who", "label_column": "vote"},
    )
    votes = [
        {"id": "a", "who": "ann", "vote": "good", "text": "alpha"},
        {"id": "b", "who": "ann", "vote": "bad", "text": "beta"},
        {"id": "a", "who": "bob", "vote": "Good", "text": "alpha"},
        {"id": "c", "who": "ann", "vote": "good", "text": "gamma"},
        {"id": "a", "who": "ann", "vote": "bad", "text": "alpha"},  # second vote of ann on a
        {"id": "c", "who": "bob", "vote": "bad", "text": "gamma!"},  # c's texts differ
        {"id": "b", "who": "cat", "vote": "good", "text": "beta"},
        {"id": "b", "who": "dan", "vote": "nope", "text": "beta"},  # invalid vote
    ]
    content = "".join(json.dumps(vote) + "\n" for vote in votes)
    result = ingest(contract, landing(tmp_path, {"v.jsonl": content}))
    assert quarantined(result) == {
        4: "inconsistent_text",
        5: "duplicate_vote",
        6: "inconsistent_text",
        8: "vote: unknown label",
    }
    items = result.items.set_index(frames.ITEM_ID)
    assert items[frames.N_SOURCE_ROWS].to_dict() == {"a": 2, "b": 2}
    assert items[frames.SOURCE_LINE].to_dict() == {"a": 1, "b": 2}
    # b's votes tie (bad, good): the class declared first wins
    first = next(c for c in contract.labels.classes if c in {"good", "bad"})
    assert items[frames.LABEL].to_dict() == {"a": "good", "b": first}
    assert len(result.annotations) == 4


# --- jsonl and parquet ------------------------------------------------------------------------


def test_jsonl_malformed_lines_are_quarantined_and_blank_lines_skipped(tmp_path):
    contract = make_contract(source={"format": "jsonl", "pattern": "*.jsonl"})
    content = (
        '{"label": "good", "text": "one"}\n'
        "\n"
        '{"label": "bad", "text": "two"\n'
        '["not", "an", "object"]\n'
        '{"label": "bad", "text": 3, "extra": true}\n'
        '{"label": "good", "text": "\\ud800 lone surrogate"}\n'
        '{"label": "good"}\n'
    )
    result = ingest(contract, landing(tmp_path, {"a.jsonl": content}))
    assert result.rows_in == 6
    assert result.items[frames.TEXT].tolist() == ["one", "3"]
    assert result.items[frames.SOURCE_LINE].tolist() == [1, 5]
    reasons = quarantined(result)
    assert set(reasons) == {3, 4, 6, 7}
    assert reasons[3].startswith("json_error:")
    assert reasons[4] == "json_error: not an object (list)"
    assert reasons[6] == "json_error: lone surrogate in a string"
    assert reasons[7] == "text: missing"


def test_parquet_rows_are_numbered_and_a_corrupt_file_is_named(tmp_path):
    contract = make_contract(source={"format": "parquet", "pattern": "*.parquet"})
    folder = landing(tmp_path, {})
    table = pa.table({"label": ["good", "bad", "ugly"], "text": ["one", None, "three"]})
    pq.write_table(table, folder / "a.parquet")
    result = ingest(contract, folder)
    assert result.items[frames.TEXT].tolist() == ["one"]
    assert quarantined(result) == {2: "text: missing", 3: "label: not in classes [good, bad]"}
    (folder / "b.parquet").write_bytes(b"PAR1 not really parquet")
    with pytest.raises(IngestError, match=r"b\.parquet"):
        read_partition(contract, folder)


def test_encoding_that_is_not_ascii_compatible_is_refused_with_the_contract():
    with pytest.raises(ValidationError, match="'utf-16' is not ASCII-compatible"):
        with_source(make_contract(), encoding="utf-16")
    with pytest.raises(ValidationError, match="unknown encoding 'klingon'"):
        with_source(make_contract(), allowed_encodings=["utf-8", "klingon"])


# --- determinism ------------------------------------------------------------------------------

SNAPSHOT = """
import hashlib, sys
from pathlib import Path
from governance.contracts import load_contract
from governance.ingest import read_partition
result = read_partition(load_contract(sys.argv[1]), Path(sys.argv[2]))
digest = hashlib.sha256()
for frame in (result.items, result.annotations, result.quarantine):
    digest.update(frame.to_csv(index=False).encode())
print(digest.hexdigest())
"""


def test_output_is_identical_across_hash_seeds(tmp_path):
    folder = copied(tmp_path, SENTI_FILE, "gold.csv")
    digests = set()
    for seed in ("1", "2"):
        env = os.environ | {"PYTHONHASHSEED": seed, "PYTHONPATH": str(PROJECT_ROOT / "include")}
        completed = subprocess.run(
            [sys.executable, "-c", SNAPSHOT, str(CONTRACTS / "senti4sd_gold.yaml"), str(folder)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        digests.add(completed.stdout.strip())
    assert len(digests) == 1
