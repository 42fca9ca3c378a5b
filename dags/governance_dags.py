"""Nightly governance DAGs: one ``govern_<dataset>`` per contract in include/contracts/."""

from governance_airflow.factory import build_all

globals().update(build_all())
