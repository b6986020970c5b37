"""Alerting: the monthly review's alert-tuning deep dive (:mod:`kaizen.alerting.tuning`),
from the PagerDuty alerts and incidents landed by :mod:`kaizen.sources.pagerduty`."""
