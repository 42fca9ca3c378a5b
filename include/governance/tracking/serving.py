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


def member_artifact(index: int) -> str:
    """The artifact name of an ensemble's member checkpoint; the first keeps the name a single
    model has always had, so models logged before ensembles still load."""
    return CHECKPOINT_ARTIFACT if index == 0 else f"{CHECKPOINT_ARTIFACT}_{index}"


class TextClassifierModel(PythonModel):
    """Texts in (a "text" column), class probabilities out (one column per class, rows sum to 1).

    Tokenisation, truncation and batching are the ones training and evaluation use, so the
    served model scores a text exactly as the test report did. A model of several checkpoints
    (an ensemble) runs every member and returns the mean of their probabilities.
    """

    def __init__(self) -> None:
        self._models: list[TextClassifier] = []
        self._tokenizer: Any = None
        self._settings: ClassifierSettings | None = None

    def load_context(self, context: PythonModelContext) -> None:
        settings = ClassifierSettings.read(Path(context.artifacts[SETTINGS_ARTIFACT]))
        members: list[Path] = []
        while member_artifact(len(members)) in context.artifacts:
            members.append(Path(context.artifacts[member_artifact(len(members))]))
        self.load(members, settings)

    def load(self, checkpoints: Sequence[Path], settings: ClassifierSettings) -> None:
        """Load outside MLflow too (to infer the signature before logging)."""
        from governance.finetune.encoder import load_tokenizer
        from governance.finetune.training import load_trained

        if not checkpoints:
            raise TrackingError("a classifier needs at least one checkpoint")
        models = [load_trained(Path(checkpoint)) for checkpoint in checkpoints]
        for checkpoint, model in zip(checkpoints, models, strict=True):
            if tuple(model.classes) != settings.classes:
                raise TrackingError(
                    f"{checkpoint}: trained for classes {model.classes}, "
                    f"the settings say {list(settings.classes)}"
                )
        self._models, self._tokenizer, self._settings = models, load_tokenizer(), settings

    def predict(
        self,
        context: PythonModelContext | None,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        from governance.finetune.data import eval_loader, tokenize_split
        from governance.finetune.evaluation import average_probabilities
        from governance.finetune.training import predict_probabilities

        if not self._models or self._settings is None:
            raise RuntimeError("the model is not loaded: call load() or load it through MLflow")
        if not isinstance(model_input, pd.DataFrame) or F.TEXT not in model_input.columns:
            raise InvalidInputError(f"model input: expected a DataFrame with a {F.TEXT!r} column")
        settings = self._settings
        # labels play no part in prediction; the first class stands in for them
        frame = pd.DataFrame({F.TEXT: model_input[F.TEXT].tolist(), F.LABEL: settings.classes[0]})
        split = tokenize_split(
            frame, self._tokenizer, settings.classes, settings.max_seq_length, "model input"
        )
        loader = eval_loader(split, settings.batch_size)
        each = [predict_probabilities(model, loader) for model in self._models]
        probabilities = average_probabilities(each)
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
    checkpoints: Path | Sequence[Path],
    classes: Sequence[str],
    max_seq_length: int,
    example_texts: Sequence[str],
) -> str:
    """Log the checkpoint (or an ensemble's checkpoints) as a pyfunc model of ``run_id``;
    returns its ``models:/`` URI.

    The signature is inferred from the model's own output on ``example_texts``, which also
    become the input example. No code is copied and no environment is inferred: the model
    imports the installed ``governance`` package, and its requirements are today's pins.
    """
    members = [Path(checkpoints)] if isinstance(checkpoints, Path) else list(map(Path, checkpoints))
    for checkpoint in members:
        if not checkpoint.is_file():
            raise TrackingError(f"{checkpoint}: no such checkpoint")
    if not example_texts:
        raise InvalidInputError("example_texts: need at least one text for the input example")
    settings = ClassifierSettings(tuple(classes), max_seq_length)
    example = pd.DataFrame({F.TEXT: list(example_texts)})
    probe = TextClassifierModel()
    probe.load(members, settings)
    signature = infer_signature(example, probe.predict(None, example))
    del probe
    use_client_store(client)
    with tempfile.TemporaryDirectory() as tmp, _in_run(client, run_id):
        settings_path = Path(tmp) / "classifier.json"
        settings.write(settings_path)
        info = mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            python_model=TextClassifierModel(),
            artifacts={
                **{member_artifact(i): str(path) for i, path in enumerate(members)},
                SETTINGS_ARTIFACT: str(settings_path),
            },
            signature=signature,
            input_example=example,
            pip_requirements=model_requirements(),
            tags={TAG_CODE_VERSION: code_version()},
        )
    return info.model_uri
