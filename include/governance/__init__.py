"""Data and model governance: the typed core the Airflow DAGs call (no Airflow import here)."""

import os

# MLflow's telemetry thread edits os.environ while the tracking client's requests read it, which
# failed the first metric logged to a tracking server; no process of this project phones home.
# Set before any module here imports mlflow (this package is always imported first).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# The pretrained encoder comes from an installed package, never from the Hugging Face Hub:
# huggingface_hub reads this once, when first imported, which any part of the fine-tune may do.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
