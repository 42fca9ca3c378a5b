"""Atomic, idempotent publication of a curated dataset version.

A version is written into a hidden staging folder beside its final place, manifest last, flushed
to disk, then renamed into place: a reader sees the whole version or none of it. Data files are
written deterministically, so a rerun of the same day gives byte-identical files.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, SupportsInt

import pandas as pd

from governance.errors import NonRetryableError
from governance.hashing import sha256_file
from governance.manifest import MANIFEST
from governance.tables import write_parquet as write_typed_parquet

STAGING_PREFIX = ".staging-"
TRASH_PREFIX = ".trash-"


class ConservationError(NonRetryableError, AssertionError):
    """Rows were lost or double counted: publishing would hide it, so the run stops."""


def check_conservation(rows_in: int, buckets: Mapping[str, SupportsInt]) -> dict[str, Any]:
    """rows_in must equal the sum of the buckets (quarantined, duplicates, train, val, test)."""
    accounted = sum(int(v) for v in buckets.values())
    record = {"rows_in": int(rows_in), **{k: int(v) for k, v in buckets.items()}}
    record["accounted"] = accounted
    record["holds"] = accounted == rows_in
    if accounted != rows_in:
        parts = " + ".join(f"{k} {v}" for k, v in buckets.items())
        raise ConservationError(
            f"conservation violated: rows in {rows_in} != {parts} = {accounted} "
            f"({rows_in - accounted:+d} rows unaccounted)"
        )
    return record


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Deterministic parquet: no index, fixed compression, row order as given."""
    write_typed_parquet(frame, path, compression="zstd")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text_atomic(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of it."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: Path, payload: Mapping[str, Any]) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2); False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return result == 0


def replace_dir(staging: Path, target: Path) -> None:
    """Put ``staging`` at ``target``; readers never see a partial folder.

    A new version is one rename. A rerun swaps old and new atomically where the kernel allows,
    otherwise renames the old one aside first (then ``target`` is briefly absent, never partial).
    """
    if not target.exists():
        os.rename(staging, target)
        return
    if _exchange(staging, target):
        shutil.rmtree(staging, ignore_errors=True)
        return
    trash = target.parent / f"{TRASH_PREFIX}{target.name}-{uuid.uuid4().hex}"
    os.rename(target, trash)
    os.rename(staging, target)
    shutil.rmtree(trash, ignore_errors=True)


def clean_leftovers(target: Path) -> None:
    """Remove the staging and trash folders that a killed write of ``target`` left behind.

    Only ``target``'s own: another version of the same dataset may be publishing beside it.
    """
    parent = target.parent
    if not parent.exists():
        return
    own = tuple(f"{prefix}{target.name}-" for prefix in (STAGING_PREFIX, TRASH_PREFIX))
    for child in parent.iterdir():
        if child.is_dir() and child.name.startswith(own):
            shutil.rmtree(child, ignore_errors=True)


def publish_version(
    target: Path,
    tables: Mapping[str, pd.DataFrame],
    manifest: dict[str, Any],
    files: Mapping[str, bytes] | None = None,
) -> dict[str, Any]:
    """Write ``tables`` as ``<name>.parquet``, the other ``files`` as they are, then the manifest,
    into ``target`` atomically.

    The manifest gains an ``outputs`` entry with the sha256 and size (and row count, for tables)
    of every file. An existing version at ``target`` (a rerun) is replaced as a whole.
    """
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(target)
    staging = parent / f"{STAGING_PREFIX}{target.name}-{uuid.uuid4().hex}"
    staging.mkdir()
    outputs: dict[str, dict[str, Any]] = {}
    for name, frame in tables.items():
        path = staging / f"{name}.parquet"
        write_parquet(frame, path)
        outputs[path.name] = {
            "sha256": sha256_file(path),
            "bytes": path.stat().st_size,
            "rows": len(frame),
        }
    for name, content in (files or {}).items():
        path = staging / name
        path.write_bytes(content)
        outputs[name] = {"sha256": sha256_file(path), "bytes": len(content)}
    for path in staging.iterdir():
        with path.open("rb") as handle:
            os.fsync(handle.fileno())
    manifest = {**manifest, "outputs": outputs}
    write_json_atomic(staging / MANIFEST, manifest)
    _fsync_dir(staging)

    replace_dir(staging, target)
    _fsync_dir(parent)
    return manifest


def read_manifest(version_dir: Path) -> dict[str, Any]:
    return json.loads((version_dir / MANIFEST).read_text(encoding="utf-8"))
