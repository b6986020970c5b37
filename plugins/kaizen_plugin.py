"""Registers Kaizen with Airflow:

- the timetables (a timetable that is not registered makes its DAG fail to serialise
  with TimetableNotRegistered);
- the API server's guard that refuses a bad kaizen_backfill form before a run exists,
  for callers Airflow would let trigger it (:mod:`kaizen.params_guard`);
- the Kaizen app at ``/kaizen`` on the API server (:mod:`kaizen.ui.app`: the page at
  ``/kaizen/``, JSON under ``/kaizen/api/``) and its "Kaizen" entry in the UI's
  navigation, which shows the page inside the UI;
- the "Kaizen report" link on the tasks of review runs (:mod:`kaizen.ui.links`).

Every Airflow process imports this file (scheduler, workers, DAG processor), so it
stays light: the app is built on the API server's first request to it.
"""

from airflow.plugins_manager import AirflowPlugin

from kaizen.params_guard import BackfillParamsGuard
from kaizen.timetables import ALL_TIMETABLES
from kaizen.ui.app import LazyApp
from kaizen.ui.links import KaizenReportLink


class KaizenPlugin(AirflowPlugin):
    name = "kaizen"
    timetables = ALL_TIMETABLES
    fastapi_root_middlewares = [
        {"middleware": BackfillParamsGuard, "args": [], "kwargs": {}, "name": "kaizen_backfill_params_guard"}
    ]
    fastapi_apps = [{"app": LazyApp(), "url_prefix": "/kaizen", "name": "Kaizen"}]
    # url_route: shown inside the UI (an iframe of /kaizen/ at /plugin/kaizen); the href
    # has no leading slash, so it resolves under [api] base_url like the UI's own links
    external_views = [{"name": "Kaizen", "href": "kaizen/", "url_route": "kaizen", "destination": "nav"}]
    global_operator_extra_links = [KaizenReportLink()]
