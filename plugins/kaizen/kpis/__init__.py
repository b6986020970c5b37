"""KPIs: the catalog (``catalog.yaml``), status and trend rules, and the day-grain
computations from the ``raw_*`` landing tables into ``kpi_values``."""
