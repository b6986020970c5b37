"""Kaizen: KPI rollups and review reports for the NIFTY 50 trading desk.

The package holds all logic and is importable without a running Airflow; the DAG
files in ``dags/`` only wire tasks to it. ``python -m kaizen --help`` runs any step.
"""

__version__ = "0.1.0"
