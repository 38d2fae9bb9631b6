from datetime import datetime, timezone

import scheduler


def test_weekly_job_is_stable_single_instance_and_due_monday_morning_in_shanghai():
    sched = scheduler.build_scheduler(out_dir="out", db_path="out/finmon.db")
    (job,) = sched.get_jobs()
    assert job.id == scheduler.WEEKLY_JOB_ID
    assert job.max_instances == 1 and job.coalesce
    due = job.trigger.get_next_fire_time(None, datetime(2026, 11, 24, tzinfo=timezone.utc))  # a Tuesday
    assert due.isoformat() == "2026-11-30T08:00:00+08:00"
