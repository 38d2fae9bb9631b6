"""Unattended operation on APScheduler 3: crawls per store, incremental analysis, the weekly report, retention.

Everything lives in one data directory (``FINMON_DATA_DIR``)::

    jobs.sqlite             the persistent job store (stable job ids, next run times survive restarts)
    scheduler.lock          held (flock) by the one running scheduler
    crawls/<run id>/<store>/ snapshots: listings.jsonl, policies.jsonl, apks.jsonl, errors.jsonl, run.json
    state/<store>/latest    the store's last complete snapshot (conditional requests, analysis input)
    state/<store>/pending   an unfinished crawl (run id, attempt): the next run resumes it
    state/<store>/jobdir    Scrapy's JOBDIR of that unfinished crawl
    finmon.db               the index (unless FINMON_ES_URL)
    reports/                the weekly report archive: reports/<ISO week>/ per week, reports/index.html lists them
    report                  a link to reports/ (the report's place before the archive)

Jobs run one at a time, so they never overlap, and each has ``max_instances=1``, coalescing and a
misfire grace time. Every due job gets a thread at once and waits for its turn (:class:`Turns`): the
waiting job that ran least recently goes first, so no store is starved by the others however long
their crawls take, and time spent waiting never counts as a misfire. A crawl runs as a subprocess with a
time limit; a failed crawl is retried from scratch with backoff; SIGTERM (or the time limit) stops it
gracefully and its JOBDIR checkpoint is resumed by the next run. Every attempt is a Run in the index.
"""
from __future__ import annotations

import fcntl
import itertools
import json
import logging
import os
import shutil
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from finmon import jobs, settings
from finmon.model import Run, utcnow
from index.base import IndexMissing

log = logging.getLogger(__name__)

REPORT_JOB, RETENTION_JOB, WAKEUP_JOB = "report:weekly", "retention", "wakeup"
STOP = threading.Event()  # set by SIGTERM: running crawls checkpoint and stop, retries give up


class SchedulerError(RuntimeError):
    """The scheduler cannot run as asked (another one holds the lock, an unknown job, a bad trigger)."""


@dataclass
class Config:
    """The schedule: settings, overridden from the environment (FINMON_DATA_DIR, FINMON_SCHEDULE_*)."""

    data_dir: Path
    timezone: str
    crawls: dict[str, dict[str, Any]]
    report: dict[str, Any]
    retention: dict[str, Any]
    retention_days: float
    misfire_grace: int
    crawl_time_limit: float
    crawl_retries: int
    retry_backoff: float
    wakeup: float
    crawl_processes: int = 1

    @classmethod
    def from_env(cls, data_dir: str | Path | None = None) -> "Config":
        def value(name: str):
            raw = os.environ.get(f"FINMON_SCHEDULE_{name}")
            if not raw:
                return getattr(settings, f"SCHEDULE_{name}")
            try:
                return json.loads(raw)
            except ValueError as exc:
                raise SchedulerError(f"FINMON_SCHEDULE_{name} is not JSON: {exc}") from None

        def number(name: str, kind=float):
            raw = value(name)
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw < 0:
                raise SchedulerError(f"FINMON_SCHEDULE_{name} must be a number ≥ 0, not {raw!r}")
            return kind(raw)

        path = data_dir or os.environ.get("FINMON_DATA_DIR") or settings.SCHEDULE_DATA_DIR
        cfg = cls(Path(path).resolve(), value("TIMEZONE"), value("CRAWLS"), value("REPORT"), value("RETENTION"),
                  number("RETENTION_DAYS"), number("MISFIRE_GRACE_SECONDS", int), number("CRAWL_TIME_LIMIT"),
                  number("CRAWL_RETRIES", int), number("RETRY_BACKOFF"), number("WAKEUP_SECONDS"),
                  max(number("CRAWL_PROCESSES", int), 1))
        cfg._check_triggers()
        return cfg

    def _check_triggers(self) -> None:
        """Every configured trigger parses, so a typo is an error at start-up rather than a job that never runs."""
        try:
            ZoneInfo(self.timezone)
        except (ValueError, TypeError, LookupError):
            raise SchedulerError(f"FINMON_SCHEDULE_TIMEZONE: unknown time zone {self.timezone!r}") from None
        if not isinstance(self.crawls, dict) or not all(isinstance(s, dict) for s in self.crawls.values()):
            raise SchedulerError(f"FINMON_SCHEDULE_CRAWLS must map each store to a trigger, not {self.crawls!r}")
        named = {f"CRAWLS[{store}]": spec for store, spec in self.crawls.items()}
        for name, spec in {**named, "REPORT": self.report, "RETENTION": self.retention}.items():
            try:
                _trigger(spec, self.timezone)
            except (ValueError, TypeError, LookupError) as exc:
                raise SchedulerError(f"FINMON_SCHEDULE_{name}: bad trigger {spec!r}: {exc}") from None

    @property
    def allow_hosts(self) -> list[str]:
        """Private/loopback hosts whose policy URLs may be fetched (env FINMON_ALLOWED_PRIVATE_HOSTS, comma-separated)."""
        raw = os.environ.get("FINMON_ALLOWED_PRIVATE_HOSTS")
        return [h.strip() for h in raw.split(",") if h.strip()] if raw else list(settings.FINMON_ALLOWED_PRIVATE_HOSTS)

    @property
    def frontier(self) -> str:
        """The Redis the crawls are shared through (FINMON_FRONTIER); "" when each crawl keeps its own queue."""
        return os.environ.get("FINMON_FRONTIER", settings.FINMON_FRONTIER)

    @property
    def store_urls(self) -> dict[str, str]:
        """The crawled stores and their URLs (settings, FINMON_STORE_<NAME>); stores without a URL are left out."""
        urls = jobs.env_store_urls(settings.FINMON_STORES)
        return {store: urls[store] for store in self.crawls if urls.get(store)}

    # --- the data directory ------------------------------------------------------
    @property
    def jobstore(self) -> Path:
        return self.data_dir / "jobs.sqlite"

    @property
    def report_archive(self) -> Path:
        return self.data_dir / "reports"

    def state(self, store: str) -> Path:
        path = self.data_dir / "state" / store
        path.mkdir(parents=True, exist_ok=True)
        return path

    def latest(self, store: str) -> Path | None:
        """The store's last complete snapshot directory, if any."""
        pointer = self.state(store) / "latest"
        if not pointer.exists():
            return None
        path = Path(pointer.read_text(encoding="utf-8").strip())
        return path if path.is_dir() else None

    def pending(self, store: str) -> dict[str, Any] | None:
        pointer = self.state(store) / "pending"
        return json.loads(pointer.read_text(encoding="utf-8")) if pointer.exists() else None

    def open_store(self, read_only: bool = False):
        """The index: FINMON_ES_URL, else FINMON_DB, else finmon.db in the data directory."""
        if not read_only:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        return jobs.open_store(Path(os.environ.get("FINMON_DB") or self.data_dir / "finmon.db"), read_only=read_only)


def _write(path: Path, text: str) -> None:
    """Replace a small state file atomically."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _new_run(kind: str, job: str, attempt: int = 1, run_id: str | None = None) -> Run:
    run = jobs.new_run(kind)
    run.id, run.job, run.attempt = f"{run_id or run.id}#{attempt}", job, attempt
    return run


# --- jobs (module-level functions: the persistent job store refers to them by name) -------------

class Turns:
    """One job at a time, taken in turns: of the jobs waiting, the one whose last turn began earliest (or that
    never had one) goes next; jobs that never ran go in the order they arrived.

    With one worker thread and APScheduler's first-come order instead, a job that is running when it falls due
    again is skipped, not queued, and when several jobs fall due together the one with the earliest next run
    time always goes first: at short intervals one store was crawled twice in a row while another waited, and
    at long ones a job queued behind others for longer than its misfire grace time was dropped without running.
    """

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._cond = threading.Condition()
        self._running: str | None = None
        self._waiting: dict[str, int] = {}  # job id -> arrival number
        self._last_turn: dict[str, int] = {}  # job id -> number of its last turn
        self._numbers = itertools.count()

    def run(self, job_id: str, func, *args) -> bool:
        """Wait for ``job_id``'s turn and run ``func(*args)``; False (not run) when ``stop`` is set first."""
        with self._cond:
            self._waiting[job_id] = next(self._numbers)
            try:
                while self._running is not None or self._next() != job_id:
                    if self._stop.is_set():
                        return False
                    self._cond.wait(0.5)
                if self._stop.is_set():
                    return False
                self._running = job_id
                self._last_turn[job_id] = next(self._numbers)
            finally:
                del self._waiting[job_id]
                self._cond.notify_all()
        try:
            func(*args)
        finally:
            with self._cond:
                self._running = None
                self._cond.notify_all()
        return True

    def _next(self) -> str:
        return min(self._waiting, key=lambda j: (self._last_turn.get(j, -1), self._waiting[j]))

    def wait_idle(self) -> None:
        """Block until no job is running (waiting ones give up once ``stop`` is set)."""
        with self._cond:
            while self._running is not None:
                self._cond.wait(0.5)


TURNS = Turns(STOP)


def _exclusive(job_id: str, func, *args) -> None:
    """Run a job body in its turn, and not at all once the scheduler is stopping."""
    TURNS.run(job_id, func, *args)


def crawl_job(data_dir: str, store: str) -> None:
    """Crawl one store (resuming an unfinished crawl), retrying failures, then analyse incrementally."""
    _exclusive(f"crawl:{store}", _crawl_job, data_dir, store)


def _crawl_job(data_dir: str, store: str) -> None:
    cfg = Config.from_env(data_dir)
    url = cfg.store_urls.get(store)
    if not url:
        raise SchedulerError(f"no URL for store {store!r}: set FINMON_STORE_{store.upper()}")
    state, index = cfg.state(store), cfg.open_store()
    try:
        pending = cfg.pending(store)
        if pending:  # a crawl stopped by SIGTERM, a time limit or a killed scheduler: resume its JOBDIR ...
            run_id, attempt = pending["run_id"], pending["attempt"] + 1
            # ... if it checkpointed (wrote its run record); else run it again from scratch. A shared crawl's
            # queue is in Redis: it resumes by joining the same frontier crawl again.
            shared = pending.get("frontier_crawl") if cfg.frontier else None
            resume = bool(shared) or _wait_for_previous_crawl(cfg.data_dir / "crawls" / run_id / store)
        else:
            run_id, attempt, resume = f"crawl-{store}-{time.strftime('%Y%m%dT%H%M%S')}", 1, False
        retries = 0
        while True:
            if not resume:
                shutil.rmtree(state / "jobdir", ignore_errors=True)
                shared = f"{run_id}-{attempt}-{uuid.uuid4().hex[:6]}" if cfg.frontier else None  # a fresh one
            _write(state / "pending", json.dumps({"run_id": run_id, "attempt": attempt, "frontier_crawl": shared}))
            run = _new_run("crawl", f"crawl:{store}", attempt, run_id)
            index.save_run(run)
            outcome = _crawl_once(cfg, store, url, run_id, run, resume, index, shared)
            if outcome in ("ok", "interrupted"):
                break
            if retries >= cfg.crawl_retries or STOP.wait(cfg.retry_backoff * 2 ** retries):
                (state / "pending").unlink(missing_ok=True)  # given up: the next run starts afresh
                return
            retries, attempt, resume = retries + 1, attempt + 1, False
        if outcome == "ok":
            _write(state / "latest", str(cfg.data_dir / "crawls" / run_id / store))
            (state / "pending").unlink(missing_ok=True)
            shutil.rmtree(state / "jobdir", ignore_errors=True)
            latest = [p for p in (cfg.latest(s) for s in cfg.crawls) if p is not None]
            jobs.analyze(latest, index, incremental=True, job="analyze", alert_ledger=cfg.data_dir / "alerts.sqlite")
    finally:
        index.close()


def _crawl_once(cfg: Config, store: str, url: str, run_id: str, run: Run, resume: bool, index,
                shared: str | None = None) -> str:
    """One crawl subprocess (or, on a frontier, ``cfg.crawl_processes`` of them sharing the frontier crawl
    ``shared`` with the crawler hosts); the Run gets its counters and outcome. Returns the outcome."""
    previous = cfg.latest(store)
    overrides = {"JOBDIR": str(cfg.state(store) / "jobdir"), "FINMON_RUN_ID": run.id, "FINMON_RESUME": resume,
                 "FINMON_PREVIOUS_SNAPSHOT": str(previous) if previous else ""}
    if shared:
        overrides.update(FINMON_FRONTIER=cfg.frontier, FINMON_FRONTIER_CRAWL=shared)
    if store in jobs.LOOKUP_STORES:  # looks up the apps the other stores' latest crawls listed
        others = (cfg.latest(s) for s in cfg.crawls if s != store)
        overrides["FINMON_LOOKUP_LISTINGS"] = sorted(str(f) for p in others if p is not None
                                                     for f in p.rglob("listings.jsonl"))
    out = cfg.data_dir / "crawls" / run_id
    (result,) = jobs.crawl(out, {store: url}, cfg.allow_hosts, timeout=cfg.crawl_time_limit, overrides=overrides,
                           stop=STOP, processes=cfg.crawl_processes if shared else 1)
    run.counters, run.ended = result.counters, utcnow()
    run.outcome = result.outcome
    if result.outcome != "ok":
        run.error = "stopped (SIGTERM or time limit): resumes next run" if result.outcome == "interrupted" else (
            f"crawl failed; see crawl.log in {out / store}")
    index.save_run(run)
    return run.outcome


def _wait_for_previous_crawl(snapshot: Path, timeout: float | None = None) -> bool:
    """A crawl orphaned by a killed scheduler stops gracefully and checkpoints: wait until it wrote its run.json
    (at most ``timeout`` seconds, by default its stop grace and a little more). False when it never did (it was
    killed outright): its checkpoint cannot be trusted."""
    deadline = time.monotonic() + (settings.FINMON_CRAWL_STOP_GRACE + 5 if timeout is None else timeout)
    while snapshot.is_dir() and not (snapshot / "run.json").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    if not (snapshot / "run.json").exists():
        log.warning("%s: the interrupted crawl left no run record; it runs again from scratch", snapshot)
        return False
    return True


def report_job(data_dir: str) -> None:
    """Render the weekly report into the archive ``<data dir>/reports/`` (its week's folder and the index)."""
    _exclusive(REPORT_JOB, _report_job, data_dir)


def _report_job(data_dir: str) -> None:
    from reports.archive import archived_weeks, render_archive

    cfg = Config.from_env(data_dir)
    index = cfg.open_store()
    run = _new_run("report", REPORT_JOB)
    index.save_run(run)
    try:
        path = render_archive(index, cfg.report_archive, lang=settings.FINMON_LANG)
        _link_report_to_archive(cfg)
        run.outcome, run.counters = "ok", {"pages": len(list(path.parent.glob("*.html"))),
                                           "weeks": len(archived_weeks(cfg.report_archive))}
        log.info("weekly report at %s", path)
    except Exception as exc:
        run.outcome, run.error = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        run.ended = utcnow()
        index.save_run(run)
        index.close()


def _link_report_to_archive(cfg: Config) -> None:
    """Keep ``<data dir>/report/index.html``, where the report was before the archive, working: ``report`` becomes a
    link to the archive, whose index lists the weeks. A report an earlier version left there is moved aside to
    ``report.before-archive``, never deleted; a link the operator made is left alone."""
    link = cfg.data_dir / "report"
    if link.is_symlink():
        return
    try:
        if link.exists():
            aside = link.with_name("report.before-archive")
            if aside.exists():
                log.warning("%s is left as it is (%s exists too): the weekly reports are in %s",
                            link, aside, cfg.report_archive)
                return
            link.rename(aside)
            log.warning("the report written before the archive is now %s; %s links to the archive %s",
                        aside, link, cfg.report_archive)
        link.symlink_to(cfg.report_archive.name, target_is_directory=True)
    except OSError as exc:
        log.warning("%s cannot link to the archive (%s): the weekly reports are in %s", link, exc, cfg.report_archive)


def retention_job(data_dir: str) -> None:
    """Delete crawl snapshots older than the retention period, except each store's latest and pending ones, and
    except the WARC files of the evidence archive that a finding in the index, or a kept latest snapshot, cites."""
    _exclusive(RETENTION_JOB, _retention_job, data_dir)


def _retention_job(data_dir: str) -> None:
    cfg = Config.from_env(data_dir)
    latest = [p for p in (cfg.latest(s) for s in cfg.crawls) if p is not None]
    keep = {p.parent.name for p in latest}
    keep |= {p["run_id"] for p in (cfg.pending(s) for s in cfg.crawls) if p}
    cutoff = time.time() - cfg.retention_days * 86400
    snapshots = sorted((cfg.data_dir / "crawls").glob("*"))
    old = [snapshot for snapshot in snapshots if snapshot.name not in keep and snapshot.stat().st_mtime < cutoff]
    index = cfg.open_store()
    try:
        # read before anything is deleted: an index that cannot be read deletes nothing
        cited = _cited_warc_files(index, latest) if old else set()
        deleted = warcs = 0
        for snapshot in old:
            held = _delete_all_but(snapshot, cited)
            deleted += not held
            warcs += held
        run = _new_run("retention", RETENTION_JOB)
        run.outcome, run.ended = "ok", utcnow()
        run.counters = {"deleted": deleted, "kept": len(snapshots) - len(old), "warcs_kept": warcs}
        index.save_run(run)
    finally:
        index.close()


def _cited_warc_files(index, latest: list[Path]) -> set[Path]:
    """Real paths of the WARC files some finding in the index cites (resolved ones too), or the lines of the
    stores' latest snapshots (a capture carried forward on 304, which the next analysis cites)."""
    from finmon.evidence import warc_file

    cited = {Path(os.path.realpath(file)) for file in map(warc_file, index.captures()) if file is not None}
    for snapshot in latest:
        cited |= jobs.snapshot_warc_files(snapshot)
    return cited


def _delete_all_but(snapshot: Path, cited: set[Path]) -> int:
    """Delete a snapshot folder but the WARC files in ``cited``; returns how many it kept (0: the folder is gone).
    A folder left holding only those keeps its time, so a later run deletes what is no longer cited."""
    moment = snapshot.stat().st_mtime
    held = 0
    for path in sorted(snapshot.rglob("*"), key=lambda p: len(p.parts), reverse=True):  # files before their folders
        if path.is_dir() and not path.is_symlink():
            if not any(path.iterdir()):
                path.rmdir()
        elif Path(os.path.realpath(path)) in cited and not path.is_symlink():
            held += 1
        else:
            path.unlink()
    if held:
        os.utime(snapshot, (moment, moment))
        log.info("%s deleted but %d WARC file(s) findings still cite", snapshot, held)
    else:
        snapshot.rmdir()
    return held


def _wakeup() -> None:
    """Nothing: its interval makes the scheduler reread the job store (for ``finmon schedule trigger``)."""


# --- the scheduler ------------------------------------------------------------------

def _trigger(spec: dict[str, Any], tz: str):
    if not isinstance(spec, dict):
        raise TypeError("a trigger is an object with 'cron' or 'interval'")
    if "cron" in spec:
        if not isinstance(spec["cron"], str):
            raise TypeError("'cron' is a crontab line such as \"0 2 * * *\"")
        return CronTrigger.from_crontab(spec["cron"], timezone=tz)
    if "interval" in spec:
        if float(spec["interval"]) <= 0:
            raise ValueError("the interval must be a positive number of seconds")
        return IntervalTrigger(seconds=float(spec["interval"]), timezone=tz)
    raise ValueError("a trigger needs 'cron' or 'interval'")


def job_specs(cfg: Config) -> dict[str, tuple[Any, dict[str, Any], Any]]:
    """Job id → (function, kwargs, trigger) for the configured schedule."""
    data_dir = str(cfg.data_dir)
    specs = {f"crawl:{store}": (crawl_job, {"data_dir": data_dir, "store": store},
                                _trigger(cfg.crawls[store], cfg.timezone)) for store in cfg.store_urls}
    specs[REPORT_JOB] = (report_job, {"data_dir": data_dir}, _trigger(cfg.report, cfg.timezone))
    specs[RETENTION_JOB] = (retention_job, {"data_dir": data_dir}, _trigger(cfg.retention, cfg.timezone))
    return specs


def build_scheduler(cfg: Config, cls: type[BaseScheduler] = BlockingScheduler, run_now: tuple[str, ...] = ()):
    """A scheduler over the persistent job store, its jobs synced with the configuration.

    Jobs keep an earlier next run time found in the job store (a missed run, a ``trigger``); ids in
    ``run_now`` are due at once; stored jobs no longer configured are removed.
    """
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    specs = job_specs(cfg)
    sched = cls(  # a thread for every job: a due job starts at once and waits for its turn (Turns)
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{cfg.jobstore}"), "volatile": MemoryJobStore()},
        executors={"default": ThreadPoolExecutor(len(specs)), "wakeup": ThreadPoolExecutor(1)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": cfg.misfire_grace},
        timezone=cfg.timezone,
    )
    stored = _stored_next_runs(cfg, remove_others=True)
    now = datetime.now(timezone.utc)
    for job_id, (func, kwargs, trigger) in specs.items():
        due = trigger.get_next_fire_time(None, now)
        if job_id in run_now:
            due = now
        elif stored.get(job_id) is not None and (due is None or stored[job_id] < due):
            due = stored[job_id]
        sched.add_job(func, trigger, id=job_id, name=job_id, kwargs=kwargs, replace_existing=True, next_run_time=due)
    sched.add_job(_wakeup, IntervalTrigger(seconds=cfg.wakeup), id=WAKEUP_JOB, jobstore="volatile",
                  executor="wakeup", replace_existing=True)
    return sched


class _Editor(BackgroundScheduler):
    """A scheduler that only reads and edits the job store: it never runs a job."""

    def _process_jobs(self):
        return None


def _stored_next_runs(cfg: Config, remove_others: bool = False) -> dict[str, datetime | None]:
    """The jobs in the job store and their next run times, read without running anything
    (``remove_others``: stored jobs the configuration no longer has are deleted)."""
    if not cfg.jobstore.exists():
        return {}
    store = SQLAlchemyJobStore(url=f"sqlite:///{cfg.jobstore}")
    reader = _Editor(jobstores={"default": store}, timezone=cfg.timezone)
    reader.start(paused=True)
    try:
        stored = {job.id: job.next_run_time for job in reader.get_jobs()}
        if remove_others:
            for job_id in set(stored) - set(job_specs(cfg)):
                reader.remove_job(job_id)
                del stored[job_id]
        return stored
    finally:
        reader.shutdown(wait=False)


class Lock:
    """An exclusive flock on ``scheduler.lock``: one scheduler per data directory (released when it dies)."""

    def __init__(self, cfg: Config) -> None:
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = cfg.data_dir / "scheduler.lock"
        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.seek(0)
            holder = self.fh.read().strip() or "?"
            self.fh.close()
            raise SchedulerError(f"another scheduler (pid {holder}) is running on {cfg.data_dir}") from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(str(os.getpid()))
        self.fh.flush()

    @staticmethod
    def holder(cfg: Config) -> int | None:
        """The pid of the running scheduler, or None."""
        path = cfg.data_dir / "scheduler.lock"
        if not path.exists():
            return None
        with open(path, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                text = fh.read().strip()
                return int(text) if text.isdigit() else -1
            fcntl.flock(fh, fcntl.LOCK_UN)
            return None

    def release(self) -> None:
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def recover(cfg: Config) -> tuple[str, ...]:
    """After a crash: mark scheduler runs left "running" as interrupted; return the crawl jobs to resume at once."""
    index = cfg.open_store()
    try:  # this scheduler holds the scheduler lock: no run of a job can still be in progress
        jobs.interrupt_stale_runs(index, orphaned=lambda row: bool(row.get("job")),
                                  reason="the scheduler stopped during this run (killed or crashed)")
    finally:
        index.close()
    return tuple(f"crawl:{store}" for store in cfg.store_urls if cfg.pending(store))


def stop_on_signal(sched) -> Callable[[int, Any], None]:
    """A signal handler that stops the scheduler: it sets STOP and shuts ``sched`` down from another thread.

    The handler runs in the main thread wherever it was, perhaps inside an executor's ``submit`` holding the
    executor's lock, which the shutdown takes too: shut down from the handler itself, the process deadlocked.
    """
    def stop(signum: int, frame: Any) -> None:
        log.warning("signal %s: stopping (a running crawl checkpoints first)", signum)
        STOP.set()
        threading.Thread(target=sched.shutdown, kwargs={"wait": False}, name="stop", daemon=True).start()

    return stop


def run(cfg: Config) -> None:
    """Run the scheduler in the foreground until SIGTERM/SIGINT (which stops a running crawl gracefully)."""
    from finmon import alerts

    try:  # a typo in the alerts' settings is an error at start-up, not alerts that never go out
        alerts.AlertConfig.from_env()
    except alerts.AlertConfigError as exc:
        raise SchedulerError(str(exc)) from None
    lock = Lock(cfg)
    try:
        STOP.clear()
        sched = build_scheduler(cfg, run_now=recover(cfg))
        stop = stop_on_signal(sched)
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        log.info("scheduler on %s (pid %d): %s", cfg.data_dir, os.getpid(), ", ".join(job_specs(cfg)))
        sched.start()
        TURNS.wait_idle()  # the job running at the signal finishes (a crawl checkpoints) before the lock is released
    finally:
        lock.release()


def trigger(cfg: Config, job_id: str) -> datetime:
    """Make ``job_id`` due now in the job store; a running scheduler starts it within its wakeup interval."""
    if job_id not in job_specs(cfg):
        raise SchedulerError(f"unknown job {job_id!r}; jobs: {', '.join(job_specs(cfg))}")
    sched = build_scheduler(cfg, _Editor, run_now=(job_id,))
    sched.start(paused=True)
    try:
        return sched.get_job(job_id).next_run_time
    finally:
        sched.shutdown(wait=False)


def listing(cfg: Config) -> list[dict[str, Any]]:
    """Every configured job: id, trigger and next run time (as stored)."""
    stored = _stored_next_runs(cfg)
    out = []
    for job_id, (_, _, trig) in job_specs(cfg).items():
        due = stored.get(job_id) if job_id in stored else trig.get_next_fire_time(None, datetime.now(timezone.utc))
        out.append({"id": job_id, "trigger": str(trig), "next_run": due.isoformat() if due else None})
    return out


def status(cfg: Config) -> list[dict[str, Any]]:
    """Per job: its next run and its last run from the index's run history (an analysis counts for crawls)."""
    try:
        index = cfg.open_store(read_only=True)
    except IndexMissing:  # nothing has run yet
        index = None

    def last_run(job_id: str) -> dict[str, Any] | None:
        last = index.runs(limit=1, job=job_id) if index is not None else []
        return last[0] if last else None

    try:
        rows = [{**job, "last_run": last_run(job["id"])} for job in listing(cfg)]
        rows.append({"id": "analyze", "trigger": "after each crawl", "next_run": None, "last_run": last_run("analyze")})
        return rows
    finally:
        if index is not None:
            index.close()
