"""The scheduler: configuration, the lock, the persistent job store, and whole runs against the simulator."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

import scheduler
from index.sqlite import SQLiteStore
from market.server import MarketServer

STORES = ("appgallery", "xiaomi")


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A data directory and a schedule (two stores, a report and retention far away) in the environment."""
    values = {
        "FINMON_DATA_DIR": str(tmp_path / "data"),
        "FINMON_STORE_ITUNES": "", "FINMON_STORE_APPGALLERY": "http://127.0.0.1:9/appgallery",
        "FINMON_STORE_XIAOMI": "http://127.0.0.1:9/xiaomi",
        "FINMON_SCHEDULE_CRAWLS": json.dumps({s: {"interval": 3600} for s in STORES}),
        "FINMON_ES_URL": "", "FINMON_DB": "",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def test_default_schedule_is_daily_crawls_and_a_monday_morning_report_in_shanghai(monkeypatch, tmp_path):
    monkeypatch.setenv("FINMON_DATA_DIR", str(tmp_path))
    for name in ("ITUNES", "APPGALLERY", "XIAOMI"):
        monkeypatch.setenv(f"FINMON_STORE_{name}", f"http://127.0.0.1:9/{name.lower()}")
    cfg = scheduler.Config.from_env()
    specs = scheduler.job_specs(cfg)
    assert set(specs) == {"crawl:itunes", "crawl:appgallery", "crawl:xiaomi", "report:weekly", "retention"}
    tuesday = datetime(2026, 11, 24, tzinfo=timezone.utc)
    assert specs["report:weekly"][2].get_next_fire_time(None, tuesday).isoformat() == "2026-11-30T08:00:00+08:00"
    assert specs["crawl:xiaomi"][2].get_next_fire_time(None, tuesday).isoformat() == "2026-11-25T03:00:00+08:00"


def test_environment_overrides_and_stores_without_url(env, monkeypatch):
    monkeypatch.setenv("FINMON_STORE_XIAOMI", "")
    cfg = scheduler.Config.from_env()
    assert cfg.data_dir == Path(env["FINMON_DATA_DIR"]).resolve()
    assert set(scheduler.job_specs(cfg)) == {"crawl:appgallery", "report:weekly", "retention"}
    monkeypatch.setenv("FINMON_SCHEDULE_REPORT", json.dumps({"every": 3}))
    with pytest.raises(scheduler.SchedulerError, match="'cron' or 'interval'"):
        scheduler.job_specs(scheduler.Config.from_env())
    monkeypatch.setenv("FINMON_SCHEDULE_REPORT", "{cron: 1}")
    with pytest.raises(scheduler.SchedulerError, match="FINMON_SCHEDULE_REPORT is not JSON"):
        scheduler.Config.from_env()


def test_one_scheduler_per_data_directory(env):
    cfg = scheduler.Config.from_env()
    assert scheduler.Lock.holder(cfg) is None
    lock = scheduler.Lock(cfg)
    try:
        assert scheduler.Lock.holder(cfg) == os.getpid()
        with pytest.raises(scheduler.SchedulerError, match=f"another scheduler \\(pid {os.getpid()}\\)"):
            scheduler.Lock(cfg)
    finally:
        lock.release()
    assert scheduler.Lock.holder(cfg) is None


def test_trigger_persists_and_unconfigured_jobs_are_dropped(env, monkeypatch):
    cfg = scheduler.Config.from_env()
    with pytest.raises(scheduler.SchedulerError, match="unknown job 'crawl:nosuch'"):
        scheduler.trigger(cfg, "crawl:nosuch")
    due = scheduler.trigger(cfg, "crawl:xiaomi")
    assert abs((datetime.now(timezone.utc) - due).total_seconds()) < 60
    jobs = {j["id"]: j for j in scheduler.listing(cfg)}
    assert datetime.fromisoformat(jobs["crawl:xiaomi"]["next_run"]) == due  # kept in the job store
    assert datetime.fromisoformat(jobs["crawl:appgallery"]["next_run"]) > due
    monkeypatch.setenv("FINMON_SCHEDULE_CRAWLS", json.dumps({"appgallery": {"interval": 3600}}))
    cfg = scheduler.Config.from_env()
    scheduler.trigger(cfg, "crawl:appgallery")
    assert {j for j in scheduler._stored_next_runs(cfg)} == {"crawl:appgallery", "report:weekly", "retention"}


def test_a_signal_inside_an_executor_submit_stops_the_scheduler_without_deadlock(env):
    """The handler runs in the main thread, maybe inside ThreadPoolExecutor.submit holding the executor's lock,
    which a shutdown takes too: the handler must return at once and the scheduler stop once the lock is free."""
    import threading

    sched = scheduler.build_scheduler(scheduler.Config.from_env(), scheduler.BackgroundScheduler)
    sched.start(paused=True)
    try:
        busy = sched._lookup_executor("default")._pool._shutdown_lock
        with busy:  # as in the middle of submitting a job
            handled = threading.Thread(target=scheduler.stop_on_signal(sched), args=(signal.SIGTERM, None))
            handled.start()
            handled.join(5)
            assert not handled.is_alive() and scheduler.STOP.is_set()  # the handler did not wait for the lock
        deadline = time.monotonic() + 10
        while sched.running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not sched.running
    finally:
        scheduler.STOP.clear()
        if sched.running:
            sched.shutdown(wait=False)


def test_turns_go_to_the_job_that_ran_least_recently_never_to_the_first_in_line():
    import threading

    turns, order = scheduler.Turns(threading.Event()), []

    def take(job_id, hold=None):
        def body():
            order.append(job_id)
            if hold is not None:
                assert hold.wait(10)
        return threading.Thread(target=turns.run, args=(job_id, body))

    def waiting(n):
        wait_for(lambda: len(turns._waiting) == n, 10, what=f"{n} waiting")

    for job in ("crawl:x", "crawl:a"):  # x had its turn before a
        thread = take(job)
        thread.start()
        thread.join()
    release = threading.Event()
    holder = take("report:weekly", release)
    holder.start()
    wait_for(lambda: order[-1:] == ["report:weekly"], 10, what="the report's turn")
    first, second = take("crawl:a"), take("crawl:x")
    first.start()
    waiting(1)  # a is first in line ...
    second.start()
    waiting(2)
    release.set()
    for thread in (holder, first, second):
        thread.join(10)
    assert order == ["crawl:x", "crawl:a", "report:weekly", "crawl:x", "crawl:a"]  # ... x ran less recently

    stop = threading.Event()
    turns = scheduler.Turns(stop)
    release.clear()
    holder = threading.Thread(target=turns.run, args=("crawl:a", lambda: release.wait(10)))
    holder.start()
    wait_for(lambda: turns._running == "crawl:a", 10, what="a running")
    result = []
    waiter = threading.Thread(target=lambda: result.append(turns.run("crawl:x", order.append, "late")))
    waiter.start()
    waiting(1)
    stop.set()  # a stopping scheduler: the waiting job gives up, the running one finishes
    waiter.join(10)
    assert result == [False] and order[-1] != "late"
    release.set()
    holder.join(10)
    turns.wait_idle()


# --- whole runs: a scheduler process against the simulator --------------------------------------


def start_scheduler(env: dict[str, str]) -> subprocess.Popen:
    """``finmon schedule run`` in a subprocess, its output appended to scheduler.log in the data directory."""
    log = Path(env["FINMON_DATA_DIR"]).parent / "scheduler.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "finmon.cli", "schedule", "run"], env={**os.environ, **env},
                                stdout=out, stderr=subprocess.STDOUT)
    proc.log = log
    return proc


def output(proc: subprocess.Popen) -> str:
    return proc.log.read_text(encoding="utf-8", errors="replace")[-3000:]


def wait_for(predicate, timeout: float, proc: subprocess.Popen | None = None, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the scheduler exited ({proc.returncode}) while waiting for {what}:\n{output(proc)}")
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


def runs(data_dir: Path) -> list[dict]:
    db = data_dir / "finmon.db"
    if not db.exists():
        return []
    store = SQLiteStore(db)
    try:
        return sorted(store.runs(limit=1000), key=lambda r: (r["started"], r["ended"] or "", r["id"]))
    finally:
        store.close()


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    assert proc.returncode == 0, output(proc)


def market_env(tmp_path, market, **schedule) -> dict[str, str]:
    return {
        "FINMON_DATA_DIR": str(tmp_path / "data"), "FINMON_ES_URL": "", "FINMON_DB": "",
        "FINMON_STORE_ITUNES": "", "FINMON_STORE_APPGALLERY": market.store_urls["appgallery"],
        "FINMON_STORE_XIAOMI": market.store_urls["xiaomi"], "FINMON_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
        "FINMON_SCHEDULE_WAKEUP_SECONDS": "1",
        "FINMON_SCHEDULE_REPORT": json.dumps({"interval": 3600}),
        "FINMON_SCHEDULE_RETENTION": json.dumps({"interval": 3600}),
        **{f"FINMON_SCHEDULE_{k.upper()}": json.dumps(v) for k, v in schedule.items()},
    }


def test_short_intervals_run_jobs_in_order_never_overlapping_and_recrawls_are_incremental(tmp_path):
    with MarketServer(apps=120, seed=4) as market:
        env = market_env(tmp_path, market, crawls={s: {"interval": 2} for s in STORES})
        data = Path(env["FINMON_DATA_DIR"])
        proc = start_scheduler(env)

        def each_store_crawled_twice_and_analysed(history):
            ok = [r for r in history if r["outcome"] == "ok"]
            crawled = [sum(r["job"] == f"crawl:{s}" for r in ok) for s in STORES]
            return min(crawled) >= 2 and sum(r["kind"] == "analyze" for r in ok) >= sum(crawled)

        try:
            wait_for(lambda: each_store_crawled_twice_and_analysed(runs(data)), 240, proc,
                     "two crawls of each store, each followed by its analysis")
        finally:
            stop(proc)
        history = runs(data)
    assert history and all(r["outcome"] in ("ok", "interrupted") for r in history), history
    for earlier, later in zip(history, history[1:]):
        assert later["started"] >= earlier["ended"], (earlier, later)  # one job at a time
    kinds = [(r["kind"], r["job"]) for r in history if r["outcome"] == "ok"]
    for i, (kind, job) in enumerate(kinds):
        if kind == "crawl":
            assert kinds[i + 1] == ("analyze", "analyze") if i + 1 < len(kinds) else True
    crawls = {s: [r for r in history if r["job"] == f"crawl:{s}" and r["outcome"] == "ok"] for s in STORES}
    assert all(len(c) >= 2 for c in crawls.values()), crawls
    for store in STORES:  # the second crawl of an unchanged market reuses every policy and APK (304)
        again = crawls[store][1]["counters"]
        assert again.get("policies/unchanged", 0) > 0 and not again.get("policies/ok", 0), again
    analyses = [r for r in history if r["kind"] == "analyze" and r["outcome"] == "ok"]
    assert analyses[0]["counters"]["apps_analysed"] > 0
    assert analyses[-1]["counters"]["apps_analysed"] == 0 and analyses[-1]["counters"]["apps_unchanged"] > 0


def findings_of(db: Path) -> list[str]:
    store = SQLiteStore(db)
    try:
        return [f["id"] for f in store.export("findings")]
    finally:
        store.close()


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_a_stopped_scheduler_resumes_its_crawl_once_without_duplicates_or_losses(tmp_path, how):
    """kill -9 (the crawl gets SIGTERM from the kernel) or SIGTERM (the scheduler stops it): either way the
    crawl checkpoints, and the next start resumes it as attempt 2."""
    with MarketServer(apps=1500, seed=8) as market:
        env = market_env(tmp_path, market, crawls={"appgallery": {"interval": 86400}, "xiaomi": {"interval": 86400}})
        data = Path(env["FINMON_DATA_DIR"])
        subprocess.run([sys.executable, "-m", "finmon.cli", "schedule", "trigger", "crawl:appgallery"],
                       env={**os.environ, **env}, check=True, capture_output=True)
        proc = start_scheduler(env)
        listings = lambda: sum(len(p.read_text(encoding="utf-8").splitlines())  # noqa: E731
                               for p in (data / "crawls").glob("*/appgallery/listings.jsonl"))
        wait_for(lambda: (data / "crawls").is_dir() and listings() >= 150, 180, proc, "a crawl under way")
        if how == "SIGKILL":
            proc.kill()  # no cleanup: the crawl child gets SIGTERM from the kernel and checkpoints
            proc.wait()
        else:
            stop(proc)  # the scheduler stops the crawl, records it as interrupted and exits 0
            (last,) = [r for r in runs(data) if r["job"] == "crawl:appgallery"]
            assert last["outcome"] == "interrupted" and "resumes next run" in last["error"]
        assert json.loads((data / "state" / "appgallery" / "pending").read_text())["attempt"] == 1
        assert scheduler.Lock.holder(scheduler.Config.from_env(data)) is None
        proc = start_scheduler(env)
        try:
            wait_for(lambda: any(r["kind"] == "analyze" and r["outcome"] == "ok" for r in runs(data)), 300, proc,
                     "the resumed crawl and its analysis")
        finally:
            stop(proc)
        history = [r for r in runs(data) if r["job"] == "crawl:appgallery"]
        assert [(r["attempt"], r["outcome"]) for r in history] == [(1, "interrupted"), (2, "ok")], history
        assert history[0]["id"].split("#")[0] == history[1]["id"].split("#")[0]  # the same crawl, resumed
        snapshot = Path((data / "state" / "appgallery" / "latest").read_text())
        lines = [json.loads(x) for x in (snapshot / "listings.jsonl").read_text(encoding="utf-8").splitlines()]
        resumed_ids = findings_of(data / "finmon.db")
        # the reference: one uninterrupted crawl of the same store, analysed the same way
        from finmon import jobs

        ref_dir = tmp_path / "reference"
        jobs.crawl(ref_dir, {"appgallery": market.store_urls["appgallery"]}, ["127.0.0.1"])
        ref_store = SQLiteStore(tmp_path / "reference.db")
        jobs.analyze(ref_dir, ref_store, registry=None)
        ref_store.close()
    assert len(resumed_ids) == len(set(resumed_ids))
    assert sorted(resumed_ids) == sorted(findings_of(tmp_path / "reference.db"))
    assert {x["store_id"] for x in lines} >= {x["store_id"] for x in lines}  # read back whole
    assert not (data / "state" / "appgallery" / "pending").exists()


# --- incremental weeks: the crawl jobs themselves, in this process ---------------------------------


def index_state(data: Path) -> tuple[dict[str, str], int, dict[str, str]]:
    """(app key → analysis input hash, policy versions kept, finding id → app key)."""
    store = SQLiteStore(data / "finmon.db")
    try:
        versions = store.db.execute("SELECT count(*) FROM policies").fetchone()[0]
        return store.analysis_inputs(), versions, {f["id"]: f["app_key"] for f in store.export("findings")}
    finally:
        store.close()


def crawl_all(data: Path) -> list[dict]:
    before = {r["id"] for r in runs(data)}
    for store in STORES:
        scheduler.crawl_job(str(data), store)
    return [r for r in runs(data) if r["id"] not in before]


@pytest.mark.parametrize("shared", [False, True], ids=["one process", "two processes on a frontier"])
def test_unchanged_week_reanalyses_nothing_and_next_week_touches_only_changed_apps(tmp_path, monkeypatch, request,
                                                                                   shared):
    if shared:  # each crawl shared by two processes through Redis, each writing its part
        monkeypatch.setenv("FINMON_FRONTIER", request.getfixturevalue("redis_url"))
        monkeypatch.setenv("FINMON_SCHEDULE_CRAWL_PROCESSES", "2")
    with MarketServer(apps=200, seed=9) as market:
        for key, value in market_env(tmp_path, market).items():
            monkeypatch.setenv(key, value)
        data = Path(os.environ["FINMON_DATA_DIR"])
        first = crawl_all(data)
        inputs1, versions1, findings1 = index_state(data)
        assert [r["outcome"] for r in first] == ["ok"] * 4 and versions1 > 0

        again = crawl_all(data)
        inputs2, versions2, findings2 = index_state(data)
        crawled = [r["counters"] for r in again if r["kind"] == "crawl"]
        assert all(c.get("policies/unchanged", 0) > 0 and not c.get("policies/ok") for c in crawled), crawled
        assert all(c.get("apks/unchanged", 0) > 0 and not c.get("apks/ok") for c in crawled), crawled
        assert [r["counters"]["apps_analysed"] for r in again if r["kind"] == "analyze"] == [0, 0]
        assert (inputs2, versions2, findings2) == (inputs1, versions1, findings1)

        market.advance()
        truth = market.truth()
        after = crawl_all(data)
        inputs3, versions3, findings3 = index_state(data)
    assert [r["outcome"] for r in after] == ["ok"] * 4
    changed = {a["key"] for a in truth["app_list"] if a.get("changed")}
    policy_changed = {a["key"] for a in truth["app_list"] if "policy" in a.get("changed", ())}
    assert changed and policy_changed
    reanalysed = {key for key, value in inputs3.items() if inputs1.get(key) != value}
    assert reanalysed <= changed and len(reanalysed) >= 0.9 * len(changed), (reanalysed ^ changed)
    new_texts = {a["policy"]["url"] for a in truth["app_list"] if {"policy", "new"} & set(a.get("changed", ()))
                 and a["policy"]["variant"] in ("html", "gbk", "pdf")}
    assert 0 < versions3 - versions1 <= len(new_texts)  # old versions are kept; new ones only for changed or new apps
    new_findings = set(findings3) - set(findings1)
    assert new_findings and {findings3[f] for f in new_findings} <= changed
    if shared:
        latest = Path(os.environ["FINMON_DATA_DIR"]) / "state" / "xiaomi" / "latest"
        assert len(list(Path(latest.read_text()).glob("part-*/listings.jsonl"))) == 2


def fake_crawls(monkeypatch, outcomes: list[str]):
    """jobs.crawl replaced: each call writes an empty snapshot and returns the next outcome."""
    from finmon import jobs
    from finmon.model import Run

    calls = []

    def crawl(out, store_urls, *args, **kwargs):
        (store,) = store_urls
        (out / store).mkdir(parents=True, exist_ok=True)
        (out / store / "run.json").write_text("{}")  # what a crawl that stopped leaves
        calls.append({**kwargs["overrides"], "processes": kwargs.get("processes", 1)})
        return [Run(id="x", kind="crawl", started="t", outcome=outcomes[len(calls) - 1], counters={"requests": 1})]

    monkeypatch.setattr(jobs, "crawl", crawl)
    return calls


def test_failed_crawls_are_retried_with_backoff_then_given_up(env, monkeypatch):
    monkeypatch.setenv("FINMON_SCHEDULE_RETRY_BACKOFF", "0.01")
    monkeypatch.setenv("FINMON_SCHEDULE_CRAWL_RETRIES", "2")
    data = Path(env["FINMON_DATA_DIR"])
    calls = fake_crawls(monkeypatch, ["failed", "failed", "ok"])
    scheduler.crawl_job(str(data), "appgallery")
    history = [r for r in runs(data) if r["job"] == "crawl:appgallery"]
    assert [(r["attempt"], r["outcome"]) for r in history] == [(1, "failed"), (2, "failed"), (3, "ok")]
    assert "crawl failed; see" in history[0]["error"] and len({r["id"].split("#")[0] for r in history}) == 1
    assert [c["FINMON_RESUME"] for c in calls] == [False, False, False]  # retries start afresh
    assert [r["outcome"] for r in runs(data) if r["job"] == "analyze"] == ["ok"]
    cfg = scheduler.Config.from_env()
    assert cfg.latest("appgallery") is not None and cfg.pending("appgallery") is None

    monkeypatch.setenv("FINMON_SCHEDULE_CRAWL_RETRIES", "1")
    fake_crawls(monkeypatch, ["failed", "failed"])
    scheduler.crawl_job(str(data), "xiaomi")
    history = [r for r in runs(data) if r["job"] == "crawl:xiaomi"]
    assert [(r["attempt"], r["outcome"]) for r in history] == [(1, "failed"), (2, "failed")]
    assert cfg.pending("xiaomi") is None and cfg.latest("xiaomi") is None  # given up: the next run starts afresh


def test_an_interrupted_crawl_is_resumed_by_the_next_run(env, monkeypatch):
    data = Path(env["FINMON_DATA_DIR"])
    calls = fake_crawls(monkeypatch, ["interrupted", "ok"])
    scheduler.crawl_job(str(data), "appgallery")
    cfg = scheduler.Config.from_env()
    assert cfg.pending("appgallery")["attempt"] == 1 and scheduler.recover(cfg) == ("crawl:appgallery",)
    scheduler.crawl_job(str(data), "appgallery")
    assert [(c["FINMON_RESUME"], c["JOBDIR"]) for c in calls] == [(False, calls[0]["JOBDIR"]), (True, calls[0]["JOBDIR"])]
    history = [r for r in runs(data) if r["job"] == "crawl:appgallery"]
    assert [(r["attempt"], r["outcome"]) for r in history] == [(1, "interrupted"), (2, "ok")]
    assert scheduler.recover(cfg) == ()


def test_a_shared_crawl_resumes_on_its_frontier_crawl_and_a_retry_from_scratch_gets_a_new_one(env, monkeypatch):
    monkeypatch.setenv("FINMON_FRONTIER", "redis://frontier.internal:6379/0")  # the fake crawls never connect
    monkeypatch.setenv("FINMON_SCHEDULE_RETRY_BACKOFF", "0.01")
    monkeypatch.setenv("FINMON_SCHEDULE_CRAWL_PROCESSES", "3")
    monkeypatch.setattr(scheduler, "_wait_for_previous_crawl", lambda snapshot: pytest.fail("no checkpoint to wait for"))
    data = Path(env["FINMON_DATA_DIR"])
    calls = fake_crawls(monkeypatch, ["interrupted", "failed", "ok"])
    scheduler.crawl_job(str(data), "appgallery")  # stopped: the next run joins the same frontier crawl again
    scheduler.crawl_job(str(data), "appgallery")  # failed, then retried from scratch on a new frontier crawl: ok
    shared = [(c["FINMON_FRONTIER"], c["FINMON_FRONTIER_CRAWL"], c["FINMON_RESUME"]) for c in calls]
    assert {frontier for frontier, _, _ in shared} == {"redis://frontier.internal:6379/0"}
    assert shared[0][1] == shared[1][1] != shared[2][1] and [resume for _, _, resume in shared] == [False, True, False]
    assert [c["processes"] for c in calls] == [3, 3, 3]
    history = [r for r in runs(data) if r["job"] == "crawl:appgallery"]
    assert [(r["attempt"], r["outcome"]) for r in history] == [(1, "interrupted"), (2, "failed"), (3, "ok")]


def test_a_crawl_that_left_no_checkpoint_runs_again_from_scratch(env, monkeypatch, tmp_path):
    snapshot = tmp_path / "snap"
    snapshot.mkdir()
    assert scheduler._wait_for_previous_crawl(snapshot, timeout=0) is False
    (snapshot / "run.json").write_text("{}")
    assert scheduler._wait_for_previous_crawl(snapshot, timeout=0) is True
    data = Path(env["FINMON_DATA_DIR"])
    calls = fake_crawls(monkeypatch, ["interrupted", "ok"])
    scheduler.crawl_job(str(data), "appgallery")
    monkeypatch.setattr(scheduler, "_wait_for_previous_crawl", lambda snapshot: False)
    scheduler.crawl_job(str(data), "appgallery")
    assert [c["FINMON_RESUME"] for c in calls] == [False, False]
    history = [r for r in runs(data) if r["job"] == "crawl:appgallery"]
    assert [(r["attempt"], r["outcome"]) for r in history] == [(1, "interrupted"), (2, "ok")]


def test_recover_marks_runs_left_running_as_interrupted(env):
    from finmon.model import Run

    cfg = scheduler.Config.from_env()
    cfg.data_dir.mkdir(parents=True)
    store = SQLiteStore(cfg.data_dir / "finmon.db")
    store.save_run(Run(id="analyze-1#1", kind="analyze", started="2026-11-23T00:00:00+00:00", job="analyze"))
    store.save_run(Run(id="analyze-by-hand", kind="analyze", started="2026-11-23T00:00:01+00:00"))
    store.close()
    assert scheduler.recover(cfg) == ()
    by_hand, run = runs(cfg.data_dir)[::-1]
    assert run["outcome"] == "interrupted" and "killed or crashed" in run["error"] and run["ended"]
    assert by_hand["outcome"] == "running"  # not the scheduler's: left alone


def test_retention_keeps_recent_latest_and_pending_snapshots(env, monkeypatch):
    cfg = scheduler.Config.from_env()
    crawls = cfg.data_dir / "crawls"
    names = ("old", "old-latest", "old-pending", "recent")
    for name in names:
        (crawls / name / "appgallery").mkdir(parents=True)
    for name in names[:3]:
        os.utime(crawls / name, (time.time() - 100 * 86400,) * 2)
    (cfg.state("appgallery") / "latest").write_text(str(crawls / "old-latest" / "appgallery"))
    (cfg.state("xiaomi") / "pending").write_text(json.dumps({"run_id": "old-pending", "attempt": 1}))
    scheduler.retention_job(str(cfg.data_dir))
    assert sorted(p.name for p in crawls.iterdir()) == ["old-latest", "old-pending", "recent"]
    (run,) = runs(cfg.data_dir)
    assert (run["job"], run["outcome"], run["counters"]) == ("retention", "ok", {"deleted": 1, "kept": 3,
                                                                                 "warcs_kept": 0})


def test_retention_keeps_the_warc_files_findings_or_the_latest_snapshot_cite(env):
    import dataclasses

    from finmon.evidence import CaptureWriter, read_capture, resolve
    from finmon.model import Analysis, Evidence, Finding

    cfg = scheduler.Config.from_env()
    crawls = cfg.data_dir / "crawls"
    folders = {name: crawls / name / "appgallery" for name in ("cited", "carried", "uncited", "latest")}
    refs = {}
    for name, folder in folders.items():
        writer = CaptureWriter(folder)
        refs[name] = resolve(writer.response(f"http://s.test/{name}", 200, [], name.encode(), "2026-01-01T00:00:00Z"),
                             folder)
        writer.close()
        (folder / "listings.jsonl").write_text("{}\n", encoding="utf-8")
    # the latest snapshot's line carries forward (304) a capture of an older snapshot
    carried = json.dumps({"capture": "../../carried/appgallery/captures.warc.gz" + refs["carried"].split(".warc.gz")[1]})
    (folders["latest"] / "listings.jsonl").write_text(carried + "\n", encoding="utf-8")
    for name in ("cited", "carried", "uncited"):
        os.utime(crawls / name, (time.time() - 100 * 86400,) * 2)
    (cfg.state("appgallery") / "latest").write_text(str(folders["latest"]))
    finding = Finding(rule_id="P101", severity="high", confidence="high", app_key="android:a", title="t",
                      evidence=Evidence(kind="permission", key="p"), regulation="r")
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    with SQLiteStore(cfg.data_dir / "finmon.db") as store:  # a resolved finding still cites its capture
        cited = dataclasses.replace(finding, capture=refs["cited"])
        store.save_analysis([], [Analysis("android:a", "lending", 1.0, (cited,))], "2026-01-01T00:00:00Z")
        store.save_analysis([], [Analysis("android:a", "lending", 1.0, ())], "2026-01-02T00:00:00Z")
        assert store.finding(finding.id).status == "resolved"
    scheduler.retention_job(str(cfg.data_dir))
    assert sorted(p.name for p in crawls.iterdir()) == ["carried", "cited", "latest"]
    assert [p.name for p in (crawls / "cited").rglob("*") if p.is_file()] == ["captures.warc.gz"]
    assert [p.name for p in (crawls / "carried").rglob("*") if p.is_file()] == ["captures.warc.gz"]
    for name in ("cited", "carried", "latest"):
        assert read_capture(refs[name]).body == name.encode()
    (run,) = runs(cfg.data_dir)
    assert run["counters"] == {"deleted": 1, "kept": 1, "warcs_kept": 2}
    with SQLiteStore(cfg.data_dir / "finmon.db") as store:  # no longer cited: the next run deletes it
        store.save_analysis([], [Analysis("android:a", "lending", 1.0, (finding,))])
    scheduler.retention_job(str(cfg.data_dir))
    assert sorted(p.name for p in crawls.iterdir()) == ["carried", "latest"]


def test_report_job_renders_and_records_its_run(env):
    scheduler.report_job(env["FINMON_DATA_DIR"])
    data = Path(env["FINMON_DATA_DIR"])
    assert (data / "report" / "index.html").exists()
    (run,) = runs(data)
    assert run["job"] == "report:weekly" and run["outcome"] == "ok"


def test_report_job_renders_into_the_archive_and_keeps_the_old_report_path(env):
    from reports.archive import render_archive
    from tests.reports.conftest import populate

    data = Path(env["FINMON_DATA_DIR"])
    data.mkdir()
    with SQLiteStore(data / "finmon.db") as store:
        populate(store)
        render_archive(store, data / "reports", week="2024-W10", workers=0)  # last week's, already archived
    last_week = {p: p.read_bytes() for p in (data / "reports" / "2024-W10").rglob("*") if p.is_file()}
    (data / "report").mkdir()  # the report an earlier version wrote
    (data / "report" / "index.html").write_text("<p>before the archive</p>", encoding="utf-8")
    weeks = {"{}-W{:02d}".format(*datetime.now(timezone.utc).isocalendar()[:2])}
    scheduler.report_job(env["FINMON_DATA_DIR"])
    scheduler.report_job(env["FINMON_DATA_DIR"])  # again: the same week's folder replaced, the link kept
    weeks.add("{}-W{:02d}".format(*datetime.now(timezone.utc).isocalendar()[:2]))

    (this_week,) = [p.name for p in (data / "reports").glob("*-W*") if p.name != "2024-W10"]
    assert this_week in weeks  # the week of the latest run: the report's own
    assert (data / "reports" / this_week / "index.html").is_file()
    assert {p: p.read_bytes() for p in (data / "reports" / "2024-W10").rglob("*") if p.is_file()} == last_week
    index = (data / "reports" / "index.html").read_text(encoding="utf-8")
    assert index.index(f'id="week-{this_week}"') < index.index('id="week-2024-W10"')
    assert (data / "report").is_symlink() and (data / "report" / "index.html").read_text(encoding="utf-8") == index
    assert (data / "report.before-archive" / "index.html").read_text(encoding="utf-8") == "<p>before the archive</p>"
    reports = [r for r in runs(data) if r["job"] == "report:weekly"]
    assert [r["outcome"] for r in reports] == ["ok", "ok"] and reports[-1]["counters"]["weeks"] == 2

    old = time.time() - 400 * 86400
    for week in (data / "reports").iterdir():
        os.utime(week, (old, old))
    scheduler.retention_job(env["FINMON_DATA_DIR"])  # retention never deletes archived reports
    assert sorted(p.name for p in (data / "reports").glob("*-W*")) == ["2024-W10", this_week]


def test_the_analysis_after_a_crawl_sends_alerts_and_keeps_their_ledger_in_the_data_directory(env, monkeypatch):
    import sqlite3

    from finmon import jobs
    from finmon.model import Listing, Run

    for name in ("FINMON_ALERT_LEDGER", "FINMON_ALERT_WATCHLIST", "FINMON_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FINMON_ALERT_WEBHOOK", "http://127.0.0.1:9/hook")  # nothing listens: the items wait
    monkeypatch.setenv("FINMON_ALERT_TRIES", "1")

    def crawl(out, store_urls, *args, **kwargs):  # a snapshot of one app without a privacy policy (C201, high)
        (store,) = store_urls
        (out / store).mkdir(parents=True, exist_ok=True)
        listing = Listing(store=store, store_id="1", platform="android", package="com.example.loan", name="快乐借款",
                          developer="快乐科技有限公司", category="金融", source_url="http://store.test/1",
                          fetched_at="2024-03-04T08:00:00+00:00")
        (out / store / "listings.jsonl").write_text(json.dumps(listing.to_dict()) + "\n", encoding="utf-8")
        return [Run(id="x", kind="crawl", started="t", outcome="ok", counters={"requests": 1})]

    monkeypatch.setattr(jobs, "crawl", crawl)
    data = Path(env["FINMON_DATA_DIR"])
    scheduler.crawl_job(str(data), "appgallery")
    [analysis] = [r for r in runs(data) if r["job"] == "analyze"]
    assert analysis["outcome"] == "ok" and analysis["counters"]["alerts/failed"] == 1
    with sqlite3.connect(data / "alerts.sqlite") as ledger:
        waiting = ledger.execute("SELECT sink, kind, app_key, severity FROM items WHERE sent_at IS NULL").fetchall()
    ledger.close()
    assert ("webhook", "finding", "android:com.example.loan", "high") in waiting
    assert analysis["counters"]["alerts/pending"] == len(waiting)


def test_a_wrong_alert_setting_stops_the_scheduler_at_start(env, monkeypatch):
    monkeypatch.setenv("FINMON_ALERT_WEBHOOK", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("FINMON_ALERT_SEVERITY", "urgent")
    with pytest.raises(scheduler.SchedulerError, match="FINMON_ALERT_SEVERITY must be one of high, medium, low"):
        scheduler.run(scheduler.Config.from_env())
    assert not (Path(env["FINMON_DATA_DIR"]) / "scheduler.lock").exists()


def test_the_google_play_crawl_looks_up_the_apps_of_the_other_stores_latest_crawls(env, monkeypatch):
    monkeypatch.setenv("FINMON_STORE_GOOGLEPLAY", "http://127.0.0.1:9/googleplay")
    monkeypatch.setenv("FINMON_SCHEDULE_CRAWLS", json.dumps({s: {"interval": 3600}
                                                             for s in (*STORES, "googleplay")}))
    data = Path(env["FINMON_DATA_DIR"])
    calls = fake_crawls(monkeypatch, ["ok", "ok"])
    scheduler.crawl_job(str(data), "appgallery")
    cfg = scheduler.Config.from_env()
    listings = cfg.latest("appgallery") / "listings.jsonl"
    listings.write_text('{"platform": "android", "package": "com.a"}\n', encoding="utf-8")
    scheduler.crawl_job(str(data), "googleplay")
    assert "FINMON_LOOKUP_LISTINGS" not in calls[0]  # only the store that looks up gets the list
    assert calls[1]["FINMON_LOOKUP_LISTINGS"] == [str(listings)]  # xiaomi never crawled: nothing of it
