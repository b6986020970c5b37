"""
### Quarterly review

Posts the **quarterly review** for all stakeholders on the last Friday of each
calendar quarter at 10:00 IST — a meeting, so it runs on NSE holidays too — for the
quarter to date: comprehensive metrics, KPI achievement over the quarter's weeks,
error budget, DORA, with its document, charts and the Quarterly and Scorecard tabs.

**Period.** Quarter start to the meeting (quarter to date); a manual run takes
`period_start` (any date in the quarter).

**Writes.** `kpi_values` (grain `quarter`, recomputed), `report_deliveries`; Slack,
Sheets or `out/quarterly_review/<YYYY-Qn>/`. Re-runs update in place, never post twice.
"""

# Airflow parses this file; the DAG shape shared by the three reviews is kaizen.review_dags.
from kaizen.review_dags import review_dag
from kaizen.timetables import QuarterlyReviewTimetable

review_dag(
    "quarterly",
    QuarterlyReviewTimetable(hour=10, minute=0),
    __doc__,
    description="Quarterly review, quarter to date, last Friday of the quarter 10:00 IST: KPI achievement, error budget.",
)
