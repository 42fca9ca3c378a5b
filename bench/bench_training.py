"""Training throughput: TextClassifier through pl.Trainer against a plain PyTorch loop.

Both sides train the same model class from the same initial weights on the same batches (the
project's train loader), with the same fused AdamW and schedule (``build_optimizer``), one
optimiser step per batch. The Trainer gets the settings trials use (``trainer_options``), minus
checkpointing and validation, which are not per-step work. Rounds alternate which side runs
first; warm-up steps are not timed; the figure per side is the median over rounds.

    python bench/bench_training.py --rows 1280 --steps 30 --rounds 3
    python bench/bench_training.py --accelerator gpu --precision bf16-mixed --steps 200
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import platform
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from governance.finetune.data import tokenize_split, train_loader
from governance.finetune.encoder import load_tokenizer
from governance.finetune.model import TextClassifier
from governance.finetune.training import TrainingThroughput, describe_device, trainer_options

RESULTS = Path(__file__).parent / "results" / "training.json"
CLASSES = ["negative", "neutral", "positive"]


def synthetic_rows(n: int, max_seq_length: int, seed: int) -> pd.DataFrame:
    """Texts long enough to fill ``max_seq_length`` tokens, so every batch has the full width."""
    rng = np.random.default_rng(seed)
    words = "the build release crash works great awful slow fast team patch merge review test"
    vocabulary = np.array([*words.split(), "deploy", "config", "server", "error", "fixed"])
    texts = [" ".join(rng.choice(vocabulary, max_seq_length)) for _ in range(n)]
    labels = [CLASSES[i % len(CLASSES)] for i in range(n)]
    return pd.DataFrame({"text": texts, "label": labels})


def fresh_model(seed: int) -> TextClassifier:
    pl.seed_everything(seed, verbose=False)
    return TextClassifier(CLASSES)


def run_lightning(
    loader: DataLoader, accelerator: str, precision: str, warmup: int, steps: int, seed: int
) -> float:
    throughput = TrainingThroughput(skip_batches=warmup)
    trainer = pl.Trainer(
        **trainer_options(accelerator, precision),
        max_steps=warmup + steps,
        logger=False,
        enable_checkpointing=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[throughput],
    )
    with warnings.catch_warnings():
        for message in (".*does not have many workers.*", ".*no `val_dataloader`.*"):
            warnings.filterwarnings("ignore", message=message)
        trainer.fit(fresh_model(seed), train_dataloaders=loader)
    assert throughput.samples_per_second is not None
    return throughput.samples_per_second


def run_plain(
    loader: DataLoader, device: torch.device, precision: str, warmup: int, steps: int, seed: int
) -> float:
    model = fresh_model(seed).to(device)
    model.train()
    optimizer, scheduler = model.build_optimizer(warmup + steps)
    autocast = (
        torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        if precision == "bf16-mixed"
        else contextlib.nullcontext()
    )
    rows, start = 0, 0.0
    for index, batch in enumerate(itertools.islice(loader, warmup + steps)):
        if index == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
        batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
        with autocast:
            logits = model(batch["input_ids"], batch["attention_mask"])
            loss = F.cross_entropy(logits, batch["labels"])
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if index >= warmup:
            rows += len(batch["labels"])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return rows / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, default=1280, help="training rows (raised to cover all steps)"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each side")
    parser.add_argument("--accelerator", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--precision", choices=["32-true", "bf16-mixed"], default="32-true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.precision == "bf16-mixed" and args.accelerator != "gpu":
        parser.error("--precision bf16-mixed needs --accelerator gpu")
    if args.accelerator == "gpu" and not torch.cuda.is_available():
        parser.error("--accelerator gpu: torch sees no CUDA device")

    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    device = torch.device("cuda:0" if args.accelerator == "gpu" else "cpu")
    # the Trainer sets these at construction; set them first so the plain loop never runs
    # under other global flags than the Trainer
    torch.use_deterministic_algorithms(
        trainer_options(args.accelerator, args.precision)["deterministic"]
    )
    # one epoch covers every step, so neither side pays for an epoch turnover
    rows = max(args.rows, (args.warmup + args.steps) * args.batch_size)
    frame = synthetic_rows(rows, args.max_seq_length, args.seed)
    split = tokenize_split(frame, load_tokenizer(), CLASSES, args.max_seq_length, "synthetic")
    loader = train_loader(split, args.batch_size, args.seed)

    figures: dict[str, list[float]] = {"lightning": [], "plain": []}
    for round_index in range(args.rounds):
        order = ["lightning", "plain"] if round_index % 2 == 0 else ["plain", "lightning"]
        for side in order:
            if side == "lightning":
                value = run_lightning(
                    loader, args.accelerator, args.precision, args.warmup, args.steps, args.seed
                )
            else:
                value = run_plain(
                    loader, device, args.precision, args.warmup, args.steps, args.seed
                )
            figures[side].append(value)
            print(f"round {round_index + 1} {side:9s} {value:8.1f} samples/s", flush=True)

    lightning = statistics.median(figures["lightning"])
    plain = statistics.median(figures["plain"])
    result = {
        "device": describe_device(device),
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "precision": args.precision,
        "rows": rows,
        "batch_size": args.batch_size,
        "max_seq_length": args.max_seq_length,
        "steps": args.steps,
        "warmup": args.warmup,
        "rounds": figures,
        "lightning_samples_per_second": lightning,
        "plain_samples_per_second": plain,
        "ratio_lightning_over_plain": lightning / plain,
    }
    print(
        f"device {result['device']}, precision {args.precision}, batch {args.batch_size} x "
        f"{args.max_seq_length} tokens: lightning {lightning:.1f} samples/s, plain "
        f"{plain:.1f} samples/s, ratio {lightning / plain:.3f} (median of {args.rounds})"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
