"""The fine-tuned classifier: pretrained encoder, masked mean pooling, dropout, a linear head.

Mean pooling over real tokens is how all-MiniLM-L6-v2 was trained to embed sentences, so the head
starts from embeddings that already mean something. Checkpoints keep only the class list and
optimiser settings as hyperparameters: the encoder is always built from the installed package and
then overwritten with the checkpoint's weights, so no machine-specific path is ever stored.

Logged: ``train_loss`` on the steps Lightning passes to loggers (``log_every_n_steps``),
``train_loss_epoch``, and per validation ``val_loss``, ``val_macro_f1``, ``val_accuracy``. Losses
are summed on the device and validation scores come from ``governance.finetune.evaluation``, the
same definitions the test report uses.
"""

from __future__ import annotations

from functools import partial

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.utilities.types import OptimizerLRSchedulerConfig
from torch import nn

from governance.errors import InvalidInputError
from governance.finetune.encoder import load_encoder
from governance.finetune.evaluation import accuracy_from_confusion, f1_from_confusion

Batch = dict[str, torch.Tensor]


def linear_warmup_decay(step: int, warmup_steps: int, total_steps: int) -> float:
    """Learning-rate factor: 0 -> 1 over the warm-up, then 1 -> 0 at ``total_steps``."""
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the token vectors the attention mask marks as real."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class LossMean:
    """Row-weighted mean of batch losses, summed on the device: no host sync until it is read."""

    def __init__(self) -> None:
        self.total: torch.Tensor | None = None
        self.rows = 0

    def add(self, loss: torch.Tensor, rows: int) -> None:
        part = loss.detach().float() * rows
        self.total = part if self.total is None else self.total + part
        self.rows += rows

    def mean(self) -> torch.Tensor:
        if self.total is None:
            raise InvalidInputError("no loss was added")
        return self.total / self.rows

    def sum_and_rows(self, device: torch.device) -> torch.Tensor:
        """(sum, rows) as one tensor, for a reduction over DDP processes."""
        total = torch.zeros((), device=device) if self.total is None else self.total
        return torch.stack([total.float(), torch.tensor(float(self.rows), device=device)])


class TextClassifier(pl.LightningModule):
    """Sentence classifier fine-tuned end to end; ``forward`` returns logits."""

    def __init__(
        self,
        classes: list[str],
        learning_rate: float = 5e-5,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if len(classes) < 2:
            raise InvalidInputError(f"classes: need at least 2, got {classes!r}")
        if not 0.0 <= warmup_ratio < 1.0:
            raise InvalidInputError(f"warmup_ratio: must lie in [0, 1), got {warmup_ratio}")
        self.save_hyperparameters()
        self.classes = list(classes)
        self.encoder = load_encoder()
        # The encoder's pooler is never used (mean pooling instead): frozen, so DDP does not
        # wait for gradients it will never get. It got none before either.
        pooler = getattr(self.encoder, "pooler", None)
        if pooler is not None:
            pooler.requires_grad_(False)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.encoder.config.hidden_size, len(classes))
        self._train_loss = LossMean()
        self._val_loss = LossMean()
        self._val_confusion = torch.zeros(0, dtype=torch.long)
        # from_pretrained hands the encoder over in eval mode, and Lightning keeps each module's
        # mode: without this the encoder's own dropout would stay off during fine-tuning
        self.train()

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(self.dropout(mean_pool(hidden, attention_mask)))

    def _logits_and_loss(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch["input_ids"], batch["attention_mask"])
        return logits, F.cross_entropy(logits, batch["labels"])

    def _is_logging_step(self) -> bool:
        """Whether Lightning hands this step's values to the loggers; a ``self.log`` call costs
        about as much as the rest of Lightning's per-step work, so it is only made then."""
        every = self.trainer.log_every_n_steps  # type: ignore[attr-defined]  # set at run time
        return every > 0 and (self.global_step + 1) % every == 0

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        _, loss = self._logits_and_loss(batch)
        rows = len(batch["labels"])
        self._train_loss.add(loss, rows)
        if self._is_logging_step():
            self.log("train_loss", loss, batch_size=rows)
        return loss

    def on_train_epoch_start(self) -> None:
        self._train_loss = LossMean()

    def _summed(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum over all DDP processes (each saw its own rows); the tensor itself on one."""
        if self.trainer.world_size == 1:
            return tensor
        return self.trainer.strategy.reduce(tensor, reduce_op="sum")

    def _mean_loss(self, loss: LossMean) -> torch.Tensor:
        total, rows = self._summed(loss.sum_and_rows(self.device))
        return total / rows

    def on_train_epoch_end(self) -> None:
        # after a mid-epoch resume this covers the part of the epoch trained since the resume;
        # every DDP process trains as many batches, so all of them take this branch or none
        if self._train_loss.rows:
            self.log("train_loss_epoch", self._mean_loss(self._train_loss))

    def on_validation_epoch_start(self) -> None:
        self._val_loss = LossMean()
        self._val_confusion = torch.zeros(
            self.n_classes * self.n_classes, dtype=torch.long, device=self.device
        )

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        logits, loss = self._logits_and_loss(batch)
        self._val_loss.add(loss, len(batch["labels"]))
        pairs = batch["labels"] * self.n_classes + logits.argmax(dim=1)
        self._val_confusion += torch.bincount(pairs, minlength=self.n_classes**2)

    def on_validation_epoch_end(self) -> None:
        # under DDP each process validated its own rows: the scores are those of the sums
        confusion = self._summed(self._val_confusion)
        matrix = confusion.view(self.n_classes, self.n_classes).cpu().numpy()
        _, macro_f1 = f1_from_confusion(matrix)
        self.log("val_loss", self._mean_loss(self._val_loss))
        self.log("val_macro_f1", macro_f1)
        self.log("val_accuracy", accuracy_from_confusion(matrix))

    def predict_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        """Class probabilities, one row per item, in float32 whatever the training precision."""
        logits = self(batch["input_ids"], batch["attention_mask"])
        return torch.softmax(logits.float(), dim=-1)

    def build_optimizer(
        self, total_steps: int
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
        """AdamW (no decay on biases and norms) and the per-step linear warm-up/decay schedule.

        Public so a plain PyTorch loop trains with exactly what Lightning uses.
        """
        hp = self.hparams
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": hp["weight_decay"]},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ]
        # fused: one kernel for all parameters; on the CPU about 7x faster than the default loop
        optimizer = torch.optim.AdamW(groups, lr=hp["learning_rate"], fused=True)
        warmup = round(hp["warmup_ratio"] * total_steps)
        schedule = partial(linear_warmup_decay, warmup_steps=warmup, total_steps=total_steps)
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        optimizer, scheduler = self.build_optimizer(int(self.trainer.estimated_stepping_batches))
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
        }
