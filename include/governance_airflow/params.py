"""The trigger forms' fields, generated from the contract's spec classes.

A field that overrides a contract value for one run takes its title, type and bounds from the
spec field it overrides, so the form, the contract's validation and the run's defaults cannot
drift apart. Which fields a form offers is declared here, once.
"""

from __future__ import annotations

import functools
from typing import Any

from airflow.sdk import Param
from pydantic import BaseModel

from governance.contracts import DAY_PATTERN, Contract, GateSpec

_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")

# Governance form field -> the contract section it overrides (the field keeps its name there).
GOVERNANCE_OVERRIDES: dict[str, str] = {
    "near_threshold": "dedup",
    **{name: "gate" for name in GateSpec.model_fields},
}
# The fine-tune form's overrides of the contract's fine-tune defaults.
FINETUNE_OVERRIDES = (
    "search",
    "trials",
    "epochs",
    "learning_rate",
    "batch_size",
    "max_seq_length",
    "seed",
    "devices",
    "strategy",
)
# The fine-tune form's fields that a FinetuneRequest takes.
REQUEST_PARAMS = (*FINETUNE_OVERRIDES, "accelerator", "dry_run")


@functools.cache
def _properties(spec: type[BaseModel]) -> dict[str, Any]:
    return spec.model_json_schema()["properties"]


def override_param(spec: BaseModel, name: str, **narrower: Any) -> Param:
    """An optional field that overrides ``spec.name`` for one run; empty keeps the contract's
    value, which the description shows. ``narrower`` bounds replace the spec's own."""
    schema = _properties(type(spec))[name]
    (typed,) = [branch for branch in schema.get("anyOf", [schema]) if branch.get("type") != "null"]
    bounds = {key: typed[key] for key in _BOUNDS if key in typed} | narrower
    if "enum" in typed:
        bounds["enum"] = [None, *typed["enum"]]
    return Param(
        None,
        type=["null", typed["type"]],
        title=schema["title"],
        description=f"Empty: the contract's {getattr(spec, name)}.",
        **bounds,
    )


def day_param(title: str, description: str) -> Param:
    """An optional YYYY-MM-DD field (a partition or a dataset version)."""
    return Param(
        None,
        type=["null", "string"],
        pattern=DAY_PATTERN,
        format="date",
        title=title,
        description=description,
    )


def dry_run_param(description: str) -> Param:
    return Param(False, type="boolean", title="Dry run", description=description)


def governance_params(contract: Contract) -> dict[str, Param]:
    """The governance DAG's trigger form. JSON-schema validation refuses a bad value before any
    task runs."""
    return {
        "day": day_param("Partition date", "YYYY-MM-DD; empty: the run's data interval start."),
        "dry_run": dry_run_param("Compute everything, publish nothing."),
        **{
            name: override_param(getattr(contract, section), name)
            for name, section in GOVERNANCE_OVERRIDES.items()
        },
    }


def finetune_params(contract: Contract) -> dict[str, Param]:
    """The fine-tune DAG's trigger form; empty fields take the contract's fine-tune defaults."""
    return {
        "version": day_param(
            "Dataset version",
            "YYYY-MM-DD; empty: the version that triggered the run, else the latest.",
        ),
        **{name: override_param(contract.finetune, name) for name in FINETUNE_OVERRIDES},
        # the contract's devices size the pool slots and the pods: a run may use fewer only
        "devices": override_param(contract.finetune, "devices", maximum=contract.finetune.devices),
        "accelerator": Param(
            "auto",
            type="string",
            enum=["auto", "cpu", "gpu"],
            title="Accelerator",
            description="auto: a GPU (bf16) when the worker has one, else the CPU (fp32).",
        ),
        "dry_run": dry_run_param("Train and evaluate, but register and promote nothing."),
    }


def overridden(contract: Contract, params: dict[str, Any]) -> Contract:
    """The contract with the values a manual trigger of the governance DAG overrode."""
    sections: dict[str, dict[str, Any]] = {}
    for name, section in GOVERNANCE_OVERRIDES.items():
        if params.get(name) is not None:
            sections.setdefault(section, {})[name] = params[name]
    if not sections:
        return contract
    raw = contract.model_dump()
    for section, values in sections.items():
        raw[section] = {**raw[section], **values}
    return Contract.model_validate(raw)
