"""SQLite-specific behaviour: WAL, the CJK spacing for FTS5, query quoting, snippets, history, fuzzing."""
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finmon.model import Run
from index.base import IndexMissing, StoreError, index_text, query_words, snippet
from index.sqlite import SCHEMA_VERSION, SQLiteStore, fts_match


@pytest.fixture
def store(tmp_path):
    """The SQLite store only (the contract tests run against every backend)."""
    s = SQLiteStore(tmp_path / "index.db")
    yield s
    s.close()


def test_wal_mode_and_schema_version(store):
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_reopening_keeps_the_data(tmp_path, build):
    path = tmp_path / "x.db"
    with SQLiteStore(path) as first:
        first.save_listings([build.listing()])
    with SQLiteStore(path) as again:
        assert [a["key"] for a in again.apps()] == ["android:com.example.loan"]


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "future.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer"):
        SQLiteStore(path)


def test_a_reader_answers_while_a_writer_holds_its_transaction(tmp_path, build):
    path = tmp_path / "x.db"
    with SQLiteStore(path) as writer:
        writer.save_listings([build.listing()])
        writer.db.execute("BEGIN IMMEDIATE")
        writer.db.execute("UPDATE apps SET name = 'half written'")
        # busy_timeout 0: a reader that needed the lock would fail at once ("database is locked")
        with SQLiteStore(path, busy_timeout=0, read_only=True) as reader:
            assert [a["name"] for a in reader.apps()] == ["快乐借款"]
            assert reader.runs() == [] and not reader.db.in_transaction
        writer.db.execute("ROLLBACK")


def test_a_reader_writes_nothing(tmp_path, build):
    path = tmp_path / "x.db"
    with SQLiteStore(path) as writer:
        writer.save_listings([build.listing()])
    before = path.read_bytes()
    with SQLiteStore(path, read_only=True) as reader:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.save_run(Run(id="r1", kind="analyze", started="2024-03-04T08:00:00Z"))
    assert path.read_bytes() == before


def test_a_missing_index_is_not_created_by_a_reader(tmp_path):
    with pytest.raises(IndexMissing, match="no index at"):
        SQLiteStore(tmp_path / "none.db", read_only=True)
    assert not (tmp_path / "none.db").exists()


FOREIGN_FILES = {
    "foreign sqlite": None,  # made below: another program's database
    "not sqlite": b"this is a text file, not a database\n" * 200,
    "corrupt": b"SQLite format 3\x00" + b"\xff" * 4000,
}


@pytest.mark.parametrize("read_only", [True, False], ids=["read", "write"])
@pytest.mark.parametrize("kind", sorted(FOREIGN_FILES))
def test_a_file_that_is_not_finmons_index_is_refused_and_left_untouched(tmp_path, kind, read_only):
    path = tmp_path / "other.db"
    if FOREIGN_FILES[kind] is None:
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        db.commit()
        db.close()
    else:
        path.write_bytes(FOREIGN_FILES[kind])
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a (readable )?finmon index"):
        SQLiteStore(path, read_only=read_only)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


# The runs and apps tables as finmon made them before runs had job, attempt and error, and apps input_hash.
OLD_TABLES = """
CREATE TABLE apps (
    key TEXT PRIMARY KEY, platform TEXT, package TEXT, name TEXT, developer TEXT, category TEXT,
    finance_type TEXT, finance_confidence REAL, policy_status TEXT, policy_url TEXT, policy_sha256 TEXT,
    permissions TEXT NOT NULL DEFAULT '[]', privacy_labels TEXT NOT NULL DEFAULT '[]',
    first_seen TEXT, last_seen TEXT, analysed_at TEXT
);
CREATE TABLE runs (id TEXT PRIMARY KEY, kind TEXT, started TEXT, ended TEXT, counters TEXT, outcome TEXT);
CREATE INDEX runs_started ON runs (started);
INSERT INTO apps (key, platform, package, name, developer, category, finance_type, policy_status, first_seen,
                  last_seen, analysed_at)
VALUES ('android:com.old.loan', 'android', 'com.old.loan', '旧借款', '旧科技', '金融', 'lending', 'none',
        '2024-01-01T00:00:00+00:00', '2024-01-08T00:00:00+00:00', '2024-01-08T00:00:00+00:00');
INSERT INTO runs VALUES ('crawl-old', 'crawl', '2024-01-08T00:00:00+00:00', '2024-01-08T00:30:00+00:00',
                         '{"requests": 9}', 'ok');
PRAGMA user_version = 1;
"""


def columns(db, table):
    return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]


def test_an_old_file_gains_the_new_columns_and_keeps_its_rows(tmp_path, build):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(OLD_TABLES)
    db.close()
    with SQLiteStore(path) as store:
        assert store.runs() == [{"id": "crawl-old", "kind": "crawl", "started": "2024-01-08T00:00:00+00:00",
                                 "ended": "2024-01-08T00:30:00+00:00", "counters": {"requests": 9}, "outcome": "ok",
                                 "job": "", "attempt": 1, "error": ""}]
        assert store.runs(job="") == store.runs() and store.runs(job="crawl:xiaomi") == []
        (app,) = store.apps()
        assert (app["key"], app["name"], app["finance_type"]) == ("android:com.old.loan", "旧借款", "lending")
        assert "input_hash" not in app and store.analysis_inputs() == {}
        store.save_run(Run(id="crawl-new", kind="crawl", started="2024-01-15T00:00:00+00:00", job="crawl:xiaomi",
                           attempt=2, error="timeout"))
        snap = build.app(build.listing())
        store.save_analysis([snap], [build.analysis(snap)], "2024-01-15T01:00:00+00:00", inputs={snap.key: "h"})
        assert store.analysis_inputs() == {snap.key: "h"}
    with SQLiteStore(path) as again, SQLiteStore(tmp_path / "fresh.db") as fresh:  # reopening adds nothing
        for table in ("apps", "runs"):
            assert columns(again.db, table) == columns(fresh.db, table)
        assert [(r["id"], r["job"], r["attempt"], r["error"]) for r in again.runs()] == [
            ("crawl-new", "crawl:xiaomi", 2, "timeout"), ("crawl-old", "", 1, "")]
        assert [r["id"] for r in again.runs(job="crawl:xiaomi")] == ["crawl-new"]
        assert again.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        indexes = {r[0] for r in again.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"runs_started", "runs_job"} <= indexes


def test_opening_an_old_file_is_one_transaction(tmp_path, monkeypatch):
    """A failure while the columns are added leaves the file as it was."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(OLD_TABLES)
    db.close()
    monkeypatch.setattr("index.sqlite._INDEXES", ("CREATE INDEX broken ON runs (no_such_column)",))
    with pytest.raises(sqlite3.OperationalError, match="no_such_column"):
        SQLiteStore(path)
    db = sqlite3.connect(path)
    assert "job" not in columns(db, "runs") and "input_hash" not in columns(db, "apps")
    assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'findings'").fetchone()[0] == 0
    db.close()


def test_the_index_gets_the_tokens_cjk_spaced():
    assert index_text("我们读取通讯录info") == "我 们 读 取 通 讯 录 info"
    assert index_text("ＡＢＣ１") == "ABC1"  # NFKC
    assert index_text("phone number") == "phone number"
    assert index_text("android.permission.READ_CONTACTS, café ⺀・") == "android permission READ CONTACTS cafe"
    # diacritics of Latin letters go (as FTS5's remove_diacritics), other scripts' stay; Ł has no base letter
    assert index_text("Łódź Ĉu ṩ ά Ǆ") == "Łodz Cu s ά DZ"
    assert index_text("收集Crème与通讯录") == "收 集 Creme 与 通 讯 录"  # folded inside CJK text too


def test_queries_become_quoted_phrases():
    assert fts_match(query_words("通讯录 phone")) == '"通 讯 录" "phone"'
    assert fts_match(query_words('say "hi"')) == '"say" "hi"'
    assert query_words("* ( ) \x00 :") == []
    assert fts_match([]) is None
    assert len(query_words(" ".join(["a"] * 100))) == 16


def test_snippet_marks_the_match_in_original_text():
    text = "前言。" * 40 + "我们会读取您的通讯录信息，用于风控。" + "结尾。" * 40
    snip, (start, end) = snippet(text, ["通讯录"], width=40)
    assert snip[start:end] == "通讯录" and snip.startswith("…") and snip.endswith("…")
    snip, (start, end) = snippet("We collect your Phone\nNumber.", ["phone number"])
    assert snip[start:end] == "Phone Number"
    snip, match = snippet("nothing here", ["通讯录"])
    assert (snip, match) == ("nothing here", None)
    snip, (start, end) = snippet("a phones phone", ["phone"])
    assert (start, end) == (9, 14)  # whole words only


def test_listing_history_keeps_each_distinct_content(store, build):
    store.save_listings([build.listing(version="1.0")])
    store.save_listings([build.listing(version="1.0", fetched_at="2024-03-05T08:00:00Z")])
    store.save_listings([build.listing(version="2.0", fetched_at="2024-03-11T08:00:00Z")])
    rows = store.db.execute("SELECT fetched_at FROM listing_history ORDER BY fetched_at").fetchall()
    assert [r[0][:10] for r in rows] == ["2024-03-04", "2024-03-11"]


def test_renamed_app_is_found_by_its_new_name(store, build):
    snap = build.app(build.listing())
    store.save_analysis([snap], [build.analysis(snap, build.perm(snap.key))], "2024-03-04T10:00:00Z")
    renamed = build.app(build.listing(name="新名字借款"))
    store.save_analysis([renamed], [build.analysis(renamed, build.perm(renamed.key))], "2024-03-11T10:00:00Z")
    assert store.search("新名字")[0]["app_name"] == "新名字借款"
    assert store.search("快乐借款") == []
    assert store.db.execute("SELECT count(*) FROM findings_fts").fetchone()[0] == 1


def test_a_failed_batch_leaves_nothing_behind(store, build):
    snap = build.app(build.listing())
    broken = build.analysis(snap, build.perm(snap.key))
    with pytest.raises(AttributeError):
        store.save_analysis([snap, object()], [broken], "2024-03-04T10:00:00Z")
    assert list(store.apps()) == [] and store.findings() == []


SPECIAL = ['"', "'", "AND", "OR", "NOT", "NEAR", "NEAR/3", "(", ")", "*", ":", "^", "-", "+", "{", "}", "[", "]",
           "\\", "\x00", "通讯录", "通", "phone", " ", "\t", "body:", "rowid", "🙂", "ｘ", "\u200b", "\u3000"]


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory):
    from finmon.model import Analysis, Evidence, Finding, Listing, merge_listings

    listing = Listing(store="xiaomi", store_id="a", platform="android", package="a", name="借款 phone", developer="d",
                      category="c", source_url="http://x.test/a", fetched_at="2024-03-04T08:00:00Z")
    snap = merge_listings([listing], {}, {})[0]
    finding = Finding(rule_id="C201", severity="high", confidence="high", app_key=snap.key, title="无隐私政策 no policy",
                      evidence=Evidence(kind="absence", key="policy", text="通讯录 phone NEAR AND OR"), regulation="")
    s = SQLiteStore(tmp_path_factory.mktemp("fuzz") / "fuzz.db")
    s.save_analysis([snap], [Analysis(snap.key, "lending", 1.0, (finding,))], "2024-03-04T10:00:00Z")
    yield s
    s.close()


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.text(max_size=200) | st.lists(st.sampled_from(SPECIAL), max_size=12).map("".join))
def test_any_query_is_safe(fuzz_store, query):
    hits = fuzz_store.search(query)
    assert isinstance(hits, list)
    for hit in hits:
        assert hit["kind"] == "finding"
        if hit["match"]:
            start, end = hit["match"]
            assert 0 <= start < end <= len(hit["snippet"])


def test_a_query_matching_more_than_the_rank_window_still_fills_its_pages(store, build, monkeypatch):
    """Past FINMON_SEARCH_RANK_WINDOW matches only the newest are ranked, widened while a page is not full: a
    filter that the newest matches fail still finds the older ones, and paging through gives every match once."""
    apps = [build.app(build.listing(package=f"com.example.loan{i}", store_id=f"s{i}", name=f"借款{i}"))
            for i in range(6)]
    severities = ["high", "low", "low", "low", "low", "low"]  # the oldest is the only high one
    store.save_analysis(apps, [build.analysis(a, build.perm(a.key, severity=s)) for a, s in zip(apps, severities)],
                        "2024-03-04T10:00:00Z")
    everything = {h["id"] for h in store.search("借款", kind="finding", limit=50)}
    monkeypatch.setattr("finmon.settings.FINMON_SEARCH_RANK_WINDOW", 1)
    assert [h["severity"] for h in store.search("借款", severity="high")] == ["high"]
    pages = [store.search("借款", kind="finding", limit=2, offset=o) for o in (0, 2, 4, 6)]
    assert [len(p) for p in pages] == [2, 2, 2, 0]
    assert {h["id"] for p in pages for h in p} == everything and len(everything) == 6
