"""Data and model governance: the typed core the Airflow DAGs call (no Airflow import here)."""

import os

# MLflow's telemetry thread edits os.environ while the tracking client's requests read it, which
# failed the first metric logged to a tracking server; no process of this project phones home.
# Set before any module here imports mlflow (this package is always imported first).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
