from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from governance.finetune.data import (
    DataSettings,
    EpochShuffleSampler,
    VersionDataModule,
    build_splits,
    contract_classes,
    subset_rows,
    train_loader,
    trim_padding,
)
from governance.finetune.encoder import load_tokenizer

# Deliberately not alphabetical: the index order must be the contract's.
CLASSES = ["positive", "negative", "neutral"]
CUES = {
    "positive": ["great", "love", "excellent", "happy", "superb", "works"],
    "negative": ["awful", "broken", "hate", "terrible", "crash", "fails"],
    "neutral": ["table", "monday", "paper", "meeting", "route", "folder"],
}
FILLER = ["the", "release", "build", "team", "today", "update", "with", "and", "this", "report"]


def make_split(split: str, n: int, seed: int, classes: Sequence[str] = CLASSES) -> pd.DataFrame:
    """Short texts whose class shows in their cue words; lengths vary so padding varies."""
    rng = np.random.default_rng(seed)
    labels = [classes[i % len(classes)] for i in range(n)]
    texts = []
    for label in labels:
        words = [*rng.choice(CUES[label], 2), *rng.choice(FILLER, rng.integers(1, 9))]
        rng.shuffle(words)
        texts.append(" ".join(words))
    return pd.DataFrame(
        {
            "item_id": [f"{split}-{i:03d}" for i in range(n)],
            "text": texts,
            "label": labels,
            "split": split,
        }
    )


def write_version(
    root: Path,
    sizes: dict[str, int] | None = None,
    classes: Sequence[str] = CLASSES,
    seed: int = 0,
) -> Path:
    """A published version folder as the pipeline leaves it: three splits and a manifest."""
    sizes = sizes or {"train": 40, "val": 24, "test": 12}
    root.mkdir(parents=True)
    outputs = {}
    for offset, (split, n) in enumerate(sizes.items()):
        frame = make_split(split, n, seed + offset, classes)
        frame.to_parquet(root / f"{split}.parquet", index=False)
        outputs[f"{split}.parquet"] = {"rows": n}
    manifest = {
        "dataset": "toy_reviews",
        "version": root.name,
        "contract": {"name": "toy_reviews", "labels": {"classes": list(classes)}},
        "outputs": outputs,
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


@pytest.fixture
def version(tmp_path: Path) -> Path:
    return write_version(tmp_path / "toy_reviews" / "2026-01-01")


def test_labels_are_indexed_in_contract_order(version: Path, tokenizer) -> None:
    classes, splits = build_splits(version, tokenizer, DataSettings(max_seq_length=24))
    assert classes == CLASSES == contract_classes(version)
    for name, split in splits.items():
        labels = pd.read_parquet(version / f"{name}.parquet")["label"]
        assert split.labels.tolist() == [CLASSES.index(label) for label in labels]


def test_tokens_are_the_tokenizers_own_truncated_and_right_padded(version: Path, tokenizer) -> None:
    length = 8
    _, splits = build_splits(version, tokenizer, DataSettings(max_seq_length=length))
    texts = pd.read_parquet(version / "train.parquet")["text"]
    train = splits["train"]
    assert train.input_ids.shape == train.attention_mask.shape == (len(texts), length)
    assert torch.equal(train[3]["input_ids"], train.input_ids[3])
    for row, text in enumerate(texts):
        ids = tokenizer(text, truncation=True, max_length=length)["input_ids"]
        assert train.input_ids[row, : len(ids)].tolist() == ids
        assert train.attention_mask[row].tolist() == [1] * len(ids) + [0] * (length - len(ids))
        assert set(train.input_ids[row, len(ids) :].tolist()) <= {tokenizer.pad_token_id}


def test_batches_are_trimmed_to_their_longest_row(version: Path, tokenizer) -> None:
    _, splits = build_splits(version, tokenizer, DataSettings(max_seq_length=32))
    full = splits["train"].__getitems__(list(range(8)))
    trimmed = trim_padding(full)
    longest = int(full["attention_mask"].sum(dim=1).max())
    assert longest < 32
    assert trimmed["input_ids"].shape == (8, longest)
    assert torch.equal(trimmed["input_ids"], full["input_ids"][:, :longest])
    assert not full["attention_mask"][:, longest:].any()


def test_an_unknown_label_names_itself_and_the_file(tmp_path: Path, tokenizer) -> None:
    version = write_version(tmp_path / "v", classes=CLASSES)
    frame = pd.read_parquet(version / "val.parquet")
    frame.loc[3, "label"] = "sarcastic"
    frame.to_parquet(version / "val.parquet", index=False)
    with pytest.raises(ValueError, match=r"val\.parquet.*sarcastic"):
        build_splits(version, tokenizer, DataSettings())


def test_a_version_without_contract_classes_is_refused(version: Path) -> None:
    (version / "manifest.json").write_text(json.dumps({"dataset": "x", "contract": {}}))
    with pytest.raises(ValueError, match=r"contract\.labels\.classes"):
        contract_classes(version)
    (version / "manifest.json").unlink()
    with pytest.raises(ValueError, match="not a published version"):
        contract_classes(version)


def test_subset_is_seeded_keeps_row_order_and_class_shares() -> None:
    labels = ["a"] * 50 + ["b"] * 30 + ["c"] * 15 + ["d"] * 5
    frame = pd.DataFrame({"item_id": range(100), "label": labels, "text": "x"})
    first = subset_rows(frame, 20, seed=7)
    assert first.equals(subset_rows(frame, 20, seed=7))
    assert not first["item_id"].equals(subset_rows(frame, 20, seed=8)["item_id"])
    assert first["item_id"].is_monotonic_increasing
    counts = first["label"].value_counts()
    assert len(first) == 20 and set(counts.index) == {"a", "b", "c", "d"}
    for label, share in {"a": 0.5, "b": 0.3, "c": 0.15, "d": 0.05}.items():
        # within the number of classes of exact proportionality (see subset_rows)
        assert abs(counts[label] - 20 * share) < 4
    assert subset_rows(frame, 100, seed=7) is frame
    assert subset_rows(frame, None, seed=7) is frame


def test_subset_limits_apply_per_split(version: Path, tokenizer) -> None:
    settings = DataSettings(max_seq_length=8, max_train_rows=9, max_eval_rows=5)
    _, splits = build_splits(version, tokenizer, settings)
    assert {name: len(split) for name, split in splits.items()} == {
        "train": 9,
        "val": 5,
        "test": 5,
    }
    assert sorted(set(splits["train"].labels.tolist())) == [0, 1, 2]


def test_shuffling_depends_only_on_seed_and_epoch() -> None:
    def order(seed: int, epoch: int) -> list[int]:
        sampler = EpochShuffleSampler(50, seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert order(3, 0) == order(3, 0)
    assert sorted(order(3, 0)) == list(range(50))
    assert order(3, 0) != order(3, 1)
    assert order(3, 0) != order(4, 0)


def test_a_resumed_sampler_continues_the_interrupted_epoch_once() -> None:
    sampler = EpochShuffleSampler(20, seed=1)
    sampler.set_epoch(2)
    whole = list(sampler)
    resumed = EpochShuffleSampler(20, seed=1)
    resumed.resume_at(epoch=2, consumed_rows=8)
    assert list(resumed) == whole[8:]
    assert list(resumed) == whole


def test_an_epoch_of_the_train_loader_yields_every_row_once(version: Path, tokenizer) -> None:
    _, splits = build_splits(version, tokenizer, DataSettings(max_seq_length=16))
    train = splits["train"]
    loader = train_loader(train, batch_size=8, seed=0)
    rows = {tuple(ids.tolist()) for batch in loader for ids in batch["input_ids"]}
    # rows are trimmed per batch; compare on the real tokens
    expected = {
        tuple(ids[mask.bool()].tolist())
        for ids, mask in zip(train.input_ids, train.attention_mask, strict=True)
    }
    assert {tuple(t for t in row if t != 0) for row in rows} == expected
    assert sum(len(batch["labels"]) for batch in loader) == len(train)


def test_data_module_serves_the_same_tensors_as_the_plain_functions(
    version: Path, tokenizer
) -> None:
    settings = DataSettings(max_seq_length=16, batch_size=5, seed=4)
    module = VersionDataModule(version, settings, tokenizer=tokenizer)
    module.setup("fit")
    _, plain = build_splits(version, tokenizer, settings)
    assert module.classes == CLASSES
    for name in ("train", "val", "test"):
        assert torch.equal(module.split(name).input_ids, plain[name].input_ids)
    train_batches = list(module.train_dataloader())
    plain_batches = list(train_loader(plain["train"], 5, seed=4))
    assert len(train_batches) == 8
    for ours, theirs in zip(train_batches, plain_batches, strict=True):
        assert torch.equal(ours["input_ids"], theirs["input_ids"])
    val_labels = torch.cat([batch["labels"] for batch in module.val_dataloader()])
    assert torch.equal(val_labels, plain["val"].labels)


def test_resuming_with_other_data_settings_is_refused(version: Path, tokenizer) -> None:
    module = VersionDataModule(version, DataSettings(batch_size=8), tokenizer=tokenizer)
    saved = {"epoch": 1, "consumed_rows": 16, "seed": 0, "batch_size": 16}
    with pytest.raises(ValueError, match="batch_size"):
        module.load_state_dict(saved)


@pytest.mark.parametrize(
    "bad",
    [{"batch_size": 0}, {"max_seq_length": 0}, {"max_train_rows": 0}, {"num_workers": -1}],
)
def test_bad_settings_are_refused(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        DataSettings(**bad)
