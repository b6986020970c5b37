"""Kaizen inside the Airflow UI: the FastAPI app the plugin mounts at ``/kaizen``
(:mod:`kaizen.ui.app`), what its page reads from the warehouse (:mod:`kaizen.ui.queries`)
and the "Kaizen report" link on review runs (:mod:`kaizen.ui.links`). Nothing here is
imported at parse time by the DAGs."""
