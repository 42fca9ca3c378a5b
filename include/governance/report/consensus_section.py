"""The report's consensus block: which aggregator decided and why, the figures ``auto`` compared,
and item by item where the consensus is not the plurality vote a reviewer would count by hand."""

from __future__ import annotations

from governance import frames as F
from governance.manifest import ConsensusFigures
from governance.report.html import Html, figures_table, frame_rows, heading, para, table, truncate
from governance.report.input import ReportInput

# Items listed where the consensus differs from plurality; the consensus table has them all.
CHANGED_ROWS = 200


def consensus_block(data: ReportInput) -> list[Html]:
    consensus = data.manifest.audit.consensus
    if consensus is None:
        return []
    return [
        heading("Consensus"),
        figures_table(
            [
                ("aggregator", consensus.aggregator),
                ("asked for", consensus.requested),
                ("why", consensus.reason),
                ("items", consensus.items),
                ("items without an absolute majority", consensus.no_majority_items),
                ("consensus differs from plurality", consensus.changed_from_plurality),
                ("consensus differs from the given label", consensus.disagrees_with_label),
                ("mean confidence", consensus.mean_confidence),
                ("votes fitted (of them from earlier versions)", _fitted(consensus)),
            ]
        ),
        *_candidates(consensus),
        *_changed_items(data),
    ]


def _fitted(consensus: ConsensusFigures) -> str:
    return f"{consensus.fitted_votes} ({consensus.earlier_votes})"


def _candidates(consensus: ConsensusFigures) -> list[Html]:
    if not consensus.candidates:
        return []
    rows = [
        (c.name, c.log_likelihood, c.gain, c.standard_error)
        for c in sorted(consensus.candidates, key=lambda c: -c.gain)
    ]
    note = (
        f"Each aggregator fitted on {consensus.folds - 1} of {consensus.folds} folds of every "
        f"item's votes; its labels scored on the {consensus.scored_votes} held-out votes "
        "(log-probability under each worker's confusion against those labels). Chosen: the "
        "first of "
        + ", ".join(c.name for c in consensus.candidates)
        + " (simplest first) within one standard error of the best."
    )
    return [
        heading("Aggregators compared"),
        para(note, "note"),
        table(
            ("aggregator", "held-out log-likelihood a vote", "gain over plurality", "std. error"),
            rows,
            table_id="consensus-candidates",
        ),
    ]


def _changed_items(data: ReportInput) -> list[Html]:
    consensus = data.table("consensus")
    needed = {F.ITEM_ID, "consensus_label", "plurality_label", "method"}
    if consensus.empty or not needed <= set(consensus.columns):
        return []
    voted = consensus["method"] != "given"
    changed = consensus[voted & (consensus["consensus_label"] != consensus["plurality_label"])]
    if changed.empty:
        return [heading("Where the consensus is not plurality"), para("No item.", "note")]
    shown = changed.sort_values(["confidence", F.ITEM_ID], kind="stable").head(CHANGED_ROWS)
    texts = data.item_texts(shown[F.ITEM_ID])
    shown = shown.assign(text=[truncate(texts.get(item)) for item in shown[F.ITEM_ID]])
    columns = (
        F.ITEM_ID,
        "text",
        "plurality_label",
        "plurality_share",
        "consensus_label",
        "confidence",
        "n_votes",
    )
    parts = [heading("Where the consensus is not plurality")]
    if len(changed) > len(shown):
        parts.append(
            para(
                f"The {len(shown)} least confident of {len(changed)} items; consensus.parquet "
                "lists every one.",
                "note",
            )
        )
    parts.append(
        table(
            ("item", "text", "plurality", "its vote share", "consensus", "confidence", "votes"),
            frame_rows(shown, columns),
            table_id="consensus-changed",
        )
    )
    return parts
