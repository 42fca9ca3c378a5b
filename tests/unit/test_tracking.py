from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from mlflow import MlflowClient

from governance import tracking as T
from governance.contracts import PROJECT_ROOT
from governance.finetune.data import VersionDataModule
from governance.finetune.training import (
    TrialConfig,
    load_trained,
    predict_probabilities,
    train_trial,
)
from governance.tracking import lineage, promotion, run_inputs, serving
from tests.conftest import private_mlflow
from tests.unit.test_finetune_data import CLASSES, write_version

DATASET = "toy_reviews"  # the name write_version puts in its manifests
V1, V2 = "2026-01-01", "2026-01-02"
SPLIT_SIZES = {"train": 12, "val": 6, "test": 6}
QUEUE_ROWS = 60
METRIC = "test_macro_f1"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private data root, artifact root and sqlite store; MLflow's globals reset afterwards."""
    with private_mlflow(tmp_path_factory.mktemp("tracking")) as base:
        yield base


@pytest.fixture(scope="module")
def client(root: Path) -> MlflowClient:
    return T.connect()


def review_queue(n: int) -> pd.DataFrame:
    """A queue stored out of rank order, so taking the top rows needs the sort."""
    rng = np.random.default_rng(5)
    ranks = rng.permutation(n) + 1
    return pd.DataFrame(
        {
            "rank": ranks,
            "item_id": [f"q-{rank:03d}" for rank in ranks],
            "text": [f"text {rank}" for rank in ranks],
            "split": rng.choice(["train", "val", "test"], n),
            "given_label": rng.choice(CLASSES, n),
            "suggested_label": rng.choice(CLASSES, n),
            "score": rng.random(n),
        }
    )


def write_curated(data: Path, version: str, seed: int) -> Path:
    """A published version with source files recorded in its manifest, a report and a queue."""
    folder = write_version(data / "curated" / DATASET / version, SPLIT_SIZES, seed=seed)
    landing = data / "landing" / version
    landing.mkdir(parents=True)
    inputs = []
    for index in range(2):
        source = landing / f"export-{index}.jsonl"
        source.write_text(f'{{"version": "{version}", "part": {index}}}\n')
        inputs.append({"name": source.name, "sha256": sha256(source), "bytes": 30})
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["inputs"] = inputs
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "report.html").write_text(f"<html><body>report {version}</body></html>")
    review_queue(QUEUE_ROWS).to_parquet(folder / "review_queue.parquet", index=False)
    return folder


def write_snapshot(data: Path, versions: list[tuple[str, str]], name: str) -> Path:
    """All listed versions' splits concatenated, as the snapshot writer leaves them.

    ``versions`` holds (version, path relative to the data root); the last one is the newest.
    """
    folder = data / "snapshots" / DATASET / name
    folder.mkdir(parents=True)
    outputs = {}
    for split in SPLIT_SIZES:
        parts = [
            pd.read_parquet(data / path / f"{split}.parquet")
            for _, path in versions
            if (data / path).exists()
        ]
        target = folder / f"{split}.parquet"
        pd.concat(parts, ignore_index=True).to_parquet(target, index=False)
        rows = sum(len(part) for part in parts)
        outputs[target.name] = {"sha256": sha256(target), "bytes": target.stat().st_size}
        outputs[target.name]["rows"] = rows
    newest = data / versions[-1][1]
    manifest = {
        "dataset": DATASET,
        "version": versions[-1][0],
        "contract": json.loads((newest / "manifest.json").read_text())["contract"],
        "versions": [
            {
                "version": version,
                "path": path,
                "manifest_sha256": sha256(data / path / "manifest.json")
                if (data / path).exists()
                else "0" * 64,
            }
            for version, path in versions
        ],
        "outputs": outputs,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


@pytest.fixture(scope="module")
def curated(root: Path) -> dict[str, Path]:
    return {
        version: write_curated(root / "data", version, seed) for seed, version in ((0, V1), (7, V2))
    }


@pytest.fixture(scope="module")
def snapshot(root: Path, curated: dict[str, Path]) -> Path:
    paths = [(version, f"curated/{DATASET}/{version}") for version in (V1, V2)]
    return write_snapshot(root / "data", paths, V2)


@pytest.fixture
def run_id(client: MlflowClient) -> str:
    return client.create_run(T.ensure_experiment(client, DATASET)).info.run_id


def airflow_tags(snapshot: Path, try_number: int = 2) -> dict[str, str]:
    return T.lineage_tags(
        dag_id=f"finetune_{DATASET}",
        run_id="scheduled__2026-01-02T00:00:00+00:00",
        task_id="train",
        try_number=try_number,
        dataset=DATASET,
        version=V2,
        manifest_sha256=sha256(snapshot / "manifest.json"),
    )


# --- store ------------------------------------------------------------------------------------


def test_the_tracking_uri_is_explicit_then_environment_then_the_project_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    assert T.tracking_uri("sqlite:////srv/x.db") == "sqlite:////srv/x.db"
    assert T.tracking_uri() == "http://tracking:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert T.tracking_uri() == f"sqlite:///{PROJECT_ROOT}/mlflow/mlflow.db"
    assert T.tracking_uri().startswith("sqlite:////")  # an absolute path: four slashes

    monkeypatch.delenv(T.ARTIFACTS_ENV, raising=False)
    assert T.artifact_root() == PROJECT_ROOT / "mlflow" / "artifacts"
    monkeypatch.setenv(T.ARTIFACTS_ENV, "/srv/artifacts")
    assert T.artifact_root() == Path("/srv/artifacts")


def test_configure_points_tracking_and_registry_at_a_new_sqlite_file(
    root: Path, tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'nested' / 'deeper' / 'mlflow.db'}"
    before = mlflow.get_tracking_uri()
    try:
        T.configure(uri)
        assert (tmp_path / "nested" / "deeper").is_dir()
        assert mlflow.get_tracking_uri() == uri and mlflow.get_registry_uri() == uri
        assert T.tracking_uri() == uri  # exported, so subprocesses use the same store
    finally:
        T.configure(before)


def test_the_experiment_is_created_once_under_the_artifact_root(
    client: MlflowClient, root: Path
) -> None:
    name = "experiment_probe"
    first = T.ensure_experiment(client, name)
    assert T.ensure_experiment(client, name) == first
    location = client.get_experiment(first).artifact_location
    assert location == (root / "artifacts" / name).resolve().as_uri()
    client.delete_experiment(first)
    assert T.ensure_experiment(client, name) == first
    assert client.get_experiment(first).lifecycle_stage == "active"


def test_experiments_open_on_their_training_runs(client: MlflowClient) -> None:
    # The value MLflow's UI reads to show the runs table, not the GenAI (traces) view.
    created = client.get_experiment(T.ensure_experiment(client, "kind_probe"))
    assert created.tags["mlflow.experimentKind"] == "custom_model_development"
    older = client.create_experiment("older_probe")
    assert T.ensure_experiment(client, "older_probe") == older
    assert client.get_experiment(older).tags["mlflow.experimentKind"] == "custom_model_development"
    chosen = client.create_experiment("chosen_probe", tags={"mlflow.experimentKind": "other"})
    T.ensure_experiment(client, "chosen_probe")
    assert client.get_experiment(chosen).tags["mlflow.experimentKind"] == "other"


# --- provenance ---------------------------------------------------------------------------------


def test_lineage_tags_land_on_the_run(client: MlflowClient, run_id: str, snapshot: Path) -> None:
    T.set_tags(client, run_id, airflow_tags(snapshot, try_number=3))
    tags = client.get_run(run_id).data.tags
    assert tags["airflow.dag_id"] == "finetune_toy_reviews"
    assert tags["airflow.run_id"] == "scheduled__2026-01-02T00:00:00+00:00"
    assert tags["airflow.task_id"] == "train"
    assert tags["airflow.try_number"] == "3"
    assert tags["dataset.name"] == DATASET and tags["dataset.version"] == V2
    assert tags["dataset.manifest_sha256"] == sha256(snapshot / "manifest.json")
    assert tags["code.version"] == T.code_version()


def test_an_empty_lineage_value_is_refused() -> None:
    with pytest.raises(ValueError, match=r"airflow\.task_id"):
        T.lineage_tags(
            dag_id="d", run_id="r", task_id=" ", try_number=1, dataset="x", version="v",
            manifest_sha256="0" * 64,
        )  # fmt: skip


def test_code_version_outside_a_checkout_is_unknown(tmp_path: Path) -> None:
    assert T.code_version(tmp_path) == "unknown"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_code_version_is_the_checked_out_commit_and_says_when_files_differ(
    tmp_path: Path,
) -> None:
    def git(*args: str) -> None:
        identity = ["-c", "user.name=t", "-c", "user.email=t@example.org"]
        subprocess.run(
            ["git", *identity, "-C", str(tmp_path), *args], check=True, capture_output=True
        )

    git("init", "-q", "-b", "main")
    (tmp_path / "a.txt").write_text("a")
    git("add", "a.txt")
    git("commit", "-q", "-m", "first")
    commit = (tmp_path / ".git" / "refs" / "heads" / "main").read_text().strip()
    assert T.code_version(tmp_path) == commit
    (tmp_path / "new.txt").write_text("untracked")
    assert T.code_version(tmp_path) == f"{commit}-dirty"


# --- inputs and artifacts -----------------------------------------------------------------------


def test_each_split_is_an_input_with_the_snapshot_files_digest(
    client: MlflowClient, run_id: str, snapshot: Path
) -> None:
    run_inputs.log_dataset_inputs(client, run_id, snapshot)
    inputs = client.get_run(run_id).inputs.dataset_inputs
    by_context = {
        {tag.key: tag.value for tag in item.tags}["mlflow.data.context"]: item for item in inputs
    }
    assert sorted(by_context) == ["test", "train", "val"]
    for split, item in by_context.items():
        path = snapshot / f"{split}.parquet"
        tags = {tag.key: tag.value for tag in item.tags}
        assert item.dataset.name == f"{DATASET}-{split}@{V2}"
        assert item.dataset.digest == sha256(path)[:32]
        assert tags["governance.sha256"] == sha256(path)
        assert json.loads(item.dataset.profile)["num_rows"] == 2 * SPLIT_SIZES[split]
        assert json.loads(item.dataset.source)["uri"] == str(path.resolve())
        columns = json.loads(item.dataset.schema)["mlflow_colspec"]
        assert [(c["name"], c["type"]) for c in columns] == [
            ("text", "string"),
            ("label", "string"),
        ]


def test_a_snapshot_file_that_differs_from_its_manifest_is_refused(
    client: MlflowClient, run_id: str, root: Path, curated: dict[str, Path]
) -> None:
    snapshot = write_snapshot(root / "data", [(V1, f"curated/{DATASET}/{V1}")], "tampered")
    pd.read_parquet(snapshot / "val.parquet").head(2).to_parquet(snapshot / "val.parquet")
    with pytest.raises(T.TrackingError, match=r"val\.parquet: sha256 .* differs"):
        run_inputs.log_dataset_inputs(client, run_id, snapshot)


def test_a_folder_without_a_snapshot_manifest_is_refused(
    client: MlflowClient, run_id: str, tmp_path: Path
) -> None:
    with pytest.raises(T.TrackingError, match="not a snapshot"):
        run_inputs.log_dataset_inputs(client, run_id, tmp_path)


def test_the_governance_evidence_of_the_newest_version_is_logged(
    client: MlflowClient, run_id: str, snapshot: Path, curated: dict[str, Path], tmp_path: Path
) -> None:
    logged = run_inputs.log_version_artifacts(client, run_id, snapshot)
    folder = f"governance/{V2}"
    expected = {
        "governance/snapshot_manifest.json",
        f"{folder}/manifest.json",
        f"{folder}/report.html",
        f"{folder}/review_queue_top50.csv",
        f"{folder}/review_queue_summary.json",
    }
    assert set(logged) == expected
    listed = {item.path for item in client.list_artifacts(run_id, "governance")}
    listed |= {item.path for item in client.list_artifacts(run_id, folder)}
    assert expected <= listed

    def fetch(path: str) -> Path:
        return Path(client.download_artifacts(run_id, path, str(tmp_path)))

    assert (
        fetch("governance/snapshot_manifest.json").read_bytes()
        == (snapshot / "manifest.json").read_bytes()
    )
    assert fetch(f"{folder}/report.html").read_text() == (curated[V2] / "report.html").read_text()
    queue = pd.read_parquet(curated[V2] / "review_queue.parquet")
    top = pd.read_csv(fetch(f"{folder}/review_queue_top50.csv"))
    assert top["rank"].tolist() == list(range(1, 51))
    summary = json.loads(fetch(f"{folder}/review_queue_summary.json").read_text())
    assert summary["rows"] == QUEUE_ROWS
    for column in ("split", "given_label", "suggested_label"):
        assert summary[f"by_{column}"] == dict(Counter(queue[column]))


# --- promotion ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("challenger", "champion", "promote"),
    [
        (0.70, None, True),  # no champion yet
        (0.83, 0.82, True),  # better by more than the margin
        (0.823, 0.82, False),  # better, by less than the margin
        (0.825, 0.82, False),  # better by exactly the margin (0.825 - 0.82 > 0.005 in floats)
        (0.80, 0.82, False),  # worse
        (0.82, 0.82, False),  # equal
    ],
)
def test_promotion_needs_no_champion_or_a_gain_beyond_the_margin(
    challenger: float, champion: float | None, promote: bool
) -> None:
    decision = promotion.decide_promotion(challenger, champion, 0.005, champion_version=3)
    assert decision.promote is promote
    assert f"{challenger:.4f}" in decision.reason
    if champion is not None:
        assert f"champion v3 {champion:.4f}" in decision.reason
    if champion is not None and not promote:
        assert "does not beat" in decision.reason and "margin 0.0050" in decision.reason


@pytest.mark.parametrize(
    ("args", "message"),
    [((1.2, 0.5, 0.01), "challenger_f1"), ((0.5, float("nan"), 0.01), "champion_f1"),
     ((0.5, 0.4, -0.01), "margin")],
)  # fmt: skip
def test_impossible_scores_and_margins_are_refused(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        promotion.decide_promotion(*args)


def registered_versions(
    client: MlflowClient, name: str, scores: list[float], tmp_path: Path
) -> list[str]:
    """One registered version per score, each from its own run that logged test_macro_f1."""
    experiment = T.ensure_experiment(client, DATASET)
    versions = []
    for index, score in enumerate(scores):
        run = client.create_run(experiment).info.run_id
        client.log_metric(run, METRIC, score)
        source = (tmp_path / f"model-{index}").as_uri()
        versions.append(promotion.register(client, source, name, run).version)
    return versions


def test_apply_promotion_moves_the_alias_only_when_promoting(
    client: MlflowClient, tmp_path: Path
) -> None:
    name = "apply-classifier"
    first, second = registered_versions(client, name, [0.8, 0.79], tmp_path)
    assert promotion.champion(client, name) is None

    promotion.apply_promotion(
        client, name, first, promotion.PromotionDecision(True, "first model"), {}
    )
    assert promotion.champion(client, name).version == first

    rejected = promotion.PromotionDecision(
        False, "macro-F1 0.7900 does not beat champion v1 0.8000"
    )
    promotion.apply_promotion(
        client, name, second, rejected, {"challenger_f1": 0.79, "champion_f1": 0.8}
    )
    assert promotion.champion(client, name).version == first
    tags = client.get_model_version(name, second).tags
    assert tags["promotion"] == "rejected"
    assert tags["promotion.reason"] == rejected.reason
    assert float(tags["promotion.challenger_f1"]) == 0.79
    assert float(tags["promotion.champion_f1"]) == 0.8
    assert client.get_model_version(name, first).tags["promotion"] == "promoted"


def test_promote_if_better_compares_with_the_champions_run_and_survives_a_retry(
    client: MlflowClient, tmp_path: Path
) -> None:
    name = "duel-classifier"
    first, weaker, stronger = registered_versions(client, name, [0.8, 0.802, 0.83], tmp_path)

    def duel(version: str, score: float) -> promotion.PromotionDecision:
        return promotion.promote_if_better(
            client, name, version, score, margin=0.005, metric=METRIC
        )

    assert duel(first, 0.8).promote
    decision = duel(weaker, 0.802)
    assert not decision.promote and f"champion v{first} 0.8000" in decision.reason
    assert duel(stronger, 0.83).promote
    assert promotion.champion(client, name).version == stronger
    tags = client.get_model_version(name, stronger).tags
    assert float(tags["promotion.champion_test_macro_f1"]) == 0.8
    assert float(tags["promotion.challenger_test_macro_f1"]) == 0.83
    # a retried task: nothing changes, and the same run's model is not registered twice
    again = duel(stronger, 0.83)
    assert again.promote and "already is the champion" in again.reason
    assert promotion.champion(client, name).version == stronger
    registered = client.get_model_version(name, stronger)
    assert (
        promotion.register(client, registered.source, name, registered.run_id).version == stronger
    )
    assert len(client.search_model_versions(f"name = '{name}'")) == 3


# --- lineage ------------------------------------------------------------------------------------


def traced_model(client: MlflowClient, snapshot: Path, name: str, tmp_path: Path) -> str:
    """A champion whose run went through the whole tracking sequence (without a real model)."""
    run_id = client.create_run(T.ensure_experiment(client, DATASET)).info.run_id
    T.set_tags(client, run_id, airflow_tags(snapshot))
    run_inputs.log_dataset_inputs(client, run_id, snapshot)
    run_inputs.log_version_artifacts(client, run_id, snapshot)
    client.log_metric(run_id, METRIC, 0.875)
    version = promotion.register(client, (tmp_path / "model").as_uri(), name, run_id).version
    promotion.promote_if_better(client, name, version, 0.875, margin=0.0, metric=METRIC)
    return run_id


def test_lineage_runs_from_the_alias_to_the_source_files(
    client: MlflowClient, snapshot: Path, curated: dict[str, Path], tmp_path: Path
) -> None:
    name = "lineage-classifier"
    run_id = traced_model(client, snapshot, name, tmp_path)
    lines = lineage.lineage_chain(client, name)
    text = "\n".join(lines)
    assert lines[0] == f"model {name}@champion -> version 1"
    assert f"by run {run_id}" in lines[1]
    assert f"experiment {DATASET}" in text and "test_macro_f1 0.8750" in text
    assert f"dataset {DATASET} version {V2}" in text
    assert sha256(snapshot / "manifest.json") in text
    assert "dag finetune_toy_reviews" in text and "task train, try 2" in text
    assert f"input train: {DATASET}-train@{V2}, 24 rows" in text
    for version, folder in curated.items():
        assert f"version {version} at {folder}" in text
        manifest = json.loads((folder / "manifest.json").read_text())
        for source in manifest["inputs"]:
            assert f"source {source['name']} sha256 {source['sha256']}" in text
    assert text.count("(on disk: matches)") == 2
    assert "MISSING" not in text


def test_lineage_says_when_a_version_is_no_longer_on_disk(
    client: MlflowClient, root: Path, curated: dict[str, Path], tmp_path: Path
) -> None:
    versions = [("2025-12-31", f"curated/{DATASET}/2025-12-31"), (V1, f"curated/{DATASET}/{V1}")]
    snapshot = write_snapshot(root / "data", versions, "gone")
    traced_model(client, snapshot, "gone-classifier", tmp_path)
    text = "\n".join(lineage.lineage_chain(client, "gone-classifier"))
    missing = root / "data" / "curated" / DATASET / "2025-12-31" / "manifest.json"
    assert f"MISSING: {missing} does not exist" in text
    assert text.count("(on disk: matches)") == 1


def test_the_lineage_command_prints_the_chain_or_says_what_is_missing(
    client: MlflowClient, snapshot: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    traced_model(client, snapshot, "cli-classifier", tmp_path)
    assert lineage.main(["lineage", "cli-classifier"]) == 0
    assert capsys.readouterr().out.startswith("model cli-classifier@champion -> version 1")

    assert lineage.main(["lineage", "no-such-classifier"]) == 1
    assert "no registered model named 'no-such-classifier'" in capsys.readouterr().err
    assert lineage.main(["lineage", "cli-classifier", "--alias", "staging"]) == 1
    err = capsys.readouterr().err
    assert "no version with the alias 'staging'" in err and "champion" in err


# --- the model ----------------------------------------------------------------------------------


def test_a_logged_classifier_loads_back_and_scores_like_the_evaluation(
    client: MlflowClient, run_id: str, snapshot: Path, tmp_path: Path
) -> None:
    config = TrialConfig(
        epochs=1, batch_size=8, max_seq_length=16, learning_rate=1e-4, accelerator="cpu"
    )
    trial = train_trial(snapshot, config, tmp_path / "checkpoints")
    texts = pd.read_parquet(snapshot / "test.parquet")["text"].head(3).tolist()

    with pytest.raises(T.TrackingError, match="trained for classes"):
        serving.log_classifier(client, run_id, trial.best_checkpoint, CLASSES[::-1], 16, texts)
    model_uri = serving.log_classifier(
        client, run_id, trial.best_checkpoint, CLASSES, config.max_seq_length, texts[:2]
    )
    assert client.get_run(run_id).info.status == "RUNNING"  # left as it was found
    assert mlflow.active_run() is None
    version = promotion.register(
        client, model_uri, promotion.registered_model_name(DATASET), run_id
    )
    assert version.run_id == run_id
    assert promotion.register(client, model_uri, version.name, run_id).version == version.version

    loaded = mlflow.pyfunc.load_model(f"models:/{version.name}/{version.version}")
    probabilities = loaded.predict(pd.DataFrame({"text": texts}))
    assert list(probabilities.columns) == CLASSES
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    # the evaluation path: the split tokenised and batched as training does
    data = VersionDataModule(snapshot, config.data_settings())
    expected = predict_probabilities(load_trained(trial.best_checkpoint), data.test_dataloader())
    assert np.allclose(probabilities.to_numpy(), expected[:3], atol=1e-5)
    inputs = loaded.metadata.get_input_schema().input_names()
    outputs = loaded.metadata.get_output_schema().input_names()
    assert inputs == ["text"] and outputs == CLASSES


def test_an_ensemble_model_runs_every_member_and_lineage_lists_them(
    client: MlflowClient, run_id: str, snapshot: Path, tmp_path: Path
) -> None:
    trials = [
        train_trial(
            snapshot,
            TrialConfig(
                epochs=1, batch_size=8, max_seq_length=16, learning_rate=rate, accelerator="cpu"
            ),
            tmp_path / f"member_{index}",
        )
        for index, rate in enumerate((1e-4, 1e-3))
    ]
    checkpoints = [trial.best_checkpoint for trial in trials]
    texts = pd.read_parquet(snapshot / "test.parquet")["text"].head(4).tolist()
    model_uri = serving.log_classifier(client, run_id, checkpoints, CLASSES, 16, texts[:2])
    members = [{"trial": i, "run_id": f"trial-run-{i}"} for i in range(2)]
    client.set_tag(run_id, T.TAG_MODEL_MEMBERS, json.dumps(members))
    T.set_tags(client, run_id, airflow_tags(snapshot))
    name = "ensemble-classifier"
    version = promotion.register(client, model_uri, name, run_id).version
    promotion.promote_if_better(client, name, version, 0.9, margin=0.0, metric=METRIC)

    loaded = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    predicted = loaded.predict(pd.DataFrame({"text": texts})).to_numpy()
    data = VersionDataModule(snapshot, TrialConfig(max_seq_length=16).data_settings())
    each = [predict_probabilities(load_trained(c), data.test_dataloader())[:4] for c in checkpoints]
    assert not np.allclose(each[0], each[1], atol=1e-3), "two different members"
    assert np.allclose(predicted, (each[0] + each[1]) / 2, atol=1e-5)
    text = "\n".join(lineage.lineage_chain(client, name))
    assert "ensemble of 2: trial 0 (run trial-run-0), trial 1 (run trial-run-1)" in text


def test_model_requirements_pin_the_installed_public_versions() -> None:
    pins = dict(line.split("==") for line in serving.model_requirements())
    assert set(pins) == {"mlflow", *T.MODEL_REQUIREMENTS}
    assert pins["mlflow"] == mlflow.__version__
    assert pins["torch"] == torch.__version__.split("+")[0]


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"classes": ("a",), "max_seq_length": 8}, "classes"),
     ({"classes": ("a", "a"), "max_seq_length": 8}, "classes"),
     ({"classes": ("a", "b"), "max_seq_length": 0}, "max_seq_length")],
)  # fmt: skip
def test_impossible_classifier_settings_are_refused(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        serving.ClassifierSettings(**settings)


def telemetry_disabled_in_a_fresh_process(statement: str) -> bool:
    """Whether MLflow's telemetry is off after ``statement``, in a process with no CI marker
    (MLflow turns it off by itself under pytest and CI variables)."""
    keep = ("PATH", "HOME", "PYTHONPATH", "LANG")
    env = {k: v for k, v in os.environ.items() if k in keep}
    code = f"{statement}\nfrom mlflow.telemetry.utils import is_telemetry_disabled\n"
    code += "print(is_telemetry_disabled())"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1] == "True"


def test_importing_the_project_turns_mlflow_telemetry_off() -> None:
    assert not telemetry_disabled_in_a_fresh_process("import mlflow"), "the control is wrong"
    assert telemetry_disabled_in_a_fresh_process("import governance.tracking")


def test_a_model_pickled_before_the_serving_module_still_finds_its_class() -> None:
    from governance.tracking.serving import TextClassifierModel

    # What cloudpickle wrote for the model class when it lived in governance.tracking.
    assert pickle.loads(b"cgovernance.tracking\nTextClassifierModel\np0\n.") is TextClassifierModel
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        T.nothing  # noqa: B018
