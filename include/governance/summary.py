"""One readable paragraph per published day, from its manifest alone."""

from __future__ import annotations

from pathlib import Path

from governance.frames import SPLITS
from governance.manifest import AuditFigures, GateDecision, VersionManifest


def _counts(mapping: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in mapping.items()) or "none"


def _number(value: float | None, pattern: str = "{:.3f}") -> str:
    return "n/a" if value is None else pattern.format(value)


def audit_lines(audit: AuditFigures) -> list[str]:
    """Agreement, consensus, annotators, suspected label errors and drift, one line each."""
    agreement, annotators, errors, drift = (
        audit.agreement,
        audit.annotators,
        audit.label_errors,
        audit.drift,
    )
    consensus = audit.consensus
    lines = []
    if agreement:
        lines.append(
            f"  agreement      Krippendorff alpha {_number(agreement.krippendorff_alpha)}, "
            f"Fleiss kappa {_number(agreement.fleiss_kappa)}"
        )
    else:
        lines.append("  agreement      n/a (single-label dataset)")
    if consensus:
        lines.append(
            f"  consensus      {consensus.aggregator} ({consensus.requested}), "
            f"{consensus.changed_from_plurality} of {consensus.items} items differ from "
            f"plurality, mean confidence {_number(consensus.mean_confidence)}"
        )
    if annotators:
        flagged = ", ".join(annotators.flagged) or "none"
        lines.append(
            f"  annotators     {annotators.count}, flagged unreliable: {flagged}; "
            f"{annotators.not_enough_data} with too few items to judge"
        )
    if errors:
        lines.append(
            f"  label errors   {errors.suspected} suspected of {errors.items} "
            f"({_number(errors.rate, '{:.1%}')}), out-of-fold accuracy "
            f"{_number(errors.out_of_fold_accuracy)}"
        )
    balance = drift.class_balance
    if drift.previous_version:
        lines.append(
            f"  drift          vs {drift.previous_version}: max class share change "
            f"{_number(balance.max_share_change, '{:.1%}')} (chi2 p "
            f"{_number(balance.p_value)}), length KS p "
            f"{_number(drift.text_length.p_value)}, new vocabulary "
            f"{_number(drift.new_vocabulary_share, '{:.1%}')}"
        )
    else:
        lines.append("  drift          n/a (first version)")
    return lines


def _listed(names: list[str], most: int = 5) -> str:
    return ", ".join(names[:most]) + (", ..." if len(names) > most else "")


def input_lines(manifest: VersionManifest) -> list[str]:
    """What the landing folder held beyond files read (refused, skipped), what the text
    hygiene cleaned and the personal data found; nothing when all was plain."""
    names = {
        status: [entry.name for entry in manifest.inputs if entry.status == status]
        for status in ("read", "refused", "skipped")
    }
    lines = []
    unread = [status for status in ("refused", "skipped") if names[status]]
    if unread:
        parts = [f"{len(names['read'])} read"]
        parts += [f"{len(names[s])} {s} ({_listed(names[s])})" for s in unread]
        lines.append("  inputs         " + ", ".join(parts))
    hygiene = manifest.hygiene.model_dump() if manifest.hygiene else {}
    cleaned = {kind: values for kind, values in hygiene.items() if values}
    if cleaned:
        lines.append(f"  text hygiene   {_counts(cleaned)}")
    privacy = manifest.privacy
    if privacy is not None and privacy.entities:
        lines.append(
            f"  personal data  {privacy.items_with_pii} items ({privacy.pii_rate:.1%}): "
            f"{_counts(privacy.entities)}; {privacy.quarantined_items} quarantined"
        )
    return lines


def gate_line(gate: GateDecision) -> str:
    return f"FAILED: {gate.message}" if gate.status == "failed" else gate.status


def format_day_summary(manifest: VersionManifest, version_dir: Path | None = None) -> str:
    counts, cons = manifest.counts, manifest.conservation
    quarantined, splits = counts.quarantined, counts.splits
    lines = [
        f"{manifest.dataset} {manifest.version}"
        + (" (dry run, nothing published)" if manifest.dry_run else ""),
        f"  rows in        {counts.rows_in}",
        *input_lines(manifest),
        f"  quarantined    {quarantined.total} by stage: {_counts(quarantined.by_stage)}",
        f"                 by reason: {_counts(quarantined.by_reason)}",
        f"  duplicates     exact {counts.duplicates.exact}, near "
        f"{counts.duplicates.near}, conflicting clusters {counts.conflicts}",
        "  splits         "
        + ", ".join(f"{s} {splits[s].items} items ({splits[s].rows} rows)" for s in SPLITS),
        f"  conservation   {cons.rows_in} = quarantined {cons.quarantined} + duplicates "
        f"{cons.duplicates} + train {cons.train} + val {cons.val} + test {cons.test}"
        f" -> {'holds' if cons.holds else 'VIOLATED'}",
        *audit_lines(manifest.audit),
        f"  gate           {gate_line(manifest.gate)}",
    ]
    if version_dir is not None:
        lines.append(f"  outputs        {version_dir}")
    return "\n".join(lines)
