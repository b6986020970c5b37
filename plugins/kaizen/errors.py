"""One error hierarchy for Kaizen (stdlib only). Every error Kaizen raises on purpose is
a :class:`KaizenError` whose message says what failed and what to do, and which tells
whether retrying can help:

- :class:`PermanentError` — a wrong parameter, a revoked token, a missing channel, a
  body the service refuses, a ledger that must be repaired by hand: retrying changes
  nothing, so the task fails at once and the final-failure alert goes out now;
- :class:`TransientError` — a timeout, a 5xx, a rate limit that outlived its retry
  bound, a database that is down: Airflow's retries (with backoff) may clear it.

A class whose instances can be either (a source or Slack error decided by the
answer) sets ``transient`` per instance. The mapping to Airflow happens once, at the
task boundary (:func:`at_task_boundary`, used by :func:`kaizen.dag_defaults.task`)."""

from __future__ import annotations

import functools


class KaizenError(Exception):
    """Base of Kaizen's errors; ``transient`` says whether a retry may succeed."""

    transient = False

    def __init__(self, message: str = "", *, transient: bool | None = None):
        super().__init__(message)
        if transient is not None:
            self.transient = transient


class PermanentError(KaizenError):
    """Retrying cannot help: fix the input, the configuration or the data first."""

    transient = False


class TransientError(KaizenError):
    """Retrying may help: a timeout, an outage, a rate limit."""

    transient = True


def is_permanent(exc: BaseException) -> bool:
    return isinstance(exc, KaizenError) and not exc.transient


def at_task_boundary(fn):
    """``fn`` with its permanent Kaizen errors raised as Airflow's
    ``AirflowFailException`` (the task fails without using its retries); every other
    exception is raised as it is (transient ones are retried)."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KaizenError as exc:
            if not is_permanent(exc):
                raise
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"{type(exc).__name__} (permanent, not retried): {exc}") from exc

    return run
