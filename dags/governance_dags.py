"""Per contract in include/contracts/: the nightly ``govern_<dataset>`` DAG and the
``finetune_<dataset>`` DAG scheduled on its curated Asset."""

from governance_airflow.catalog import build_all

globals().update(build_all())
