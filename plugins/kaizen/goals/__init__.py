"""Goals and improvements: the quarter's OKRs (an "OKRs" tab people edit), the
improvement backlog (GitHub issues labelled ``improvement``) and what the monthly and
quarterly reviews say about them.

- :mod:`kaizen.goals.okrs` reads and validates the OKRs tab (Sheet or demo file);
- :mod:`kaizen.goals.scoring` is the OKR scoring rule (pure);
- :mod:`kaizen.goals.backlog` reads and validates the improvement issues;
- :mod:`kaizen.goals.impact` measures a closed improvement's KPIs before and after;
- :mod:`kaizen.goals.store` lands both for one review (``raw_okrs``,
  ``raw_improvements``, ``okr_scores``, ``improvement_impacts``, ``review_snapshots``);
- :mod:`kaizen.goals.section` builds the review sections (progress on quarterly goals,
  goal achievement, next quarter's OKRs, the backlog, the retrospective) from them.

A review's goals are a snapshot taken when the review runs (its compute step), keyed
by the review's period key (``2026-11``, ``2026-Q4``): a revision of the review later
shows the same snapshot, and a re-run of the review takes a fresh one.
"""
