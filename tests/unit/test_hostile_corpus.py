"""A corpus of hostile landing partitions, each with the exact outcome it must get.

Every case builds one partition in a fresh folder (with a folder outside the landing zone beside
it, holding rows that must never be read), ingests it and checks either the error (type and
message) or the reasons and counts of the quarantine, the items kept and what the manifest's
inputs list says, together with conservation: every record read is an item or a quarantine row
naming its file, line and reason. The README's table "Hostile input" lists these cases.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import signal
import socket
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from governance import frames
from governance.contracts import PROJECT_ROOT, Contract
from governance.errors import EmptyPartitionError, IngestError
from governance.ingest import IngestResult, read_partition
from governance.landing import Unreadable, opened, scan_partition
from governance.reasons import from_record

DAY = "2026-01-01"
SECRET = "OUTSIDE-SECRET"
HEADER = "label,text\n"
ROWS = "good,first review\nbad,second review\n"

Files = dict[str, bytes | str]


def contract_with(**sections: dict) -> Contract:
    """A csv contract (header label,text); sections extend its own."""
    settings: dict = {
        "name": "reviews",
        "source": {"format": "csv", "pattern": "*.csv"},
        "text": {"column": "text", "max_length": 100},
        "labels": {"column": "label", "classes": ["good", "bad"]},
    }
    for key, value in sections.items():
        settings[key] = settings.get(key, {}) | value
    return Contract.model_validate(settings)


@dataclass(frozen=True)
class Case:
    """One hostile partition and its outcome: an error, or quarantine reasons and items."""

    name: str
    files: Files = field(default_factory=dict)
    arrange: Callable[[Path, Path], None] | None = None  # (partition, outside) -> links, FIFOs
    contract: dict = field(default_factory=dict)
    error: tuple[type[Exception], str] | None = None
    reasons: dict[str, int] = field(default_factory=dict)  # reason key -> quarantined rows
    items: list[str] | None = None  # the texts kept, in order
    statuses: dict[str, str] = field(default_factory=dict)  # inputs entry -> read/refused/skip
    check: Callable[[IngestResult], None] | None = None


def _write(folder: Path, files: Files) -> None:
    for name, content in files.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        (folder / name).write_bytes(data)


@pytest.fixture
def partition(tmp_path: Path) -> tuple[Path, Path]:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text(HEADER + f"good,{SECRET} one\nbad,{SECRET} two\n")
    folder = tmp_path / "landing" / "reviews" / DAY
    folder.mkdir(parents=True)
    return folder, outside


def _alarm(signum: int, frame: object) -> None:
    raise TimeoutError("ingest blocked on a landing entry")


def ingested(contract: Contract, folder: Path) -> IngestResult:
    """read_partition under a watchdog alarm (a FIFO opened for reading would block), plus the
    invariants of every result."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(60)
    try:
        result = read_partition(contract, folder)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    quarantine = result.quarantine
    assert result.rows_in == (
        result.items[frames.N_SOURCE_ROWS].sum() + quarantine[frames.N_SOURCE_ROWS].sum()
    )
    assert result.rows_in == sum(entry["records"] for entry in result.files)
    assert quarantine[frames.SOURCE_FILE].notna().all()
    assert (quarantine[frames.SOURCE_LINE] >= 0).all()
    assert all(len(causes) > 0 for causes in quarantine[frames.CAUSES])
    assert not result.items[frames.TEXT].str.contains(SECRET).any()
    return result


def reason_counts(result: IngestResult) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for causes, rows in result.quarantine[[frames.CAUSES, frames.N_SOURCE_ROWS]].itertuples(
        index=False
    ):
        for cause in causes:
            counts[from_record(cause).key] += int(rows)
    return dict(counts)


def statuses(result: IngestResult) -> dict[str, str]:
    return {entry["name"]: entry["status"] for entry in result.files}


# --- builders --------------------------------------------------------------------------------


def link(name: str, target: Callable[[Path, Path], str | Path]) -> Callable[[Path, Path], None]:
    def arrange(folder: Path, outside: Path) -> None:
        (folder / name).symlink_to(target(folder, outside))

    return arrange


def fifo(folder: Path, outside: Path) -> None:
    os.mkfifo(folder / "feed.csv")


def unix_socket(folder: Path, outside: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "s.csv"))
    server.close()


def sub_folder(folder: Path, outside: Path) -> None:
    (folder / "more.csv").mkdir()
    (folder / "more.csv" / "inner.csv").write_text(HEADER + f"good,{SECRET} inner\n")


def gz(text: str) -> bytes:
    return gzip.compress(text.encode(), mtime=0)


def zst(text: str) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as stream:
        stream.write(text.encode())
    return sink.getvalue().to_pybytes()


def xlsx_like() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


def parquet_bytes() -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"label": ["good"], "text": ["x"]}), buffer)
    return buffer.getvalue()


def deterministic_noise(size: int) -> bytes:
    """Bytes of every value in a fixed order (random-looking, no valid text encoding)."""
    return bytes((index * 197 + 89) % 256 for index in range(size))


CP1252_TEXT = HEADER + "good,Caf\u00e9 cr\u00e8me \u2013 \u201cd\u00e9licieux\u201d\n"
NFD = unicodedata.normalize("NFD", "d\u00e9j\u00e0 vu")
WANT = ["first review", "second review"]

CASES = [
    # --- confinement
    Case(
        "symlink to a file outside the landing folder",
        files={"a.csv": HEADER + ROWS},
        arrange=link("evil.csv", lambda folder, outside: outside / "secret.csv"),
        reasons={"outside_landing": 1},
        items=WANT,
        statuses={"a.csv": "read", "evil.csv": "refused"},
    ),
    Case(
        "relative ../ symlink to another dataset's day",
        files={"a.csv": HEADER + ROWS},
        arrange=link("evil.csv", lambda folder, outside: "../../../outside/secret.csv"),
        reasons={"outside_landing": 1},
        items=WANT,
    ),
    Case(
        "symlink to a system file",
        files={"a.csv": HEADER + ROWS},
        arrange=link("etc.csv", lambda folder, outside: "/etc/passwd"),
        reasons={"outside_landing": 1},
        items=WANT,
    ),
    Case(
        "symlink to a device (/dev/zero would never end)",
        files={"a.csv": HEADER + ROWS},
        arrange=link("zero.csv", lambda folder, outside: "/dev/zero"),
        reasons={"outside_landing": 1},
        items=WANT,
    ),
    Case(
        "dangling symlink",
        files={"a.csv": HEADER + ROWS},
        arrange=link("gone.csv", lambda folder, outside: outside / "missing.csv"),
        reasons={"outside_landing": 1},
        items=WANT,
    ),
    Case(
        "symlink to a file of the same partition is read (it stays inside)",
        files={"a.csv": HEADER + "good,only once\n"},
        arrange=link("b.csv", lambda folder, outside: "a.csv"),
        items=["only once", "only once"],
        statuses={"a.csv": "read", "b.csv": "read"},
    ),
    Case(
        "a FIFO named like a data file is refused unopened (no hang)",
        files={"a.csv": HEADER + ROWS},
        arrange=fifo,
        reasons={"outside_landing": 1},
        items=WANT,
        statuses={"a.csv": "read", "feed.csv": "refused"},
    ),
    Case(
        "a Unix socket",
        files={"a.csv": HEADER + ROWS},
        arrange=unix_socket,
        reasons={"outside_landing": 1},
        items=WANT,
    ),
    Case(
        "a sub-folder is listed as skipped, its files are not read",
        files={"a.csv": HEADER + ROWS},
        arrange=sub_folder,
        items=WANT,
        statuses={"a.csv": "read", "more.csv": "skipped"},
    ),
    Case(
        "a symlink to a folder outside",
        files={"a.csv": HEADER + ROWS},
        arrange=link("dir.csv", lambda folder, outside: outside),
        reasons={"outside_landing": 1},
        items=WANT,
    ),
    Case(
        "a partition of nothing but an outside link",
        arrange=link("evil.csv", lambda folder, outside: outside / "secret.csv"),
        reasons={"outside_landing": 1},
        items=[],
    ),
    # --- text hygiene
    Case(
        "whitespace-only text is empty",
        files={"a.csv": HEADER + "good, \t  \nbad,fine\n"},
        reasons={"text: length outside 1..100": 1},
        items=["fine"],
    ),
    Case(
        "NUL byte in a text",
        files={"a.csv": HEADER + "good,nul\x00here\nbad,fine\n"},
        reasons={"text: control characters": 1},
        items=["fine"],
    ),
    Case(
        "NUL byte stripped when the contract says so, and counted",
        files={"a.csv": HEADER + "good,nul\x00here\nbad,fine\n"},
        contract={"text": {"control_characters": "strip"}},
        items=["nulhere", "fine"],
        check=lambda result: _hygiene(result, control_stripped=1),
    ),
    Case(
        "terminal escape sequence",
        files={"a.csv": HEADER + "good,\x1b[31mred\x1b[0m\nbad,fine\n"},
        reasons={"text: control characters": 1},
        items=["fine"],
    ),
    Case(
        "C1 control (CSI U+009B)",
        files={"a.csv": HEADER + "good,c1 \u009b here\nbad,fine\n"},
        reasons={"text: control characters": 1},
        items=["fine"],
    ),
    Case(
        "Trojan-source bidi override",
        files={"a.csv": HEADER + "good,access \u202eevil\u202c text\nbad,fine\n"},
        reasons={"text: bidi controls": 1},
        items=["fine"],
    ),
    Case(
        "bidi isolate stripped when the contract says so",
        files={"a.csv": HEADER + "good,\u2067isolated\u2069 word\n"},
        contract={"text": {"bidi_controls": "strip"}},
        items=["isolated word"],
        check=lambda result: _hygiene(result, bidi_stripped=1),
    ),
    Case(
        "right-to-left marks in Hebrew are ordinary text",
        files={"a.csv": HEADER + "good,\u05e9\u05dc\u05d5\u05dd\u200f!\n"},
        items=["\u05e9\u05dc\u05d5\u05dd\u200f!"],
    ),
    Case(
        "zero-width space stripped and counted",
        files={"a.csv": HEADER + "good,zero\u200bwidth\n"},
        items=["zerowidth"],
        check=lambda result: _hygiene(result, invisible_stripped=1),
    ),
    Case(
        "emoji joined by ZWJ keeps its joiner",
        files={"a.csv": HEADER + "good,family \U0001f468\u200d\U0001f469\u200d\U0001f467\n"},
        items=["family \U0001f468\u200d\U0001f469\u200d\U0001f467"],
    ),
    Case(
        "decomposed Unicode becomes NFC, counted",
        files={"a.csv": HEADER + f"good,{NFD}\n"},
        items=["d\u00e9j\u00e0 vu"],
        check=lambda result: _hygiene(result, normalized=1),
    ),
    Case(
        "NFKC folds full-width letters when asked",
        files={"a.csv": HEADER + "good,\uff21\uff22\uff23 wide\n"},
        contract={"text": {"normalization": "NFKC"}},
        items=["ABC wide"],
    ),
    Case(
        "a control character in the label column",
        files={"a.csv": HEADER + "go\x07od,bell label\nbad,fine\n"},
        reasons={"label: control characters": 1, "label: not in classes [good, bad]": 1},
        items=["fine"],
    ),
    Case(
        "tab and line breaks inside a quoted text are text",
        files={"a.csv": HEADER + 'good,"two\tcolumns\r\nand lines"\n'},
        items=["two\tcolumns\r\nand lines"],
    ),
    Case(
        "HTML and a spreadsheet formula are kept as the text they are",
        files={"a.csv": HEADER + 'good,<script>alert(1)</script>\nbad,=HYPERLINK("x")\n'},
        items=["<script>alert(1)</script>", '=HYPERLINK("x")'],
    ),
    # --- encodings
    Case(
        "cp1252 file beside a UTF-8 one, encoding auto",
        files={"a.csv": CP1252_TEXT.encode("cp1252"), "b.csv": HEADER + "bad,na\u00efve\n"},
        contract={"source": {"encoding": "auto"}},
        items=["Caf\u00e9 cr\u00e8me \u2013 \u201cd\u00e9licieux\u201d", "na\u00efve"],
        check=lambda result: _encodings(result, {"a.csv": "cp1252", "b.csv": "utf-8"}),
    ),
    Case(
        "latin-1 lines under an explicit UTF-8 contract are rejected line by line",
        files={"a.csv": (HEADER + "good,caf\u00e9\nbad,plain\n").encode("latin-1")},
        contract={"source": {"encoding": "utf-8"}},
        reasons={"decode_error": 1},
        items=["plain"],
    ),
    Case(
        "the same latin-1 file under the default (auto) is read whole",
        files={"a.csv": (HEADER + "good,caf\u00e9 cr\u00e8me\nbad,plain\n").encode("latin-1")},
        items=["caf\u00e9 cr\u00e8me", "plain"],
    ),
    Case(
        "binary noise under auto is refused whole, not half-decoded",
        files={"a.csv": HEADER + ROWS, "noise.csv": deterministic_noise(4096)},
        contract={"source": {"encoding": "auto"}},
        reasons={"encoding_uncertain": 1},
        items=WANT,
        statuses={"a.csv": "read", "noise.csv": "refused"},
    ),
    Case(
        "UTF-16 with a byte order mark under auto",
        files={"a.csv": (HEADER + ROWS).encode("utf-16")},
        contract={"source": {"encoding": "auto"}},
        reasons={"encoding_not_allowed": 1},
        items=[],
    ),
    Case(
        "UTF-8 with a byte order mark",
        files={"a.csv": codecs.BOM_UTF8 + (HEADER + ROWS).encode()},
        contract={"source": {"encoding": "auto"}},
        items=WANT,
    ),
    Case(
        "a UTF-8 file with one broken line stays UTF-8",
        files={
            "a.csv": (HEADER + "good,cr\u00e8me\nbad,na\u00efve\ngood,\u00fcber\n").encode()
            + b"bad,broken \xff\xfe line\ngood,ascii\n"
        },
        contract={"source": {"encoding": "auto"}},
        reasons={"decode_error": 1},
        items=["cr\u00e8me", "na\u00efve", "\u00fcber", "ascii"],
    ),
    Case(
        "an ASCII file with one line of binary garbage under auto loses that line alone",
        files={
            "a.csv": (HEADER + "".join(f"good,plain review {n}\n" for n in range(9))).encode()
            + b"\xc3\x28\x00\x9c\xff\xfe garbage \x81\x07\n"
        },
        reasons={"decode_error": 1},
        items=[f"plain review {n}" for n in range(9)],
        check=lambda result: _encodings(result, {"a.csv": "utf-8"}),
    ),
    Case(
        "ASCII under a contract that allows only cp1252",
        files={"a.csv": HEADER + ROWS},
        contract={"source": {"allowed_encodings": ["cp1252"]}},
        items=WANT,
        check=lambda result: _encodings(result, {"a.csv": "cp1252"}),
    ),
    Case(
        "cp1252 when only UTF-8 is allowed",
        files={"a.csv": CP1252_TEXT.encode("cp1252")},
        contract={"source": {"encoding": "auto", "allowed_encodings": ["utf-8"]}},
        reasons={"encoding_not_allowed": 1},
        items=[],
    ),
    # --- empty partitions
    Case(
        "the only file is empty",
        files={"a.csv": ""},
        error=(EmptyPartitionError, r"has no data row: a\.csv \(empty\)"),
    ),
    Case(
        "a header and no rows",
        files={"a.csv": HEADER},
        error=(EmptyPartitionError, r"a\.csv \(11 bytes, no data row\)"),
    ),
    Case(
        "a header and blank lines",
        files={"a.csv": HEADER + "\n\r\n\n", "b.csv": ""},
        error=(EmptyPartitionError, r"a\.csv \(15 bytes, no data row\), b\.csv \(empty\)"),
    ),
    Case(
        "no file matches the pattern; what is there is named",
        files={"notes.txt": "hello", ".hidden.csv": HEADER + ROWS},
        error=(EmptyPartitionError, r"no file matching pattern '\*\.csv'.*notes\.txt"),
    ),
    # --- compression
    Case(
        "gzip allowed",
        files={"a.csv.gz": gz(HEADER + ROWS)},
        contract={"source": {"compression": ["gzip"]}},
        items=WANT,
        check=lambda result: _compression(result, "a.csv.gz", "gzip"),
    ),
    Case(
        "zstd allowed",
        files={"a.csv.zst": zst(HEADER + ROWS)},
        contract={"source": {"compression": ["zstd"]}},
        items=WANT,
    ),
    Case(
        "gzip not allowed by the contract",
        files={"a.csv.gz": gz(HEADER + ROWS), "b.csv": HEADER + "good,plain\n"},
        reasons={"compression_not_allowed": 1},
        items=["plain"],
    ),
    Case(
        "gzip data under a plain name",
        files={"a.csv": gz(HEADER + ROWS)},
        contract={"source": {"compression": ["gzip"]}},
        reasons={"compressed_file": 1},
        items=[],
        check=lambda result: _refusal(result, "a.csv", "name it a.csv.gz"),
    ),
    Case(
        "a spreadsheet (zip) saved as .csv",
        files={"a.csv": xlsx_like()},
        reasons={"compressed_file": 1},
        items=[],
        check=lambda result: _refusal(result, "a.csv", "zip (a spreadsheet"),
    ),
    Case(
        "parquet bytes named .csv",
        files={"a.csv": parquet_bytes()},
        reasons={"compressed_file": 1},
        items=[],
    ),
    Case(
        "a .gz name over plain text",
        files={"a.csv.gz": HEADER + ROWS},
        contract={"source": {"compression": ["gzip"]}},
        reasons={"not_compressed": 1},
        items=[],
    ),
    Case(
        "a truncated gzip keeps the rows before the break",
        files={"a.csv.gz": gz(HEADER + "".join(f"good,row {n}\n" for n in range(2000)))[:-300]},
        contract={"source": {"compression": ["gzip"]}},
        reasons={"corrupt_compressed_data": 1},
        check=lambda result: _truncated(result, 2000),
    ),
    Case(
        "a decompression bomb stops at the limit",
        files={"a.csv.gz": gz(HEADER + "good,a\n" + "bad," + "z" * 5_000_000 + "\n")},
        contract={"source": {"compression": ["gzip"], "max decompressed": 0}},
        reasons={"decompressed_too_large": 1},
        items=["a"],
    ),
    # --- layout
    Case(
        "semicolons instead of commas",
        files={"a.csv": "label;text\ngood;one\nbad;two\n"},
        reasons={"missing_columns": 2},
        items=[],
    ),
    Case(
        "a header repeated in the middle (files concatenated)",
        files={"a.csv": HEADER + "good,one\n" + HEADER + "bad,two\n"},
        reasons={"label: not in classes [good, bad]": 1},
        items=["one", "two"],
    ),
    Case(
        "many small files",
        files={f"part-{n:03d}.csv": HEADER + f"good,review {n}\n" for n in range(120)},
        items=[f"review {n}" for n in range(120)],
    ),
    Case(
        "CRLF endings and no final newline",
        files={"a.csv": "label,text\r\ngood,one\r\nbad,two"},
        items=["one", "two"],
    ),
]


def _hygiene(result: IngestResult, **expected: int) -> None:
    counts = result.hygiene.model_dump()
    assert {key: counts[key] for key in expected} == expected
    assert sum(counts.values()) == sum(expected.values())


def _encodings(result: IngestResult, expected: dict[str, str]) -> None:
    found = {entry["name"]: entry["encoding"] for entry in result.files}
    assert found == expected
    assert all(0.8 <= entry["encoding_confidence"] <= 1.0 for entry in result.files)


def _compression(result: IngestResult, name: str, kind: str) -> None:
    assert [(e["name"], e["compression"]) for e in result.files] == [(name, kind)]


def _refusal(result: IngestResult, name: str, words: str) -> None:
    (entry,) = [e for e in result.files if e["name"] == name]
    assert entry["status"] == "refused" and words in entry["refused"]
    row = result.quarantine[result.quarantine[frames.SOURCE_FILE] == name]
    assert row[frames.SOURCE_LINE].tolist() == [0]


def _truncated(result: IngestResult, written: int) -> None:
    kept = len(result.items)
    assert 0 < kept < written
    assert result.items[frames.TEXT].tolist() == [f"row {n}" for n in range(kept)]
    (line,) = result.quarantine[frames.SOURCE_LINE].tolist()
    assert line == kept + 2  # the header is line 1


def _contract(case: Case) -> Contract:
    sections = dict(case.contract)
    source = dict(sections.get("source", {}))
    if source.pop("max decompressed", None) is not None:
        source["max_decompressed_bytes"] = 1 << 20
    if source:
        sections["source"] = source
    return contract_with(**sections)


def test_the_corpus_has_at_least_forty_cases():
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_partition(case: Case, partition: tuple[Path, Path]) -> None:
    folder, outside = partition
    _write(folder, case.files)
    if case.arrange:
        case.arrange(folder, outside)
    contract = _contract(case)
    if case.error:
        kind, message = case.error
        with pytest.raises(kind, match=message):
            ingested(contract, folder)
        return
    result = ingested(contract, folder)
    assert reason_counts(result) == case.reasons
    if case.items is not None:
        assert result.items[frames.TEXT].tolist() == case.items
    for name, status in case.statuses.items():
        assert statuses(result)[name] == status, (name, result.files)
    if case.check:
        case.check(result)


def test_a_day_folder_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.csv").write_text(HEADER + ROWS)
    (tmp_path / DAY).symlink_to(elsewhere)
    with pytest.raises(IngestError, match="is a symlink to"):
        read_partition(contract_with(), tmp_path / DAY)


def test_every_refused_entry_names_its_file_line_and_reason(partition) -> None:
    folder, outside = partition
    _write(folder, {"a.csv": HEADER + ROWS, "z.csv": gz(HEADER + ROWS)})
    (folder / "evil.csv").symlink_to(outside / "secret.csv")
    result = ingested(contract_with(), folder)
    table = result.quarantine.set_index(frames.SOURCE_FILE)
    assert table.loc["evil.csv", frames.SOURCE_LINE] == 0
    assert table.loc["evil.csv", frames.REASONS].startswith("outside_landing: a symlink to ")
    assert str(outside / "secret.csv") in table.loc["evil.csv", frames.REASONS]
    assert table.loc["z.csv", frames.REASONS].startswith("compressed_file: gzip data")
    assert {e["name"]: e["sha256"] is None for e in result.files} == {
        "a.csv": False,
        "evil.csv": True,
        "z.csv": False,
    }


def test_files_are_read_in_name_order_whatever_order_they_were_written(partition) -> None:
    folder, _ = partition
    _write(folder, {f"{n}.csv": HEADER + f"good,text {n}\n" for n in (3, 1, 2)})
    result = ingested(contract_with(), folder)
    assert result.items[frames.SOURCE_FILE].tolist() == ["1.csv", "2.csv", "3.csv"]


def test_the_readme_lists_every_case() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert [case.name for case in CASES if f"| {case.name} |" not in readme] == []


def test_a_file_swapped_for_a_link_or_a_fifo_after_the_listing_is_refused(partition) -> None:
    folder, outside = partition
    _write(folder, {"a.csv": HEADER + ROWS, "b.csv": HEADER + ROWS})
    scanned = scan_partition(contract_with(), folder)
    (folder / "a.csv").unlink()
    (folder / "a.csv").symlink_to(outside / "secret.csv")
    (folder / "b.csv").unlink()
    os.mkfifo(folder / "b.csv")
    refused = {}
    for file in scanned.files:
        with pytest.raises(Unreadable) as caught, opened(contract_with(), file):
            pass
        refused[file.name] = caught.value.reason
    assert {name: reason.check for name, reason in refused.items()} == {
        "a.csv": "outside_landing",
        "b.csv": "outside_landing",
    }
    assert "FIFO" in refused["b.csv"].message
