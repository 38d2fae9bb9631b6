"""finmon serve over HTTP on loopback: the JSON API, the pages, downloads, evidence, the token (both backends)."""
import csv
import io
import json
import urllib.error
import urllib.request
from urllib.parse import quote

import pytest

from finmon import settings
from finmon.web import SearchRequest, check_binding, export_cell, mark_parts
from tests.finmon.conftest import HOSTILE_BODY
from tests.reports.conftest import HOSTILE_NAME


def get(url, headers=None):
    """(status, headers, body bytes) of a GET; errors are answers too."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers, exc.read()


def api(web_index, path):
    status, _, body = get(web_index["url"] + path)
    return status, json.loads(body)


def test_search_api_gives_the_stores_hits_and_facets(web_index):
    status, answer = api(web_index, "/api/search?q=" + quote("通讯录"))
    assert status == 200
    store = web_index["open"]()
    expected = store.search("通讯录", limit=settings.FINMON_SERVE_PAGE_SIZE)
    assert [h["id"] for h in answer["hits"]] == [h["id"] for h in expected] and expected
    assert answer["total"] == store.facets("通讯录")["total"]
    rules = {v["value"]: v for v in answer["facets"]["rule"]}
    assert rules["C202"]["count"] == 2 and rules["C202"]["href"] == "/search?q=%E9%80%9A%E8%AE%AF%E5%BD%95&rule=C202"
    status, narrowed = api(web_index, rules["C202"]["href"].replace("/search", "/api/search"))
    assert narrowed["filters"] == {"rule": "C202"} and {h["rule_id"] for h in narrowed["hits"]} == {"C202"}
    assert narrowed["facets"]["rule"][0]["selected"] and narrowed["links"]["remove"]["rule"].endswith("q=%E9%80%9A%E8%AE%AF%E5%BD%95")
    store.close()


def test_pages_follow_one_another(web_index, monkeypatch):
    monkeypatch.setattr(settings, "FINMON_SERVE_PAGE_SIZE", 2)
    _, first = api(web_index, "/api/search?q=android&sort=severity")
    assert first["pages"] == 2 and first["links"]["previous"] is None
    _, second = api(web_index, first["links"]["next"].replace("/search", "/api/search"))
    store = web_index["open"]()
    every = store.search("android", sort="severity")
    assert [h["id"] for h in first["hits"] + second["hits"]] == [h["id"] for h in every]
    store.close()


@pytest.mark.parametrize("query, message", [
    ("q=x&severity=urgent", "severity must be one of"), ("q=x&week=2024-53x", "ISO week"),
    ("q=x&sort=random", "sort must be one of"), ("q=x&page=0", "page must be between"), ("q=x&page=two", "page must be a number"),
])
def test_bad_parameters_are_one_clear_error(web_index, query, message):
    status, answer = api(web_index, "/api/search?" + query)
    assert status == 400 and message in answer["error"]
    status, _, body = get(web_index["url"] + "/search?" + query)
    assert status == 400 and message in body.decode()


def test_search_page_marks_the_match_and_shows_hostile_text_as_text(web_index):
    status, headers, body = get(web_index["url"] + "/search?q=" + quote("通讯录"))
    html = body.decode()
    assert status == 200 and "<mark>通讯录</mark>" in html
    assert "default-src 'none'" in headers["Content-Security-Policy"] and headers["X-Content-Type-Options"] == "nosniff"
    assert "<img src=x onerror" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    status, _, body = get(web_index["url"] + "/search?q=alert")
    assert status == 200 and HOSTILE_NAME not in body.decode()


def test_app_page_history_versions_and_findings(web_index):
    key = "android:com.kuaile.loan"
    status, app = api(web_index, f"/api/app/{key}")
    assert status == 200 and app["key"] == key
    assert {h["store"] for h in app["history"]} == {"xiaomi", "appgallery"}
    assert any(f["status"] == "resolved" and f["evidence"]["key"].endswith("ACCESS_FINE_LOCATION") for f in app["findings"])
    status, _, body = get(web_index["url"] + f"/app/{key}")
    html = body.decode()
    assert status == 200 and 'id="history"' in html and 'href="/evidence/' in html and 'id="sdks"' in html
    assert app["sdks"] == []  # no APK in this index (the store contract tests keep SDKs)
    assert api(web_index, "/api/app/android:no.such.app")[0] == 404
    status, answer = api(web_index, f"/api/app/{key}/diff")
    assert status == 400 and "nothing to compare" in answer["error"]


def test_downloads_hold_the_whole_result_set(web_index, monkeypatch):
    store = web_index["open"]()
    android, contacts = (sorted(h["id"] for h in store.search(q, limit=100)) for q in ("android", "通讯录"))
    store.close()
    assert len(android) > 2 and len(contacts) > 2
    monkeypatch.setattr(settings, "FINMON_SEARCH_MAX_HITS", 2)  # read in pages of two
    status, headers, body = get(web_index["url"] + "/api/export?q=android&format=csv")
    assert status == 200 and "attachment" in headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert sorted(r["id"] for r in rows) == android
    status, _, body = get(web_index["url"] + "/api/export?q=" + quote("通讯录") + "&format=json")
    assert sorted(h["id"] for h in json.loads(body)) == contacts
    assert export_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)" and export_cell(["a", "b"]) == "a, b"


def test_evidence_opens_and_its_digest_checks(web_index):
    finding = web_index["captured"]
    status, answer = api(web_index, f"/api/evidence/{finding.id}")
    assert status == 200 and answer["verified"]
    assert answer["capture"]["url"] == "http://policies.test/kuaile.html" and answer["capture"]["status"] == 200
    assert answer["capture"]["digest"].startswith("sha256:")
    status, headers, body = get(web_index["url"] + answer["body_href"])
    assert status == 200 and body == HOSTILE_BODY
    assert headers["Content-Type"] == "application/octet-stream" and headers["Content-Security-Policy"] == "sandbox"
    status, _, page = get(web_index["url"] + f"/evidence/{finding.id}")
    assert status == 200 and "sha256:" in page.decode()


def test_evidence_without_a_capture_says_why(web_index):
    store = web_index["open"]()
    plain = next(f for f in store.findings(rule="P101"))
    store.close()
    status, answer = api(web_index, f"/api/evidence/{plain.id}")
    assert status == 409 and not answer["verified"] and answer["error"]
    assert get(web_index["url"] + f"/evidence/{plain.id}/body")[0] == 409
    assert api(web_index, "/api/evidence/nope")[0] == 404


def test_read_only(web_index):
    request = urllib.request.Request(web_index["url"] + "/search", data=b"q=x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    refused.value.close()
    assert refused.value.code == 405


def test_a_token_guards_every_request():
    from aiohttp.test_utils import TestClient, TestServer
    import asyncio

    from finmon.web import create_app
    from index.sqlite import SQLiteStore

    async def run():
        app = create_app(lambda: SQLiteStore(":memory:"), token="s3cret")
        async with TestClient(TestServer(app)) as client:
            assert (await client.get("/api/search?q=x")).status == 401
            assert (await client.get("/api/search?q=x", headers={"Authorization": "Bearer wrong"})).status == 401
            assert (await client.get("/api/search?q=x", headers={"Authorization": "Bearer s3cret"})).status == 200
            login = await client.get("/search?q=x&token=s3cret", allow_redirects=False)
            assert login.status == 302 and "token" not in login.headers["Location"]
            assert (await client.get("/api/search?q=x")).status == 200  # the cookie the login set

    asyncio.run(run())
    check_binding("127.0.0.1", None)
    check_binding("::1", None)
    with pytest.raises(ValueError, match="FINMON_SERVE_TOKEN"):
        check_binding("0.0.0.0", None)
    check_binding("0.0.0.0", "s3cret")


def test_search_request_links():
    ask = SearchRequest.from_query({"q": "通讯录 借款", "rule": "C202", "page": "3", "sort": "newest"})
    assert ask.href(page=4) == "/search?q=%E9%80%9A%E8%AE%AF%E5%BD%95+%E5%80%9F%E6%AC%BE&rule=C202&sort=newest&page=4"
    assert ask.href(severity="high").endswith("rule=C202&sort=newest&severity=high")  # a new filter: page 1
    assert mark_parts("abcdef", [2, 4]) == ("ab", "cd", "ef") and mark_parts("abc", None) == ("abc", "", "")
