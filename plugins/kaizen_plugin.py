"""Registers Kaizen with Airflow: the timetables (a timetable that is not registered
makes its DAG fail to serialise with TimetableNotRegistered) and the API server's
guard that refuses a bad kaizen_backfill form with HTTP 400 before a run exists."""

from airflow.plugins_manager import AirflowPlugin

from kaizen.params_guard import BackfillParamsGuard
from kaizen.timetables import ALL_TIMETABLES


class KaizenPlugin(AirflowPlugin):
    name = "kaizen"
    timetables = ALL_TIMETABLES
    fastapi_root_middlewares = [
        {"middleware": BackfillParamsGuard, "args": [], "kwargs": {}, "name": "kaizen_backfill_params_guard"}
    ]
