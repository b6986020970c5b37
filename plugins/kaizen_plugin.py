"""Registers Kaizen's timetables with Airflow (a timetable that is not registered
makes its DAG fail to serialise with TimetableNotRegistered)."""

from airflow.plugins_manager import AirflowPlugin

from kaizen.timetables import ALL_TIMETABLES


class KaizenPlugin(AirflowPlugin):
    name = "kaizen"
    timetables = ALL_TIMETABLES
