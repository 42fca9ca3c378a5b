from __future__ import annotations

import pytest
import torch

from governance.finetune.encoder import load_tokenizer
from governance.finetune.model import TextClassifier, linear_warmup_decay, mean_pool

CLASSES = ["negative", "neutral", "positive"]


@pytest.fixture(scope="module")
def model() -> TextClassifier:
    torch.manual_seed(0)
    return TextClassifier(CLASSES, learning_rate=1e-3, weight_decay=0.05, warmup_ratio=0.2)


def test_mean_pool_averages_only_the_real_tokens() -> None:
    hidden = torch.randn(3, 5, 4, dtype=torch.float64)
    lengths = [5, 2, 1]
    mask = torch.tensor([[1] * n + [0] * (5 - n) for n in lengths])
    expected = torch.stack([hidden[i, :n].mean(dim=0) for i, n in enumerate(lengths)])
    assert torch.allclose(mean_pool(hidden, mask), expected, atol=1e-12)


def test_padding_does_not_change_a_prediction(model: TextClassifier) -> None:
    tokenizer = load_tokenizer()
    alone = tokenizer(["works"], return_tensors="pt")
    padded = tokenizer(
        ["works", "a much longer sentence that forces padding"], padding=True, return_tensors="pt"
    )
    assert padded["attention_mask"][0].sum() < padded["attention_mask"].shape[1]
    model.eval()
    with torch.no_grad():
        single = model(alone["input_ids"], alone["attention_mask"])
        batched = model(padded["input_ids"], padded["attention_mask"])
    assert torch.allclose(single[0], batched[0], atol=1e-5)


def test_schedule_warms_up_then_decays_to_zero() -> None:
    factors = [linear_warmup_decay(step, warmup_steps=2, total_steps=10) for step in range(11)]
    assert factors[:3] == [0.0, 0.5, 1.0]
    assert factors[6] == pytest.approx(0.5)
    assert factors[10] == 0.0
    assert linear_warmup_decay(12, warmup_steps=2, total_steps=10) == 0.0
    assert linear_warmup_decay(0, warmup_steps=0, total_steps=4) == 1.0


def test_optimizer_decays_matrices_only_and_follows_the_schedule(model: TextClassifier) -> None:
    optimizer, scheduler = model.build_optimizer(total_steps=10)
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.05 and plain["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decayed["params"]) and all(p.ndim < 2 for p in plain["params"])
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(decayed["params"]) + len(plain["params"]) == len(trainable)
    # only the encoder's pooler, which mean pooling never uses, is frozen
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"encoder.pooler.dense.weight", "encoder.pooler.dense.bias"}
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    expected = [1e-3 * linear_warmup_decay(s, 2, 10) for s in range(10)]
    assert rates == pytest.approx(expected)


def test_a_new_model_trains_with_dropout_and_stores_no_paths() -> None:
    fresh = TextClassifier(CLASSES)
    assert fresh.training and fresh.encoder.training
    assert set(fresh.hparams) == {
        "classes",
        "learning_rate",
        "weight_decay",
        "warmup_ratio",
        "dropout",
    }


def test_predict_step_returns_probabilities(model: TextClassifier) -> None:
    batch = {
        "input_ids": torch.tensor([[101, 2573, 102, 0], [101, 2204, 2208, 102]]),
        "attention_mask": torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]]),
    }
    model.eval()
    with torch.no_grad():
        probabilities = model.predict_step(batch, 0)
    assert probabilities.shape == (2, 3) and probabilities.dtype == torch.float32
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(2))
    assert (probabilities > 0).all()


def test_fewer_than_two_classes_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        TextClassifier(["only"])
