"""Team metrics (the source document's "Team Metrics" table): satisfaction from a Google
Forms survey, documentation coverage, tech talks and innovation-day participation from
the Sheet's hand-kept "Team" tab, and on-call incidents per week, per responder and for
the team, from PagerDuty.

- :mod:`kaizen.team.measures` — the KPIs of a scope (called by
  :func:`kaizen.kpis.measures.measure_scope`) and the per-responder on-call load;
- :mod:`kaizen.team.section` — the "Team" section of the monthly and quarterly reviews
  and the "Team metrics" tab of the Sheet;
- :mod:`kaizen.team.gsheets` — reading the tabs through connection ``kaizen_gsheets``.

The sources are :mod:`kaizen.sources.team_sheets` and :mod:`kaizen.sources.oncall`.
"""
