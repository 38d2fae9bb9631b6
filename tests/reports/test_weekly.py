"""The weekly report: content, languages, escaping, self-containment, catalog, helpers."""
import ast
import random
import re
from datetime import date, datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from jinja2 import Environment

import reports.weekly as weekly
from finmon.model import Evidence
from index.sqlite import SQLiteStore
from reports.weekly import (
    LABELS,
    ReportError,
    app_filename,
    environment,
    market_overview,
    quote_parts,
    render_report,
    safe_url,
    translations,
    week_window,
)

HOSTILE_NAME = "<script>alert(1)</script>"


class Links(HTMLParser):
    """Collects tags and every URL-bearing attribute of a page."""

    def __init__(self):
        super().__init__()
        self.tags, self.urls, self.marks = [], [], []
        self._in_mark = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_mark = tag == "mark"
        for name, value in attrs:
            if name in ("src", "href", "action", "srcset", "poster", "data", "xlink:href") or name.startswith("on"):
                self.urls.append((tag, name, value or ""))

    def handle_endtag(self, tag):
        self._in_mark = False if tag == "mark" else self._in_mark

    def handle_data(self, data):
        if self._in_mark:
            self.marks.append(data)


def parse(path: Path) -> Links:
    links = Links()
    links.feed(path.read_text(encoding="utf-8"))
    return links


@pytest.fixture(scope="module")
def rendered(report_store, tmp_path_factory):
    store, apps = report_store
    out = tmp_path_factory.mktemp("report")
    return {lang: render_report(store, out / lang, lang=lang, week="2024-W11") for lang in ("zh", "en")}, apps


def pages(index: Path) -> list[Path]:
    return [index, *sorted((index.parent / "apps").glob("*.html"))]


def test_renders_index_and_one_page_per_app(rendered, report_store):
    (paths, apps) = rendered
    store, _ = report_store
    for index in paths.values():
        assert index.name == "index.html" and index.exists()
        names = {p.name for p in (index.parent / "apps").glob("*.html")}
        assert names == {app_filename(a["key"]) for a in store.apps()}


def test_chinese_by_default_english_on_request(rendered):
    paths, _ = rendered
    zh = paths["zh"].read_text(encoding="utf-8")
    en = paths["en"].read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in zh and '<html lang="en">' in en
    assert "金融类App个人信息保护风险监测周报" in zh and "2024年第11周" in zh and "监测应用数" in zh
    assert "Finance app privacy risk report" in en and "Week 11, 2024" in en and "Apps monitored" in en
    assert "借贷类App申请应用商店禁止的权限" in zh and "Lending app requests a permission app stores forbid" in en
    assert "Lending app requests" not in zh
    assert "personal-loan policies forbid lending apps" in en and "App-store personal-loan policies" in en
    assert "应用商店个人贷款类应用规范禁止" in zh and "personal-loan policies forbid" not in zh
    assert "认定方法 一（1）" in en  # no English text in the rule table: the Chinese one is shown


def test_kpis_reflect_the_week(rendered):
    paths, _ = rendered
    html = paths["en"].read_text(encoding="utf-8")

    def kpi(name):
        return int(re.search(rf'id="kpi-{name}"><div class="value">(\d+)<', html)[1])

    assert kpi("apps") == 5
    assert kpi("high-apps") == 4  # loan, hostile, bank, insurer
    assert kpi("new") == 1  # the insurer's dead policy link
    assert kpi("resolved") == 1  # the loan app's location permission
    assert kpi("unresolved") == 7
    assert kpi("no-policy") == 2


def test_week_one_shows_everything_new(report_store, tmp_path):
    store, _ = report_store
    html = render_report(store, tmp_path, lang="en", week=date(2024, 3, 6)).read_text(encoding="utf-8")
    assert re.search(r'id="kpi-new"><div class="value">7<', html)
    assert re.search(r'id="kpi-resolved"><div class="value">0<', html)


def test_ranking_is_by_risk_score(rendered):
    paths, apps = rendered
    html = paths["en"].read_text(encoding="utf-8")
    table = html[html.index('id="ranking-table"'):html.index("</table>", html.index('id="ranking-table"'))]
    order = [m for m in re.findall(r'href="apps/([^"]+)"', table)]
    assert order[0] == app_filename(apps["com.kuaile.loan"].key)  # 3 high = 30
    assert order[1] == app_filename(apps["com.evil.pay"].key)  # high + medium = 13
    assert app_filename(apps["com.clean.fund"].key) not in order


def test_the_market_overview_keeps_the_riskiest_apps_of_a_stream():
    rng = random.Random(5)
    apps = [{"key": f"android:app{i:04d}", "risk_score": rng.choice([0, 0, 1, 3, 10, 13, 30]),
             "counts": {"high": rng.randint(0, 3)}, "policy_status": rng.choice(["ok", "none", None]),
             "analysed_at": f"2024-03-{rng.randint(1, 28):02d}T10:00:00+00:00"} for i in range(1000)]
    overview = market_overview(iter(apps), top_n=7)
    riskiest = sorted((a for a in apps if a["risk_score"]), key=lambda a: (-a["risk_score"], -a["counts"]["high"], a["key"]))
    assert overview["ranked"] == riskiest[:7]
    assert overview["ranked_total"] == len(riskiest)
    assert overview["keys"] == [a["key"] for a in apps]
    assert overview["high_apps"] == sum(1 for a in apps if a["counts"]["high"])
    assert overview["policy"]["none"] == sum(1 for a in apps if a["policy_status"] in ("none", None))
    assert overview["latest"] == max(a["analysed_at"] for a in apps)
    assert market_overview(iter(apps), top_n=0)["ranked"] == [] and market_overview([], 5)["ranked"] == []


def test_findings_grouped_by_family_with_rule_text_and_highlighted_evidence(rendered):
    paths, _ = rendered
    zh = paths["zh"].read_text(encoding="utf-8")
    for fam in ("family-P", "family-C", "family-D"):
        assert f'id="{fam}"' in zh
    assert zh.index('id="family-P"') < zh.index('id="family-C"') < zh.index('id="family-D"')
    assert "常见类型移动互联网应用程序必要个人信息范围规定（2021）" in zh  # the rule's regulation
    assert "隐私政策声明收集通讯录" in zh  # the rule's description
    assert "通讯录" in parse(paths["zh"]).marks and "精确位置" in parse(paths["zh"]).marks


def test_app_page_has_listings_permissions_policy_and_findings(rendered):
    paths, apps = rendered
    page = paths["zh"].parent / "apps" / app_filename(apps["com.kuaile.loan"].key)
    html = page.read_text(encoding="utf-8")
    assert "http://xiaomi.test/details?id=com.kuaile.loan" in html and "http://appgallery.test/app/C100123" in html
    assert "2024-03-04 08:00 UTC" in html  # capture time
    assert "android.permission.READ_CONTACTS" in html and "perm-flag" in html
    assert 'href="http://policies.test/kuaile.html"' in html and "可获取" in html
    assert "已解决" in html  # the resolved location permission is still listed
    assert re.search(r"政策原文第 \d+–\d+ 字符", html)  # the quote's offsets in the policy
    assert 'href="../index.html"' in html


def test_hostile_names_quotes_and_urls_are_inert(rendered):
    paths, apps = rendered
    for index in paths.values():
        for page in pages(index):
            html = page.read_text(encoding="utf-8")
            assert HOSTILE_NAME not in html
            assert "<img" not in html  # the hostile quote's tag arrives as text
            links = parse(page)
            assert "script" not in links.tags and "img" not in links.tags
            for tag, attr, value in links.urls:
                assert not attr.startswith("on"), (page, tag, attr)
                assert not value.strip().lower().startswith(("javascript:", "data:", "vbscript:")), (page, value)
    evil = paths["zh"].parent / "apps" / app_filename(apps["com.evil.pay"].key)
    html = evil.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "javascript:alert(4)" in html  # shown as text, never as a link


def test_no_external_resources(rendered, report_store):
    paths, _ = rendered
    store, _ = report_store
    evidence_urls = set()
    for app in store.apps():
        full = store.app(app["key"])
        evidence_urls |= {full["policy_url"]} | {v["url"] for v in full["policy_versions"]}
        for lst in full["listings"]:
            evidence_urls |= {lst["source_url"], lst["privacy_url"]}
        evidence_urls |= {f.evidence.url for f in full["findings"]}
    for index in paths.values():
        for page in pages(index):
            html = page.read_text(encoding="utf-8")
            assert "@import" not in html and "url(" not in html
            assert "Content-Security-Policy" in html
            links = parse(page)
            assert "link" not in links.tags and "iframe" not in links.tags
            for tag, attr, value in links.urls:
                assert attr == "href" and tag == "a", (page, tag, attr, value)
                if urlsplit(value).scheme:
                    assert value in evidence_urls, (page, value)
                else:  # relative links stay inside the report
                    target = (page.parent / value.split("#")[0]).resolve()
                    assert target == page.resolve() or target.exists(), (page, value)


def test_rerender_removes_pages_of_apps_no_longer_indexed(report_store, tmp_path):
    store, _ = report_store
    stale = tmp_path / "apps" / "android_gone.html"
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    render_report(store, tmp_path)
    assert not stale.exists() and (tmp_path / "index.html").exists()


def test_a_folder_holding_other_files_is_not_replaced(report_store, tmp_path):
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "notes.txt").write_text("mine")
    with pytest.raises(ReportError, match="other files than a report"):
        render_report(report_store[0], tmp_path)
    assert (tmp_path / "apps" / "notes.txt").read_text() == "mine"


def test_a_failed_render_leaves_the_previous_report_whole(report_store, tmp_path, monkeypatch):
    store, _ = report_store
    out = tmp_path / "report"
    render_report(store, out, lang="en", week="2024-W10")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    real_write = Path.write_text
    written = []

    def disk_full_after_one_page(path, *args, **kwargs):
        if written:
            raise OSError(28, "No space left on device", str(path))
        written.append(path)
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", disk_full_after_one_page)
    with pytest.raises(OSError, match="No space left"):
        render_report(store, out, lang="zh", week="2024-W11")
    monkeypatch.undo()
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert len(before) > 2 and written  # several pages, and the new render had written one when it failed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no half-written folder left


def test_a_render_removes_what_a_killed_render_left_but_not_a_render_in_progress(report_store, tmp_path):
    import fcntl
    import os

    killed, live = tmp_path / ".report.new-killed", tmp_path / ".report.new-live"
    for folder in (killed, live):
        (folder / "apps").mkdir(parents=True)
        (folder / "apps" / "half.html").write_text("<p>half")
    held = os.open(live, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)  # as a render still in progress holds its folder
    try:
        render_report(report_store[0], tmp_path / "report")
    finally:
        os.close(held)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".report.new-live", "report"]


def test_a_rerender_replaces_the_whole_report(report_store, tmp_path):
    store, _ = report_store
    out = tmp_path / "report"
    render_report(store, out, lang="en")
    render_report(store, out, lang="zh")
    assert 'lang="zh' in (out / "index.html").read_text(encoding="utf-8")
    assert all('lang="zh' in page.read_text(encoding="utf-8") for page in (out / "apps").iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_a_rerender_links_the_pages_of_unchanged_apps_and_renders_the_changed(tmp_path):
    from tests.reports.conftest import populate

    with SQLiteStore(tmp_path / "pages.db") as store:
        populate(store)
        out = tmp_path / "report"
        render_report(store, out, lang="en")
        first = {p.name: (p.stat().st_ino, p.read_text(encoding="utf-8")) for p in (out / "apps").iterdir()}
        changed_key = next(store.apps())["key"]
        store.db.execute("UPDATE apps SET name = '改名后的应用' WHERE key = ?", (changed_key,))
        store.db.commit()
        render_report(store, out, lang="en")
        second = {p.name: (p.stat().st_ino, p.read_text(encoding="utf-8")) for p in (out / "apps").iterdir()}
        render_report(store, out, lang="zh")  # another language: every page again
        third = {p.name: p.stat().st_ino for p in (out / "apps").iterdir()}
    changed = weekly.app_filename(changed_key)
    assert second.keys() == first.keys() and len(first) > 2
    assert "改名后的应用" in second[changed][1] and second[changed][0] != first[changed][0]
    assert all(second[name] == first[name] for name in first if name != changed)  # the same file, not rendered
    assert all(third[name] != second[name][0] for name in first)


def test_a_page_digest_knows_its_policy_by_sha256_and_everything_else_by_value(tmp_path):
    import dataclasses

    from finmon.model import PolicyVersion

    policy = PolicyVersion(url="http://p.test/", final_url="http://p.test/", fetched_at="2024-03-04T08:05:00Z",
                           sha256="a" * 64, text="我们收集您的手机号。")
    writer = weekly.PageWriter(None, "zh", {"weights": {}}, "2024-03-04", tmp_path, tmp_path)
    app = {"key": "android:p", "name": "快乐借款", "policy": policy, "findings": []}
    digest = writer.digest(app)
    assert writer.digest({**app, "policy": dataclasses.replace(policy, text="another copy")}) == digest
    assert writer.digest({**app, "policy": dataclasses.replace(policy, sha256="b" * 64)}) != digest
    assert writer.digest({**app, "name": "快乐贷"}) != digest
    assert weekly.PageWriter(None, "en", {"weights": {}}, "2024-03-04", tmp_path, tmp_path).digest(app) != digest
    assert weekly.PageWriter(None, "zh", {"weights": {"high": 2}}, "2024-03-04", tmp_path, tmp_path).digest(app) != digest


def without_render_time(report: Path) -> dict[str, str]:
    """The report's files without the times they were rendered at (the pages' minute, kpis.json's "generated")."""
    render_time = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC|\"generated\": \"[^\"]*\"")
    return {str(p.relative_to(report)): render_time.sub("", p.read_text(encoding="utf-8"))
            for p in report.rglob("*") if p.is_file()}


def test_worker_processes_render_the_pages_this_process_renders(report_store, tmp_path, monkeypatch):
    store, _ = report_store
    render_report(store, tmp_path / "here", lang="zh", week="2024-W11", workers=0)
    monkeypatch.setattr(weekly.settings, "FINMON_REPORT_BATCH", 1)  # a batch per app: every batch to a worker
    in_workers, write_in_workers = [], weekly._write_in_workers
    monkeypatch.setattr(weekly, "_write_in_workers", lambda *args: in_workers.append(args) or write_in_workers(*args))
    render_report(store, tmp_path / "workers", lang="zh", week="2024-W11", workers=2)
    here, workers = without_render_time(tmp_path / "here"), without_render_time(tmp_path / "workers")
    assert len(here) > 3 and workers == here
    assert len(in_workers) == 1  # the workers opened the index again and read the apps themselves


def test_an_index_that_cannot_be_opened_again_is_rendered_by_this_process(tmp_path, monkeypatch):
    from tests.reports.conftest import populate

    monkeypatch.setattr(weekly.settings, "FINMON_REPORT_BATCH", 1)
    monkeypatch.setattr(weekly, "_write_in_workers", lambda *args: pytest.fail("no worker can open this index"))
    with SQLiteStore(":memory:") as store:
        populate(store)
        assert store.opener() is None
        index = render_report(store, tmp_path / "report", lang="en", week="2024-W11", workers=2)
        assert len(list((index.parent / "apps").glob("*.html"))) == 5


def test_translated_literals_are_what_the_call_gives_at_render():
    source = ('{{ _("Risk score") }}|{{ _("updated %(date)s", date="<b>") }}|{{ _(word) }}|{{ _("100%% sure") }}'
              '|{{ _("Back to the weekly report")|length }}')
    folded = environment("zh").from_string(source)
    plain = Environment(autoescape=True, extensions=["jinja2.ext.i18n"])
    plain.install_gettext_translations(translations("zh"), newstyle=True)
    assert folded.render(word="Findings") == plain.from_string(source).render(word="Findings")
    assert "风险分值" in folded.render(word="Findings")
    assert folded.render(word="Findings").startswith(translations("zh").gettext("Risk score"))


def test_labels_and_badges_translate_known_values_and_escape_the_rest():
    zh, en = environment("zh"), environment("en")
    assert zh.from_string('{{ "high"|badge("severity") }}').render() == '<span class="badge high">高</span>'
    assert en.from_string('{{ "open"|badge("status") }}|{{ "lending"|label("finance") }}').render() == (
        '<span class="badge open">Open</span>|Online lending')
    hostile = '<b x="1">'
    escaped = "&lt;b x=&#34;1&#34;&gt;"
    assert en.from_string('{{ v|badge("severity") }}').render(v=hostile) == f'<span class="badge {escaped}">{escaped}</span>'
    assert en.from_string('{{ v|label("finance") }}|{{ none|label("policy") }}').render(v=hostile) == f"{escaped}|—"


def test_an_empty_index_renders(tmp_path):
    with SQLiteStore(tmp_path / "empty.db") as store:
        for lang in ("zh", "en"):
            html = render_report(store, tmp_path / lang, lang=lang).read_text(encoding="utf-8")
            assert 'id="kpi-apps"><div class="value">0<' in html


def test_a_rule_not_applied_says_so(tmp_path):
    from finmon import jobs

    with SQLiteStore(tmp_path / "rules.db") as store:
        store.save_rules(jobs.rules_with_status(None))  # no registry: R601 not applied
        zh = render_report(store, tmp_path / "zh", lang="zh").read_text(encoding="utf-8")
        en = render_report(store, tmp_path / "en", lang="en").read_text(encoding="utf-8")
    assert "最近一次分析未执行本规则</strong>: 未配置登记名单（FINMON_REGISTRY 为空）" in zh
    assert "Not applied in the last analysis</strong>: no registry configured (FINMON_REGISTRY is empty)" in en
    assert zh.count("最近一次分析未执行本规则") == 1


def test_a_crawl_whose_discovery_was_capped_says_so(tmp_path):
    from finmon.model import Run

    with SQLiteStore(tmp_path / "capped.db") as store:
        for day, capped in (("2024-03-10", 5), ("2024-03-11", 0)):  # xiaomi's latest crawl saw every page
            store.save_run(Run(id=f"crawl-{day}-xiaomi", kind="crawl", started=f"{day}T08:00:00Z", outcome="ok",
                               job="crawl:xiaomi", counters={"discovery_capped": capped}))
        store.save_run(Run(id="crawl-appgallery", kind="crawl", started="2024-03-11T08:00:00Z", outcome="ok",
                           job="crawl:appgallery", counters={"discovery_capped": 3}))
        zh = render_report(store, tmp_path / "zh", lang="zh").read_text(encoding="utf-8")
        en = render_report(store, tmp_path / "en", lang="en").read_text(encoding="utf-8")
    assert "应用发现不完整" in zh and "Discovery incomplete" in en
    notice = en.split('id="discovery-capped"', 1)[1].split("</p>", 1)[0]
    assert "appgallery 3" in notice and "xiaomi" not in notice


def test_a_report_of_complete_discovery_has_no_notice(rendered):
    paths, _ = rendered
    assert 'id="discovery-capped"' not in paths["en"].read_text(encoding="utf-8")


def test_unknown_language_is_refused(report_store, tmp_path):
    with pytest.raises(ValueError):
        render_report(report_store[0], tmp_path, lang="fr")


# -- catalog --------------------------------------------------------------------------


def template_messages():
    env = Environment(extensions=["jinja2.ext.i18n"])  # as pybabel extract reads the templates
    found = set()
    for name in environment("en").list_templates():
        source = (Path(weekly.__file__).parent / "templates" / name).read_text(encoding="utf-8")
        for _, _, message in env.extract_translations(source):
            message = message[0] if isinstance(message, tuple) else message
            if message:
                found.add(message)
    return found | {m for group in LABELS.values() for m in group.values()}


def test_the_chinese_catalog_is_complete():
    zh = translations("zh")
    messages = template_messages()
    assert len(messages) > 60
    missing = [m for m in messages if zh.gettext(m) == m and m not in ("Android", "iOS")]
    assert not missing, missing
    for m in messages:
        assert sorted(re.findall(r"%\((\w+)\)s", m)) == sorted(re.findall(r"%\((\w+)\)s", zh.gettext(m))), m


def test_the_report_reads_the_store_only():
    for path in Path(weekly.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for name in names:
                    assert name.split(".")[0] not in ("analyzers", "crawler", "market", "scrapy"), (path, name)


# -- helpers ------------------------------------------------------------------------------


def test_safe_url():
    assert safe_url("http://a.test/x?y=1") == "http://a.test/x?y=1"
    assert safe_url(" https://a.test/ ") == "https://a.test/"
    for bad in ("javascript:alert(1)", "JAVASCRIPT:alert(1)", " javascript:x", "data:text/html,x", "//a.test/x",
                "/local", "http://", "http://[::1", None, 5, "vbscript:x", "file:///etc/passwd"):
        assert safe_url(bad) is None, bad


def test_app_filename_is_safe_and_distinct():
    assert app_filename("android:com.example.loan") == "android_com.example.loan.html"
    hostile = ["android:../../etc/passwd", "ios:a/b", "android:" + "x" * 300, "android:.hidden", "ios:<script>",
               "android:a b", "android:a_b"]
    names = [app_filename(k) for k in hostile]
    assert len(set(names)) == len(names)
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*\.html", name) and len(name) < 120, name


def test_quote_parts_highlight_the_term():
    sentence = "我们会读取您的通讯录信息。"
    policy = "前言。" + sentence
    assert quote_parts(Evidence(kind="quote", key="contacts", text=sentence, detail="通讯录")) == (
        "我们会读取您的", "通讯录", "信息。")
    start = policy.index("通讯录")  # offsets given for the term rather than the sentence
    ev = Evidence(kind="quote", key="contacts", text=sentence, start=start, end=start + 3)
    assert quote_parts(ev, policy) == ("我们会读取您的", "通讯录", "信息。")
    whole = Evidence(kind="quote", key="contacts", text=sentence, start=3, end=3 + len(sentence))
    assert quote_parts(whole, policy) == (sentence, "", "")
    assert quote_parts(Evidence(kind="quote", key="x", text=sentence, start=50, end=60), policy) == (sentence, "", "")


def test_week_window():
    start, end = week_window("2024-W11")
    assert start == datetime(2024, 3, 11, tzinfo=timezone.utc) and (end - start).days == 7
    assert week_window(date(2024, 3, 17))[0] == start
    assert week_window(None, "2024-03-13T23:00:00+00:00")[0] == start
    assert week_window(None, "2024-03-11T01:00:00+08:00")[0] == datetime(2024, 3, 4, tzinfo=timezone.utc)
    with pytest.raises(ValueError):
        week_window("last week")


def test_evidence_shows_a_detail_that_adds_to_the_quote_or_permission():
    """What a Data safety form declares (D304, D305) is shown beside the permission or the quote; a detail that only
    repeats the key or is the quote's highlighted term is not shown twice."""
    from finmon.model import Finding

    macro = environment("en").from_string('{% import "_macros.html" as m %}{{ m.evidence(f) }}')

    def shown(**evidence):
        finding = Finding(rule_id="D304", severity="medium", confidence="medium", app_key="android:a", title="t",
                          evidence=Evidence(**evidence), regulation="r")
        return " ".join(macro.render(f=finding).split())

    assert "Data safety: no data collected" in shown(kind="permission", key="location",
                                                     text="android.permission.ACCESS_FINE_LOCATION",
                                                     detail="Data safety: no data collected")
    assert shown(kind="permission", key="contacts", text="android.permission.READ_CONTACTS",
                 detail="contacts") == "<code>android.permission.READ_CONTACTS</code>"
    quote = shown(kind="quote", key="location", text="我们会获取您的位置信息。", start=0, end=12,
                  detail="Data safety: collects Personal info")
    assert "我们会获取您的位置信息" in quote and "Data safety: collects Personal info" in quote
    term = shown(kind="quote", key="location", text="我们会获取您的位置信息。", detail="位置信息")
    assert "<mark>位置信息</mark>" in term and term.count("位置信息") == 1


def test_legal_entities_and_data_safety_forms_are_shown(tmp_path):
    """The app page gives each listing's legal entity (with its address) and what its Data safety form declares; the
    ranking gives the legal entity under the name the store shows."""
    from finmon.model import Analysis, Finding, Listing, merge_listings

    play = Listing(store="googleplay", store_id="com.star.pay", platform="android", package="com.star.pay",
                   name="星河支付", developer="Star Pay", legal_entity="杭州星河支付科技有限公司",
                   legal_address="1 Star Road\nHangzhou", developer_email="help@star.test", category="Finance",
                   source_url="http://play.test/details?id=com.star.pay", fetched_at="2024-03-04T08:00:00Z",
                   permissions=("android.permission.ACCESS_FINE_LOCATION",),
                   data_safety={"collected": [{"category": "Personal info", "type": "Name", "optional": False,
                                               "purpose": "Account management"}], "shared": [], "practices": []})
    (app,) = merge_listings([play], {}, {})
    finding = Finding(rule_id="D304", severity="medium", confidence="medium", app_key=app.key, title="t",
                      evidence=Evidence(kind="permission", key="location", text="android.permission.ACCESS_FINE_LOCATION",
                                        detail="Data safety: collects Personal info"), regulation="r")
    with SQLiteStore(tmp_path / "play.db") as store:
        store.save_analysis([app], [Analysis(app.key, "payment", 0.9, (finding,))], "2024-03-11T10:00:00+00:00")
        index = render_report(store, tmp_path / "report", lang="en", week="2024-W11")
    ranking = index.read_text(encoding="utf-8")
    assert "Star Pay" in ranking and "杭州星河支付科技有限公司" in ranking
    page = (index.parent / "apps" / app_filename(app.key)).read_text(encoding="utf-8")
    assert "Legal entity" in page and "1 Star Road" in page and "help@star.test" in page
    assert "collects: Personal info" in page and "Data safety: collects Personal info" in page
