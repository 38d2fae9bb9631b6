"""Store text reaches the terminal as text (no rich markup, control characters escaped), and commands that
only read the index neither lock nor change it."""
import sqlite3

import pytest
from click.testing import CliRunner

import analyzers
from finmon import jobs, settings
from finmon.cli import main
from finmon.model import Listing, merge_listings
from index.sqlite import SQLiteStore

HOSTILE_NAME = "[/bogus]借款\x1b[2J"  # a closing markup tag, then "clear screen"
HOSTILE_DEVELOPER = "[bold]科技\x1b]0;owned\x07\u202e"  # markup, a title change (OSC) and a bidi override
HOSTILE_DESC = "本平台保本保息\x1b[31m，年化收益高达18%。"
RAW_CONTROLS = ("\x1b", "\x07", "\u202e")


@pytest.fixture
def hostile_index(tmp_path):
    db = tmp_path / "finmon.db"
    listing = Listing(store="xiaomi", store_id="com.evil.loan", platform="android", package="com.evil.loan",
                      name=HOSTILE_NAME, developer=HOSTILE_DEVELOPER, category="金融",
                      source_url="http://store.test/com.evil.loan\x1b[1m", fetched_at="2026-01-05T00:00:00+00:00",
                      description=HOSTILE_DESC)
    apps = merge_listings([listing], {}, {})
    with SQLiteStore(db) as store:
        store.save_rules(jobs.rules_with_status(None))
        store.save_analysis(apps, [analyzers.analyze(a) for a in apps], "2026-01-05T01:00:00+00:00")
    return db


def invoke(args):
    return CliRunner(env={"FINMON_ES_URL": ""}).invoke(main, args)


def test_search_prints_markup_in_store_text_as_text(hostile_index):
    result = invoke(["search", "保本保息", "--db", str(hostile_index)])
    assert result.exit_code == 0, result.output
    assert "[/bogus]" in result.output and "\\x1b[31m" in result.output
    assert not any(c in result.output for c in RAW_CONTROLS)


def test_explain_escapes_control_characters_in_store_text(hostile_index):
    result = invoke(["explain", "android:com.evil.loan", "--db", str(hostile_index)])
    assert result.exit_code == 0, result.output
    assert "[/bogus]借款\\x1b[2J (android:com.evil.loan), [bold]科技\\x1b]0;owned\\x07\\u202e" in result.output
    assert "保本保息\\x1b[31m" in result.output and "url: http://store.test/com.evil.loan\\x1b[1m" in result.output
    assert not any(c in result.output for c in RAW_CONTROLS)


def test_an_unknown_app_suggestion_escapes_store_names(hostile_index):
    result = invoke(["explain", "[/bogus]借款", "--db", str(hostile_index)])
    assert result.exit_code == 1 and "did you mean: [/bogus]借款\\x1b[2J" in result.output
    assert not any(c in result.output for c in RAW_CONTROLS)


def test_search_answers_while_a_writer_holds_the_index(hostile_index, monkeypatch):
    monkeypatch.setattr(settings, "FINMON_SQLITE_BUSY_TIMEOUT", 0.0)  # a reader that needed the lock fails at once
    writer = sqlite3.connect(hostile_index, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("DELETE FROM findings")
    try:
        result = invoke(["search", "保本保息", "--db", str(hostile_index), "--json"])
        assert result.exit_code == 0, result.output
        assert "android:com.evil.loan" in result.output  # the last committed state
    finally:
        writer.execute("ROLLBACK")
        writer.close()


@pytest.mark.parametrize("command", [["search", "x"], ["explain", "x"], ["report", "--out", "r"],
                                     ["export", "apps"], ["policy", "diff", "x"]])
def test_reading_commands_refuse_another_programs_database_and_leave_it_untouched(tmp_path, command):
    path = tmp_path / "notes.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (body TEXT)")
    db.commit()
    db.close()
    before = path.read_bytes()
    result = invoke([*command, "--db", str(path)])
    assert result.exit_code == 1 and "not a finmon index" in result.output.strip().splitlines()[-1], result.output
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


def test_a_corrupt_page_met_while_reading_is_one_error_line(hostile_index):
    db = sqlite3.connect(hostile_index)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = bytearray(hostile_index.read_bytes())
    for page in range(2 * 4096, len(data), 4096):  # the schema (page 1) stays readable, the rest does not
        data[page + 100:page + 400] = b"\xff" * 300
    hostile_index.write_bytes(bytes(data))
    for command in (["search", "保本保息"], ["explain", "android:com.evil.loan"]):
        result = invoke([*command, "--db", str(hostile_index)])
        assert result.exit_code == 1, result.output
        assert "the SQLite file is unreadable" in result.output.strip().splitlines()[-1]
