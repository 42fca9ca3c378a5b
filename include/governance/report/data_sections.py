"""The report's sections on the data: summary, gate decision, row accounting, quarantine,
duplicates and splits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from governance.frames import SPLITS
from governance.report import plots
from governance.report.html import (
    NA,
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
    lookup,
    missing,
    para,
    records,
    share,
    span,
    table,
    text_block,
    truncate,
)
from governance.report.input import BUCKETS, REASON_BARS, ReportInput


def summary(data: ReportInput) -> Html:
    m = data.manifest
    if m.get("dry_run"):
        status = "dry run (nothing published)"
    elif m.get("published") is None:
        status = None
    else:
        status = "published" if m.get("published") else "rejected (not published)"
    creator = m.get("created_by")
    created_by = creator if isinstance(creator, Mapping) else {}
    rows: list[tuple[str, Any]] = [
        ("dataset", m.get("dataset")),
        ("version", m.get("version")),
        ("status", status),
        ("gate", badge(lookup(m, "gate", "status") or "not_evaluated")),
        ("created by run", created_by.get("run_id")),
    ]
    rows += [(f"created by {k}", v) for k, v in created_by.items() if k != "run_id"]
    rows += [
        ("rows in", lookup(m, "counts", "rows_in")),
        ("classes", ", ".join(data.classes()) or None),
        ("multi-annotator", data.audit("multi_annotator")),
    ]
    return figures_table(rows)


def gate(data: ReportInput) -> Html:
    gate = data.manifest.get("gate") or {}
    status_badge = badge(gate.get("status") or "not_evaluated")
    parts = [para(Html(f"{status_badge} {escaped(gate.get('message') or '')}"))]
    checks = [c for c in gate.get("checks") or [] if isinstance(c, Mapping)]
    if not checks:
        parts.append(para("No checks were recorded: the gate was not evaluated.", "note"))
    else:
        verdict = {True: "passed", False: "failed", None: "n.a."}
        parts.append(
            table(
                ("check", "description", "observed", "comparison", "threshold", "result", "detail"),
                [
                    (
                        c.get("name"),
                        c.get("description"),
                        (c.get("shown") or {}).get("observed", c.get("observed")),
                        c.get("comparison"),
                        (c.get("shown") or {}).get("threshold", c.get("threshold")),
                        verdict.get(c.get("passed"), NA),
                        c.get("detail") or "",
                    )
                    for c in checks
                ],
                table_id="gate-checks",
                row_classes=["failed" if c.get("passed") is False else "" for c in checks],
            )
        )
    if gate.get("failed"):
        parts.append(
            para(Html(f"Failed checks: {escaped(', '.join(map(str, gate['failed'])))}"), "bad")
        )
    thresholds = data.manifest.get("thresholds")
    if isinstance(thresholds, Mapping) and thresholds:
        parts += [heading("Thresholds of the contract"), records(thresholds, "threshold")]
    return Html("".join(parts))


def counts(data: ReportInput) -> Html:
    cons = data.manifest.get("conservation") or {}
    rows_in = cons.get("rows_in", lookup(data.manifest, "counts", "rows_in"))
    buckets: dict[str, Any] = {name: cons.get(name) for name in BUCKETS}
    known = [v for v in buckets.values() if not missing(v)]
    accounted = cons.get("accounted", sum(known) if len(known) == len(buckets) else None)
    holds = cons.get("holds")
    if holds is None and not missing(rows_in) and not missing(accounted):
        holds = rows_in == accounted
    terms = " + ".join(f"{name} {fmt(value)}" for name, value in buckets.items())
    equation = f"rows in {fmt(rows_in)} = {terms} = {fmt(accounted)}"
    if holds is None:
        verdict = span("conservation not checked", "note")
    elif holds:
        verdict = span("holds", "ok")
    else:
        gap = fmt(rows_in - accounted) if not (missing(rows_in) or missing(accounted)) else NA
        verdict = span(f"does not hold ({gap} rows unaccounted)", "bad")
    shares = [share(v, rows_in) for v in buckets.values()]
    parts = [
        para(Html(f'<span id="conservation-equation">{escaped(equation)}</span> {verdict}')),
        table(
            ("bucket", "source rows", "share of rows in"),
            zip(buckets, buckets.values(), shares, strict=True),
        ),
    ]
    if known:
        drawn = {k: v for k, v in buckets.items() if not missing(v)}
        png = plots.bar_chart(
            list(drawn),
            list(drawn.values()),
            title="Where the source rows went",
            xlabel="source rows",
        )
        parts.append(image(png, "where the source rows went"))
    return Html("".join(parts))


def _spread_by_reason(frame: pd.DataFrame) -> pd.DataFrame:
    """Examples that cover every distinct reason before showing a second row of any."""
    if frame.empty or "reasons" not in frame.columns:
        return frame
    turn = frame.groupby(frame["reasons"].astype(str), sort=False).cumcount()
    return frame.iloc[np.argsort(turn.to_numpy(), kind="stable")]


def quarantine(data: ReportInput) -> Html:
    quarantined = lookup(data.manifest, "counts", "quarantined") or {}
    rows_in = lookup(data.manifest, "counts", "rows_in")
    by_reason = quarantined.get("by_reason") or {}
    parts = [
        figures_table(
            [
                ("quarantined source rows", quarantined.get("total")),
                ("share of rows in", share(quarantined.get("total"), rows_in)),
            ]
        )
    ]
    if quarantined.get("by_stage"):
        parts += [heading("By stage"), records(quarantined["by_stage"], "stage", "source rows")]
    if quarantined.get("by_kind"):
        parts += [heading("By kind"), records(quarantined["by_kind"], "kind", "source rows")]
    if by_reason:
        ordered = sorted(by_reason.items(), key=lambda kv: (-(kv[1] or 0), str(kv[0])))
        parts += [
            heading("By reason"),
            table(("reason", "source rows"), ordered, table_id="quarantine-reasons"),
        ]
        top = ordered[:REASON_BARS]
        title = "Quarantined rows by reason" + (
            f" (top {REASON_BARS})" if len(ordered) > REASON_BARS else ""
        )
        parts.append(
            image(
                plots.bar_chart(
                    [k for k, _ in top], [v for _, v in top], title=title, xlabel="source rows"
                ),
                "quarantined rows by reason",
            )
        )
    frame = data.table("quarantine")
    if frame.empty:
        parts.append(para("No row was quarantined.", "note"))
        return Html("".join(parts))
    shown = _spread_by_reason(frame).head(data.examples)
    parts += [
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
    return Html("".join(parts))


def _item_texts(data: ReportInput, item_ids: Sequence[Any]) -> dict[Any, Any]:
    """Texts of the given items, wherever a table holds them (published splits, duplicates)."""
    texts: dict[Any, Any] = {}
    for name in ("duplicates", *SPLITS):
        frame = data.table(name)
        if {"item_id", "text"} <= set(frame.columns):
            hit = frame[frame["item_id"].isin(list(item_ids))]
            for item, item_text in zip(hit["item_id"], hit["text"], strict=True):
                texts.setdefault(item, item_text)
    return texts


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
    counts = lookup(data.manifest, "counts", "duplicates") or {}
    parts = [
        figures_table(
            [
                ("exact duplicates", counts.get("exact")),
                ("near duplicates", counts.get("near")),
                ("conflicting clusters", lookup(data.manifest, "counts", "conflicts")),
                (
                    "near-duplicate Jaccard threshold",
                    lookup(data.manifest, "thresholds", "near_duplicate_jaccard"),
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
        texts = _item_texts(data, [*shown["item_id"], *shown["kept_item_id"]])
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
    splits = lookup(data.manifest, "counts", "splits") or {}
    by_label = {s: lookup(splits, s, "by_label") or {} for s in SPLITS}
    classes = data.classes(*(counts.keys() for counts in by_label.values()))

    def count(split: str, label: str) -> Any:
        return by_label[split].get(label, 0) if split in splits else None

    rows = [(label, *(count(s, label) for s in SPLITS)) for label in classes]
    rows.append(("all items", *(lookup(splits, s, "items") for s in SPLITS)))
    rows.append(("source rows", *(lookup(splits, s, "rows") for s in SPLITS)))
    parts = [table(("class", *SPLITS), rows, table_id="split-sizes")]
    present = [s for s in SPLITS if s in splits]
    if classes and present:
        series = {s: [by_label[s].get(label, 0) for label in classes] for s in present}
        png = plots.grouped_bar_chart(
            classes, series, title="Items per class and split", ylabel="items"
        )
        parts.append(image(png, "items per class and split"))
    return Html("".join(parts))
