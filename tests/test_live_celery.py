"""Live: daily_review and weekly_review end to end through the CeleryExecutor — the
session's stack (tests/live/fixtures.py): Redis broker, PostgreSQL metadata database
and result backend, worker w1 on the ``default`` queue and w2 on the deliver queue
(``KAIZEN_DELIVER_QUEUE=kaizen_deliver``), each with a KAIZEN_OUT_DIR the other cannot
see. Render runs on w1, deliver on w2 (TaskInstance hostname through the REST API),
and the charts render wrote reach Slack (the fake) from w2 through the artefact root.
That no process is left behind is asserted when the session's stack stops.

Also, not live: the deliver queue reaches exactly the Slack tasks, and the stack's
left-behind check and Redis database claim work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from kaizen import localstack

pytest_plugins = ["live.fixtures"]

DAY = "2026-11-27"
# ISO week 2026-W47: the demo's last whole review (W48's review, on 30 Nov, needs source
# data to 30 Nov, past the demo's end: its check_sources would fail, as it should)
WEEK_START = "2026-11-16"
# the tasks that talk to Slack, Sheets or GitHub: on the deliver queue when it is set
DELIVERERS = {
    "daily_review": {"post_daily_review", "revise_reviews", "revise_recovered", "read_out_experiments",
                     "draft_postmortems"},
    "weekly_review": {"deliver_review"},
    "kaizen_backfill": {"deliver_range"},
}


@pytest.mark.live
def test_daily_and_weekly_review_through_celery_render_and_deliver_on_different_workers(live):
    from live.fixtures import CHANNELS, DELIVER_QUEUE  # after pytest_plugins: its asserts rewritten

    stack, slack = live.stack, live.slack
    t0 = time.monotonic()
    daily = stack.trigger("daily_review", {"day": DAY, "deliver": "slack"}, run_id="live__celery_daily")
    weekly = stack.trigger("weekly_review", {"period_start": WEEK_START, "deliver": "slack"}, run_id="live__celery_weekly")
    runs = {}
    for dag_id, run in (("daily_review", daily), ("weekly_review", weekly)):
        runs[dag_id] = (stack.wait_run(dag_id, run["dag_run_id"], timeout=300),
                        stack.task_instances(dag_id, run["dag_run_id"]))
    print(f"\ndaily_review + weekly_review through Celery: {time.monotonic() - t0:.1f} s")

    for dag_id, (run, tis) in runs.items():
        states = {(ti["task_id"], ti["map_index"]): ti["state"] for ti in tis}
        assert run["state"] == "success" and set(states.values()) == {"success"}, (dag_id, states)
        for ti in tis:
            if ti["operator"] == "EmptyOperator":  # the scheduler marks it done; no worker runs it
                continue
            on_w2 = ti["task_id"] in DELIVERERS[dag_id]
            where = (ti["queue"], ti["hostname"])
            assert where == ((DELIVER_QUEUE, "w2") if on_w2 else ("default", "w1")), (dag_id, ti["task_id"], where)

    daily_tis, weekly_tis = ({ti["task_id"]: ti for ti in runs[d][1]} for d in ("daily_review", "weekly_review"))
    assert (daily_tis["render_daily_review"]["hostname"], daily_tis["post_daily_review"]["hostname"]) == ("w1", "w2")
    assert (weekly_tis["render_review"]["hostname"], weekly_tis["deliver_review"]["hostname"]) == ("w1", "w2")

    # what w2 sent: the daily review to the daily channel, the weekly headline to the
    # reviews channel with its charts — PNGs w1 rendered, read by w2 from the bucket
    posts = slack.top_level_posts()
    assert any(c.body["channel"] == CHANNELS["daily"] and DAY in str(c.body) for c in posts), \
        [c.body.get("text") for c in posts]
    assert any(c.body["channel"] == CHANNELS["reviews"] and "W47" in str(c.body) for c in posts), \
        [c.body.get("text") for c in posts]
    pngs = [data for data in slack.uploads.values() if data.startswith(b"\x89PNG\r\n\x1a\n")]
    in_bucket = {p.read_bytes() for p in live.artifact_root.rglob("*.png")}
    assert pngs and set(pngs) <= in_bucket, (len(pngs), len(in_bucket))
    if live.isolated:  # w1's local disk is not w2's: nothing w1 wrote there is visible outside w1
        assert not any((live.root / "hosts" / "w1").rglob("*.png"))


# -- not live ---------------------------------------------------------------------------
def test_deliver_queue_reaches_exactly_the_delivering_tasks(monkeypatch):
    """With KAIZEN_DELIVER_QUEUE set, the tasks that talk to Slack, Sheets or GitHub (every
    task of the Slack pool among them) go to that queue, and only they; unset, every
    task stays on Airflow's default queue."""
    from kaizen.cli import load_dag
    from kaizen.dag_defaults import SLACK_POOL

    monkeypatch.setenv("KAIZEN_DELIVER_QUEUE", "kaizen_deliver")
    for dag_id, expected in DELIVERERS.items():
        dag = load_dag(dag_id)
        queued = {t.task_id for t in dag.tasks if t.queue == "kaizen_deliver"}
        assert queued == expected, dag_id
        assert {t.task_id for t in dag.tasks if t.pool == SLACK_POOL} <= queued, dag_id
    monkeypatch.delenv("KAIZEN_DELIVER_QUEUE")
    assert {t.queue for t in load_dag("daily_review").tasks} == {"default"}


def test_leftovers_finds_a_process_that_left_its_session_and_stop_ends_the_group(tmp_path):
    """A stack's process that starts a session of its own escapes its group's SIGKILL;
    leftovers() still finds it by the marker it inherited."""
    stack = localstack.LocalStack(tmp_path)
    escape = "import os, subprocess, time; subprocess.Popen(['sleep', '60'], start_new_session=True); time.sleep(60)"
    stack.procs["parent"] = subprocess.Popen(
        [sys.executable, "-c", escape], env=stack.env, start_new_session=True
    )
    deadline = time.monotonic() + 10
    while len(stack.leftovers()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(stack.leftovers()) == 2
    stack.stop(grace=2)
    left = stack.leftovers()
    assert len(left) == 1 and "sleep 60" in left[0], left
    os.kill(int(left[0].split(":")[0]), signal.SIGKILL)
    deadline = time.monotonic() + 5
    while stack.leftovers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stack.leftovers() == []


def test_a_private_dir_is_seen_only_by_its_process(tmp_path):
    """What a worker writes to its private KAIZEN_OUT_DIR is not on anyone else's disk."""
    if not localstack.can_isolate():
        pytest.skip("this kernel does not let us unshare a mount namespace (not root?)")
    private = tmp_path / "host-disk"
    private.mkdir()
    command = localstack._isolated(["sh", "-c", f"echo w1 > {private}/chart.png && cat {private}/chart.png"],
                                   "w1", [private])
    out = subprocess.run(command, capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and out.stdout == "w1\n", out.stderr
    assert list(private.iterdir()) == []


def test_redis_databases_are_claimed_one_stack_each():
    if not localstack.port_answers("127.0.0.1", 6379):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Redis is required under CI=true and is not reachable at 127.0.0.1:6379")
        pytest.skip("Redis not reachable at 127.0.0.1:6379")
    import redis

    first = localstack.claim_redis_db()
    try:
        second = localstack.claim_redis_db()
        try:
            assert first != second and 1 <= min(first, second)
            r = redis.Redis.from_url(localstack.REDIS_URL, db=first)
            r.set("queue-entry", "x")
            localstack.release_redis_db(first)
            assert r.dbsize() == 0  # the stack's queues go with it
            r.close()
        finally:
            localstack.release_redis_db(second)
    finally:
        localstack.release_redis_db(first)
