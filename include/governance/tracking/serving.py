"""The served model: a pyfunc that maps texts to class probabilities, scoring a text exactly as
training and the test report did, logged with today's pins and no inferred environment."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import mlflow.pyfunc
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature
from mlflow.pyfunc import PythonModel, PythonModelContext
from packaging.version import Version

from governance import frames as F
from governance.errors import InvalidInputError
from governance.tracking import (
    CHECKPOINT_ARTIFACT,
    MODEL_NAME,
    MODEL_REQUIREMENTS,
    SETTINGS_ARTIFACT,
    TAG_CODE_VERSION,
    TrackingError,
    code_version,
    use_client_store,
)

if TYPE_CHECKING:
    from governance.finetune.model import TextClassifier


@dataclass(frozen=True)
class ClassifierSettings:
    """What turns texts into the inputs the checkpoint was trained on."""

    classes: tuple[str, ...]
    max_seq_length: int
    batch_size: int = 32

    def __post_init__(self) -> None:
        if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise InvalidInputError(f"classes: need 2+ unique names, got {list(self.classes)}")
        for name in ("max_seq_length", "batch_size"):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"{name}: must be at least 1, got {getattr(self, name)}")

    def write(self, path: Path) -> None:
        payload = {
            "classes": list(self.classes),
            "max_seq_length": self.max_seq_length,
            "batch_size": self.batch_size,
        }
        path.write_text(json.dumps(payload, indent=2), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> ClassifierSettings:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(
            classes=tuple(payload["classes"]),
            max_seq_length=int(payload["max_seq_length"]),
            batch_size=int(payload["batch_size"]),
        )


class TextClassifierModel(PythonModel):
    """Texts in (a "text" column), class probabilities out (one column per class, rows sum to 1).

    Tokenisation, truncation and batching are the ones training and evaluation use, so the
    served model scores a text exactly as the test report did.
    """

    def __init__(self) -> None:
        self._model: TextClassifier | None = None
        self._tokenizer: Any = None
        self._settings: ClassifierSettings | None = None

    def load_context(self, context: PythonModelContext) -> None:
        settings = ClassifierSettings.read(Path(context.artifacts[SETTINGS_ARTIFACT]))
        self.load(Path(context.artifacts[CHECKPOINT_ARTIFACT]), settings)

    def load(self, checkpoint: Path, settings: ClassifierSettings) -> None:
        """Load outside MLflow too (to infer the signature before logging)."""
        from governance.finetune.encoder import load_tokenizer
        from governance.finetune.training import load_trained

        model = load_trained(Path(checkpoint))
        if tuple(model.classes) != settings.classes:
            raise TrackingError(
                f"{checkpoint}: trained for classes {model.classes}, "
                f"the settings say {list(settings.classes)}"
            )
        self._model, self._tokenizer, self._settings = model, load_tokenizer(), settings

    def predict(
        self,
        context: PythonModelContext | None,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        from governance.finetune.data import eval_loader, tokenize_split
        from governance.finetune.training import predict_probabilities

        if self._model is None or self._settings is None:
            raise RuntimeError("the model is not loaded: call load() or load it through MLflow")
        if not isinstance(model_input, pd.DataFrame) or F.TEXT not in model_input.columns:
            raise InvalidInputError(f"model input: expected a DataFrame with a {F.TEXT!r} column")
        settings = self._settings
        # labels play no part in prediction; the first class stands in for them
        frame = pd.DataFrame({F.TEXT: model_input[F.TEXT].tolist(), F.LABEL: settings.classes[0]})
        split = tokenize_split(
            frame, self._tokenizer, settings.classes, settings.max_seq_length, "model input"
        )
        probabilities = predict_probabilities(self._model, eval_loader(split, settings.batch_size))
        return pd.DataFrame(probabilities.astype("float64"), columns=list(settings.classes))


def model_requirements() -> list[str]:
    """Pins of the installed versions, so nothing is inferred or resolved when logging.

    Local version labels (torch's ``+cpu``) are dropped: which build to install is the serving
    environment's choice of package index, not the model's.
    """
    return [
        f"{name}=={Version(metadata.version(name)).public}"
        for name in ("mlflow", *MODEL_REQUIREMENTS)
    ]


@contextmanager
def _in_run(client: MlflowClient, run_id: str) -> Iterator[None]:
    """Make ``run_id`` the active run for fluent calls, leaving its status as it was."""
    active = mlflow.active_run()
    if active is not None and active.info.run_id == run_id:
        yield
        return
    status = client.get_run(run_id).info.status
    with mlflow.start_run(run_id=run_id):
        yield
    # leaving start_run's context marks the run FINISHED; the caller decides when it ends
    client.update_run(run_id, status=status)


def log_classifier(
    client: MlflowClient,
    run_id: str,
    checkpoint: Path,
    classes: Sequence[str],
    max_seq_length: int,
    example_texts: Sequence[str],
) -> str:
    """Log the checkpoint as a pyfunc model of ``run_id``; returns its ``models:/`` URI.

    The signature is inferred from the model's own output on ``example_texts``, which also
    become the input example. No code is copied and no environment is inferred: the model
    imports the installed ``governance`` package, and its requirements are today's pins.
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise TrackingError(f"{checkpoint}: no such checkpoint")
    if not example_texts:
        raise InvalidInputError("example_texts: need at least one text for the input example")
    settings = ClassifierSettings(tuple(classes), max_seq_length)
    example = pd.DataFrame({F.TEXT: list(example_texts)})
    probe = TextClassifierModel()
    probe.load(checkpoint, settings)
    signature = infer_signature(example, probe.predict(None, example))
    del probe
    use_client_store(client)
    with tempfile.TemporaryDirectory() as tmp, _in_run(client, run_id):
        settings_path = Path(tmp) / "classifier.json"
        settings.write(settings_path)
        info = mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            python_model=TextClassifierModel(),
            artifacts={CHECKPOINT_ARTIFACT: str(checkpoint), SETTINGS_ARTIFACT: str(settings_path)},
            signature=signature,
            input_example=example,
            pip_requirements=model_requirements(),
            tags={TAG_CODE_VERSION: code_version()},
        )
    return info.model_uri
