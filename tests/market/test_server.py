"""The simulator's HTTP server: store formats, policies, robots.txt and faults, on 127.0.0.1."""
from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, urljoin

import pytest
from parsel import Selector
from pypdf import PdfReader

from crawler import parsers
from finmon import settings
from market.population import LABELS, Market
from market.server import _NO_LINE_START, _TERMS, MarketServer, _wrap

ITUNES_FIELDS = {
    "kind": str, "trackId": int, "trackName": str, "bundleId": str, "artistId": int, "artistName": str,
    "sellerName": str, "primaryGenreName": str, "genres": list, "genreIds": list, "version": str,
    "currentVersionReleaseDate": str, "releaseDate": str, "description": str, "userRatingCount": int,
    "averageUserRating": float, "trackViewUrl": str, "artworkUrl100": str, "price": float,
    "formattedPrice": str, "currency": str, "minimumOsVersion": str, "fileSizeBytes": str, "sellerUrl": str,
    "languageCodesISO2A": list, "contentAdvisoryRating": str,
}
LABEL_TO_PERMISSION = {label: "android.permission." + name for name, label in LABELS["permissions"].items()}


@pytest.fixture(scope="module")
def server():
    with MarketServer(apps=300, seed=7) as market:
        yield market


@pytest.fixture(scope="module")
def truth(server: MarketServer) -> dict:
    return server.truth()


@pytest.fixture(scope="module")
def apps(truth: dict) -> dict[str, dict]:
    return {a["key"]: a for a in truth["app_list"]}


def get(url: str, **headers: str) -> tuple[int, dict, bytes]:
    assert url.startswith("http://127.0.0.1:")
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def get_json(url: str) -> dict:
    status, _, body = get(url)
    assert status == 200, url
    return json.loads(body)


def appgallery_url(server: MarketServer, uri: str, **params: object) -> str:
    query = "".join(f"&{k}={v}" for k, v in params.items())
    root = f"{server.store_urls['appgallery']}/uowap/index?method=internal.getTabDetail"
    return f"{root}&uri={quote(uri, safe='')}{query}"


def pick(truth: dict, test) -> dict:
    return next(a for a in truth["app_list"] if test(a))


# --- search: every app is found through the configured keywords -----------------------------
def itunes_search(server: MarketServer, keyword: str) -> list[dict]:
    results, offset = [], 0
    while True:
        query = f"term={quote(keyword)}&country=cn&entity=software&limit=50&offset={offset}"
        url = f"{server.store_urls['itunes']}/search?{query}"
        page = get_json(url)
        assert page["resultCount"] == len(page["results"])
        results += page["results"]
        if page["resultCount"] < 50:
            return results
        offset += 50


def appgallery_search(server: MarketServer, keyword: str) -> list[dict]:
    items, page, more = [], 1, True
    while more:
        data = get_json(appgallery_url(server, f"searchApp|{keyword}", reqPageNum=page, maxResults=25))
        assert data["rtnCode"] == 0 and data["hasNextPage"] == int(page < data["totalPages"])
        more = data["hasNextPage"] == 1
        for layout in data["layoutData"]:  # every layout, whatever its name, as public parsers read them
            assert isinstance(layout["layoutId"], int) and layout["layoutName"]
            items += layout["dataList"]
        page += 1
    return items


def xiaomi_search(server: MarketServer, keyword: str) -> list[str]:
    packages = []
    url: str | None = f"{server.store_urls['xiaomi']}/search?keywords={quote(keyword)}&page=1"
    while url:
        status, headers, body = get(url)
        assert status == 200 and "charset=utf-8" in headers["Content-Type"]
        page = Selector(text=body.decode("utf-8"))
        links = page.css("ul.applist li a")
        assert len(links) <= 30
        packages += [href.split("id=", 1)[1] for href in links.xpath("@href").getall()]
        assert not page.css("a.next")  # as on real pages: the pager's link reading 下一页
        next_href = page.xpath("//div[@class='pages']/a[text()='下一页']/@href").get()
        url = urljoin(url, next_href) if next_href else None
    return packages


def test_search_finds_every_app_through_the_keywords_in_each_store(server: MarketServer, truth: dict) -> None:
    found = {"itunes": set(), "appgallery": set(), "xiaomi": set()}
    for keyword in settings.FINMON_KEYWORDS:
        found["itunes"] |= {f"ios:{r['bundleId']}" for r in itunes_search(server, keyword)}
        found["appgallery"] |= {f"android:{i['package']}" for i in appgallery_search(server, keyword)}
        found["xiaomi"] |= {f"android:{p}" for p in xiaomi_search(server, keyword)}
    for store, keys in found.items():
        assert keys == {a["key"] for a in truth["app_list"] if store in a["stores"]}, store


def test_search_matches_name_or_description_only(server: MarketServer) -> None:
    assert itunes_search(server, "不存在的关键词") == []
    assert appgallery_search(server, "不存在的关键词") == []
    assert xiaomi_search(server, "不存在的关键词") == []
    for result in itunes_search(server, "保险"):
        assert "保险" in result["trackName"] or "保险" in result["description"]


# --- iTunes ------------------------------------------------------------------------------------
def test_itunes_search_and_lookup_use_the_real_field_names(server: MarketServer, apps: dict) -> None:
    results = itunes_search(server, "金融")
    assert results
    for result in results[:20]:
        for name, kind in ITUNES_FIELDS.items():
            assert isinstance(result[name], kind), name
        assert result["kind"] == "software" and result["primaryGenreName"] == "财务"
        assert result["currentVersionReleaseDate"].endswith("Z")
        app = apps[f"ios:{result['bundleId']}"]
        assert (result["trackName"], result["sellerName"]) == (app["name"], app["developer"])
        assert result["artistName"] and result["artistName"] in app["developer"]  # the short name
        assert result["trackId"] == app["store_ids"]["itunes"]
    status, headers, _ = get(f"{server.store_urls['itunes']}/search?term=%E9%87%91%E8%9E%8D")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    one = get_json(f"{server.store_urls['itunes']}/lookup?id={results[0]['trackId']}&country=cn")
    assert one["resultCount"] == 1 and one["results"][0] == results[0]
    assert get_json(f"{server.store_urls['itunes']}/lookup?id=1&country=cn") == {"resultCount": 0, "results": []}


def test_itunes_app_page(server: MarketServer, truth: dict) -> None:
    with_policy = pick(truth, lambda a: a["platform"] == "ios" and a["policy"]["variant"] == "html")
    without = pick(truth, lambda a: a["platform"] == "ios" and a["policy"]["variant"] == "none")
    for app in (with_policy, without):
        [result] = get_json(f"{server.store_urls['itunes']}/lookup?id={app['store_ids']['itunes']}")["results"]
        status, headers, body = get(result["trackViewUrl"])
        assert status == 200 and "charset=utf-8" in headers["Content-Type"]
        page = Selector(text=body.decode("utf-8"))
        assert page.css("h1.product-header__title::text").get() == app["name"]
        assert page.css("h2.product-header__identity a::text").get() == app["developer"]
        link = page.css("section.app-privacy a.link")
        assert link.xpath("@href").get() == app["policy"]["url"]
        if app["policy"]["url"]:
            assert link.xpath("text()").get() == "开发者隐私政策"
            labels = page.css(".privacy-type__grid-content h3.privacy-type__data-category-heading::text").getall()
            assert "联系信息" in labels
    assert get(f"{server.base_url}/apple/cn/app/id1")[0] == 404


# --- AppGallery --------------------------------------------------------------------------------
def test_appgallery_detail(server: MarketServer, truth: dict) -> None:
    app = pick(truth, lambda a: a["stores"] == ["appgallery", "xiaomi"] and not a["faults"]
               and a["policy"]["url"] and len(a["permissions"]) > 3)
    appid = app["store_ids"]["appgallery"]
    data = get_json(appgallery_url(server, f"app|{appid}"))
    cards = {layout["layoutName"]: layout["dataList"] for layout in data["layoutData"]}
    assert all(isinstance(layout["layoutId"], int) for layout in data["layoutData"])
    [head], [hidden], [info], [intro] = (cards[name] for name in (
        "detailheadcard", "detailhiddencard", "detailappinfocard", "detailappintrocard"))
    assert (head["appid"], head["name"]) == (hidden["appid"], hidden["name"]) == (appid, app["name"])
    assert hidden["package"] == app["package"] and hidden["detailId"] == f"app|{appid}" and hidden["versionName"]
    assert info["developer"] == app["legal_entities"]["appgallery"] and len(info["releaseDate"]) == 10
    assert head["intro"].endswith("次安装") and parsers.install_count(head["intro"]) > 0
    assert "金融" in intro["appIntro"] and "tagName" not in head  # the category is on the search items only
    [permissions] = cards["appdetailpermissioncard"]
    assert [p["name"] for p in permissions["permissions"]] == app["permissions"]
    assert all(LABEL_TO_PERMISSION[p["desc"]] == p["name"] for p in permissions["permissions"])
    assert cards["appprivacycard"] == [{"privacyUrl": app["policy"]["url"]}]
    none = pick(truth, lambda a: "appgallery" in a["stores"] and a["policy"]["variant"] == "none" and not a["faults"])
    data = get_json(appgallery_url(server, f"app|{none['store_ids']['appgallery']}"))
    assert "appprivacycard" not in {layout["layoutName"] for layout in data["layoutData"]}
    assert get(appgallery_url(server, "app|C9999999"))[0] == 404


def test_appgallery_search_pagination(server: MarketServer) -> None:
    first = get_json(appgallery_url(server, "searchApp|金融", reqPageNum=1, maxResults=25))
    items = appgallery_search(server, "金融")
    assert first["totalPages"] == -(-len(items) // 25) > 1 and first["count"] == len(items)
    assert first["hasNextPage"] == 1 and first["layoutData"][0]["layoutName"] == "searchresultcard"
    assert len({i["appid"] for i in items}) == len(items)
    assert all(i["detailId"] == f"app|{i['appid']}" for i in items)
    assert all(i["tagName"] and i["package"] and i["downCountDesc"].endswith("次安装") for i in items)
    parsed = parsers.parse_appgallery_search(json.dumps(first))
    assert parsed.has_next_page and parsed.detail_ids == [i["detailId"] for i in items[:25]]


def test_appgallery_data_faults_are_served_in_the_real_cards() -> None:
    """A wrong-typed field sits in the card that carries that field; string permissions are plain labels."""
    from market.server import APPGALLERY_FIELD_CARDS

    with MarketServer(apps=80, seed=7, fault_rate=1.0) as market:
        apps = [a for a in market.truth()["app_list"] if len(a["faults"]) == 1]
        wrong = [a for a in apps if a["faults"] == ["appgallery_wrong_type"]]
        strings = [a for a in apps if a["faults"] == ["appgallery_string_permissions"]]
        assert wrong and strings
        for app in wrong + strings:
            appid = app["store_ids"]["appgallery"]
            cards = {layout["layoutName"]: layout["dataList"][0]
                     for layout in get_json(appgallery_url(market, f"app|{appid}"))["layoutData"]}
            if app in strings:
                assert all(isinstance(p, str) for p in cards["appdetailpermissioncard"]["permissions"])
                continue
            field, value = market.market.wrong_typed_field(market.market[int(appid[1:]) - 1_000_000], "appgallery")
            assert cards[APPGALLERY_FIELD_CARDS[field]][field] == value


# --- Xiaomi ------------------------------------------------------------------------------------
def test_xiaomi_detail(server: MarketServer, truth: dict) -> None:
    app = pick(truth, lambda a: "xiaomi" in a["stores"] and not a["faults"] and a["policy"]["url"]
               and len(a["permissions"]) > 3)
    status, headers, body = get(f"{server.store_urls['xiaomi']}/details?id={app['package']}")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    page = Selector(text=body.decode("utf-8"))
    titles = page.css("div.intro-titles")
    assert titles.css("p::text").get() == app["legal_entities"]["xiaomi"] and titles.css("h3::text").get() == app["name"]
    assert page.css("div.details.preventDefault > ul.cf li.special-li::text").get() == app["package"]
    assert "软件大小:" in page.css("div.details li.weight-font::text").getall()  # an ASCII colon, as on real pages
    assert titles.css("p.special-font.action::text").get() == "金融理财" or app["finance_type"] == "other"
    pairs = page.css("div.details ul.cf li::text").getall()
    info = dict(zip(pairs[::2], pairs[1::2]))
    assert info["包名："] == app["package"] and len(info["更新时间："]) == 10 and info["版本号："]
    labels = [li.removeprefix("▪ ") for li in page.css("ul.second-ul li::text").getall()]
    assert sorted(LABEL_TO_PERMISSION[label] for label in labels) == app["permissions"]
    assert page.xpath("//a[text()='隐私政策']/@href").get() == app["policy"]["url"]
    assert page.css("p.pslide::text").get().startswith(app["name"][:2])
    none = pick(truth, lambda a: "xiaomi" in a["stores"] and a["policy"]["variant"] == "none" and not a["faults"])
    _, _, body = get(f"{server.store_urls['xiaomi']}/details?id={none['package']}")
    assert "隐私政策" not in body.decode("utf-8")
    assert get(f"{server.store_urls['xiaomi']}/details?id=com.example.none")[0] == 404


# --- policies ----------------------------------------------------------------------------------
def test_html_policy_is_utf8(server: MarketServer, truth: dict) -> None:
    app = pick(truth, lambda a: a["policy"]["variant"] == "html" and not a["faults"])
    status, headers, body = get(app["policy"]["url"])
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    text = body.decode("utf-8")
    assert '<meta charset="utf-8">' in text
    assert ("隐私政策</title>" in text) or ("Privacy Policy</title>" in text)
    assert ("生效日期：" in text) == (app["policy"]["language"] == "zh")


def test_gbk_policy_has_no_charset_anywhere(server: MarketServer, truth: dict) -> None:
    app = pick(truth, lambda a: a["policy"]["variant"] == "gbk" and not a["faults"])
    assert app["policy"]["url"].endswith(".htm")
    status, headers, body = get(app["policy"]["url"])
    assert status == 200 and headers["Content-Type"] == "text/html"
    assert b"charset" not in body.lower()
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    text = body.decode("gbk")
    assert "隐私政策</title>" in text and "生效日期：" in text


def test_pdf_policy_extracts_with_pypdf(server: MarketServer, truth: dict) -> None:
    app = pick(truth, lambda a: a["policy"]["variant"] == "pdf" and a["policy"]["language"] == "zh"
               and not a["faults"])
    status, headers, body = get(app["policy"]["url"])
    assert status == 200 and headers["Content-Type"] == "application/pdf" and body.startswith(b"%PDF")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)
    assert "隐私政策" in text and "生效日期：" in text and app["developer"] in text.replace("\n", "")


def test_pdf_lines_fit_and_never_split_a_term_or_a_kept_sentence() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    if "STSong-Light" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    market, width = Market(apps=300, seed=7), 300.0
    docs = [market.policy_document(p) for p in market.policies().values() if p.has_text]
    assert {doc["language"] for doc in docs} == {"zh", "en"}
    wrapped = 0
    for doc in docs[:60]:
        keep = tuple(doc["keep_together"])
        for text in (p for section in doc["sections"] for p in section["paragraphs"]):
            rows = _wrap(text, doc["language"], lambda s: pdfmetrics.stringWidth(s, "STSong-Light", 9.5), width, keep)
            wrapped += len(rows) > 1
            assert "".join("".join(rows).split()) == "".join(text.split())  # every character kept, in order
            assert all(pdfmetrics.stringWidth(row, "STSong-Light", 9.5) <= width for row in rows)
            assert not any(row[0] in _NO_LINE_START for row in rows[1:])
            for unit in (*keep, *_TERMS):
                if unit in text and pdfmetrics.stringWidth(unit, "STSong-Light", 9.5) <= width:
                    assert sum(row.count(unit) for row in rows) == text.count(unit), (unit, rows)
    assert wrapped > 100


def test_missing_policy_is_404_and_none_has_no_url(server: MarketServer, truth: dict) -> None:
    app = pick(truth, lambda a: a["policy"]["variant"] == "missing")
    assert get(app["policy"]["url"])[0] == 404
    assert all(a["policy"]["url"] is None for a in truth["app_list"] if a["policy"]["variant"] == "none")
    assert get(f"{server.base_url}/policies/nobody-zz/privacy.html")[0] == 404


def test_shared_policy_is_one_url_for_several_apps(truth: dict) -> None:
    shared = [a for a in truth["app_list"] if a["policy"]["shared"] and a["platform"] == "android"]
    assert shared
    urls = {}
    for app in shared:
        urls.setdefault(app["policy"]["url"] or app["developer"], set()).add(app["package"])
    assert any(len(packages) > 1 for packages in urls.values())


# --- faults ------------------------------------------------------------------------------------
def test_faults_are_served_as_the_truth_lists_them(server: MarketServer, truth: dict) -> None:
    by_fault: dict[str, list[dict]] = {}
    for app in truth["app_list"]:
        for fault in app["faults"]:
            by_fault.setdefault(fault, []).append(app)
    assert set(by_fault) == {"appgallery_malformed_json", "xiaomi_503", "policy_500",
                             "appgallery_transient_503", "xiaomi_transient_503"}
    for app in by_fault["appgallery_malformed_json"]:
        status, _, body = get(appgallery_url(server, f"app|{app['store_ids']['appgallery']}"))
        assert status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(body)
    for app in by_fault["xiaomi_503"]:
        url = f"{server.store_urls['xiaomi']}/details?id={app['package']}"
        assert get(url)[0] == get(url)[0] == 503
    for app in by_fault["policy_500"]:
        assert get(app["policy"]["url"])[0] == get(app["policy"]["url"])[0] == 500
    for app in by_fault["appgallery_transient_503"]:
        url = appgallery_url(server, f"app|{app['store_ids']['appgallery']}")
        assert [get(url)[0], get(url)[0]] == [503, 200]
    for app in by_fault["xiaomi_transient_503"]:
        url = f"{server.store_urls['xiaomi']}/details?id={app['package']}"
        assert [get(url)[0], get(url)[0]] == [503, 200]
    for app in by_fault["xiaomi_503"] + by_fault["appgallery_malformed_json"]:  # still found elsewhere
        assert {"appgallery", "xiaomi"} <= set(app["stores"])


# --- the rest ----------------------------------------------------------------------------------
def test_robots_and_hits(server: MarketServer) -> None:
    status, headers, body = get(f"{server.base_url}/robots.txt")
    assert status == 200 and body.decode() == "User-agent: *\nDisallow: /private/\n"
    before = server.hits["private"]
    assert get(f"{server.base_url}/private/admin")[0] == 200
    assert server.hits["private"] == before + 1
    from market.server import STORES

    assert set(server.store_urls) == set(STORES) >= {"itunes", "appgallery", "xiaomi", "myapp"}
    assert all(url.startswith(server.base_url) for url in server.store_urls.values())


def test_server_stops_and_releases_its_port() -> None:
    with MarketServer(apps=10, seed=1) as market:
        port = market.port
        assert get(f"{market.base_url}/robots.txt")[0] == 200
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_serve_blocks_until_interrupted(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = f"from market.server import serve; serve(apps=20, seed=3, host='127.0.0.1', port={port})"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    process = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert get(f"http://127.0.0.1:{port}/robots.txt")[0] == 200
                break
            except urllib.error.URLError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_hostile_links_are_opt_in_seeded_and_served():
    """hostile=rate: store data links a private address, a file, another loopback port or a redirect into the
    metadata range, or the APK is a zip bomb; the same apps every time, none by default."""
    import zipfile

    from market.server import METADATA_URL

    with MarketServer(apps=40, seed=5) as plain:
        assert plain.hostile_links() == {}
    with MarketServer(apps=40, seed=5, hostile=0.5, bomb_bytes=64 * 1024 ** 2) as market:
        links = market.hostile_links()
        assert links == market._handlers.hostile_links(market.base_url)  # drawn per (seed, app), not per call
        assert 10 <= len(links) <= 30
        by_kind = {}
        for key, link in links.items():
            by_kind.setdefault((link["target"], link["kind"]), []).append(key)
        detail = next(k for (target, kind), k in by_kind.items() if target == "detail" and kind != "redirect_private")
        package = detail[0].split(":", 1)[1]
        _, _, body = get(f"{market.store_urls['itunes']}/lookup?bundleId={package}")
        assert json.loads(body)["results"][0]["trackViewUrl"] == links[detail[0]]["url"]
        redirect = next(link["url"] for link in links.values() if link["kind"] == "redirect_private")
        opener = urllib.request.build_opener(type("NoRedirect", (urllib.request.HTTPRedirectHandler,),
                                                  {"redirect_request": lambda *a: None}))
        with pytest.raises(urllib.error.HTTPError) as found:
            opener.open(redirect, timeout=10)
        with found.value as answer:
            assert answer.code == 302 and answer.headers["Location"] == METADATA_URL
        bomb = next(link["url"] for link in links.values() if link["kind"] == "apk_bomb")
        status, _, body = get(bomb)
        assert status == 200 and len(body) < 200 * 1024
        with zipfile.ZipFile(io.BytesIO(body)) as zf:
            assert zf.getinfo("classes.dex").file_size == 64 * 1024 ** 2
    assert {kind for _, kind in by_kind} == {"private", "file", "other_port", "loopback_name", "redirect_private",
                                             "apk_bomb"}


# --- Tencent MyApp -----------------------------------------------------------------------------
def myapp_search(server: MarketServer, keyword: str) -> list[dict]:
    """Every result of a MyApp search, following pageNumberStack while hasNext says there is more."""
    import base64

    items, pns = [], ""
    while True:
        url = f"{server.store_urls['myapp']}/myapp/searchAjax.htm?kw={quote(keyword)}&pns={quote(pns)}&sid=0"
        status, headers, body = get(url)
        assert status == 200 and headers["Content-Type"] == "application/json; charset=utf-8"
        answer = json.loads(body)
        assert answer["success"] is True and "pageContext" in answer
        obj = answer["obj"]
        assert len(obj["appDetails"]) <= 10 and obj["hasNext"] in (0, 1)
        items += obj["appDetails"]
        if not obj["hasNext"]:
            assert obj["pageNumberStack"] == ""
            return items
        assert base64.b64decode(obj["pageNumberStack"]).decode() == str(len(items))  # base64 of the next offset
        pns = obj["pageNumberStack"]


def myapp_page(server: MarketServer, package: str, **headers: str) -> tuple[int, dict, bytes]:
    return get(f"{server.store_urls['myapp']}/appdetail/{package}", **headers)


def next_data(body: bytes) -> dict:
    page = Selector(text=body.decode("utf-8"))
    return json.loads(page.css("script#__NEXT_DATA__[type='application/json']::text").get())


def test_myapp_search_finds_every_app_of_the_store_with_the_real_item_fields(server: MarketServer, truth: dict,
                                                                              apps: dict) -> None:
    found = {}
    for keyword in settings.FINMON_KEYWORDS:
        for item in myapp_search(server, keyword):
            found[f"android:{item['pkgName']}"] = item
    assert set(found) == {a["key"] for a in truth["app_list"] if "myapp" in a["stores"]} and found
    for key, item in list(found.items())[:40]:
        app = apps[key]
        assert (item["appName"], item["authorName"]) == (app["name"], app["legal_entities"]["myapp"])
        assert isinstance(item["appId"], int) and isinstance(item["appDownCount"], int)
        assert isinstance(item["apkPublishTime"], int) and item["versionName"] and item["categoryName"]
        assert item["appRatingInfo"]["ratingCount"] == sum(item["appRatingInfo"]["ratingDistribution"].values())
    assert myapp_search(server, "不存在的关键词") == []


def test_myapp_search_pages_parse_as_the_crawler_reads_them(server: MarketServer) -> None:
    url = f"{server.store_urls['myapp']}/myapp/searchAjax.htm?kw={quote('金融')}&pns=&sid=0"
    packages, pns = parsers.parse_myapp_search(get(url)[2])
    assert len(packages) == 10 and pns == "MTA="  # "10"
    second, _ = parsers.parse_myapp_search(get(url.replace("pns=&", f"pns={quote(pns)}&"))[2])
    assert second and not set(second) & set(packages)
    assert [i["pkgName"] for i in myapp_search(server, "金融")][:20] == packages + second


def test_myapp_detail_page(server: MarketServer, truth: dict) -> None:
    app = pick(truth, lambda a: "myapp" in a["stores"] and not a["faults"] and a["policy"]["url"] and a["apk"]
               and len(a["permissions"]) > 3)
    status, headers, body = myapp_page(server, app["package"])
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8" and headers["ETag"]
    page = Selector(text=body.decode("utf-8"))
    url = f"{server.store_urls['myapp']}/appdetail/{app['package']}"
    assert page.css("link[rel=canonical]::attr(href)").get() == url
    assert page.css("title::text").get().startswith(f"{app['name']}app-官方正版软件")
    data = next_data(body)
    assert data["page"] == "/appdetail/[pkgname]" and data["query"] == {"pkgname": app["package"]}
    response = data["props"]["pageProps"]["dynamicCardResponse"]
    assert (response["ret"], response["msg"]) == (0, "sucess")  # sic, as the real site
    [card] = [c for c in response["data"]["components"] if c["data"]["name"] == "GameDetail"]
    assert card["cardId"] == card["data"]["cardid"] == "yybn_game_basic_info"
    record, reviews = card["data"]["itemData"]
    assert reviews == {"comments": [], "hasNext": False, "total": 0}
    legal = app["legal_entities"]["myapp"]
    assert (record["pkg_name"], record["name"]) == (app["package"], app["name"])
    assert record["developer"] == record["operator"] == record["icp_entity"] == legal
    assert record["privacy_agreement"] == app["policy"]["url"]
    assert record["download_url"] == server.base_url + app["apk"]["path"]
    assert record["update_time"].isdigit() and record["download_num"].isdigit() and record["app_id"].isdigit()
    table = parsers.permission_labels()
    assert sorted(table[p["title"]] for p in record["permissions_list"]) == app["permissions"]
    assert all(p["description"] for p in record["permissions_list"])
    listing = parsers.parse_myapp_detail(body.decode("utf-8"), url)
    assert (listing.store_id, listing.legal_entity, listing.privacy_url) == (app["package"], legal, app["policy"]["url"])
    assert sorted(listing.permissions) == app["permissions"] and listing.apk_url == record["download_url"]
    none = pick(truth, lambda a: "myapp" in a["stores"] and a["policy"]["variant"] == "none" and not a["faults"])
    assert next_data(myapp_page(server, none["package"])[2])["props"]["pageProps"]["dynamicCardResponse"]["data"][
        "components"][1]["data"]["itemData"][0]["privacy_agreement"] == ""
    elsewhere = pick(truth, lambda a: a["platform"] == "android" and "myapp" not in a["stores"])
    assert myapp_page(server, elsewhere["package"])[0] == myapp_page(server, "com.example.none")[0] == 404


def test_every_permission_label_myapp_serves_maps_back(server: MarketServer, truth: dict) -> None:
    from market import myapp

    table = parsers.permission_labels()
    permissions = {p for a in truth["app_list"] if "myapp" in a["stores"] for p in a["permissions"]}
    permissions |= {"android.permission." + name for name in LABELS["permissions"]}
    for permission in permissions:
        assert table[myapp.permission_label(permission)] == permission
    assert myapp.permission_label("android.permission.INTERNET") == "拥有完全的网络访问权限"  # the system's label


def test_myapp_page_answers_conditional_requests_and_its_transient_fault() -> None:
    """A current ETag gets an empty 304; an app with myapp_transient_503 is 503 once, then served."""
    import dataclasses

    with MarketServer(apps=60, seed=7) as market:
        app = next(a for a in market.market.apps() if "myapp" in a.stores)
        status, headers, _ = myapp_page(market, app.package)
        assert status == 200
        status, _, body = myapp_page(market, app.package, **{"If-None-Match": headers["ETag"]})
        assert (status, body) == (304, b"")

        class Faulty:  # the same market, with the transient fault on this app
            def __getattr__(self, name):
                return getattr(market.market, name)

            def __getitem__(self, index):
                found = market.market[index]
                if index != app.index:
                    return found
                return dataclasses.replace(found, faults=found.faults + ("myapp_transient_503",))

        market._handlers.market = Faulty()
        faulted = market.hits["faulted"]
        assert [myapp_page(market, app.package)[0] for _ in range(2)] == [503, 200]
        assert market.hits["faulted"] == faulted + 1


def test_myapp_category_lists_page_through_the_finance_apps(server: MarketServer, truth: dict) -> None:
    """The older site's cate/appList.htm: categoryId 114 (理财) lists the finance apps on MyApp, pageSize at a time
    from pageContext, an empty obj past the end."""
    base = f"{server.store_urls['myapp']}/myapp/cate/appList.htm?orgame=1&categoryId="
    packages, offset = [], 0
    while True:
        page = get_json(f"{base}114&pageSize=25&pageContext={offset}")
        assert page["success"] is True and isinstance(page["obj"], list)
        if not page["obj"]:
            break
        packages += [item["pkgName"] for item in page["obj"]]
        offset += 25
    assert packages and len(packages) == len(set(packages))
    assert set(packages) == {a["package"] for a in truth["app_list"]
                             if "myapp" in a["stores"] and a["finance_type"] != "other"}
    assert get_json(f"{base}999&pageSize=25&pageContext=0")["obj"] == []
