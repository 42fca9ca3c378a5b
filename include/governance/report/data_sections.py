"""The report's sections on the data: summary, gate decision, row accounting, quarantine,
duplicates and splits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from governance.frames import SPLITS
from governance.manifest import (
    Conservation,
    CreatedBy,
    GateCheck,
    QuarantineCounts,
    VersionManifest,
)
from governance.report import plots
from governance.report.html import (
    Html,
    badge,
    code,
    escaped,
    figures_table,
    fmt,
    frame_rows,
    frame_table,
    heading,
    image,
    missing,
    para,
    records,
    share,
    span,
    table,
    text_block,
    truncate,
)
from governance.report.input import REASON_BARS, ReportInput

VERDICTS = {True: "passed", False: "failed", None: "n.a."}


def _status(manifest: VersionManifest) -> str:
    if manifest.dry_run:
        return "dry run (nothing published)"
    return "published" if manifest.published else "rejected (not published)"


def _creator_rows(creator: CreatedBy) -> list[tuple[str, Any]]:
    """The run id, then whatever else the writer recorded about itself (its record is open to
    more fields); fields it did not give are not shown."""
    recorded = creator.model_dump(exclude_unset=True)
    return [("created by run", creator.run_id)] + [
        (f"created by {key}", value) for key, value in recorded.items() if key != "run_id"
    ]


def summary(data: ReportInput) -> Html:
    m = data.manifest
    rows: list[tuple[str, Any]] = [
        ("dataset", m.dataset),
        ("version", m.version),
        ("status", _status(m)),
        ("gate", badge(m.gate.status)),
        *_creator_rows(m.created_by),
        ("rows in", m.counts.rows_in),
        ("classes", ", ".join(data.classes()) or None),
        ("multi-annotator", m.audit.multi_annotator),
    ]
    return figures_table(rows)


def _check_row(check: GateCheck) -> tuple[Any, ...]:
    """A check as the reviewer reads it: the gate's own wording of the figures where it gave
    one, the raw figures otherwise."""
    return (
        check.name,
        check.description,
        check.shown.get("observed", check.observed),
        check.comparison,
        check.shown.get("threshold", check.threshold),
        VERDICTS[check.passed],
        check.detail,
    )


def _checks_table(checks: Sequence[GateCheck]) -> Html:
    if not checks:
        return para("No checks were recorded: the gate was not evaluated.", "note")
    return table(
        ("check", "description", "observed", "comparison", "threshold", "result", "detail"),
        [_check_row(c) for c in checks],
        table_id="gate-checks",
        row_classes=["failed" if c.passed is False else "" for c in checks],
    )


def gate(data: ReportInput) -> Html:
    decision = data.manifest.gate
    parts = [
        para(Html(f"{badge(decision.status)} {escaped(decision.message)}")),
        _checks_table(decision.checks),
    ]
    if decision.failed:
        parts.append(para(Html(f"Failed checks: {escaped(', '.join(decision.failed))}"), "bad"))
    thresholds = data.manifest.thresholds
    if thresholds:
        parts += [heading("Thresholds of the contract"), records(thresholds, "threshold")]
    return Html("".join(parts))


def _buckets(conservation: Conservation) -> dict[str, int]:
    """Where the source rows went, in the order of the conservation equation."""
    return {
        "quarantined": conservation.quarantined,
        "duplicates": conservation.duplicates,
        "train": conservation.train,
        "val": conservation.val,
        "test": conservation.test,
    }


def counts(data: ReportInput) -> Html:
    cons = data.manifest.conservation
    buckets = _buckets(cons)
    terms = " + ".join(f"{name} {fmt(value)}" for name, value in buckets.items())
    equation = f"rows in {fmt(cons.rows_in)} = {terms} = {fmt(cons.accounted)}"
    if cons.holds:
        verdict = span("holds", "ok")
    else:
        verdict = span(
            f"does not hold ({fmt(cons.rows_in - cons.accounted)} rows unaccounted)", "bad"
        )
    shares = [share(v, cons.rows_in) for v in buckets.values()]
    png = plots.bar_chart(
        list(buckets),
        list(buckets.values()),
        title="Where the source rows went",
        xlabel="source rows",
    )
    parts = [
        para(Html(f'<span id="conservation-equation">{escaped(equation)}</span> {verdict}')),
        table(
            ("bucket", "source rows", "share of rows in"),
            zip(buckets, buckets.values(), shares, strict=True),
        ),
        image(png, "where the source rows went"),
    ]
    return Html("".join(parts))


def _spread_by_reason(frame: pd.DataFrame) -> pd.DataFrame:
    """Examples that cover every distinct reason before showing a second row of any."""
    if frame.empty or "reasons" not in frame.columns:
        return frame
    turn = frame.groupby(frame["reasons"].astype(str), sort=False).cumcount()
    return frame.iloc[np.argsort(turn.to_numpy(), kind="stable")]


def _quarantine_counts(quarantined: QuarantineCounts, rows_in: int) -> list[Html]:
    """How many source rows were quarantined, by stage, kind and reason, the reasons charted."""
    parts = [
        figures_table(
            [
                ("quarantined source rows", quarantined.total),
                ("share of rows in", share(quarantined.total, rows_in)),
            ]
        )
    ]
    if quarantined.by_stage:
        parts += [heading("By stage"), records(quarantined.by_stage, "stage", "source rows")]
    if quarantined.by_kind:
        parts += [heading("By kind"), records(quarantined.by_kind, "kind", "source rows")]
    if not quarantined.by_reason:
        return parts
    ordered = sorted(quarantined.by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
    top = ordered[:REASON_BARS]
    title = "Quarantined rows by reason" + (
        f" (top {REASON_BARS})" if len(ordered) > REASON_BARS else ""
    )
    png = plots.bar_chart(
        [k for k, _ in top], [v for _, v in top], title=title, xlabel="source rows"
    )
    return [
        *parts,
        heading("By reason"),
        table(("reason", "source rows"), ordered, table_id="quarantine-reasons"),
        image(png, "quarantined rows by reason"),
    ]


def _quarantine_examples(data: ReportInput) -> list[Html]:
    frame = data.table("quarantine")
    if frame.empty:
        return [para("No row was quarantined.", "note")]
    shown = _spread_by_reason(frame).head(data.examples)
    return [
        heading(f"Examples ({len(shown)} of {len(frame):,})"),
        table(
            ("source file", "line", "stage", "reasons", "raw preview"),
            [
                (f, line, stage, reasons, text_block(raw))
                for f, line, stage, reasons, raw in frame_rows(
                    shown, ("source_file", "source_line", "stage", "reasons", "raw")
                )
            ],
            table_id="quarantine-examples",
        ),
    ]


def quarantine(data: ReportInput) -> Html:
    counted = data.manifest.counts
    parts = [*_quarantine_counts(counted.quarantined, counted.rows_in), *_quarantine_examples(data)]
    return Html("".join(parts))


def _example_clusters(dropped: pd.DataFrame, key: str, limit: int) -> list[Any]:
    """Near-duplicate clusters first, least similar first: they show whether the threshold is
    right; exact clusters after, in cluster order."""
    kind = (
        dropped["kind"].astype(str)
        if "kind" in dropped.columns
        else pd.Series("", index=dropped.index)
    )
    similarity = pd.to_numeric(
        dropped.get("similarity", pd.Series(np.nan, index=dropped.index)), errors="coerce"
    )
    order = dropped.assign(_exact=kind != "near", _similarity=similarity.fillna(1.0).to_numpy())
    order = order.sort_values(["_exact", "_similarity", key], kind="stable")
    return order[key].drop_duplicates().head(limit).tolist()


def _cluster(cluster: Any, members: pd.DataFrame, texts: Mapping[Any, Any]) -> Html:
    first = members.iloc[0]
    kept_id = first["kept_item_id"]
    kept_label = first.get("kept_label")
    in_history = bool(first.get("in_history")) if not missing(first.get("in_history")) else False
    kept_text = texts.get(kept_id)
    if missing(kept_text) and in_history:
        kept_text = "(kept in an earlier version)"
    kept = Html(
        f"kept {code(kept_id)} (label {escaped(kept_label)}, split {escaped(first.get('split'))}): "
        f'<span class="text">{escaped(truncate(kept_text))}</span>'
    )
    rows = [
        (
            code(row.get("item_id")),
            text_block(texts.get(row.get("item_id"))),
            row.get("label"),
            row.get("kind"),
            row.get("similarity"),
            f"{fmt(row.get('source_file'))}:{fmt(row.get('source_line'))}",
        )
        for _, row in members.iterrows()
    ]
    dropped = table(("dropped item", "text", "label", "kind", "similarity", "source"), rows)
    return Html(
        f'<div class="cluster">{heading(f"cluster {fmt(cluster)}")}{para(kept)}{dropped}</div>'
    )


def duplicates(data: ReportInput) -> Html:
    counted = data.manifest.counts
    parts = [
        figures_table(
            [
                ("exact duplicates", counted.duplicates.exact),
                ("near duplicates", counted.duplicates.near),
                ("conflicting clusters", counted.conflicts),
                (
                    "near-duplicate Jaccard threshold",
                    data.manifest.thresholds.get("near_duplicate_jaccard"),
                ),
            ]
        )
    ]
    frame = data.table("duplicates")
    if {"item_id", "kept_item_id"} <= set(frame.columns):
        dropped = frame[frame["item_id"] != frame["kept_item_id"]]
    else:
        dropped = frame.iloc[:0]
    if dropped.empty:
        parts.append(para("No duplicate was dropped.", "note"))
    else:
        key = "cluster_id" if "cluster_id" in frame.columns else "kept_item_id"
        clusters = _example_clusters(dropped, key, data.examples)
        shown = dropped[dropped[key].isin(clusters)]
        texts = data.item_texts([*shown["item_id"], *shown["kept_item_id"]])
        groups = dict(list(shown.groupby(key, sort=False)))
        parts.append(heading(f"Example clusters ({len(clusters)} of {dropped[key].nunique():,})"))
        parts += [_cluster(c, groups[c], texts) for c in clusters if c in groups]
        if "text" not in frame.columns:
            parts.append(
                para("Dropped items' texts are not stored in the duplicates table.", "note")
            )
    conflicts = data.table("conflicts")
    if not conflicts.empty:
        parts += [
            heading("Conflicting clusters"),
            frame_table(conflicts, data.examples, "conflicts"),
        ]
    return Html("".join(parts))


def splits(data: ReportInput) -> Html:
    counted = data.manifest.counts.splits
    present = {s: counted[s] for s in SPLITS if s in counted}
    classes = data.classes(*(size.by_label.keys() for size in present.values()))
    rows: list[tuple[Any, ...]] = [
        (label, *(present[s].by_label.get(label, 0) if s in present else None for s in SPLITS))
        for label in classes
    ]
    rows.append(("all items", *(present[s].items if s in present else None for s in SPLITS)))
    rows.append(("source rows", *(present[s].rows if s in present else None for s in SPLITS)))
    parts = [table(("class", *SPLITS), rows, table_id="split-sizes")]
    if classes and present:
        series = {
            s: [size.by_label.get(label, 0) for label in classes] for s, size in present.items()
        }
        png = plots.grouped_bar_chart(
            classes, series, title="Items per class and split", ylabel="items"
        )
        parts.append(image(png, "items per class and split"))
    return Html("".join(parts))
