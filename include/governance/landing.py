"""What a day's landing folder holds, and opening its files without ever leaving it.

Landing folders are written by other systems and people, so nothing in one is trusted: a file is
read only when its real path lies inside ``landing/<dataset>/<day>/`` and it is a regular file.
A symlink that leads elsewhere (``..`` tricks included), a dangling one, a FIFO, a socket or a
device is refused unopened (a FIFO would hang the task); a sub-folder is listed, not read. Files
are opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked again on the open descriptor, so a file
swapped for a link or a FIFO after the listing is refused too.

Compression is read from the file's first bytes, never trusted from its name: a ``.gz`` or
``.zst`` file is decompressed when the contract allows that compression, and compressed data
under a plain name is refused with a reason a person can act on instead of a decode error per
line. This module imports no pandas: the landing sensor uses it while the DAG is parsed.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import gzip
import hashlib
import io
import os
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from governance.contracts import Contract
from governance.errors import EmptyPartitionError, IngestError, PartitionMissingError
from governance.reasons import Reason, ReasonKind

Compression = Literal["gzip", "zstd"]
SUFFIXES: dict[str, Compression] = {".gz": "gzip", ".zst": "zstd"}
# The first bytes of formats a text feed must not be mistaken for (the longest prefix first).
MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"PK\x03\x04", "zip (a spreadsheet such as .xlsx, or an archive)"),
    (b"PAR1", "parquet"),
)
_MAGIC_BYTES = max(len(magic) for magic, _ in MAGIC)
HEAD_BYTES = 1 << 20  # of a file's data, what its encoding is detected from
_PIECE = 1 << 13  # decompressed at a time: what a break in the stream can take with it

# The reason checks of a refused file.
OUTSIDE_LANDING = "outside_landing"
COMPRESSED_FILE = "compressed_file"
COMPRESSION_NOT_ALLOWED = "compression_not_allowed"
NOT_COMPRESSED = "not_compressed"
UNREADABLE_FILE = "unreadable_file"
CORRUPT_COMPRESSED = "corrupt_compressed_data"
DECOMPRESSED_TOO_LARGE = "decompressed_too_large"


@dataclass(frozen=True)
class LandingFile:
    """A regular file of the partition, to be read (``compression`` as its name says)."""

    name: str
    path: Path  # its real path, inside the partition
    compression: Compression | None


@dataclass(frozen=True)
class RefusedFile:
    """An entry matching the contract's pattern that is never read, and why."""

    name: str
    reason: Reason


@dataclass(frozen=True)
class SkippedEntry:
    """An entry that is not data (sub-folder, hidden file, another pattern), listed for people."""

    name: str
    why: str

    def described(self) -> dict[str, str | int]:
        """The entry as the manifest's ``inputs`` list records it."""
        return {"name": self.name, "records": 0, "status": "skipped", "skipped": self.why}


@dataclass(frozen=True)
class Partition:
    folder: Path
    files: list[LandingFile]
    refused: list[RefusedFile]
    skipped: list[SkippedEntry]

    @property
    def entries(self) -> int:
        return len(self.files) + len(self.refused)


def refusal(check: str, message: str) -> Reason:
    return Reason(ReasonKind.LANDING, check, message=message)


def compression_of(name: str) -> Compression | None:
    return SUFFIXES.get(Path(name).suffix.lower())


def data_name(name: str) -> str:
    """The name the contract's pattern is matched against: without a compression suffix."""
    return name[: -len(Path(name).suffix)] if compression_of(name) else name


def matches(contract: Contract, name: str) -> bool:
    """Whether an entry's name is one of the contract's data files (a ``.gz``/``.zst`` copy of
    a matching name matches too: its refusal, when compression is not allowed, is reported)."""
    pattern = contract.source.pattern
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(data_name(name), pattern)


SUB_FOLDER = "sub-folder"


def _confined(folder: Path, entry: os.DirEntry[str]) -> tuple[Path | None, str]:
    """The entry's real path when it is a regular file inside ``folder``, else why it is not."""
    real = Path(os.path.realpath(entry.path))
    if real.parent != folder and folder not in real.parents:
        target = os.readlink(entry.path) if entry.is_symlink() else str(real)
        resolved = "" if target == str(real) else f" (resolving to {real})"
        return None, f"a symlink to {target}{resolved}, which leaves the landing folder {folder}"
    try:
        mode = os.stat(real, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return None, f"a symlink to {os.readlink(entry.path)}, which does not exist"
    if stat.S_ISDIR(mode):
        return None, SUB_FOLDER
    if not stat.S_ISREG(mode):
        return None, f"a {_file_kind(mode)}, not a regular file; it is never opened"
    return real, ""


def _file_kind(mode: int) -> str:
    kinds = {
        stat.S_ISFIFO: "FIFO (named pipe)",
        stat.S_ISSOCK: "socket",
        stat.S_ISCHR: "character device",
        stat.S_ISBLK: "block device",
    }
    return next((kind for test, kind in kinds.items() if test(mode)), "special file")


def real_partition(partition_dir: Path) -> Path:
    """The partition's real folder. Its parent (the dataset's landing folder) may live anywhere,
    a mounted volume say, but the day folder itself must be a folder, not a link elsewhere."""
    partition_dir = Path(partition_dir)
    if partition_dir.is_symlink():
        raise IngestError(
            f"partition folder {partition_dir} is a symlink to {os.readlink(partition_dir)}; "
            "a day's files must lie in the landing folder itself"
        )
    if not partition_dir.is_dir():
        raise PartitionMissingError(f"partition folder {partition_dir} does not exist")
    return Path(os.path.realpath(partition_dir.parent)) / partition_dir.name


def scan_partition(contract: Contract, partition_dir: Path) -> Partition:
    """Every entry of the partition, sorted by name: data files, refused files, skipped ones."""
    folder = real_partition(partition_dir)
    marker = contract.landing.ready_marker
    files: list[LandingFile] = []
    refused: list[RefusedFile] = []
    skipped: list[SkippedEntry] = []
    with os.scandir(folder) as listing:
        entries = sorted(listing, key=lambda entry: entry.name)
    for entry in entries:
        if entry.name == marker:
            continue
        if entry.name.startswith(("_", ".")):
            skipped.append(SkippedEntry(entry.name, "hidden (a name starting with . or _)"))
            continue
        real, why = _confined(folder, entry)
        if why == SUB_FOLDER:
            skipped.append(SkippedEntry(entry.name, "sub-folder: only the partition's top level"))
        elif not matches(contract, entry.name):
            skipped.append(SkippedEntry(entry.name, f"does not match {contract.source.pattern!r}"))
        elif real is None:
            refused.append(RefusedFile(entry.name, refusal(OUTSIDE_LANDING, why)))
        else:
            files.append(LandingFile(entry.name, real, compression_of(entry.name)))
    if not files and not refused:
        listed = ", ".join(f"{s.name} ({s.why})" for s in skipped[:10]) or "nothing"
        raise EmptyPartitionError(
            f"partition folder {partition_dir} holds no file matching pattern "
            f"{contract.source.pattern!r}; it holds {listed}"
        )
    return Partition(folder, files, refused, skipped)


def has_data_file(contract: Contract, partition_dir: Path) -> bool:
    """Whether the partition holds an entry to read or refuse (what the landing sensor waits
    for); nothing is opened."""
    try:
        scan_partition(contract, partition_dir)
    except (PartitionMissingError, EmptyPartitionError):
        return False
    except IngestError:
        return True  # the run refuses it with the reason
    return True


def _open_regular(path: Path) -> io.BufferedReader:
    """Open without following a link or blocking on a FIFO; refuse anything not a regular file."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        check = OUTSIDE_LANDING if exc.errno == errno.ELOOP else UNREADABLE_FILE
        raise Unreadable(refusal(check, f"cannot be opened as a file: {exc}")) from exc
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        raise Unreadable(
            refusal(OUTSIDE_LANDING, f"a {_file_kind(mode)}, not a regular file (was replaced)")
        )
    os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "rb")


class Unreadable(IngestError):
    """A file, or the rest of one, that is not read: ingest quarantines it with the reason
    (escaping ingest, it fails the run: no retry reads it)."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason.text)
        self.reason = reason
        self.sha256: str | None = None  # of the file refused, once it was opened
        self.size: int | None = None


@dataclass(frozen=True)
class Opened:
    """A landing file's raw digest and size, its data stream (decompressed when it is) and the
    first bytes of that data (what the encoding is detected from)."""

    sha256: str
    size: int
    stream: BinaryIO
    head: bytes

    @property
    def head_is_whole(self) -> bool:
        return len(self.head) < HEAD_BYTES


def _sniffed(head: bytes) -> str | None:
    return next((kind for magic, kind in MAGIC if head.startswith(magic)), None)


def _compression_check(contract: Contract, file: LandingFile, head: bytes) -> None:
    found = _sniffed(head)
    allowed = contract.source.compression
    if file.compression is None:
        if found in SUFFIXES.values():
            raise Unreadable(
                refusal(
                    COMPRESSED_FILE,
                    f"{found} data in a file named {file.name}: name it {file.name}"
                    f"{'.gz' if found == 'gzip' else '.zst'} and allow {found} in "
                    "source.compression",
                )
            )
        if found and not (found == "parquet" and contract.source.format == "parquet"):
            raise Unreadable(
                refusal(COMPRESSED_FILE, f"{found} data, not {contract.source.format} text")
            )
        return
    if file.compression not in allowed:
        raise Unreadable(
            refusal(
                COMPRESSION_NOT_ALLOWED,
                f"{file.compression} file; the contract's source.compression allows "
                f"{', '.join(allowed) or 'none'}",
            )
        )
    if found != file.compression:
        raise Unreadable(
            refusal(NOT_COMPRESSED, f"named {file.name} but its bytes are not {file.compression}")
        )


class _Capped(io.RawIOBase):
    """A decompressed stream that stops a decompression bomb at the contract's size limit."""

    def __init__(self, stream: BinaryIO, limit: int, name: str) -> None:
        self._stream, self._limit, self._name, self._read = stream, limit, name, 0
        self._broken: Unreadable | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        """Fill ``buffer`` in small pieces, so that the data before a break in the compressed
        stream is returned; the break is raised on the next call."""
        if self._broken is not None:
            raise self._broken
        view, filled = memoryview(buffer), 0
        while filled < len(view):
            try:
                data = self._stream.read(min(_PIECE, len(view) - filled))
            except (EOFError, OSError, zlib.error) as exc:
                self._broken = Unreadable(refusal(CORRUPT_COMPRESSED, f"{self._name}: {exc}"))
                if filled:
                    break
                raise self._broken from exc
            if not data:
                break
            view[filled : filled + len(data)] = data
            filled += len(data)
            self._read += len(data)
            if self._read > self._limit:
                raise Unreadable(
                    refusal(
                        DECOMPRESSED_TOO_LARGE,
                        f"{self._name} decompresses to more than "
                        f"source.max_decompressed_bytes ({self._limit:,} bytes)",
                    )
                )
        return filled


def _decompressed(raw: BinaryIO, compression: Compression) -> Any:
    """A readable stream of the decompressed data (``read(n)`` is all ``_Capped`` needs)."""
    if compression == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    import pyarrow as pa

    return pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), "zstd")


@contextlib.contextmanager
def opened(contract: Contract, file: LandingFile) -> Iterator[Opened]:
    """The file's data stream; ``Unreadable`` (with the reason) when it must not be read, or,
    from the stream, when its compressed data breaks off or grows past the limit."""
    with _open_regular(file.path) as raw:
        digest = hashlib.file_digest(raw, "sha256").hexdigest()
        size = raw.tell()
        raw.seek(0)
        try:
            _compression_check(contract, file, raw.read(_MAGIC_BYTES))
        except Unreadable as refused:
            refused.sha256, refused.size = digest, size
            raise
        raw.seek(0)
        if file.compression is None:
            head = raw.read(HEAD_BYTES)
            raw.seek(0)
            yield Opened(digest, size, raw, head)
            return
        limit = contract.source.max_decompressed_bytes
        stream = _Capped(_decompressed(raw, file.compression), limit, file.name)
        buffered = io.BufferedReader(stream, buffer_size=HEAD_BYTES)
        yield Opened(digest, size, buffered, buffered.peek(HEAD_BYTES)[:HEAD_BYTES])
