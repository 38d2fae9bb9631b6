"""The weekly report archive: a folder per ISO week and an index page listing the weeks with their KPIs."""
import json
import logging
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

import reports.archive as archive
from index.sqlite import SQLiteStore
from reports.archive import render_archive, render_archive_index
from reports.weekly import ReportError, app_filename, render_report
from tests.reports.conftest import HOSTILE_NAME, populate

W10, W11 = "2024-W10", "2024-W11"


class Rows(HTMLParser):
    """The archive index's rows: week name -> the texts of its cells and the links in it."""

    def __init__(self):
        super().__init__()
        self.rows, self.tags, self._row, self._cell = {}, [], None, None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == "tr" and (attrs.get("id") or "").startswith("week-"):
            self._row = self.rows.setdefault(attrs["id"].removeprefix("week-"), {"cells": [], "links": []})
        elif tag == "td" and self._row is not None:
            self._cell = []
        elif tag == "a" and self._row is not None:
            self._row["links"].append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row["cells"].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def rows(index: Path) -> Rows:
    parsed = Rows()
    parsed.feed(index.read_text(encoding="utf-8"))
    return parsed


def files(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_ino) for p in folder.rglob("*") if p.is_file()}


def kpi_block(report: Path) -> list[str]:
    """The figures of a week report's KPI block, in the archive index's column order."""
    html = report.read_text(encoding="utf-8")
    figures = {name: re.search(rf'id="kpi-{name}"><div class="value">(\d+)<', html)[1]
               for name in ("apps", "high-apps", "unresolved", "new", "resolved", "no-policy")}
    high = re.search(r'<span class="badge high">[^<]+</span> (\d+)', html.split('id="kpi-unresolved"')[1])[1]
    return [figures["apps"], figures["high-apps"], figures["unresolved"], high, figures["new"], figures["resolved"],
            figures["no-policy"]]


@pytest.fixture(scope="module")
def two_weeks(report_store, tmp_path_factory):
    store, _ = report_store
    root = tmp_path_factory.mktemp("archive") / "reports"
    week1 = render_archive(store, root, lang="zh", week=W10, workers=0)
    week2 = render_archive(store, root, lang="zh", week=W11, workers=0)
    return root, week1, week2


def test_each_week_in_its_folder_and_the_index_lists_them_newest_first(two_weeks):
    root, week1, week2 = two_weeks
    assert week1 == root / W10 / "index.html" and week2 == root / W11 / "index.html"
    for folder in (root / W10, root / W11):
        assert (folder / "index.html").is_file() and len(list((folder / "apps").glob("*.html"))) == 5
        assert json.loads((folder / "kpis.json").read_text(encoding="utf-8"))["week"]["name"] == folder.name
    html = (root / "index.html").read_text(encoding="utf-8")
    assert "<title>周报归档" in html and "按时间倒序，共 2 周" in html
    table = rows(root / "index.html")
    assert list(table.rows) == [W11, W10]
    assert table.rows[W11]["cells"][:2] == ["2024年第11周 2024-W11", "2024-03-11 – 2024-03-17"]


def test_the_index_shows_each_weeks_kpis_as_its_report_does(two_weeks):
    root, week1, week2 = two_weeks
    table = rows(root / "index.html")
    assert table.rows[W11]["cells"][2:] == kpi_block(week2) == ["5", "4", "7", "6", "1", "1", "2"]
    assert table.rows[W10]["cells"][2:] == kpi_block(week1) == ["5", "4", "7", "6", "7", "0", "2"]


def test_links_go_from_the_index_to_each_week_and_back(two_weeks):
    root, _, _ = two_weeks
    table = rows(root / "index.html")
    for week, row in table.rows.items():
        assert row["links"] == [f"{week}/index.html"]
        report = (root / row["links"][0]).resolve()
        back = re.search(r'id="archive-link" href="([^"]+)"', report.read_text(encoding="utf-8"))[1]
        assert (report.parent / back).resolve() == (root / "index.html").resolve()
        page = report.parent / "apps" / app_filename("android:com.kuaile.loan")
        assert (page.parent / "../index.html").resolve() == report.resolve()  # an app page's way back to its week


def test_a_plain_report_has_no_archive_link(report_store, tmp_path):
    html = render_report(report_store[0], tmp_path / "report", week=W11, workers=0).read_text(encoding="utf-8")
    assert 'id="archive-link"' not in html and (tmp_path / "report" / "kpis.json").is_file()


def test_a_new_week_links_the_unchanged_pages_of_the_week_before(tmp_path):
    with SQLiteStore(tmp_path / "pages.db") as store:
        populate(store)
        root = tmp_path / "reports"
        render_archive(store, root, week=W10, workers=0)
        changed = next(store.apps())["key"]
        store.db.execute("UPDATE apps SET name = '改名后的应用' WHERE key = ?", (changed,))
        store.db.commit()
        render_archive(store, root, week=W11, workers=0)
    week1, week2 = files(root / W10 / "apps"), files(root / W11 / "apps")
    name = app_filename(changed)
    assert week1.keys() == week2.keys() and len(week1) == 5
    assert "改名后的应用" in week2[name][0].decode() and week2[name][1] != week1[name][1]
    assert all(week2[page] == week1[page] for page in week1 if page != name)  # the same file: linked, not rendered


def test_rendering_a_week_again_replaces_that_week_only(tmp_path):
    with SQLiteStore(tmp_path / "again.db") as store:
        populate(store)
        root = tmp_path / "reports"
        render_archive(store, root, week=W10, workers=0)
        render_archive(store, root, week=W11, workers=0)
        before = files(root / W10)
        changed = next(store.apps())["key"]
        store.db.execute("UPDATE apps SET name = '第二次渲染' WHERE key = ?", (changed,))  # a page the weeks share
        store.db.commit()
        render_archive(store, root, week=W11, workers=0)
    assert files(root / W10) == before  # bytes and inodes: the shared page was replaced in week 2, not rewritten
    assert "第二次渲染" in (root / W11 / "apps" / app_filename(changed)).read_text(encoding="utf-8")
    assert list(rows(root / "index.html").rows) == [W11, W10]
    assert sorted(p.name for p in root.iterdir()) == [".index.lock", W10, W11, "index.html"]


def damage(root: Path, caplog) -> dict[str, list[str]]:
    """Week folders with a missing, corrupt, foreign, hostile or huge kpis.json and one without its report."""
    weeks = {"2024-W01": None, "2024-W02": "{not json", "2024-W03": json.dumps({"week": {"name": W11}, "kpi": {}}),
             "2024-W04": json.dumps({"week": {"name": "2024-W04"}, "kpi": {
                 "apps": "<script>alert(1)</script>", "high_apps": 1, "unresolved": 1, "new": 1, "resolved": 1,
                 "no_policy": 1, "severity": {"high": 1}}}),
             "2024-W05": json.dumps({"week": {"name": "2024-W05"}, "kpi": {"apps": True}}),
             "2024-W06": "[" * 50_000, "2024-W07": " " * (archive.KPIS_MAX_BYTES + 1),
             "2024-W08": b"\xff\xfe not utf-8"}
    for name, content in weeks.items():
        (root / name).mkdir()
        (root / name / "index.html").write_text("<p>an old report</p>", encoding="utf-8")
        if isinstance(content, bytes):
            (root / name / "kpis.json").write_bytes(content)
        elif content is not None:
            (root / name / "kpis.json").write_text(content, encoding="utf-8")
    (root / "2024-W09").mkdir()  # no report at all
    with caplog.at_level(logging.WARNING, logger="reports.archive"):
        render_archive_index(root, lang="zh")
    return {week: row["cells"][2:] for week, row in rows(root / "index.html").rows.items()}


def test_a_damaged_week_is_listed_as_kpis_unavailable(report_store, tmp_path, caplog):
    root = tmp_path / "reports"
    render_archive(report_store[0], root, week=W11, workers=0)
    listed = damage(root, caplog)
    assert listed[W11] == ["5", "4", "7", "6", "1", "1", "2"]
    for week in ("2024-W01", "2024-W02", "2024-W03", "2024-W04", "2024-W05", "2024-W06", "2024-W07", "2024-W08"):
        assert listed[week] == ["指标不可用"], week
    assert listed["2024-W09"] == ["报告缺失"]
    assert rows(root / "index.html").rows["2024-W09"]["links"] == []  # no link to a report that is not there
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "2024-W01: KPIs unavailable: no kpis.json" in logged and "not of week 2024-W03" in logged
    assert "apps is not a count" in logged and "2024-W09: the week's report is missing" in logged
    assert len(caplog.records) == 9  # one line per damaged week
    html = (root / "index.html").read_text(encoding="utf-8")
    assert "<script" not in html and "alert(1)" not in html


def test_other_folders_in_the_root_are_left_alone_and_not_listed(report_store, tmp_path):
    root = tmp_path / "reports"
    strays = {"notes": "mine", "2024-W99": "not a week", "2024-W1": "not our name", "latest-2024-W10": "x",
              ".2024-W10": "hidden"}
    for name, text in strays.items():
        (root / name).mkdir(parents=True)
        (root / name / "index.html").write_text(text, encoding="utf-8")
    (root / "2024-W09").write_text("a file, not a folder", encoding="utf-8")
    (root / "2024-W08").symlink_to(root / "notes", target_is_directory=True)
    render_archive(report_store[0], root, week=W11, workers=0)
    assert list(rows(root / "index.html").rows) == [W11]
    for name, text in strays.items():
        assert (root / name / "index.html").read_text(encoding="utf-8") == text
    assert (root / "2024-W09").read_text(encoding="utf-8") == "a file, not a folder"
    assert (root / "2024-W08").is_symlink()


def test_hostile_app_names_never_reach_the_index_page(two_weeks, report_store):
    root, week1, _ = two_weeks
    assert HOSTILE_NAME in {app["name"] for app in report_store[0].apps()}
    html = (root / "index.html").read_text(encoding="utf-8")
    assert HOSTILE_NAME not in html and "alert(" not in html and "<script" not in html
    assert "&lt;script&gt;" in week1.read_text(encoding="utf-8")  # the week's report shows the name, escaped
    parsed = rows(root / "index.html")
    assert "script" not in parsed.tags and "img" not in parsed.tags


def test_the_index_in_english(report_store, tmp_path):
    root = tmp_path / "reports"
    render_archive(report_store[0], root, lang="en", week=W11, workers=0)
    html = (root / "index.html").read_text(encoding="utf-8")
    assert "<title>Weekly report archive" in html and "Newest first; weeks archived: 1" in html
    assert rows(root / "index.html").rows[W11]["cells"][0] == "Week 11, 2024 2024-W11"


def test_a_folder_whose_index_is_not_an_archives_is_refused(report_store, tmp_path):
    store, _ = report_store
    render_report(store, tmp_path / "report", week=W11, workers=0)
    before = files(tmp_path / "report")
    with pytest.raises(ReportError, match="is not a weekly report archive's index"):
        render_archive(store, tmp_path / "report", week=W11, workers=0)
    assert files(tmp_path / "report") == before
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<h1>my page</h1>", encoding="utf-8")
    with pytest.raises(ReportError):
        render_archive_index(tmp_path / "site")
    assert (tmp_path / "site" / "index.html").read_text(encoding="utf-8") == "<h1>my page</h1>"


def test_the_index_is_written_whole_or_not_at_all(report_store, tmp_path, monkeypatch):
    root = tmp_path / "reports"
    render_archive(report_store[0], root, week=W10, workers=0)
    (root / ".index.html.killed.tmp").write_text("<p>half", encoding="utf-8")  # a killed writer's
    before = (root / "index.html").read_bytes()

    def disk_full(src, dst):
        raise OSError(28, "No space left on device", str(dst))

    monkeypatch.setattr(archive.os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        render_archive(report_store[0], root, week=W11, workers=0)
    monkeypatch.undo()
    assert (root / "index.html").read_bytes() == before
    assert not list(root.glob(".index.html.*"))  # neither the killed writer's file nor this one's
    render_archive_index(root)
    assert list(rows(root / "index.html").rows) == [W11, W10]
    assert os.stat(root / "index.html").st_mode & 0o777 == 0o644
