"""Airflow-facing pieces of the governance DAGs: the factory, the sensor and the task adapter."""
