from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from governance import publish
from governance.publish import (
    ConservationError,
    check_conservation,
    publish_version,
    read_manifest,
)


def tables(seed: int = 0) -> dict[str, pd.DataFrame]:
    return {
        "train": pd.DataFrame({"item_id": ["a", "b"], "text": ["x", "y"], "n": [seed, 2]}),
        "test": pd.DataFrame({"item_id": ["c"], "text": ["z"], "n": [3]}),
    }


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_manifest_lists_the_true_hash_of_every_output(tmp_path: Path) -> None:
    target = tmp_path / "curated" / "ds" / "2026-01-01"
    manifest = publish_version(target, tables(), {"version": "2026-01-01"})
    assert sorted(p.name for p in target.iterdir()) == [
        "manifest.json",
        "test.parquet",
        "train.parquet",
    ]
    on_disk = read_manifest(target)
    assert on_disk == json.loads(json.dumps(manifest, default=str))
    for name, entry in on_disk["outputs"].items():
        assert entry["sha256"] == digest(target / name)
        assert entry["rows"] == len(pd.read_parquet(target / name))


@pytest.mark.parametrize("atomic_exchange", [True, False])
def test_rerun_replaces_the_version_with_identical_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, atomic_exchange: bool
) -> None:
    if not atomic_exchange:
        monkeypatch.setattr(publish, "_exchange", lambda a, b: False)
    target = tmp_path / "v"
    publish_version(target, tables(), {"run": 1})
    first = {p.name: digest(p) for p in target.glob("*.parquet")}
    publish_version(target, tables(), {"run": 2})
    second = {p.name: digest(p) for p in target.glob("*.parquet")}
    assert first == second
    assert read_manifest(target)["run"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["v"]


def test_a_run_killed_half_way_leaves_no_partial_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "v"
    real_write = publish.write_parquet
    calls = {"n": 0}

    def dying_write(frame: pd.DataFrame, path: Path) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        real_write(frame, path)

    monkeypatch.setattr(publish, "write_parquet", dying_write)
    with pytest.raises(KeyboardInterrupt):
        publish_version(target, tables(), {"run": 1})
    assert not target.exists()

    monkeypatch.setattr(publish, "write_parquet", real_write)
    publish_version(target, tables(), {"run": 1})  # the retry
    with pytest.raises(KeyboardInterrupt):
        monkeypatch.setattr(publish, "write_parquet", dying_write)
        calls["n"] = 0
        publish_version(target, tables(seed=9), {"run": 2})
    assert read_manifest(target)["run"] == 1  # the old version is untouched
    assert pd.read_parquet(target / "train.parquet")["n"].tolist() == [0, 2]

    monkeypatch.setattr(publish, "write_parquet", real_write)
    publish_version(target, tables(seed=9), {"run": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["v"]  # leftovers cleaned


def test_conservation_holds_or_names_the_gap() -> None:
    record = check_conservation(10, {"quarantined": 2, "duplicates": 3, "train": 5})
    assert record["holds"] and record["accounted"] == 10
    with pytest.raises(ConservationError, match=r"rows in 10 != .* = 9 \(\+1 rows unaccounted\)"):
        check_conservation(10, {"quarantined": 2, "duplicates": 2, "train": 5})
