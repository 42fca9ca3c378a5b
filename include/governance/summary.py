"""One readable paragraph per published day, from its manifest alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from governance.frames import SPLITS


def _counts(mapping: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in mapping.items()) or "none"


def format_day_summary(manifest: dict[str, Any], version_dir: Path | None = None) -> str:
    counts = manifest["counts"]
    quarantined = counts["quarantined"]
    splits = counts["splits"]
    cons = manifest["conservation"]
    lines = [
        f"{manifest['dataset']} {manifest['version']}"
        + (" (dry run, nothing published)" if manifest.get("dry_run") else ""),
        f"  rows in        {counts['rows_in']}",
        f"  quarantined    {quarantined['total']} by stage: {_counts(quarantined['by_stage'])}",
        f"                 by reason: {_counts(quarantined['by_reason'])}",
        f"  duplicates     exact {counts['duplicates']['exact']}, near "
        f"{counts['duplicates']['near']}, conflicting clusters {counts['conflicts']}",
        "  splits         "
        + ", ".join(f"{s} {splits[s]['items']} items ({splits[s]['rows']} rows)" for s in SPLITS),
        f"  conservation   {cons['rows_in']} = quarantined {cons['quarantined']} + duplicates "
        f"{cons['duplicates']} + train {cons['train']} + val {cons['val']} + test {cons['test']}"
        f" -> {'holds' if cons['holds'] else 'VIOLATED'}",
        f"  gate           {manifest['gate'].get('status', 'unknown')}",
    ]
    if version_dir is not None:
        lines.append(f"  outputs        {version_dir}")
    return "\n".join(lines)
