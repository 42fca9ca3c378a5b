"""Shipped contracts with their start moved to a test's first day (days settle in order from it)."""

from __future__ import annotations

from governance.contracts import Contract, contracts_dir, load_contract


def shipped_contract(name: str, start: str | None = None) -> Contract:
    """The contract ``include/contracts/<name>.yaml``, starting at ``start`` when given."""
    contract = load_contract(contracts_dir() / f"{name}.yaml")
    return contract if start is None else contract.model_copy(update={"start_date": start})
