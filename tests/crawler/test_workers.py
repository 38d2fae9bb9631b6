import asyncio
import json
import os
import signal

import pytest

from crawler.items import ApkFetch
from crawler.pipelines import ApkPipeline
from crawler.snapshot import Snapshot
from crawler.workers import WorkerDied, Workers
from tests.crawler.conftest import through

NOW = "2024-06-01T00:00:00+00:00"


def pid_of_worker(_: object = None) -> int:
    return os.getpid()


def die(*_: object) -> None:
    """Work that kills the worker process running it, as the out-of-memory killer would."""
    os.kill(os.getpid(), signal.SIGKILL)


def run_side_by_side(workers: Workers, *calls):
    async def each():
        return await asyncio.gather(*(workers.run(*call) for call in calls), return_exceptions=True)

    return asyncio.run(each())


def test_work_runs_in_another_process_and_none_means_on_the_loop():
    workers = Workers(1)
    try:
        (pid,) = run_side_by_side(workers, (pid_of_worker,))
        assert pid != os.getpid()
    finally:
        workers.close()
    assert run_side_by_side(Workers(0), (pid_of_worker,)) == [os.getpid()]


def test_a_dying_worker_costs_only_the_work_that_killed_it():
    workers = Workers(1)
    try:
        died, *pids = run_side_by_side(workers, (die,), (pid_of_worker,), (pid_of_worker,))
        assert isinstance(died, WorkerDied) and "twice" in str(died)
        assert all(isinstance(pid, int) for pid in pids)  # retried in a fresh pool
        assert isinstance(run_side_by_side(workers, (pid_of_worker,))[0], int)  # and the pool works on
    finally:
        workers.close()


def test_exceptions_of_the_work_come_back_as_they_are():
    workers = Workers(1)
    try:
        (error,) = run_side_by_side(workers, (int, "not a number"))
        assert isinstance(error, ValueError) and "not a number" in str(error)
    finally:
        workers.close()


def test_an_apk_whose_inspection_kills_the_worker_is_one_invalid_line(make_crawler, monkeypatch):
    monkeypatch.setattr("crawler.pipelines.inspect_apk", die)
    crawler = make_crawler(FINMON_CRAWL_WORKERS=1)
    pipeline = ApkPipeline.from_crawler(crawler)
    item = ApkFetch("http://127.0.0.1/apk/a.apk", "xiaomi", "ok", NOW, b"PK...")
    assert through(pipeline, item) == [item]
    pipeline.close_spider()
    Snapshot.of(crawler.settings).close()
    path = Snapshot.of(crawler.settings).path
    (row,) = [json.loads(line) for line in (path / "apks.jsonl").read_text(encoding="utf-8").splitlines()]
    assert row["status"] == "invalid" and "worker process died twice" in row["error"]
    (error,) = [json.loads(line) for line in (path / "errors.jsonl").read_text(encoding="utf-8").splitlines()]
    assert error["kind"] == "apk_invalid"


@pytest.mark.parametrize("processes", [0, 2])
def test_workers_are_shared_per_process_and_stop_with_their_last_user(crawler_settings, processes):
    from scrapy.settings import Settings

    settings = Settings({**crawler_settings, "FINMON_CRAWL_WORKERS": processes})
    first, second = Workers.of(settings), Workers.of(settings)
    assert first is second and first.users == 2 and first.processes == processes
    run_side_by_side(first, (pid_of_worker,))
    first.release()
    assert Workers.of(settings) is first
    first.release(), first.release()
    assert not first._pools and Workers.of(settings) is not first


PARENT = """
import asyncio, sys, time
from crawler.workers import Workers
from tests.crawler.test_workers import pid_of_worker

workers = Workers(1)
print(asyncio.run(workers.run(pid_of_worker)), flush=True)
time.sleep(600)
"""


def test_workers_die_with_a_killed_crawl_process():
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen([sys.executable, "-c", PARENT], cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        os.kill(worker, 0)  # alive
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        pytest.fail(f"worker {worker} outlived its killed parent")
    finally:
        parent.kill()
        parent.stdout.close()
