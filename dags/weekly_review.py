"""
### Weekly review

Posts the engineering team's **weekly review** on Mondays at 10:00 IST for the
previous ISO week (Mon–Sun, IST): a Slack headline with the KPIs that matter and the
count of off-target KPIs; in its thread the KPI table against targets with trends,
every incident P0–P3 of the week, post-mortem action items (overdue first), recurring
incident patterns, error budget and DORA, and the charts. The review document
(Markdown and HTML) goes to the outbox for the meeting; the Weekly and Scorecard tabs
of the Google Sheet are upserted.

**Period.** The timetable's data interval is the week; a manual run takes
`period_start` (any date in the week).

**Writes.** `kpi_values` (grain `week`, recomputed), `report_deliveries`; Slack,
Sheets or `out/weekly_review/<YYYY-Www>/`. A re-run with changed figures updates the
same Slack message and adds a "Revised" note; unchanged, it sends nothing.
"""

# Airflow parses this file; the DAG shape shared by the three reviews is kaizen.review_dags.
from kaizen.review_dags import review_dag
from kaizen.timetables import WeeklyReviewTimetable

review_dag(
    "weekly",
    WeeklyReviewTimetable(hour=10, minute=0),
    __doc__,
    description="Weekly review of the previous ISO week, Mondays 10:00 IST: KPIs against targets, incidents, DORA.",
)
