"""The governance report of one dataset version as a single self-contained HTML file.

A reviewer opens it offline from the version folder (or an e-mail), so everything is inline: the
style sheet, and every figure as a base64 PNG. Every text that came from the data is escaped, since
feeds are untrusted. Missing figures (a first version has no drift, a single-label dataset has no
annotators) render as "n/a" or as the audit's own reason for skipping, never as an error. The same
input gives byte-identical output, so a rerun of a day rewrites the same report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np
import pandas as pd

from governance import plots
from governance.errors import InvalidInputError
from governance.frames import SPLITS
from governance.report_html import (
    NA,
    STYLE,
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
    pct,
    records,
    share,
    sig,
    span,
    table,
    text_block,
    truncate,
)

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
REASON_BARS = 15
BUCKETS = ("quarantined", "duplicates", *SPLITS)
# Which audit.skipped sentences explain a missing block: a sentence starts with its topic.
SKIP_TOPICS = {
    "agreement": ("agreement", "consensus"),
    "annotators": ("annotator",),
    "label_errors": ("suspected label error", "label error", "label_errors"),
    "drift": ("drift",),
}


# ---------------------------------------------------------------- input


@dataclass(frozen=True)
class _Input:
    manifest: Mapping[str, Any]
    tables: Mapping[str, pd.DataFrame]
    examples: int
    queue_rows: int

    def table(self, name: str) -> pd.DataFrame:
        frame = self.tables.get(name)
        return frame if frame is not None else pd.DataFrame()

    def audit(self, *keys: str) -> Any:
        return lookup(self.manifest, "audit", *keys)

    def classes(self, *extra: Iterable[Any]) -> list[str]:
        """The audit's class order first, then any other class seen, sorted."""
        known = [str(c) for c in self.audit("classes") or []]
        seen = sorted({str(c) for group in extra for c in group} - set(known))
        return known + seen

    def skipped(self, topic: str) -> Html:
        sentences = [
            str(s)
            for s in self.audit("skipped") or []
            if str(s).lower().startswith(SKIP_TOPICS[topic])
        ]
        if not sentences:
            return para("Not computed for this version.", "note")
        return Html("".join(para(s, "note") for s in sentences))


def _check_arguments(
    manifest: Any, tables: Any, examples_per_section: int, queue_rows: int
) -> None:
    if not isinstance(manifest, Mapping):
        raise InvalidInputError(f"manifest must be a dict, got {type(manifest).__name__}")
    if not isinstance(tables, Mapping):
        raise InvalidInputError(
            f"tables must map table names to DataFrames, got {type(tables).__name__}"
        )
    for name, frame in tables.items():
        if not isinstance(frame, pd.DataFrame):
            raise InvalidInputError(
                f"table {name!r} must be a DataFrame, got {type(frame).__name__}"
            )
    for name, value in (("examples_per_section", examples_per_section), ("queue_rows", queue_rows)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidInputError(f"{name} must be a non-negative integer, got {value!r}")


# ---------------------------------------------------------------- sections


def _summary(data: _Input) -> Html:
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


def _gate(data: _Input) -> Html:
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


def _counts(data: _Input) -> Html:
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


def _quarantine(data: _Input) -> Html:
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


def _item_texts(data: _Input, item_ids: Sequence[Any]) -> dict[Any, Any]:
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


def _duplicates(data: _Input) -> Html:
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


def _splits(data: _Input) -> Html:
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


def _pair_matrix(pairs: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    names = sorted({str(n) for n in [*pairs["annotator_a"], *pairs["annotator_b"]]})
    where = {name: i for i, name in enumerate(names)}
    matrix = np.full((len(names), len(names)), np.nan)
    np.fill_diagonal(matrix, 1.0)
    for a, b, kappa in zip(pairs["annotator_a"], pairs["annotator_b"], pairs["kappa"], strict=True):
        value = np.nan if missing(kappa) else float(kappa)
        matrix[where[str(a)], where[str(b)]] = matrix[where[str(b)], where[str(a)]] = value
    return names, matrix


def _agreement(data: _Input) -> Html:
    agreement = data.audit("agreement")
    parts: list[Html] = []
    if not isinstance(agreement, Mapping):
        parts.append(data.skipped("agreement"))
    else:
        parts.append(
            figures_table(
                [
                    ("Krippendorff's alpha (nominal)", agreement.get("krippendorff_alpha")),
                    ("Fleiss' kappa", agreement.get("fleiss_kappa")),
                    ("items in Fleiss' kappa", agreement.get("fleiss_items")),
                    ("annotators", agreement.get("annotators")),
                    ("votes", agreement.get("votes")),
                ]
            )
        )
        per_class = agreement.get("per_class") or {}
        if per_class:
            rows = [
                (c, lookup(v, "krippendorff_alpha"), lookup(v, "fleiss_kappa"))
                for c, v in per_class.items()
            ]
            parts += [
                heading("Per class (one class against the rest)"),
                table(
                    ("class", "Krippendorff's alpha", "Fleiss' kappa"),
                    rows,
                    table_id="agreement-per-class",
                ),
            ]
    consensus = data.audit("consensus")
    if isinstance(consensus, Mapping):
        parts += [
            heading("Consensus"),
            figures_table(
                [
                    ("items", consensus.get("items")),
                    ("decided by majority", consensus.get("majority_items")),
                    ("decided by Dawid-Skene", consensus.get("dawid_skene_items")),
                    (
                        "consensus differs from the given label",
                        consensus.get("disagrees_with_label"),
                    ),
                    ("mean confidence", consensus.get("mean_confidence")),
                ]
            ),
        ]
    pairs = data.table("annotator_pairs")
    if not pairs.empty and {"annotator_a", "annotator_b", "kappa"} <= set(pairs.columns):
        names, matrix = _pair_matrix(pairs)
        size = min(2.5 + 0.4 * len(names), 9.0)
        png = plots.heatmap(
            matrix, names, names, title="Pairwise Cohen's kappa", vmin=-1.0, vmax=1.0, size=size
        )
        lowest = pairs.sort_values(
            ["kappa", "annotator_a", "annotator_b"], kind="stable", na_position="first"
        )
        parts += [
            heading("Pairwise Cohen's kappa"),
            image(png, "pairwise Cohen's kappa"),
            heading("Least agreeing pairs"),
            table(
                ("annotator a", "annotator b", "shared items", "kappa"),
                frame_rows(
                    lowest.head(data.examples), ("annotator_a", "annotator_b", "n_items", "kappa")
                ),
            ),
        ]
    return Html("".join(parts))


def _flag_order(quality: pd.DataFrame, flagged_names: Iterable[Any]) -> tuple[list[str], set[str]]:
    """Annotator names, flagged ones first, each group by name."""
    flagged = {str(n) for n in flagged_names}
    if {"annotator", "flagged"} <= set(quality.columns):
        flagged |= {
            str(n)
            for n, f in zip(quality["annotator"], quality["flagged"], strict=True)
            if not missing(f) and bool(f)
        }
    names = sorted({str(n) for n in quality.get("annotator", pd.Series(dtype=object))})
    return sorted(flagged) + [n for n in names if n not in flagged], flagged


def _confusion_heatmaps(data: _Input, order: Sequence[str], flagged: set[str]) -> list[Html]:
    confusion = data.table("annotator_confusion")
    needed = {"annotator", "true_label", "given_label", "probability"}
    if confusion.empty or not needed <= set(confusion.columns):
        return []
    confusion = confusion.assign(annotator=confusion["annotator"].astype(str))
    classes = data.classes(
        confusion["true_label"].astype(str), confusion["given_label"].astype(str)
    )
    present = set(confusion["annotator"])
    names = [n for n in order if n in present] + sorted(present - set(order))
    images = []
    for name in names:
        part = confusion[confusion["annotator"] == name]
        matrix = (
            part.assign(
                true_label=part["true_label"].astype(str),
                given_label=part["given_label"].astype(str),
            )
            .pivot_table(
                index="true_label", columns="given_label", values="probability", aggfunc="first"
            )
            .reindex(index=classes, columns=classes)
            .to_numpy(dtype=float)
        )
        title = f"{truncate(name, 30)}{' (flagged)' if name in flagged else ''}"
        png = plots.heatmap(
            matrix,
            classes,
            classes,
            title=title,
            vmin=0.0,
            vmax=1.0,
            xlabel="given label",
            ylabel="true label",
            size=min(2.2 + 0.3 * len(classes), 6.0),
        )
        images.append(image(png, f"confusion matrix of {name}"))
    return images


def _annotators(data: _Input) -> Html:
    quality = data.table("annotator_quality")
    summary = data.audit("annotators")
    if quality.empty and not isinstance(summary, Mapping):
        return data.skipped("annotators")
    summary = summary if isinstance(summary, Mapping) else {}
    order, flagged = _flag_order(quality, summary.get("flagged") or [])
    parts = [
        figures_table(
            [
                ("annotators", summary.get("count")),
                ("flagged", ", ".join(sorted(flagged)) or "none"),
                ("minimum accuracy", pct(summary.get("min_accuracy"))),
                ("minimum items", summary.get("min_items")),
            ]
        )
    ]
    if not quality.empty and "annotator" in quality.columns:
        rank = {name: i for i, name in enumerate(order)}
        ordered = quality.iloc[
            np.argsort([rank.get(str(n), len(rank)) for n in quality["annotator"]], kind="stable")
        ]
        rows = [
            (name, items, pct(acc), pct(ds), "yes" if str(name) in flagged else "no", reason or "")
            for name, items, acc, ds, reason in frame_rows(
                ordered, ("annotator", "n_items", "accuracy", "ds_accuracy", "reason")
            )
        ]
        parts.append(
            table(
                (
                    "annotator",
                    "items",
                    "accuracy vs consensus",
                    "Dawid-Skene accuracy",
                    "flagged",
                    "reason",
                ),
                rows,
                table_id="annotator-quality",
                row_classes=["flagged" if str(row[0]) in flagged else "" for row in rows],
            )
        )
    images = _confusion_heatmaps(data, order, flagged)
    if images:
        parts += [
            heading("Dawid-Skene confusion matrices (true label rows, given label columns)"),
            Html(f'<div class="grid">{"".join(images)}</div>'),
        ]
    return Html("".join(parts))


def _review_queue(data: _Input) -> Html:
    errors = data.audit("label_errors")
    parts: list[Html] = []
    if not isinstance(errors, Mapping):
        parts.append(data.skipped("label_errors"))
    else:
        parts.append(
            figures_table(
                [
                    ("method", errors.get("method")),
                    ("model", errors.get("model")),
                    ("cross-validation folds", errors.get("folds")),
                    ("items scored", errors.get("items")),
                    ("suspected label errors", errors.get("suspected")),
                    ("suspected rate", pct(errors.get("rate"))),
                    ("out-of-fold accuracy", pct(errors.get("out_of_fold_accuracy"))),
                ]
            )
        )
    queue = data.table("review_queue")
    if queue.empty:
        parts.append(para("The review queue is empty.", "note"))
        return Html("".join(parts))
    if "rank" in queue.columns:
        queue = queue.assign(_rank=pd.to_numeric(queue["rank"], errors="coerce")).sort_values(
            "_rank", kind="stable"
        )
    shown = queue.head(data.queue_rows)
    columns = ("rank", "item_id", "text", "given_label", "suggested_label", "score", "votes")
    rows = [
        (
            rank,
            code(item),
            text_block(text),
            given,
            suggested,
            score,
            votes,
        )
        for rank, item, text, given, suggested, score, votes in frame_rows(shown, columns)
    ]
    parts += [
        heading(f"Review queue (top {len(shown)} of {len(queue):,})"),
        table(
            ("rank", "item", "text", "given", "suggested", "score", "votes"),
            rows,
            table_id="review-queue-table",
        ),
    ]
    return Html("".join(parts))


def _class_balance(data: _Input, balance: Mapping[str, Any]) -> list[Html]:
    current = balance.get("current") or {}
    previous = balance.get("previous")
    previous = previous if isinstance(previous, Mapping) else None
    classes = data.classes(current.keys(), (previous or {}).keys())
    rows = []
    for label in classes:
        now: Any = current.get(label)
        before: Any = (previous or {}).get(label)
        change = None if missing(now) or missing(before) else f"{(now - before) * 100:+.2f} pp"
        rows.append((label, pct(now), pct(before), change))
    parts = [
        heading("Class balance"),
        table(
            ("class", "current share", "previous share", "change"), rows, table_id="class-balance"
        ),
        figures_table(
            [
                ("chi-square", balance.get("chi2")),
                ("p-value", sig(balance.get("p_value"))),
                ("largest share change", pct(balance.get("max_share_change"))),
            ]
        ),
    ]
    if previous and classes:
        series = {
            "current": [current.get(c) or 0.0 for c in classes],
            "previous": [previous.get(c) or 0.0 for c in classes],
        }
        png = plots.grouped_bar_chart(
            classes, series, title="Class share, current vs previous", ylabel="share"
        )
        parts.append(image(png, "class share current vs previous"))
    return parts


def _text_length(length: Mapping[str, Any]) -> list[Html]:
    parts = [
        heading("Text length (characters)"),
        figures_table(
            [
                ("current median", length.get("current_median")),
                ("previous median", length.get("previous_median")),
                ("Kolmogorov-Smirnov statistic", length.get("ks_statistic")),
                ("p-value", sig(length.get("p_value"))),
            ]
        ),
    ]
    edges, current, previous = (
        length.get("bins"),
        length.get("current_hist"),
        length.get("previous_hist"),
    )
    if not (edges and current and previous):
        return parts
    if not len(edges) == len(current) + 1 == len(previous) + 1:
        parts.append(para("Histogram bins and counts do not match; no chart.", "note"))
        return parts
    png = plots.histogram_comparison(
        edges,
        {"current": current, "previous": previous},
        title="Text length, current vs previous",
        xlabel="characters",
    )
    parts.append(image(png, "text length current vs previous"))
    return parts


def _drift(data: _Input) -> Html:
    drift = data.audit("drift")
    if not isinstance(drift, Mapping):
        return data.skipped("drift")
    previous = drift.get("previous_version")
    parts = [
        figures_table(
            [
                ("previous version", previous or "no previous version: first publication"),
                ("share of new vocabulary", pct(drift.get("new_vocabulary_share"))),
            ]
        )
    ]
    if isinstance(drift.get("class_balance"), Mapping):
        parts += _class_balance(data, drift["class_balance"])
    if isinstance(drift.get("text_length"), Mapping):
        parts += _text_length(drift["text_length"])
    return Html("".join(parts))


def _label_mapping(mapping: Any) -> list[Html]:
    """The ingest's report ({changed, unknown}) or a flat raw -> canonical mapping."""
    if isinstance(mapping, Mapping) and mapping and set(mapping) <= {"changed", "unknown"}:
        return [
            heading("Label spellings mapped to a class"),
            records(mapping.get("changed") or {}, "raw spelling"),
            heading("Unknown label spellings"),
            records(mapping.get("unknown") or {}, "raw spelling", "records"),
        ]
    return [heading("Label mapping"), records(mapping or {}, "raw spelling", "class")]


def _inputs(data: _Input) -> Html:
    m = data.manifest
    warnings = [str(w) for w in m.get("warnings") or []]
    items = "".join(f"<li>{escaped(w)}</li>" for w in warnings)
    parts = [
        heading("Input files"),
        records(m.get("inputs")),
        *_label_mapping(m.get("label_mapping")),
        heading("Warnings"),
        Html(f"<ul>{items}</ul>") if warnings else para("none", "note"),
        heading("Output files"),
        records(m["outputs"], "file")
        if "outputs" in m
        else para("Not written (nothing published yet).", "note"),
    ]
    return Html("".join(parts))


def _history(data: _Input) -> Html:
    """Which settled days this version was computed against: a later republication of any of
    them makes this version stale until it is recomputed."""
    history = data.manifest.get("history")
    if not history:
        return para("Not recorded for this version.", "note")
    rows = [
        [
            e.get("version"),
            e.get("status"),
            str(e.get("digest") or "")[:16],
            str(e.get("manifest_sha256") or "")[:16] or NA,
        ]
        for e in history.get("versions") or []
    ]
    intro = para(
        f"Days settle in order from {fmt(history.get('origin'))}; this version read the "
        f"{len(rows)} settled day(s) before it (history digest {str(history.get('digest'))[:16]}).",
        "note",
    )
    listing = (
        table(["version", "settled as", "data digest", "manifest sha256"], rows)
        if rows
        else para("none: the dataset's first day", "note")
    )
    return Html(intro + listing)


_BUILDERS: dict[str, Callable[[_Input], Html]] = {
    "summary": _summary,
    "gate": _gate,
    "counts": _counts,
    "quarantine": _quarantine,
    "duplicates": _duplicates,
    "splits": _splits,
    "agreement": _agreement,
    "annotators": _annotators,
    "review-queue": _review_queue,
    "drift": _drift,
    "history": _history,
    "inputs": _inputs,
}


def render_report(
    manifest: dict[str, Any],
    tables: Mapping[str, pd.DataFrame],
    *,
    examples_per_section: int = 10,
    queue_rows: int = 25,
) -> str:
    """The whole report as one HTML document; same input, same bytes."""
    _check_arguments(manifest, tables, examples_per_section, queue_rows)
    data = _Input(manifest, tables, examples_per_section, queue_rows)
    title = escape(
        f"Governance report: {fmt(manifest.get('dataset'))} {fmt(manifest.get('version'))}"
    )
    nav = "".join(f'<a href="#{sid}">{escape(TITLES[sid])}</a>' for sid in SECTIONS)
    body = "\n".join(
        f'<section id="{sid}"><h2>{escape(TITLES[sid])}</h2>{_BUILDERS[sid](data)}</section>'
        for sid in SECTIONS
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{STYLE}</style></head>\n"
        f"<body>\n<header><h1>{title}</h1><nav>{nav}</nav></header>\n{body}\n</body>\n</html>\n"
    )
