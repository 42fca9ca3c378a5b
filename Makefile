# Two commands for a new user: `make run` and `make test`. Everything else is optional.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__EXECUTOR := LocalExecutor
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN ?= sqlite:///$(AIRFLOW_HOME)/airflow.db
export GOVERNANCE_DATA_ROOT ?= $(CURDIR)/data
export HF_HUB_OFFLINE := 1
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false
export MLFLOW_DISABLE_TELEMETRY := true
# Airflow's own metrics and the project's governance figures go to a statsd collector on
# localhost (UDP: nothing breaks when none listens; docker/ runs statsd-exporter for real).
export AIRFLOW__METRICS__STATSD_ON ?= True
export AIRFLOW__METRICS__STATSD_HOST ?= 127.0.0.1
export AIRFLOW__METRICS__STATSD_PORT ?= 8125
export AIRFLOW__METRICS__STATSD_PREFIX ?= airflow
export GOVERNANCE_STATSD_HOST ?= 127.0.0.1
export GOVERNANCE_STATSD_PORT ?= 8125
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)/dags

# The embedded MLflow store (the code's default too); MLFLOW_TRACKING_URI overrides it.
MLFLOW_STORE ?= $(if $(MLFLOW_TRACKING_URI),$(MLFLOW_TRACKING_URI),sqlite:///$(CURDIR)/mlflow/mlflow.db)
AIRFLOW_PORT ?= 8080
MLFLOW_PORT ?= 5000

DEMO_START ?= 2026-11-01
DEMO_DAYS ?= 4
DEMO_ITEMS ?= 400

.PHONY: help setup browser run test ui lineage verify reconcile skip stack stack-status stack-down lint bench clean

help:
	@echo "make run    set up if needed, then governance and a fine-tune on the demo feed"
	@echo "make test   set up if needed, then run every test"
	@echo "make ui     the Airflow UI and the MLflow UI on localhost"
	@echo "make lineage MODEL=demo_reviews-classifier   alias -> version -> run -> data -> files"
	@echo "make verify DATASET=demo_reviews      check every version against the history it was computed on"
	@echo "make reconcile DATASET=demo_reviews   recompute stale days, in order"
	@echo "make skip DATASET=... DAY=... REASON=...   settle a day that will have no data"
	@echo "make stack | make stack-status | make stack-down   the production topology, without Docker"
	@echo "make lint | make bench | make clean"

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(AIRFLOW_HOME)/airflow.db: $(STAMP)
	mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/migrate.log 2>&1 || (cat $(AIRFLOW_HOME)/migrate.log; exit 1)

$(AIRFLOW_HOME)/.settings-applied: airflow_settings.yaml $(AIRFLOW_HOME)/airflow.db
	$(BIN)/python -m governance_airflow.settings airflow_settings.yaml
	touch $@

setup: $(STAMP) $(AIRFLOW_HOME)/airflow.db $(AIRFLOW_HOME)/.settings-applied

# The browser tests drive Debian's chromium (Playwright never downloads a browser here).
CHROMIUM ?= /usr/bin/chromium
$(CHROMIUM):
	@command -v apt-get >/dev/null || (echo "install Chromium at $(CHROMIUM) for the browser tests"; exit 1)
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium > /dev/null || \
		(apt-get update -q > /dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium > /dev/null)

browser: $(CHROMIUM)

# The demo's own process logs warnings only; the Airflow components it starts log at INFO to
# $(AIRFLOW_HOME)/run-*.log and the task logs under $(AIRFLOW_HOME)/logs, as the UI shows them.
run: export AIRFLOW__LOGGING__LOGGING_LEVEL := WARNING
run: export MLFLOW_LOGGING_LEVEL := ERROR
run: setup
	$(BIN)/python -m governance_airflow.demo --start $(DEMO_START) --days $(DEMO_DAYS) \
		--items-per-day $(DEMO_ITEMS) --port $(or $(DEMO_AIRFLOW_PORT),8089)

test: setup browser
	$(BIN)/python -m pytest -q

ui: setup
	@echo "Airflow UI  http://127.0.0.1:$(AIRFLOW_PORT)  user admin, password admin"
	@echo "MLflow UI   http://127.0.0.1:$(MLFLOW_PORT)  ($(MLFLOW_STORE))"
	@echo "Ctrl-C stops both; Airflow's log: $(AIRFLOW_HOME)/standalone.log"
	@mkdir -p $(CURDIR)/mlflow
	@echo '{"admin": "admin"}' > $(AIRFLOW_HOME)/passwords.json
	@trap 'kill 0' INT TERM EXIT; \
	AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__PORT=$(AIRFLOW_PORT) \
	AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=admin:admin \
	AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=$(AIRFLOW_HOME)/passwords.json \
	PATH=$(BIN):$$PATH $(BIN)/airflow standalone > $(AIRFLOW_HOME)/standalone.log 2>&1 & \
	$(BIN)/mlflow ui --backend-store-uri $(MLFLOW_STORE) --host 127.0.0.1 --port $(MLFLOW_PORT)

lineage: $(STAMP)
	@test -n "$(MODEL)" || (echo "usage: make lineage MODEL=<dataset>-classifier"; exit 2)
	@$(BIN)/python -m governance.tracking.lineage lineage $(MODEL)

verify: $(STAMP)
	@test -n "$(DATASET)" || (echo "usage: make verify DATASET=<name>"; exit 2)
	@$(BIN)/python -m governance.reconcile verify $(DATASET)

reconcile: $(STAMP)
	@test -n "$(DATASET)" || (echo "usage: make reconcile DATASET=<name>"; exit 2)
	@$(BIN)/python -m governance.reconcile reconcile $(DATASET)

skip: $(STAMP)
	@test -n "$(DATASET)" -a -n "$(DAY)" -a -n "$(REASON)" || \
		(echo 'usage: make skip DATASET=<name> DAY=YYYY-MM-DD REASON="why"'; exit 2)
	@$(BIN)/python -m governance.reconcile skip $(DATASET) $(DAY) --reason "$(REASON)"

# The production topology (docker/docker-compose.yaml) as local processes, on this machine's
# PostgreSQL (127.0.0.1:5432) and Redis (6379): see README, "Run the stack without Docker".
stack: $(STAMP)
	@$(BIN)/python -m governance.stack up

stack-status: $(STAMP)
	@$(BIN)/python -m governance.stack status

stack-down: $(STAMP)
	@$(BIN)/python -m governance.stack down

# ruff's Airflow rules (AIR3 and the preview ones) run on their own: preview applies to them only.
lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff check --preview --select AIR . \
		&& $(BIN)/ruff format --check . && $(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_privacy.py
	$(BIN)/python bench/bench_near_dedup.py
	$(BIN)/python bench/bench_pipeline.py
	$(BIN)/python bench/bench_audit.py
	$(BIN)/python bench/bench_agreement.py
	$(BIN)/python bench/bench_aggregation.py
	$(BIN)/python bench/bench_dag_parse.py
	$(BIN)/python bench/bench_search.py
	$(BIN)/python bench/bench_ddp.py

clean:
	-$(BIN)/python -m governance.stack down 2>/dev/null
	rm -rf $(AIRFLOW_HOME) .airflow-test data mlflow .stack .stack-test
