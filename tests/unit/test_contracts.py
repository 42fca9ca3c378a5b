"""contracts: valid files load; every kind of mistake is refused naming the file and the key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from governance.contracts import PROJECT_ROOT, ContractError, load_contract, load_contracts

CONTRACTS = PROJECT_ROOT / "include" / "contracts"

VALID = {
    "name": "tiny",
    "source": {"format": "tsv", "header": False, "columns": ["label", "text"]},
    "text": {"column": "text"},
    "labels": {"column": "label", "classes": ["ham", "spam"], "aliases": {"Junk": "spam"}},
    "checks": [{"column": "text", "pattern": "^\\S"}],
}


def write(tmp_path: Path, settings: object, name: str = "tiny") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def test_shipped_contracts_load():
    contracts = {contract.name: contract for contract in load_contracts(CONTRACTS)}
    assert {"sms_spam", "senti4sd_gold"} <= set(contracts)
    sms, senti = contracts["sms_spam"], contracts["senti4sd_gold"]
    assert (sms.source.quoting, sms.source.delimiter, sms.source.header) == ("none", "\t", False)
    assert sms.source_columns == ["text", "label"]
    assert senti.annotators is not None and senti.annotators.columns == ["r1", "r2", "r3"]
    assert senti.source_columns == [
        "text",
        "label",
        "final",
        "r1",
        "r2",
        "r3",
        "post.type",
        "study",
    ]


def test_valid_contract_loads_with_defaults(tmp_path):
    contract = load_contract(write(tmp_path, VALID))
    assert contract.name == "tiny"
    assert contract.source.delimiter == "\t"
    assert contract.split.fractions == {"train": 0.8, "val": 0.1, "test": 0.1}
    assert contract.dag_id == "govern_tiny"


def edit(path: str, value: object) -> dict:
    """VALID with one dotted key set (value None deletes it)."""
    settings = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node = settings
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if value is None:
        del node[last]
    else:
        node[last] = value
    return settings


@pytest.mark.parametrize(
    ("settings", "key", "detail"),
    [
        (edit("source.quotes", "none"), "source.quotes", "Extra inputs are not permitted"),
        (edit("source.format", "xml"), "source.format", "csv"),
        (edit("source.max_line_bytes", 0), "source.max_line_bytes", "greater than 0"),
        (edit("source.columns", None), "source", "columns: required when header is false"),
        (edit("source.separator", "||"), "source", "separator: must be a single character"),
        (edit("labels.aliases", {"junk": "eggs"}), "labels", "unknown classes ['eggs']"),
        (edit("labels.classes", ["ham"]), "labels.classes", "at least 2"),
        (edit("split", {"train": 0.8, "val": 0.3, "test": 0.1}), "split", "must be 1"),
        (edit("checks.0.pattern", "([a-z"), "checks.0.pattern", "not a valid regular expression"),
        (edit("text", None), "text", "Field required"),
        (edit("labels.column", None), "<root>", "labels.column: required unless annotators"),
        (edit("annotators", {"layout": "wide"}), "annotators", "columns: required"),
        (
            edit("annotators", {"layout": "long", "annotator_column": "a", "label_column": "b"}),
            "<root>",
            "id.column: required for the long annotator layout",
        ),
        (edit("dedup.near_threshold", 1.5), "dedup.near_threshold", "less than or equal to 1"),
    ],
)
def test_invalid_contract_names_file_and_key(tmp_path, settings, key, detail):
    path = write(tmp_path, settings)
    with pytest.raises(ContractError) as caught:
        load_contract(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert f"key '{key}'" in message
    assert detail in message


def test_name_must_match_file_name(tmp_path):
    path = write(tmp_path, VALID, name="other")
    with pytest.raises(ContractError, match=r"other\.yaml: key 'name': 'tiny' must match"):
        load_contract(path)


def test_invalid_name_pattern(tmp_path):
    path = write(tmp_path, edit("name", "Tiny-Set"), name="Tiny-Set")
    with pytest.raises(ContractError, match="key 'name'"):
        load_contract(path)


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"name: [unclosed\n", "is not valid YAML"),
        (b"- just\n- a list\n", "must be a mapping of keys, got list"),
        (b"name: caf\xe9\n", "cannot be read"),
    ],
)
def test_unusable_files_are_refused_naming_the_file(tmp_path, content, detail):
    path = tmp_path / "tiny.yaml"
    path.write_bytes(content)
    with pytest.raises(ContractError) as caught:
        load_contract(path)
    assert str(caught.value).startswith(str(path))
    assert detail in str(caught.value)
