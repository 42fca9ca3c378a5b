"""Map the raw label spellings found in landing files onto the contract's classes.

Annotators write "Positive", "POSITIVE", "Postive" or "Positiva" for one class. The contract lists
the classes and the aliases explicitly, and every spelling that was changed or not understood is
counted, so the governance report shows exactly what canonicalisation did to the data.
"""

from __future__ import annotations

from collections import Counter

from governance.contracts import LabelSpec


class LabelCanon:
    """Canonicalises label spellings for one contract and records what it changed.

    Lookup order: strip surrounding whitespace; the class names (casefolded when the contract is
    case-insensitive); then the aliases, whose keys are always compared casefolded. Empty values
    are "no label" and are neither changed nor unknown.
    """

    def __init__(self, spec: LabelSpec) -> None:
        self._fold = spec.case_insensitive
        self._classes = {self._class_key(name): name for name in spec.classes}
        self._aliases = {key.strip().casefold(): value for key, value in spec.aliases.items()}
        self._memo: dict[str, str | None] = {}
        self._changed: Counter[str] = Counter()
        self._unknown: Counter[str] = Counter()

    def _class_key(self, value: str) -> str:
        return value.casefold() if self._fold else value

    def lookup(self, raw: str | None) -> str | None:
        """The class a spelling means, or None for an empty or unknown one; counts nothing."""
        if raw is None:
            return None
        if raw in self._memo:
            return self._memo[raw]
        value = raw.strip()
        result = None
        if value:
            result = self._classes.get(self._class_key(value))
            if result is None:
                result = self._aliases.get(value.casefold())
        self._memo[raw] = result
        return result

    def canonical(self, raw: str | None, count: int = 1) -> str | None:
        """The class a spelling means (None for empty/unknown), recording `count` occurrences."""
        result = self.lookup(raw)
        if raw is None or not raw.strip():
            return result
        if result is None:
            self._unknown[raw] += count
        elif result != raw:
            self._changed[raw] += count
        return result

    def report(self) -> dict:
        """Every changed spelling with its class and count, and every unknown spelling's count."""
        return {
            "changed": {
                raw: {"canonical": self._memo[raw], "count": self._changed[raw]}
                for raw in sorted(self._changed)
            },
            "unknown": {raw: self._unknown[raw] for raw in sorted(self._unknown)},
        }
