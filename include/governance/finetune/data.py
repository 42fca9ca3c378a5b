"""Tokenised train/val/test tensors of one published dataset version, for fine-tuning.

The class order is the contract's, so index i means the same class in every version and every
trial of a dataset. Each split is tokenised once, up front; batches are sliced from the resulting
tensors and trimmed to their longest row, which costs nothing per step and spares the encoder the
padding. Shuffling is a pure function of (seed, epoch), so a run resumed from a mid-epoch
checkpoint sees exactly the batches an uninterrupted run would have seen.

The plain functions (``build_splits``, ``train_loader``, ``eval_loader``) serve a plain PyTorch
loop; ``VersionDataModule`` wraps the same ones for Lightning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from governance import frames as F
from governance.errors import InvalidInputError
from governance.finetune.encoder import load_tokenizer
from governance.publish import MANIFEST, read_manifest

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

TRAIN, VAL, TEST = F.SPLITS
Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class DataSettings:
    """How a version's rows become batches; ``max_*_rows`` take a seeded subset (demos, tests)."""

    max_seq_length: int = 128
    batch_size: int = 32
    seed: int = 0
    max_train_rows: int | None = None
    max_eval_rows: int | None = None
    num_workers: int = 0

    def __post_init__(self) -> None:
        for name in ("max_seq_length", "batch_size"):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"{name}: must be at least 1, got {getattr(self, name)}")
        for name in ("max_train_rows", "max_eval_rows"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InvalidInputError(f"{name}: must be at least 1 or None, got {value}")
        if self.num_workers < 0:
            raise InvalidInputError(f"num_workers: must be at least 0, got {self.num_workers}")

    def max_rows(self, split: str) -> int | None:
        return self.max_train_rows if split == TRAIN else self.max_eval_rows


def contract_classes(version_dir: Path) -> list[str]:
    """The label classes in the order of the contract the version was published under."""
    path = Path(version_dir) / MANIFEST
    if not path.is_file():
        raise InvalidInputError(f"{path}: missing; {version_dir} is not a published version")
    try:
        classes = read_manifest(Path(version_dir))["contract"]["labels"]["classes"]
    except (KeyError, TypeError) as exc:
        raise InvalidInputError(f"{path}: has no contract.labels.classes") from exc
    if not (isinstance(classes, list) and len(classes) >= 2 and len(set(classes)) == len(classes)):
        raise InvalidInputError(
            f"{path}: contract.labels.classes must list 2+ unique names: {classes!r}"
        )
    return [str(name) for name in classes]


def read_split(version_dir: Path, split: str) -> pd.DataFrame:
    """The split's text and label columns, as published."""
    path = Path(version_dir) / f"{split}.parquet"
    if not path.is_file():
        raise InvalidInputError(f"{path}: missing from the published version")
    frame = pd.read_parquet(path)
    missing = sorted({F.TEXT, F.LABEL} - set(frame.columns))
    if missing:
        raise InvalidInputError(f"{path}: missing columns {missing}")
    return frame.reset_index(drop=True)


def subset_rows(frame: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    """At most ``max_rows`` rows, drawn with ``seed``, each class kept near its share.

    Rows are shuffled, ranked within their class by relative position (rank / class size), and
    the lowest ranks taken: every class is present once ``max_rows`` reaches the class count.
    The chosen rows keep their original order.
    """
    if max_rows is None or len(frame) <= max_rows:
        return frame
    order = np.random.default_rng(seed).permutation(len(frame))
    labels = frame[F.LABEL].iloc[order].reset_index(drop=True)
    groups = labels.groupby(labels, sort=False)
    position = groups.cumcount() / groups.transform("size")
    chosen = order[np.argsort(position.to_numpy(), kind="stable")[:max_rows]]
    return frame.iloc[np.sort(chosen)].reset_index(drop=True)


def label_indices(labels: pd.Series, classes: Sequence[str], where: str) -> np.ndarray:
    """Class names to their index in ``classes``; a name outside the contract is an error."""
    index = {name: i for i, name in enumerate(classes)}
    codes = labels.map(index)
    unknown = labels[codes.isna()]
    if len(unknown):
        counts = unknown.astype(str).value_counts().to_dict()
        raise InvalidInputError(
            f"{where}: labels outside the contract's classes {list(classes)}: {counts}"
        )
    return codes.to_numpy(dtype=np.int64)


class TokenizedSplit(Dataset):
    """One split as right-padded token tensors plus class indices; sliced a batch at a time."""

    def __init__(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor
    ) -> None:
        if not (input_ids.shape == attention_mask.shape and len(labels) == len(input_ids)):
            raise InvalidInputError(
                f"mismatched tensors: input_ids {tuple(input_ids.shape)}, "
                f"attention_mask {tuple(attention_mask.shape)}, labels {tuple(labels.shape)}"
            )
        self.input_ids = input_ids
        self.attention_mask = attention_mask
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> Batch:
        return {
            "input_ids": self.input_ids[index],
            "attention_mask": self.attention_mask[index],
            "labels": self.labels[index],
        }

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        """A whole batch by one indexing per tensor (DataLoader uses this when it exists)."""
        rows = torch.as_tensor(indices, dtype=torch.long)
        return {
            "input_ids": self.input_ids[rows],
            "attention_mask": self.attention_mask[rows],
            "labels": self.labels[rows],
        }


def tokenize_split(
    frame: pd.DataFrame,
    tokenizer: PreTrainedTokenizerBase,
    classes: Sequence[str],
    max_seq_length: int,
    where: str,
) -> TokenizedSplit:
    """Tokenise every text once (truncated and padded to ``max_seq_length``)."""
    texts = frame[F.TEXT].tolist()
    bad = [i for i, text in enumerate(texts) if not isinstance(text, str)]
    if bad:
        raise InvalidInputError(f"{where}: {len(bad)} rows without a text, first at row {bad[0]}")
    labels = torch.tensor(label_indices(frame[F.LABEL], classes, where))
    if not texts:
        empty = torch.zeros((0, max_seq_length), dtype=torch.long)
        return TokenizedSplit(empty, empty.clone(), labels)
    encoded = tokenizer(
        texts,
        padding="max_length",
        truncation=True,
        max_length=max_seq_length,
        padding_side="right",
        return_token_type_ids=False,
        return_tensors="pt",
    )
    return TokenizedSplit(encoded["input_ids"], encoded["attention_mask"], labels)


def trim_padding(batch: Batch) -> Batch:
    """Drop the padding columns no row of the batch uses (rows are right-padded)."""
    longest = max(int(batch["attention_mask"].sum(dim=1).max()), 1)
    return {
        "input_ids": batch["input_ids"][:, :longest],
        "attention_mask": batch["attention_mask"][:, :longest],
        "labels": batch["labels"],
    }


# TokenizedSplit has __getitems__, so the loader hands collate_fn one Batch, not the list of rows
# torch's stubs describe.
_COLLATE = cast("Callable[[list[Any]], Batch]", trim_padding)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A generator seeded from (seed, epoch) alone, well mixed so nearby seeds do not correlate."""
    state = np.random.SeedSequence([seed, epoch]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


class EpochShuffleSampler(Sampler[int]):
    """A permutation per epoch that depends only on (seed, epoch), resumable mid-epoch.

    Call ``set_epoch`` before each epoch (Lightning does); ``resume_at`` makes the next pass
    skip the rows an interrupted run had already trained on. Under DDP each of ``world_size``
    processes takes every ``world_size``-th row of the permutation from its ``rank`` on (the
    permutation padded with its own head to a multiple of ``world_size``, so every process
    trains as many batches): with a per-process batch of ``batch_size / world_size``, step k
    of all processes together trains batch k of a single process.
    """

    def __init__(self, n_rows: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise InvalidInputError(f"rank {rank} outside a world of {world_size}")
        self.n_rows = n_rows
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, epoch: int, consumed_rows: int) -> None:
        """``consumed_rows`` counts the rows of all processes together."""
        self.epoch = epoch
        self._skip = consumed_rows

    def __len__(self) -> int:
        return -(-self.n_rows // self.world_size)

    def __iter__(self) -> Iterator[int]:
        order = torch.randperm(self.n_rows, generator=epoch_generator(self.seed, self.epoch))
        padding = -self.n_rows % self.world_size
        if padding:
            order = torch.cat([order, order[:padding]])
        skip, self._skip = self._skip, 0
        return iter(order[skip:][self.rank :: self.world_size].tolist())


def _per_process(batch_size: int, world_size: int) -> int:
    if batch_size % world_size:
        raise InvalidInputError(
            f"batch_size {batch_size} does not split evenly over {world_size} processes"
        )
    return batch_size // world_size


def train_loader(
    split: TokenizedSplit,
    batch_size: int,
    seed: int,
    num_workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    """Shuffled batches, trimmed; the sampler is an ``EpochShuffleSampler``. ``batch_size`` is
    the global batch, of which this process (``rank`` of ``world_size``) takes its share."""
    return DataLoader(
        split,
        batch_size=_per_process(batch_size, world_size),
        sampler=EpochShuffleSampler(len(split), seed, rank, world_size),
        collate_fn=_COLLATE,
        num_workers=num_workers,
        # the loader draws worker seeds from its own generator, never from the global one
        generator=torch.Generator().manual_seed(seed),
    )


def eval_loader(
    split: TokenizedSplit,
    batch_size: int,
    num_workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    """Batches in row order, trimmed; under DDP this process's rows (every ``world_size``-th
    from ``rank``), each row evaluated by exactly one process, none twice."""
    rows = range(rank, len(split), world_size)
    return DataLoader(
        split,
        batch_size=batch_size,
        sampler=rows if world_size > 1 else None,
        shuffle=False,
        collate_fn=_COLLATE,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(0),
    )


def build_splits(
    version_dir: Path,
    tokenizer: PreTrainedTokenizerBase,
    settings: DataSettings,
    splits: Sequence[str] = F.SPLITS,
) -> tuple[list[str], dict[str, TokenizedSplit]]:
    """The contract's classes and each requested split, subset and tokenised."""
    version_dir = Path(version_dir)
    classes = contract_classes(version_dir)
    tokenized = {}
    for name in splits:
        frame = subset_rows(read_split(version_dir, name), settings.max_rows(name), settings.seed)
        where = str(version_dir / f"{name}.parquet")
        tokenized[name] = tokenize_split(frame, tokenizer, classes, settings.max_seq_length, where)
    return classes, tokenized


class VersionDataModule(pl.LightningDataModule):
    """Lightning's view of a version: the splits above, plus the resume position in checkpoints.

    The position (epoch, rows consumed) is saved with every checkpoint and handed to the next
    train loader after a restore, so a resumed run continues the interrupted epoch's order.
    """

    def __init__(
        self,
        version_dir: Path,
        settings: DataSettings | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
    ) -> None:
        super().__init__()
        self.version_dir = Path(version_dir)
        self.settings = settings or DataSettings()
        self.classes = contract_classes(self.version_dir)
        self._tokenizer = tokenizer
        self._splits: dict[str, TokenizedSplit] | None = None
        self._resume: tuple[int, int] | None = None

    def setup(self, stage: str | None = None) -> None:
        if self._splits is None:
            tokenizer = self._tokenizer if self._tokenizer is not None else load_tokenizer()
            _, self._splits = build_splits(self.version_dir, tokenizer, self.settings)

    def split(self, name: str) -> TokenizedSplit:
        self.setup()
        assert self._splits is not None
        return self._splits[name]

    def _place(self) -> tuple[int, int]:
        """This process's rank and the number of processes training together."""
        trainer = self.trainer
        return (0, 1) if trainer is None else (trainer.global_rank, trainer.world_size)

    def train_dataloader(self) -> DataLoader:
        s = self.settings
        loader = train_loader(
            self.split(TRAIN), s.batch_size, s.seed, s.num_workers, *self._place()
        )
        if self._resume is not None:
            sampler = cast(EpochShuffleSampler, loader.sampler)  # as train_loader builds it
            sampler.resume_at(*self._resume)
            self._resume = None
        return loader

    def _eval(self, name: str) -> DataLoader:
        return eval_loader(self.split(name), self.settings.batch_size, self.settings.num_workers)

    def val_dataloader(self) -> DataLoader:
        s = self.settings
        return eval_loader(self.split(VAL), s.batch_size, s.num_workers, *self._place())

    def test_dataloader(self) -> DataLoader:
        return self._eval(TEST)

    def predict_dataloader(self) -> DataLoader:
        return self._eval(TEST)

    def state_dict(self) -> dict[str, Any]:
        trainer = self.trainer
        if trainer is None:
            return {}
        epoch = trainer.current_epoch
        batches = trainer.fit_loop.epoch_loop.batch_progress.current.ready
        if batches >= trainer.num_training_batches:
            epoch, batches = epoch + 1, 0
        return {
            "epoch": epoch,
            "consumed_rows": batches * self.settings.batch_size,
            "seed": self.settings.seed,
            "batch_size": self.settings.batch_size,
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        if not state_dict:
            return
        saved = {key: state_dict[key] for key in ("seed", "batch_size")}
        current = {"seed": self.settings.seed, "batch_size": self.settings.batch_size}
        if saved != current:
            raise InvalidInputError(
                f"the checkpoint was written with {saved}, this run uses {current}: "
                "resume with the same settings or use a fresh checkpoint folder"
            )
        self._resume = (int(state_dict["epoch"]), int(state_dict["consumed_rows"]))
