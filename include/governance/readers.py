"""Read one landing file into records with provenance, setting aside what cannot be parsed.

A record is one data line (csv/tsv, or several physical lines when a quoted field spans them), one
non-blank json line, or one parquet row. Every record either becomes a row of values or a parse
rejection with a reason, so the caller can prove that nothing was lost. Lines are read in binary
with a length limit and decoded one at a time: one undecodable or enormous line costs one record,
never the file, and never a huge string in memory. A file that must not be read at all (outside
the landing folder, compressed under a plain name, in an encoding not placed) is one record,
line 0, refused with its reason; a compressed stream that breaks off refuses its rest the same way.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from governance import encodings, frames, landing
from governance.contracts import Contract
from governance.encodings import Encoding
from governance.errors import IngestError
from governance.reasons import Reason, ReasonKind

_CHUNK = 1 << 20


@dataclass
class ParsedFile:
    """What one file held: parsed records and parse rejections, both with their line numbers."""

    name: str
    sha256: str | None = None  # None: never opened
    size: int | None = None
    compression: str | None = None
    encoding: Encoding | None = None
    refused: Reason | None = None  # why the file, or its rest, was not read
    lines: list[int] = field(default_factory=list)
    rows: list[Sequence[str | None]] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # index of each source column in a row
    rejected: list[dict] = field(default_factory=list)  # quarantine rows, stage "parse"
    warnings: list[str] = field(default_factory=list)

    @property
    def records(self) -> int:
        return len(self.lines) + len(self.rejected)

    def reject(self, line: int, reason: Reason, raw: str) -> None:
        self.rejected.append(
            {
                frames.SOURCE_FILE: self.name,
                frames.SOURCE_LINE: line,
                frames.N_SOURCE_ROWS: 1,
                frames.STAGE: "parse",
                frames.REASONS: reason.text,
                frames.ITEM_ID: None,
                frames.RAW: preview(raw),
                frames.CAUSES: [reason.record()],
            }
        )

    def refuse(self, reason: Reason) -> None:
        """The file is not read (line 0), or not past the records read so far."""
        seen = [*self.lines[-1:], *(row[frames.SOURCE_LINE] for row in self.rejected[-1:])]
        line = max(seen) + 1 if seen else 0
        self.refused = reason
        self.reject(line, reason, "" if line == 0 else "(the rest of the file)")
        where = "whole file" if line == 0 else f"from line {line}"
        self.warnings.append(f"{self.name}: not read ({where}): {reason.text}")

    def described(self) -> dict[str, Any]:
        """The file as the manifest's ``inputs`` list records it."""
        encoding = self.encoding
        return {
            "name": self.name,
            "sha256": self.sha256,
            "bytes": self.size,
            "records": self.records,
            "status": "refused" if self.refused and not self.lines else "read",
            "refused": self.refused.text if self.refused else None,
            "compression": self.compression,
            "encoding": encoding.name if encoding else None,
            "encoding_confidence": encoding.confidence if encoding else None,
            "encoding_method": encoding.method if encoding else None,
        }


def preview(raw: str | bytes, encoding: str = "utf-8") -> str:
    """A short printable excerpt of a rejected record, safe to store whatever it held."""
    if isinstance(raw, bytes):
        raw = raw[: frames.RAW_PREVIEW_CHARS * 4].decode(encoding, errors="backslashreplace")
    return raw[: frames.RAW_PREVIEW_CHARS].rstrip("\r\n")


def refused_entry(entry: landing.RefusedFile) -> ParsedFile:
    """An entry of the partition refused without being opened."""
    parsed = ParsedFile(name=entry.name)
    parsed.refuse(entry.reason)
    return parsed


def read_file(contract: Contract, file: landing.LandingFile) -> ParsedFile:
    """Parse one landing file with the contract's source options."""
    parsed = ParsedFile(name=file.name, compression=file.compression)
    try:
        with landing.opened(contract, file) as source:
            parsed.sha256, parsed.size = source.sha256, source.size
            if contract.source.format != "parquet":
                whole = source.head_is_whole
                parsed.encoding = encodings.detect(source.head, contract.source, whole)
            _READERS[contract.source.format](contract, source.stream, parsed)
    except landing.Unreadable as exc:
        parsed.sha256 = parsed.sha256 or exc.sha256
        parsed.size = parsed.size if parsed.size is not None else exc.size
        parsed.refuse(exc.reason)
    if parsed.size == 0:
        parsed.warnings.append(f"empty file {parsed.name}")
    elif parsed.records == 0:
        parsed.warnings.append(f"no records in {parsed.name}")
    return parsed


class _LineReader:
    """Physical lines of a binary file, decoded one by one; rejects bad lines into `parsed`.

    `first_line` / `first_text` remember where the current record started: the csv loop sets
    `first_line` to 0 before each record and the next line read fills both in.
    """

    def __init__(self, handle: BinaryIO, contract: Contract, parsed: ParsedFile) -> None:
        self._handle = handle
        self._encoding = parsed.encoding.name if parsed.encoding else encodings.UTF8
        self._max = contract.source.max_line_bytes
        self._parsed = parsed
        self._strip_bom = codecs.lookup(self._encoding).name == "utf-8"
        self.line_no = 0
        self.first_line = 0
        self.first_text = ""

    @property
    def encoding(self) -> str:
        return self._encoding

    def read_line(self, reject: bool = True) -> bytes | None:
        """The next line's bytes, or None for a line over the limit (rejected when asked)."""
        chunk = self._handle.readline(self._max + 2)
        if not chunk:
            raise EOFError
        self.line_no += 1
        return self._checked(chunk, reject)

    def _checked(self, chunk: bytes, reject: bool = True) -> bytes | None:
        """The line without a leading BOM, or None when it is over the limit (read to its end)."""
        if self.line_no == 1 and self._strip_bom and chunk.startswith(codecs.BOM_UTF8):
            chunk = chunk[len(codecs.BOM_UTF8) :]
        if len(chunk) <= self._max:
            return chunk
        head, length, last = chunk, len(chunk), chunk
        while not last.endswith(b"\n"):
            more = self._handle.readline(_CHUNK)
            if not more:
                break
            length += len(more)
            last = last[-1:] + more
        length -= 2 if last.endswith(b"\r\n") else 1 if last.endswith(b"\n") else 0
        if length <= self._max:
            return head
        if reject:
            self._parsed.reject(
                self.line_no,
                _unreadable("line_too_long", f"{length} bytes > {self._max}"),
                preview(head, self._encoding),
            )
        return None

    def lines(self) -> Iterator[str]:
        """Decoded lines with their terminators; undecodable and over-long lines are rejected.

        The hot loop of ingest: one readline, one decode and a few local operations per line.
        """
        readline, encoding = self._handle.readline, self._encoding
        limit, fast_max = self._max + 2, self._max if self.line_no else -1
        line_no = self.line_no
        while chunk := readline(limit):
            line_no += 1
            if len(chunk) > fast_max:
                self.line_no, fast_max = line_no, self._max
                checked = self._checked(chunk)
                if checked is None:
                    continue
                chunk = checked
            try:
                text = chunk.decode(encoding)
            except UnicodeDecodeError as exc:
                self.line_no = line_no
                reason = _unreadable(
                    "decode_error", f"{exc.encoding} cannot decode byte {exc.start}: {exc.reason}"
                )
                self._parsed.reject(line_no, reason, preview(chunk, encoding))
                continue
            self.line_no = line_no
            if not self.first_line:
                self.first_line, self.first_text = line_no, text
            yield text


@contextlib.contextmanager
def _field_size_limit(limit: int) -> Iterator[None]:
    """Let the contract's max_line_bytes, not the csv module's default, bound a field."""
    previous = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _unreadable(check: str, message: str) -> Reason:
    return Reason(ReasonKind.PARSE, check, message=message)


def _header_names(lines: _LineReader, contract: Contract) -> tuple[list[str], Reason | None]:
    """Column names from the first line, or the reason it cannot be used; EOFError when empty."""
    chunk = lines.read_line(reject=False)
    if chunk is None:
        limit = contract.source.max_line_bytes
        return [], _unreadable("unreadable_header", f"longer than {limit} bytes")
    try:
        text = chunk.decode(lines.encoding)
        names = next(csv.reader([text], **_dialect(contract)), [])
    except (UnicodeDecodeError, csv.Error) as exc:
        return [], _unreadable("unreadable_header", str(exc))
    return [name.strip() for name in names], None


def _dialect(contract: Contract) -> dict:
    quoting = csv.QUOTE_NONE if contract.source.quoting == "none" else csv.QUOTE_MINIMAL
    return {"delimiter": contract.source.delimiter, "quoting": quoting, "strict": True}


def _missing_columns_reason(contract: Contract, names: list[str]) -> Reason | None:
    missing = [name for name in contract.source_columns if name not in names]
    if not missing:
        return None
    return Reason(ReasonKind.SCHEMA, "missing_columns", message=", ".join(missing))


def _read_delimited(contract: Contract, handle: BinaryIO, parsed: ParsedFile) -> None:
    with _field_size_limit(contract.source.max_line_bytes):
        lines = _LineReader(handle, contract, parsed)
        if contract.source.header:
            try:
                names, refusal = _header_names(lines, contract)
            except EOFError:
                return
        else:
            names, refusal = list(contract.source.columns or []), None
        refusal = refusal or _missing_columns_reason(contract, names)
        if refusal:
            parsed.warnings.append(f"{parsed.name}: every record quarantined ({refusal.text})")
        else:
            parsed.positions = [names.index(name) for name in contract.source_columns]
        _parse_records(lines, contract, parsed, len(names), refusal)


def _parse_records(
    lines: _LineReader,
    contract: Contract,
    parsed: ParsedFile,
    expected: int,
    refusal: Reason | None,
) -> None:
    reader = csv.reader(lines.lines(), **_dialect(contract))
    record_lines, rows, reject = parsed.lines, parsed.rows, parsed.reject
    blank = 0
    while True:
        lines.first_line = 0
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            reason = _unreadable("csv_error", str(exc))
            reject(lines.first_line or lines.line_no, reason, lines.first_text)
            continue
        if not row:
            blank += 1
        elif refusal:
            reject(lines.first_line, refusal, lines.first_text)
        elif len(row) != expected:
            reject(
                lines.first_line,
                _unreadable("field_count", f"expected {expected}, got {len(row)}"),
                lines.first_text,
            )
        else:
            record_lines.append(lines.first_line)
            rows.append(row)
    if blank:
        parsed.warnings.append(f"{parsed.name}: {blank} blank lines skipped")


def _as_text(value: object) -> str | None:
    """Values are strings downstream; JSON scalars and structures keep their JSON spelling."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _encodable(row: list[str | None]) -> bool:
    """JSON escapes can spell lone surrogates, which no UTF-8 file or Arrow column can hold."""
    try:
        for value in row:
            if value:
                value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _read_jsonl(contract: Contract, handle: BinaryIO, parsed: ParsedFile) -> None:
    columns = contract.source_columns
    parsed.positions = list(range(len(columns)))
    lines = _LineReader(handle, contract, parsed)
    for text in lines.lines():
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except (ValueError, RecursionError) as exc:
            parsed.reject(lines.line_no, _unreadable("json_error", str(exc)), text)
            continue
        if not isinstance(record, dict):
            kind = type(record).__name__
            reason = _unreadable("json_error", f"not an object ({kind})")
            parsed.reject(lines.line_no, reason, text)
            continue
        row = [v if type(v) is str else _as_text(v) for v in map(record.get, columns)]
        if "\\u" in text and not _encodable(row):
            reason = _unreadable("json_error", "lone surrogate in a string")
            parsed.reject(lines.line_no, reason, text)
            continue
        parsed.lines.append(lines.line_no)
        parsed.rows.append(row)


def _read_parquet(contract: Contract, handle: BinaryIO, parsed: ParsedFile) -> None:
    """Read a parquet file; one that cannot be opened raises IngestError.

    A corrupt parquet file has no countable rows, so it cannot be quarantined row by row: the run
    fails naming the file instead.
    """
    try:
        table = pq.read_table(handle if handle.seekable() else pa.BufferReader(handle.read()))
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(f"{parsed.name}: cannot be read as parquet: {exc}") from exc
    refusal = _missing_columns_reason(contract, table.column_names)
    if refusal:
        parsed.warnings.append(f"{parsed.name}: every record quarantined ({refusal.text})")
        for number, record in enumerate(table.to_pylist(), start=1):
            parsed.reject(number, refusal, json.dumps(record, default=str, ensure_ascii=False))
        return
    values = []
    for name in contract.source_columns:
        column = table.column(name)
        try:
            values.append(pc.cast(column, pa.string()).to_pylist())
        except pa.ArrowException:
            values.append([_as_text(value) for value in column.to_pylist()])
    parsed.positions = list(range(len(values)))
    parsed.rows = list(zip(*values, strict=True))
    parsed.lines = list(range(1, table.num_rows + 1))


_READERS = {
    "csv": _read_delimited,
    "tsv": _read_delimited,
    "jsonl": _read_jsonl,
    "parquet": _read_parquet,
}
