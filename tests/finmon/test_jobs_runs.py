"""Runs whose process was killed outright (kill -9) are marked interrupted; runs still in progress are not."""
import subprocess
import sys

import pytest
from click.testing import CliRunner

from finmon import jobs
from finmon.cli import main
from finmon.model import Run
from index.sqlite import SQLiteStore

# A process that starts a run as `finmon analyze` does, says its id, and waits (until killed).
HOLD_A_RUN = """
import sys
from finmon import jobs
from index.sqlite import SQLiteStore

store = SQLiteStore(sys.argv[1])
run = jobs.new_run("analyze")
with jobs.run_in_progress(run.id):
    store.save_run(run)
    print(run.id, flush=True)
    sys.stdin.read()
"""


def outcome(db, run_id):
    with SQLiteStore(db, read_only=True) as store:
        return next(r for r in store.runs() if r["id"] == run_id)


def test_a_killed_run_is_interrupted_by_the_next_writing_command_and_a_live_one_is_not(tmp_path):
    db = tmp_path / "finmon.db"
    SQLiteStore(db).close()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_A_RUN, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        run_id = holder.stdout.readline().strip()
        assert run_id.startswith("analyze-")
        with SQLiteStore(db) as store:
            assert jobs.interrupt_stale_runs(store) == []  # in progress in another process: left running
        assert outcome(db, run_id)["outcome"] == "running"
    finally:
        holder.kill()  # SIGKILL: no chance to record anything
        holder.wait()
        holder.stdin.close()
        holder.stdout.close()
    assert outcome(db, run_id)["outcome"] == "running"
    (tmp_path / "empty").mkdir()
    result = CliRunner(env={"FINMON_ES_URL": "", "FINMON_REGISTRY": ""}).invoke(
        main, ["analyze", str(tmp_path / "empty"), "--db", str(db)])
    assert result.exit_code == 0, result.output
    killed = outcome(db, run_id)
    assert killed["outcome"] == "interrupted" and killed["ended"] and "killed" in killed["error"]
    assert not jobs.run_lock_path(run_id).exists()


def test_a_running_run_without_a_lock_here_is_left_alone(tmp_path):
    """Started on another host, or by another user: nothing here says whether it is alive."""
    with SQLiteStore(tmp_path / "finmon.db") as store:
        store.save_run(Run(id="analyze-elsewhere", kind="analyze", started="2026-01-05T00:00:00+00:00"))
        assert jobs.interrupt_stale_runs(store) == []
        assert store.runs()[0]["outcome"] == "running"
        assert jobs.interrupt_stale_runs(store, orphaned=lambda row: True) == ["analyze-elsewhere"]
        assert store.runs()[0]["outcome"] == "interrupted"


def test_a_finished_run_leaves_no_lock_file(tmp_path):
    (tmp_path / "empty").mkdir()
    with SQLiteStore(tmp_path / "finmon.db") as store:
        run = jobs.analyze(tmp_path / "empty", store, registry=None)
    assert run.outcome == "ok" and not jobs.run_lock_path(run.id).exists()


def test_a_failed_run_is_recorded_and_leaves_no_lock_file(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "load_snapshot", lambda *dirs, **options: 1 / 0)
    with SQLiteStore(tmp_path / "finmon.db") as store:
        with pytest.raises(ZeroDivisionError):
            jobs.analyze(tmp_path, store, registry=None)
        (run,) = store.runs()
    assert run["outcome"] == "failed" and run["ended"] and not jobs.run_lock_path(run["id"]).exists()
