"""
### Monthly review

Posts the **monthly review** for engineering and business stakeholders on the first
Monday of each month at 14:00 IST, for the previous calendar month: trading
performance against goals, reliability (uptime, MTTR, MTTD, error budget), DORA,
period-over-period comparison, with its document, charts and the Monthly and
Scorecard tabs of the Google Sheet.

**Period.** The timetable's data interval is the previous month (cron cannot say
"first Monday"); a manual run takes `period_start` (any date in the month).

**Writes.** `kpi_values` (grain `month`, recomputed), `report_deliveries`; Slack,
Sheets or `out/monthly_review/<YYYY-MM>/`. Re-runs update in place, never post twice.
"""

# Airflow parses this file; the DAG shape shared by the three reviews is kaizen.review_dags.
from kaizen.review_dags import review_dag
from kaizen.timetables import MonthlyReviewTimetable

review_dag(
    "monthly",
    MonthlyReviewTimetable(hour=14, minute=0),
    __doc__,
    description="Monthly review of the previous month, first Monday 14:00 IST: trading against goals, reliability, DORA.",
)
