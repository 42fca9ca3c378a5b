"""The typed manifest: every manifest a night writes (published, refused, dry run) is valid for
the model and for its JSON schema, checked by an independent validator; a broken one is refused
on write and on read, naming the field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from governance import version
from governance.errors import GateFailedError
from governance.manifest import (
    MANIFEST,
    SCHEMA_FILE,
    ManifestError,
    read_version_manifest,
    schema_text,
)
from governance.pipeline import DayRun, run_day
from tests.contracts import shipped_contract
from tests.feeds import demo_feed
from tests.gate_feed import write_failing_day

DAYS = ["2026-06-01", "2026-06-02"]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two published days, a dry run of the second, and a refused third day."""
    root = tmp_path_factory.mktemp("manifests")
    demo_feed(root, DAYS[0], len(DAYS), items_per_day=150, seed=5)
    contract = shipped_contract("demo_reviews", DAYS[0])
    for day in DAYS:
        run_day(DayRun(contract=contract, day=day, root=root, run_id="night"))
    run_day(DayRun(contract=contract, day=DAYS[1], root=root, run_id="dry", dry_run=True))
    write_failing_day(root / "landing", "2026-06-03")
    with pytest.raises(GateFailedError):
        run_day(DayRun(contract=contract, day="2026-06-03", root=root, run_id="refused"))
    return root


def manifests(root: Path) -> list[Path]:
    found = [p for p in root.rglob(MANIFEST) if "snapshots" not in p.parts]
    assert {p.parts[-4] for p in found} == {"curated", "unpublished"}
    return found


def test_the_schema_file_is_the_models_schema() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text()


def test_every_manifest_a_night_writes_is_valid_for_the_model_and_the_schema(written) -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    found = manifests(written)
    assert len(found) == 4
    for path in found:
        typed = read_version_manifest(path.parent)
        jsonschema.validate(json.loads(path.read_text(encoding="utf-8")), schema)
        assert typed.conservation.holds
        assert typed.outputs is not None and "train.parquet" in typed.outputs
    states = {(p.parts[-4], p.parent.name): read_version_manifest(p.parent) for p in found}
    assert states["unpublished", "2026-06-03"].gate.status == "failed"
    assert states["unpublished", DAYS[1]].dry_run
    assert states["curated", DAYS[1]].history.versions[0].version == DAYS[0]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda m: m["counts"].pop("conflicts"), "counts.conflicts"),
        (lambda m: m["conservation"].update(holds="maybe"), "conservation.holds"),
        (lambda m: m.update(version="06/02/2026"), "version"),
        (lambda m: m["gate"].update(status="skipped"), "gate.status"),
        (lambda m: m.update(typo=1), "typo"),
    ],
)
def test_a_broken_manifest_is_refused_on_read_naming_the_field(
    written, tmp_path: Path, change, field: str
) -> None:
    source = written / "curated" / "demo_reviews" / DAYS[1]
    copy = tmp_path / DAYS[1]
    shutil.copytree(source, copy)
    manifest = json.loads((copy / MANIFEST).read_text(encoding="utf-8"))
    change(manifest)
    (copy / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(
        ManifestError, match=rf"{MANIFEST}: not a valid version manifest: .*{field}"
    ):
        read_version_manifest(copy)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(manifest, json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def test_a_night_whose_figures_break_the_model_writes_nothing(
    written, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stage that reports a figure readers cannot rely on (here an audit without its drift
    section) stops the night at the manifest, before any file of the version is written."""
    root = tmp_path / "night"
    shutil.copytree(written / "landing", root / "landing")
    contract = shipped_contract("demo_reviews", DAYS[0])
    real = version.load_summary

    def audit_without_drift(run: DayRun, name: str) -> dict:
        summary = real(run, name)
        return {k: v for k, v in summary.items() if k != "drift"} if name == "audit" else summary

    monkeypatch.setattr(version, "load_summary", audit_without_drift)
    run = DayRun(contract=contract, day=DAYS[0], root=root, run_id="broken")
    with pytest.raises(ManifestError, match=r"audit\.drift"):
        run_day(run)
    assert not run.version_dir.exists() and not run.unpublished_dir.exists()
