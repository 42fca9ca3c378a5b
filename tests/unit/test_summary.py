"""The day summary's audit lines, from a typed manifest."""

from __future__ import annotations

from governance.manifest import InputFile, TextHygiene
from governance.summary import audit_lines, format_day_summary
from tests.manifests import sample_manifest


def test_the_audit_lines_name_the_aggregator_and_what_it_changed() -> None:
    audit = sample_manifest().audit
    lines = audit_lines(audit)
    consensus = next(line for line in lines if line.strip().startswith("consensus"))
    assert "one_coin (auto)" in consensus
    assert "5 of 356 items differ from plurality" in consensus
    annotators = next(line for line in lines if line.strip().startswith("annotators"))
    assert "flagged unreliable: ann_04" in annotators
    assert "1 with too few items to judge" in annotators


def test_a_single_label_dataset_has_no_consensus_line() -> None:
    manifest = sample_manifest()
    audit = manifest.audit.model_copy(
        update={"consensus": None, "agreement": None, "annotators": None}
    )
    lines = audit_lines(audit)
    assert not any(line.strip().startswith("consensus") for line in lines)
    assert any("n/a (single-label dataset)" in line for line in lines)


def test_refused_and_skipped_inputs_and_cleaned_values_have_their_lines() -> None:
    manifest = sample_manifest()
    plain = format_day_summary(manifest)
    assert "  inputs " not in plain and "  text hygiene " not in plain
    inputs = [
        *manifest.inputs,
        InputFile(name="evil.csv", records=1, status="refused", refused="outside_landing: x"),
        InputFile(name="nested", records=0, status="skipped", skipped="sub-folder"),
    ]
    hygiene = TextHygiene(control_stripped=3, bidi_stripped=0, invisible_stripped=0, normalized=2)
    text = format_day_summary(manifest.model_copy(update={"inputs": inputs, "hygiene": hygiene}))
    read = len(manifest.inputs)
    assert f"  inputs         {read} read, 1 refused (evil.csv), 1 skipped (nested)" in text
    assert "  text hygiene   control_stripped 3, normalized 2" in text
