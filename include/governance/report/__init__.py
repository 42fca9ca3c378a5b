"""The governance report of one dataset version as a single self-contained HTML file.

A reviewer opens it offline from the version folder (or an e-mail), so everything is inline: the
style sheet, and every figure as a base64 PNG. Every text that came from the data is escaped, since
feeds are untrusted. Missing figures (a first version has no drift, a single-label dataset has no
annotators) render as "n/a" or as the audit's own reason for skipping, never as an error. The same
input gives byte-identical output, so a rerun of a day rewrites the same report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from html import escape
from typing import Any

import pandas as pd

from governance.errors import InvalidInputError
from governance.manifest import (
    InputFile,
    OutputFile,
    PrivacyFigures,
    TextHygiene,
    VersionManifest,
)
from governance.report import audit_sections as report_audit
from governance.report import data_sections as report_data
from governance.report.html import (
    NA,
    Html,
    escaped,
    fmt,
    heading,
    page,
    para,
    records,
    table,
)
from governance.report.input import ReportInput

SECTIONS = (
    "summary",
    "gate",
    "counts",
    "quarantine",
    "duplicates",
    "splits",
    "agreement",
    "annotators",
    "review-queue",
    "drift",
    "history",
    "inputs",
)
TITLES = {
    "summary": "Summary",
    "gate": "Gate decision",
    "counts": "Row accounting",
    "quarantine": "Quarantine",
    "duplicates": "Duplicates",
    "splits": "Splits",
    "agreement": "Annotator agreement",
    "annotators": "Annotator quality",
    "review-queue": "Suspected label errors",
    "drift": "Drift against the previous version",
    "history": "History read",
    "inputs": "Inputs and outputs",
}


def _check_arguments(manifest: object, tables: object, *counts: int) -> None:
    if not isinstance(manifest, VersionManifest):
        raise InvalidInputError(
            f"manifest must be a VersionManifest, got {type(manifest).__name__}"
        )
    if not isinstance(tables, Mapping):
        raise InvalidInputError(
            f"tables must map table names to DataFrames, got {type(tables).__name__}"
        )
    for name, frame in tables.items():
        if not isinstance(frame, pd.DataFrame):
            raise InvalidInputError(
                f"table {name!r} must be a DataFrame, got {type(frame).__name__}"
            )
    names = ("examples_per_section", "queue_rows", "detail_annotators")
    for name, value in zip(names, counts, strict=True):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidInputError(f"{name} must be a non-negative integer, got {value!r}")


def _label_mapping(mapping: Mapping[str, Any]) -> list[Html]:
    """The ingest's report ({changed, unknown}) or a flat raw -> canonical mapping."""
    if mapping and set(mapping) <= {"changed", "unknown"}:
        return [
            heading("Label spellings mapped to a class"),
            records(mapping.get("changed") or {}, "raw spelling"),
            heading("Unknown label spellings"),
            records(mapping.get("unknown") or {}, "raw spelling", "records"),
        ]
    return [heading("Label mapping"), records(mapping, "raw spelling", "class")]


def _input_row(file: InputFile) -> dict[str, Any]:
    """An entry of the partition (read, refused or skipped), its columns in the order
    published reports show them."""
    encoding = file.encoding
    if encoding and file.encoding_confidence is not None:
        encoding = f"{encoding} ({file.encoding_confidence:.2f}, {file.encoding_method})"
    return {
        "name": file.name,
        "status": file.status,
        "records": file.records,
        "bytes": file.bytes,
        "encoding": encoding,
        "compression": file.compression,
        "why": file.refused or file.skipped,
        "sha256": file.sha256,
    }


def _hygiene(hygiene: TextHygiene | None) -> list[Html]:
    """Values the text hygiene cleaned; the ones it quarantined are under Quarantine."""
    if hygiene is None:
        return []
    return [
        heading("Text hygiene (values cleaned)"),
        records(hygiene.model_dump(), "cleaning", "values"),
    ]


def _privacy(privacy: PrivacyFigures | None) -> list[Html]:
    """What the privacy scan found, by entity and action: counts only, never a value."""
    if privacy is None:
        return []
    rows = [
        {
            "action": action,
            "found in items": privacy.entities.get(entity, 0),
            "found in quarantine previews": privacy.quarantine_previews.get(entity, 0),
        }
        for entity, action in privacy.policy.items()
    ]
    summary = (
        f"{privacy.items_with_pii} of {privacy.items} items ({privacy.pii_rate:.1%}) hold "
        f"personal data or secrets; {privacy.quarantined_items} quarantined."
    )
    return [
        heading("Personal data and secrets"),
        para(summary),
        records(dict(zip(privacy.policy, rows, strict=True)), "entity"),
    ]


def _output_row(file: OutputFile) -> dict[str, Any]:
    """A file written, its columns in the order published reports show them."""
    return {"bytes": file.bytes, "rows": file.rows, "sha256": file.sha256}


def _outputs(outputs: Mapping[str, OutputFile] | None) -> Html:
    """The files written with the version; none before it is published."""
    if outputs is None:
        return para("Not written (nothing published yet).", "note")
    rows = {name: _output_row(file) for name, file in outputs.items()}
    return records(rows, "file")


def _inputs(data: ReportInput) -> Html:
    m = data.manifest
    items = "".join(f"<li>{escaped(w)}</li>" for w in m.warnings)
    parts = [
        heading("Input files"),
        records([_input_row(file) for file in m.inputs]),
        *_hygiene(m.hygiene),
        *_privacy(m.privacy),
        *_label_mapping(m.label_mapping),
        heading("Warnings"),
        Html(f"<ul>{items}</ul>") if m.warnings else para("none", "note"),
        heading("Output files"),
        _outputs(m.outputs),
    ]
    return Html("".join(parts))


def _history(data: ReportInput) -> Html:
    """Which settled days this version was computed against: a later republication of any of
    them makes this version stale until it is recomputed."""
    history = data.manifest.history
    rows = [
        [day.version, day.status, day.digest[:16], (day.manifest_sha256 or "")[:16] or NA]
        for day in history.versions
    ]
    intro = para(
        f"Days settle in order from {fmt(history.origin)}; this version read the "
        f"{len(rows)} settled day(s) before it (history digest {history.digest[:16]}).",
        "note",
    )
    listing = (
        table(["version", "settled as", "data digest", "manifest sha256"], rows)
        if rows
        else para("none: the dataset's first day", "note")
    )
    return Html(intro + listing)


_BUILDERS: dict[str, Callable[[ReportInput], Html]] = {
    "summary": report_data.summary,
    "gate": report_data.gate,
    "counts": report_data.counts,
    "quarantine": report_data.quarantine,
    "duplicates": report_data.duplicates,
    "splits": report_data.splits,
    "agreement": report_audit.agreement,
    "annotators": report_audit.annotators,
    "review-queue": report_audit.review_queue,
    "drift": report_audit.drift,
    "history": _history,
    "inputs": _inputs,
}


def render_report(
    manifest: VersionManifest,
    tables: Mapping[str, pd.DataFrame],
    *,
    examples_per_section: int = 10,
    queue_rows: int = 25,
    detail_annotators: int = 12,
) -> str:
    """The whole report as one HTML document; same input, same bytes. ``detail_annotators``
    bounds the annotators drawn one by one (the contract's ``audit.detail_annotators``)."""
    _check_arguments(manifest, tables, examples_per_section, queue_rows, detail_annotators)
    data = ReportInput(manifest, tables, examples_per_section, queue_rows, detail_annotators)
    title = escape(f"Governance report: {fmt(manifest.dataset)} {fmt(manifest.version)}")
    nav = "".join(f'<a href="#{sid}">{escape(TITLES[sid])}</a>' for sid in SECTIONS)
    body = "\n".join(
        f'<section id="{sid}"><h2>{escape(TITLES[sid])}</h2>{_BUILDERS[sid](data)}</section>'
        for sid in SECTIONS
    )
    return page(title, body, nav)
