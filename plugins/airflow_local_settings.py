"""Airflow's local settings: the project's cluster policy.

Airflow imports a module of this name at start-up (``airflow.settings.import_local_settings``) from
``sys.path``, which holds the plugins folder (``[core] plugins_folder``, added by Airflow itself)
and ``PYTHONPATH``. Every process that bags DAGs (dag-processor, ``airflow dags test``, a test's
DagBag) therefore applies the policy, with no package to install.
"""

from __future__ import annotations

from governance_airflow.policy import task_policy

__all__ = ["task_policy"]
