"""The "Kaizen report" button on every task of a review run: an operator extra link
from a review run to the report it produced.

How Airflow 3.3 evaluates it (read in airflow/serialization/definitions/baseoperator.py
and airflow/sdk/execution_time/task_runner.py): links an operator defines are computed
by the worker when the task finishes and stored in XCom; *global* links registered by a
plugin (``global_operator_extra_links``) are computed by the API server each time the
UI asks for a task instance's links (``get_link(operator, ti_key=...)``). A ``@task``
cannot take an operator link of its own, so this is a global link, evaluated on the API
server: it finds the run's period in the XCom of the run's ``resolve_period`` task, and
the report's documents in the delivery ledger. Tasks of other DAGs get no link.

Light at import (the plugin imports it everywhere Airflow loads plugins): the XCom and
warehouse reads are imported when a link is asked for.
"""

from __future__ import annotations

import json
import logging

from airflow.sdk import BaseOperatorLink

log = logging.getLogger(__name__)

PERIOD_TASK = "resolve_period"  # every review DAG's first task; its XCom is the Period dict


def document_route(report: str, period_key: str) -> str:
    """Where the Kaizen app serves the outbox copy of a report, as an absolute path on
    the API server (under ``[api] base_url``'s path)."""
    from airflow.api_fastapi.app import API_ROOT_PATH

    return f"{API_ROOT_PATH}kaizen/reports/{report}/{period_key}/"


def run_period_key(dag_id: str, run_id: str) -> str | None:
    """The key of the period a review run reports on (``resolve_period``'s XCom), or None
    before that task has run."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        value = session.execute(
            XComModel.get_many(key="return_value", run_id=run_id, dag_ids=dag_id, task_ids=PERIOD_TASK,
                               map_indexes=-1).with_only_columns(XComModel.value)
        ).scalar()
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value.get("key") if isinstance(value, dict) else None


def report_link(report: str, period_key: str, engine=None) -> str:
    """The best place to open ``report`` of ``period_key`` (see
    :func:`kaizen.ui.queries.document_links`), or "" when it has not been delivered."""
    from kaizen import warehouse
    from kaizen.ui import queries

    with (engine or warehouse.get_engine()).connect() as conn:
        rows = queries.ledger_rows(conn, report, period_key)
    links = queries.document_links(rows, report, period_key, document_route(report, period_key))
    return links[0]["href"] if links else ""


class KaizenReportLink(BaseOperatorLink):
    """The review run's report: its published document, else its Slack channel, else
    its outbox copy on the Kaizen page, else its Google Sheet."""

    name = "Kaizen report"

    def get_link(self, operator, *, ti_key) -> str:
        from kaizen.ui.queries import REVIEWS

        if ti_key.dag_id not in REVIEWS:
            return ""
        import sqlalchemy as sa

        key = run_period_key(ti_key.dag_id, ti_key.run_id)
        if not key:
            return ""
        try:
            return report_link(ti_key.dag_id, key)
        except sa.exc.SQLAlchemyError as exc:  # the task page still shows; the link is what is missing
            log.warning("Kaizen report link of %s %s: the warehouse could not be read: %s", ti_key.dag_id, key, exc)
            return ""
