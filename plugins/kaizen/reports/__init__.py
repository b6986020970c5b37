"""Reports: plain models built from ``kpi_values`` and the landing tables, rendered
by one shared Jinja environment (:mod:`kaizen.reports.render`) from the templates in
``include/templates/`` — one template per report × channel. Rendering is pure;
sending is :mod:`kaizen.delivery`'s job."""
