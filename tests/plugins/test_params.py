"""The trigger forms come from the contract's spec classes: a form field refuses exactly the
values the contract refuses, shows the contract's value, and a run applies what it overrides."""

from __future__ import annotations

from dataclasses import fields

import pytest
from airflow.sdk.exceptions import ParamValidationError
from pydantic import ValidationError

from governance.contracts import Contract, FinetuneSpec, contracts_dir, load_contract
from governance.finetune import FinetuneRequest
from governance.finetune.training import TrialConfig
from governance_airflow.params import (
    FINETUNE_OVERRIDES,
    GOVERNANCE_OVERRIDES,
    REQUEST_PARAMS,
    finetune_params,
    governance_params,
    overridden,
)

# Around every bound the specs use: both sides of each, and values far outside.
PROBES = (-2.0, -1.0, -1e-9, 0.0, 1e-9, 0.5, 1.0, 1.0 + 1e-9, 2.0, 7.0, 8.0, 512.0, 513.0, 1e4)


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract(contracts_dir() / "demo_reviews.yaml")


def form_accepts(params: dict, name: str, value: object) -> bool:
    try:
        params[name].resolve(value)
    except ParamValidationError:
        return False
    return True


def contract_accepts(contract: Contract, section: str, name: str, value: object) -> bool:
    raw = contract.model_dump()
    raw[section] = {**raw[section], name: value}
    try:
        Contract.model_validate(raw)
    except (ValidationError, ValueError):
        return False
    return True


def probes(params: dict, name: str) -> list[object]:
    kind = params[name].schema["type"][1]
    if kind == "string":
        return ["grid", "bayesian", "random", "", *PROBES]
    if kind == "integer":
        return [int(p) for p in PROBES if float(p).is_integer()]
    return list(PROBES)


@pytest.mark.parametrize("name", sorted(GOVERNANCE_OVERRIDES))
def test_a_governance_form_field_refuses_what_the_contract_refuses(contract, name) -> None:
    params = governance_params(contract)
    section = GOVERNANCE_OVERRIDES[name]
    for value in probes(params, name):
        assert form_accepts(params, name, value) == contract_accepts(
            contract, section, name, value
        ), (name, value)


@pytest.mark.parametrize("name", FINETUNE_OVERRIDES)
def test_a_finetune_form_field_refuses_what_the_contract_refuses(contract, name) -> None:
    params = finetune_params(contract)
    for value in probes(params, name):
        accepted = contract_accepts(contract, "finetune", name, value)
        if name == "devices":  # no more than the contract reserves
            accepted = accepted and value <= contract.finetune.devices
        assert form_accepts(params, name, value) == accepted, (name, value)


def test_the_devices_field_offers_what_the_contract_reserves(contract) -> None:
    wide = contract.model_copy(
        update={"finetune": contract.finetune.model_copy(update={"devices": 4})}
    )
    params = finetune_params(wide)
    assert [n for n in range(0, 9) if form_accepts(params, "devices", n)] == [1, 2, 3, 4]


def test_an_empty_field_says_which_contract_value_it_keeps(contract) -> None:
    params = governance_params(contract)
    for name, section in GOVERNANCE_OVERRIDES.items():
        value = getattr(getattr(contract, section), name)
        assert params[name].value is None
        assert params[name].description == f"Empty: the contract's {value}."
    tune = finetune_params(contract)
    assert tune["epochs"].description == f"Empty: the contract's {contract.finetune.epochs}."


def test_the_titles_are_the_spec_fields_titles(contract) -> None:
    params = governance_params(contract)
    assert params["near_threshold"].schema["title"] == "Near-duplicate Jaccard threshold"
    assert params["max_quarantine_rate"].schema["title"] == "Max quarantine rate"
    assert finetune_params(contract)["trials"].schema["title"] == "Number of trials"


def test_a_run_applies_the_overrides_and_only_them(contract) -> None:
    assert overridden(contract, {"near_threshold": None}) is contract
    changed = overridden(contract, {"near_threshold": 0.6, "min_alpha": -0.5, "day": "x"})
    assert changed.dedup.near_threshold == 0.6
    assert changed.gate.min_alpha == -0.5
    assert changed.model_dump(exclude={"dedup", "gate"}) == contract.model_dump(
        exclude={"dedup", "gate"}
    )
    assert changed.gate.max_quarantine_rate == contract.gate.max_quarantine_rate


def test_the_finetune_defaults_have_one_source() -> None:
    spec = FinetuneSpec()
    request = FinetuneRequest(dataset="d")
    for name in FinetuneSpec.model_fields:
        for holder in (request, request.trial, TrialConfig()):
            if hasattr(holder, name):
                assert getattr(holder, name) == getattr(spec, name), name
    taken = {f.name for f in fields(FinetuneRequest)} | {f.name for f in fields(TrialConfig)}
    assert set(REQUEST_PARAMS) <= taken
