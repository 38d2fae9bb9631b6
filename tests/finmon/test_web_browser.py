"""finmon serve in a real headless browser (Debian's chromium through Playwright), on each backend."""
import json
import os
import shutil
from urllib.parse import quote

from click.testing import CliRunner

from finmon import settings
from finmon.cli import main
from tests.reports.conftest import HOSTILE_NAME
from tests.reports.test_weekly_browser import browser, page  # noqa: F401 (fixtures)


def shown_ids(page):
    return page.eval_on_selector_all("article.hit", "els => els.map(e => e.dataset.id)")


def cli_ids(web_index, monkeypatch, *args):
    """The hit ids `finmon search … --json` prints for the same index."""
    if web_index["backend"] == "elastic":
        store = web_index["open"]()
        monkeypatch.setenv("FINMON_ES_URL", store.url)
        monkeypatch.setenv("FINMON_ES_PREFIX", store.prefix)
        store.close()
    result = CliRunner().invoke(main, ["search", *args, "--json", "--limit", "100", "--db", str(web_index["db"])])
    assert result.exit_code == 0, result.output
    return [json.loads(line)["id"] for line in result.output.splitlines() if line.strip()]


def assert_clean(page, web_index):
    assert page.seen["errors"] == [] and page.seen["dialogs"] == []
    assert all(url.startswith(web_index["url"]) for url in page.seen["requests"]), page.seen["requests"]


def screenshot(page, tmp_path, name):
    shot = tmp_path / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    if os.environ.get("FINMON_SCREENSHOT_DIR"):  # for a person to look at
        shutil.copy(shot, os.environ["FINMON_SCREENSHOT_DIR"])


def test_search_facets_paging_and_permalink_agree_with_finmon_search(page, web_index, monkeypatch, tmp_path):
    monkeypatch.setattr(settings, "FINMON_SERVE_PAGE_SIZE", 2)
    page.goto(web_index["url"] + "/search")
    page.fill("#q", "android")
    page.click("form.search button")
    page.wait_for_url("**/search?q=android*")
    assert page.locator("#summary").is_visible()
    first = shown_ids(page)
    page.click("#next")
    page.wait_for_load_state("load")
    everything = first + shown_ids(page)
    assert everything == cli_ids(web_index, monkeypatch, "android")
    page.click('#facet-severity a[data-value="high"]')
    page.wait_for_url("**severity=high*")
    high = shown_ids(page)
    assert high == cli_ids(web_index, monkeypatch, "android", "--severity", "high")[:2]
    permalink = page.locator("#permalink").get_attribute("href")
    page.goto(web_index["url"] + permalink)
    assert shown_ids(page) == high
    assert page.locator("mark").first.inner_text().lower() == "android"
    font = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert "Noto Sans CJK SC" in font and "WenQuanYi Zen Hei" in font
    screenshot(page, tmp_path, f"search-{web_index['backend']}")
    assert_clean(page, web_index)


def test_hostile_text_is_shown_as_text_and_never_runs(page, web_index, tmp_path):
    page.goto(web_index["url"] + "/search?q=" + quote("通讯录"))
    assert page.get_by_text("<img src=x onerror=alert(2)>", exact=False).first.is_visible()
    page.goto(web_index["url"] + "/app/android:com.evil.pay")
    assert page.locator("#app-name").inner_text() == HOSTILE_NAME
    screenshot(page, tmp_path, f"app-{web_index['backend']}")
    assert_clean(page, web_index)


def test_app_page_links_to_evidence_that_checks(page, web_index, tmp_path):
    page.goto(web_index["url"] + "/app/android:com.kuaile.loan")
    assert page.locator("#history tbody tr").count() == 2
    page.click(f'a.evidence-link[href="/evidence/{web_index["captured"].id}"]')
    page.wait_for_load_state("load")
    assert "sha256:" in page.locator("#digest-status").inner_text()
    screenshot(page, tmp_path, f"evidence-{web_index['backend']}")
    assert_clean(page, web_index)
