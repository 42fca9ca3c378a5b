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
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)/dags

DEMO_START ?= 2026-11-01
DEMO_DAYS ?= 4
DEMO_ITEMS ?= 400

.PHONY: help setup run test lint bench clean

help:
	@echo "make run    set up if needed, then run the nightly governance DAG on the demo feed"
	@echo "make test   set up if needed, then run every test"
	@echo "make lint | make bench | make clean"

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(AIRFLOW_HOME)/airflow.db: $(STAMP)
	mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/migrate.log 2>&1 || (cat $(AIRFLOW_HOME)/migrate.log; exit 1)

setup: $(STAMP) $(AIRFLOW_HOME)/airflow.db

run: export AIRFLOW__LOGGING__LOGGING_LEVEL := WARNING
run: setup
	$(BIN)/python -m governance_airflow.demo --start $(DEMO_START) --days $(DEMO_DAYS) \
		--items-per-day $(DEMO_ITEMS)

test: setup
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python bench/bench_near_dedup.py
	$(BIN)/python bench/bench_pipeline.py
	$(BIN)/python bench/bench_audit.py
	$(BIN)/python bench/bench_agreement.py
	$(BIN)/python bench/bench_dag_parse.py

clean:
	rm -rf $(AIRFLOW_HOME) .airflow-test data
