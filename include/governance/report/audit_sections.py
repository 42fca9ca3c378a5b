"""The report's sections on the labels: agreement, annotator quality, suspected label errors
and drift against the previous version."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from governance.manifest import AnnotatorFigures, ClassBalance, TextLengthDrift
from governance.report import plots
from governance.report.consensus_section import consensus_block
from governance.report.html import (
    Html,
    code,
    figures_table,
    frame_rows,
    heading,
    image,
    missing,
    para,
    pct,
    sig,
    table,
    text_block,
    truncate,
)
from governance.report.input import ReportInput


def _pair_matrix(pairs: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    names = sorted({str(n) for n in [*pairs["annotator_a"], *pairs["annotator_b"]]})
    where = {name: i for i, name in enumerate(names)}
    matrix = np.full((len(names), len(names)), np.nan)
    np.fill_diagonal(matrix, 1.0)
    for a, b, kappa in zip(pairs["annotator_a"], pairs["annotator_b"], pairs["kappa"], strict=True):
        value = np.nan if missing(kappa) else float(kappa)
        matrix[where[str(a)], where[str(b)]] = matrix[where[str(b)], where[str(a)]] = value
    return names, matrix


def agreement(data: ReportInput) -> Html:
    parts = [*_agreement_figures(data), *consensus_block(data), *_pairwise_kappa(data)]
    return Html("".join(parts))


def _agreement_figures(data: ReportInput) -> list[Html]:
    agreement = data.manifest.audit.agreement
    if agreement is None:
        return [data.skipped("agreement")]
    parts = [
        figures_table(
            [
                ("Krippendorff's alpha (nominal)", agreement.krippendorff_alpha),
                ("Fleiss' kappa", agreement.fleiss_kappa),
                ("items in Fleiss' kappa", agreement.fleiss_items),
                ("annotators", agreement.annotators),
                ("votes", agreement.votes),
            ]
        )
    ]
    if agreement.per_class:
        rows = [
            (label, figures.krippendorff_alpha, figures.fleiss_kappa)
            for label, figures in agreement.per_class.items()
        ]
        parts += [
            heading("Per class (one class against the rest)"),
            table(
                ("class", "Krippendorff's alpha", "Fleiss' kappa"),
                rows,
                table_id="agreement-per-class",
            ),
        ]
    return parts


def _pairwise_kappa(data: ReportInput) -> list[Html]:
    pairs = data.table("annotator_pairs")
    if pairs.empty or not {"annotator_a", "annotator_b", "kappa"} <= set(pairs.columns):
        return []
    names, matrix = _pair_matrix(pairs)
    everyone = len(names)
    shown = set(shown_one_by_one(data, names))
    kept = [i for i, name in enumerate(names) if name in shown]
    names, matrix = [names[i] for i in kept], matrix[np.ix_(kept, kept)]
    size = min(2.5 + 0.4 * len(names), 9.0)
    png = plots.heatmap(
        matrix, names, names, title="Pairwise Cohen's kappa", vmin=-1.0, vmax=1.0, size=size
    )
    lowest = pairs.sort_values(
        ["kappa", "annotator_a", "annotator_b"], kind="stable", na_position="first"
    )
    return [
        heading("Pairwise Cohen's kappa"),
        *_bounded_note(len(names), everyone),
        image(png, "pairwise Cohen's kappa"),
        heading("Least agreeing pairs"),
        table(
            ("annotator a", "annotator b", "shared items", "kappa"),
            frame_rows(
                lowest.head(data.examples), ("annotator_a", "annotator_b", "n_items", "kappa")
            ),
        ),
    ]


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


def _accuracy_by_name(quality: pd.DataFrame) -> dict[str, float]:
    if not {"annotator", "accuracy"} <= set(quality.columns):
        return {}
    return {
        str(name): math.inf if missing(accuracy) else float(accuracy)
        for name, accuracy in zip(quality["annotator"], quality["accuracy"], strict=True)
    }


def shown_one_by_one(data: ReportInput, names: Iterable[str]) -> list[str]:
    """Of ``names``, the annotators drawn one by one, in the quality table's order (flagged
    first, then by name): every one while they are at most ``detail_annotators``, else the
    flagged first and then the least accurate, ``detail_annotators`` in all."""
    quality = data.table("annotator_quality")
    summary = data.manifest.audit.annotators
    order, flagged = _flag_order(quality, summary.flagged if summary is not None else [])
    wanted = {str(name) for name in names}
    ordered = [n for n in order if n in wanted] + sorted(wanted - set(order))
    if len(ordered) <= data.detail_annotators:
        return ordered
    accuracy = _accuracy_by_name(quality)
    ranked = sorted(ordered, key=lambda n: (n not in flagged, accuracy.get(n, math.inf), n))
    chosen = set(ranked[: data.detail_annotators])
    return [n for n in ordered if n in chosen]


def _bounded_note(shown: int, of: int) -> list[Html]:
    if shown == of:
        return []
    text = (
        f"Drawn one by one: {shown} of {of} annotators (the flagged first, then the least "
        "accurate; the contract's audit.detail_annotators). The table lists every one."
    )
    return [para(text, "note")]


def _confusion_heatmaps(data: ReportInput, flagged: set[str]) -> list[Html]:
    confusion = data.table("annotator_confusion")
    needed = {"annotator", "true_label", "given_label", "probability"}
    if confusion.empty or not needed <= set(confusion.columns):
        return []
    confusion = confusion.assign(annotator=confusion["annotator"].astype(str))
    classes = data.classes(
        confusion["true_label"].astype(str), confusion["given_label"].astype(str)
    )
    names = shown_one_by_one(data, confusion["annotator"])
    confusion = confusion[confusion["annotator"].isin(names)]
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
            ylabel="consensus label",
            size=min(2.2 + 0.3 * len(classes), 6.0),
        )
        images.append(image(png, f"confusion matrix of {name}"))
    return images


def _annotator_figures(summary: AnnotatorFigures | None, flagged: set[str]) -> Html:
    """The audit's figures on the annotators; n/a where the audit recorded none."""
    count, min_accuracy, min_items, confidence, not_enough = (
        (
            summary.count,
            summary.min_accuracy,
            summary.min_items,
            summary.interval_confidence,
            summary.not_enough_data,
        )
        if summary is not None
        else (None, None, None, None, None)
    )
    return figures_table(
        [
            ("annotators", count),
            ("flagged", ", ".join(sorted(flagged)) or "none"),
            ("minimum accuracy", pct(min_accuracy)),
            ("minimum items", min_items),
            ("interval", f"Wilson, {pct(confidence, 0)}" if confidence is not None else None),
            ("not enough data to judge", not_enough),
        ]
    )


def _quality_table(quality: pd.DataFrame, order: Sequence[str], flagged: set[str]) -> Html:
    """One row per annotator, flagged ones first and highlighted."""
    rank = {name: i for i, name in enumerate(order)}
    ordered = quality.iloc[
        np.argsort([rank.get(str(n), len(rank)) for n in quality["annotator"]], kind="stable")
    ]
    columns = ("annotator", "n_items", "accuracy", "accuracy_low", "accuracy_high", "assessment")
    rows = [
        (name, items, pct(acc), f"{pct(low)} - {pct(high)}", assessment or "", reason or "")
        for name, items, acc, low, high, assessment, reason in frame_rows(
            ordered.reindex(columns=[*columns, "reason"]), (*columns, "reason")
        )
    ]
    return table(
        (
            "annotator",
            "items",
            "accuracy vs consensus",
            "interval",
            "assessment",
            "reason",
        ),
        rows,
        table_id="annotator-quality",
        row_classes=["flagged" if str(row[0]) in flagged else "" for row in rows],
    )


def _crowd_figure(quality: pd.DataFrame, summary: AnnotatorFigures | None) -> list[Html]:
    """One figure for the whole crowd, however large: accuracy, interval and volume."""
    needed = {"n_items", "accuracy", "accuracy_low", "accuracy_high", "flagged"}
    if summary is None or not needed <= set(quality.columns):
        return []
    png = plots.accuracy_intervals(
        quality["n_items"].astype(int).tolist(),
        quality["accuracy"].astype(float).tolist(),
        quality["accuracy_low"].astype(float).tolist(),
        quality["accuracy_high"].astype(float).tolist(),
        quality["flagged"].astype(bool).tolist(),
        threshold=summary.min_accuracy,
    )
    return [image(png, "accuracy of every annotator with its interval")]


def annotators(data: ReportInput) -> Html:
    quality = data.table("annotator_quality")
    summary = data.manifest.audit.annotators
    if quality.empty and summary is None:
        return data.skipped("annotators")
    order, flagged = _flag_order(quality, summary.flagged if summary is not None else [])
    parts = [_annotator_figures(summary, flagged)]
    if not quality.empty and "annotator" in quality.columns:
        parts += [*_crowd_figure(quality, summary), _quality_table(quality, order, flagged)]
    images = _confusion_heatmaps(data, flagged)
    if images:
        parts += [
            heading("Confusion against the consensus (consensus rows, given label columns)"),
            *_bounded_note(len(images), len(order)),
            Html(f'<div class="grid">{"".join(images)}</div>'),
        ]
    return Html("".join(parts))


def _label_error_figures(data: ReportInput) -> Html:
    errors = data.manifest.audit.label_errors
    if errors is None:
        return data.skipped("label_errors")
    return figures_table(
        [
            ("method", errors.method),
            ("model", errors.model),
            ("cross-validation folds", errors.folds),
            ("items scored", errors.items),
            ("suspected label errors", errors.suspected),
            ("suspected rate", pct(errors.rate)),
            ("out-of-fold accuracy", pct(errors.out_of_fold_accuracy)),
        ]
    )


def review_queue(data: ReportInput) -> Html:
    parts = [_label_error_figures(data)]
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


def _class_balance(data: ReportInput, balance: ClassBalance) -> list[Html]:
    current = balance.current
    previous = balance.previous or {}
    classes = data.classes(current.keys(), previous.keys())
    rows = []
    for label in classes:
        now: Any = current.get(label)
        before: Any = previous.get(label)
        change = None if missing(now) or missing(before) else f"{(now - before) * 100:+.2f} pp"
        rows.append((label, pct(now), pct(before), change))
    parts = [
        heading("Class balance"),
        table(
            ("class", "current share", "previous share", "change"), rows, table_id="class-balance"
        ),
        figures_table(
            [
                ("chi-square", balance.chi2),
                ("p-value", sig(balance.p_value)),
                ("largest share change", pct(balance.max_share_change)),
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


def _text_length(length: TextLengthDrift) -> list[Html]:
    parts = [
        heading("Text length (characters)"),
        figures_table(
            [
                ("current median", length.current_median),
                ("previous median", length.previous_median),
                ("Kolmogorov-Smirnov statistic", length.ks_statistic),
                ("p-value", sig(length.p_value)),
            ]
        ),
    ]
    edges, current, previous = length.bins, length.current_hist, length.previous_hist
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


def drift(data: ReportInput) -> Html:
    drift = data.manifest.audit.drift
    previous = drift.previous_version or "no previous version: first publication"
    parts = [
        figures_table(
            [
                ("previous version", previous),
                ("share of new vocabulary", pct(drift.new_vocabulary_share)),
            ]
        ),
        *_class_balance(data, drift.class_balance),
        *_text_length(drift.text_length),
    ]
    return Html("".join(parts))
