"""Text hygiene: the characters a reader of a text cannot see, found before anything trusts it.

A NUL byte, a terminal escape or a C1 control inside a text breaks tools downstream; a
bidirectional override makes a text read differently from what it holds (Trojan source); a
zero-width space makes two equal texts differ; two Unicode spellings of one text (composed or
not) defeat exact deduplication. The contract's ``text`` section says, per kind, whether such a
row is quarantined (validate's checks use the patterns here) or cleaned; every cleaning is
counted for the manifest, so no value is altered silently.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd

from governance.contracts import Contract
from governance.manifest import TextHygiene

# C0 controls but tab, line feed and carriage return (text may hold them), DEL and C1 controls.
# ASCII controls as escapes, the rest literally: one spelling for Python's re and Arrow's RE2.
CONTROL_CHARACTERS = "[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f" + "\x80-\x9f" + "]"
# Embeddings, overrides (LRE RLE PDF LRO RLO) and isolates (LRI RLI FSI PDI). The marks LRM, RLM
# and ALM are ordinary in right-to-left text and stay.
BIDI_CONTROLS = "[\u202a-\u202e\u2066-\u2069]"
# Zero-width space, word joiner, invisible operators, BOM inside a text, Mongolian vowel
# separator. Zero-width (non-)joiners stay: emoji sequences and Persian or Indic text need them.
INVISIBLE_CHARACTERS = "[\u200b\u2060-\u2064\ufeff\u180e]"

CONTROL_CHECK = "control characters"
BIDI_CHECK = "bidi controls"


def _stripped(values: pd.Series, pattern: str) -> tuple[pd.Series, int]:
    present = values.notna()
    found = present & values.str.contains(pattern, regex=True).fillna(False).astype(bool)
    if not found.any():
        return values, 0
    cleaned = values.copy()
    cleaned[found] = values[found].str.replace(pattern, "", regex=True)
    return cleaned, int(found.sum())


def _normalized(values: pd.Series, form: Literal["NFC", "NFKC"]) -> tuple[pd.Series, int]:
    import unicodedata

    present = values.dropna()
    changed = [not unicodedata.is_normalized(form, value) for value in present.tolist()]
    if not any(changed):
        return values, 0
    cleaned = values.copy()
    targets = present.index[changed]
    cleaned[targets] = values[targets].str.normalize(form)
    return cleaned, int(sum(changed))


def clean(contract: Contract, records: pd.DataFrame) -> tuple[pd.DataFrame, TextHygiene]:
    """The records with what the contract strips removed and the text normalised; checks that
    quarantine (control and bidi characters by default) are validate's, on the result."""
    spec = contract.text
    records = records.copy()
    counts = {"control_stripped": 0, "bidi_stripped": 0}
    strips = {
        "control_stripped": (spec.control_characters == "strip", CONTROL_CHARACTERS),
        "bidi_stripped": (spec.bidi_controls == "strip", BIDI_CONTROLS),
    }
    for key, (wanted, pattern) in strips.items():
        if not wanted:
            continue
        for column in contract.source_columns:
            records[column], changed = _stripped(records[column], pattern)
            counts[key] += changed
    text = records[spec.column]
    invisible = 0
    if spec.invisible_characters == "strip":
        text, invisible = _stripped(text, INVISIBLE_CHARACTERS)
    normalized = 0
    if spec.normalization != "none":
        text, normalized = _normalized(text, spec.normalization)
    records[spec.column] = text
    return records, TextHygiene(invisible_stripped=invisible, normalized=normalized, **counts)
