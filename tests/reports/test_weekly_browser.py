"""The report in a real headless browser: Debian's chromium driven by Playwright, over file://.

Needs /usr/bin/chromium and a CJK font (scripts/install-test-deps.sh installs both).
"""
import os
import shutil
from pathlib import Path

import pytest

from reports.weekly import app_filename, render_report
from tests.support import required

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
HOSTILE_NAME = "<script>alert(1)</script>"



@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for this module only: Playwright's sync API keeps an asyncio loop running in the main
    thread while it is open, which would break any later test that runs a loop of its own (asyncio.run)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        required(CHROMIUM, "install Debian's chromium (scripts/install-test-deps.sh does)")

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def report(report_store, tmp_path_factory):
    store, apps = report_store
    return render_report(store, tmp_path_factory.mktemp("browser-report"), lang="zh", week="2024-W11"), apps


@pytest.fixture
def page(browser):
    """A page that records console messages, page errors, dialogs and every request it makes."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.seen = {"errors": [], "requests": [], "dialogs": []}
    page.on("console", lambda msg: msg.type in ("error", "warning") and page.seen["errors"].append(msg.text))
    page.on("pageerror", lambda exc: page.seen["errors"].append(str(exc)))
    page.on("request", lambda req: page.seen["requests"].append(req.url))
    page.on("dialog", lambda dialog: (page.seen["dialogs"].append(dialog.message), dialog.dismiss()))
    yield page
    context.close()


def assert_clean(page):
    assert page.seen["errors"] == []
    assert page.seen["dialogs"] == []  # no injected script ran
    assert all(url.startswith("file://") for url in page.seen["requests"]), page.seen["requests"]


def test_index_page_in_chromium(page, report, tmp_path):
    index, _ = report
    page.goto(index.as_uri())
    page.wait_for_load_state("load")
    assert page.title().startswith("金融类App个人信息保护风险监测周报")
    for selector in ("header.top h1", "#kpi-apps", "#kpi-high-apps", "#ranking-table", "#runs-table", "#rule-C202",
                     "#family-P"):
        assert page.locator(selector).first.is_visible(), selector
    assert page.locator("#kpi-apps .value").inner_text() == "5"
    assert page.locator("svg.chart-svg").count() == 4
    assert page.locator("mark", has_text="通讯录").first.is_visible()
    assert page.get_by_text(HOSTILE_NAME, exact=True).first.is_visible()  # shown as text
    font = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert "PingFang SC" in font and "Noto Sans CJK SC" in font
    shot = tmp_path / "index.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    if os.environ.get("FINMON_SCREENSHOT"):  # for a person to look at: FINMON_SCREENSHOT=/some/where.png
        shutil.copy(shot, os.environ["FINMON_SCREENSHOT"])
    assert_clean(page)


def test_app_pages_in_chromium(page, report, tmp_path):
    index, apps = report
    page.goto(index.as_uri())
    page.locator("#ranking-table a", has_text="快乐借款").click()
    page.wait_for_load_state("load")
    assert page.url.endswith(app_filename(apps["com.kuaile.loan"].key))
    assert page.locator("#app-name").inner_text() == "快乐借款"
    for selector in ("#findings table", "#policy", "#listings", "#permissions .perm-flag"):
        assert page.locator(selector).first.is_visible(), selector
    assert page.locator("#policy a[href='http://policies.test/kuaile.html']").is_visible()
    page.screenshot(path=str(tmp_path / "app.png"), full_page=True)

    page.goto((index.parent / "apps" / app_filename(apps["com.evil.pay"].key)).as_uri())
    assert page.locator("#app-name").inner_text() == HOSTILE_NAME
    assert page.locator("a[href^='javascript']").count() == 0
    page.get_by_text("← 返回周报").click()
    page.wait_for_load_state("load")
    assert page.url.endswith("/index.html")
    assert_clean(page)


def glyphs_differ(page, a: str, b: str) -> bool:
    """Whether two CJK characters drawn in the page's body font differ (a missing font draws both as the same box)."""
    return page.evaluate("""([a, b]) => {
        const font = '32px ' + getComputedStyle(document.body).fontFamily;
        const draw = (ch) => {
            const canvas = document.createElement('canvas'); canvas.width = canvas.height = 40;
            const ctx = canvas.getContext('2d'); ctx.font = font; ctx.fillText(ch, 2, 34);
            return Array.from(ctx.getImageData(0, 0, 40, 40).data).join(',');
        };
        return draw(a) !== draw(b);
    }""", [a, b])


def test_archive_index_in_chromium(page, report_store, tmp_path):
    from reports.archive import render_archive

    store, _ = report_store
    root = tmp_path / "reports"
    for week in ("2024-W10", "2024-W11"):
        render_archive(store, root, lang="zh", week=week, workers=0)
    page.goto((root / "index.html").as_uri())
    page.wait_for_load_state("load")
    assert page.title().startswith("周报归档")
    assert page.locator("#archive-weeks tbody tr").count() == 2
    newest = page.locator("#archive-weeks tbody tr").first
    assert newest.get_attribute("id") == "week-2024-W11" and newest.is_visible()
    assert newest.locator("td").nth(6).inner_text() == "1"  # new this week
    assert glyphs_differ(page, "周", "报")  # Chinese is drawn, not empty boxes
    shot = tmp_path / "archive.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("FINMON_SCREENSHOT"):
        shutil.copy(shot, Path(os.environ["FINMON_SCREENSHOT"]).with_suffix(".archive.png"))
    page.get_by_role("link", name="2024年第10周").click()
    page.wait_for_load_state("load")
    assert page.url.endswith("/2024-W10/index.html")
    assert page.locator("#kpi-new .value").inner_text() == "7"
    page.locator("#archive-link").click()
    page.wait_for_load_state("load")
    assert page.url == (root / "index.html").as_uri()
    assert_clean(page)
