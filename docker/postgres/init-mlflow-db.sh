#!/usr/bin/env bash
# Runs once, when the PostgreSQL volume is first initialised: MLflow's backend store gets its
# own role and database beside Airflow's metadata database, and so do the Bayesian searches'
# Optuna studies (a database of their own: Optuna and MLflow would share alembic_version). The password comes from the
# container's environment (MLFLOW_DB_PASSWORD), never from this file.
set -euo pipefail

: "${MLFLOW_DB_PASSWORD:?set MLFLOW_DB_PASSWORD}"

psql --set=ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set=mlflow_password="$MLFLOW_DB_PASSWORD" <<'SQL'
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_password';
CREATE DATABASE mlflow OWNER mlflow;
CREATE DATABASE optuna OWNER mlflow;
SQL
