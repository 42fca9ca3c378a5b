"""The day summary's audit lines, from a typed manifest."""

from __future__ import annotations

from governance.summary import audit_lines
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
