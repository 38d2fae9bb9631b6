"""Unattended operation: the weekly job (crawl → analyse → index → report) on APScheduler.

Thin for now: one job with a stable id, never overlapping, coalescing missed runs.
"""
from __future__ import annotations

import logging
from pathlib import Path

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from finmon import jobs, settings

log = logging.getLogger(__name__)

WEEKLY_JOB_ID = "weekly-monitoring"


def weekly_job(out_dir: str, db_path: str, lang: str) -> None:
    """Crawl the configured stores, analyse, index and render the report."""
    from reports.weekly import render_report

    out = Path(out_dir)
    store = jobs.open_store(Path(db_path))
    crawl_dir = out / "crawl"
    for run in jobs.crawl(crawl_dir, jobs.env_store_urls(settings.FINMON_STORES), settings.FINMON_ALLOWED_PRIVATE_HOSTS):
        store.save_run(run)
    jobs.analyze(crawl_dir, store)
    log.info("weekly report at %s", render_report(store, out / "report", lang=lang))


def build_scheduler(out_dir: str, db_path: str, lang: str = settings.FINMON_LANG) -> BlockingScheduler:
    """A scheduler with the weekly job (Monday 08:00 Asia/Shanghai)."""
    scheduler = BlockingScheduler(timezone=settings.SCHEDULE_TIMEZONE)
    scheduler.add_job(
        weekly_job,
        CronTrigger.from_crontab(settings.SCHEDULE_WEEKLY_CRON, timezone=settings.SCHEDULE_TIMEZONE),
        id=WEEKLY_JOB_ID,
        kwargs={"out_dir": out_dir, "db_path": db_path, "lang": lang},
        replace_existing=True,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=settings.SCHEDULE_MISFIRE_GRACE_SECONDS,
    )
    return scheduler
