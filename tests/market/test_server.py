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

from finmon import settings
from market.population import LABELS
from market.server import MarketServer

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


def get(url: str) -> tuple[int, dict, bytes]:
    assert url.startswith("http://127.0.0.1:")
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
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
    items, page, total = [], 1, 1
    while page <= total:
        data = get_json(appgallery_url(server, f"searchApp|{keyword}", reqPageNum=page, maxResults=25))
        assert data["rtnCode"] == 0
        total = data["totalPages"]
        [layout] = data["layoutData"]
        assert layout["layoutName"] == "searchlist"
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
        next_href = page.css("a.next::attr(href)").get()
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
        assert (result["trackName"], result["artistName"]) == (app["name"], app["developer"])
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
    [header] = cards["appdetailheadercard"]
    assert (header["appid"], header["name"], header["package"], header["developer"]) == (
        appid, app["name"], app["package"], app["developer"])
    assert header["downloads"].isdigit() and len(header["releaseDate"]) == 10
    assert header["tagName"] and header["versionName"] and "金融" in header["intro"]
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
    assert first["totalPages"] == -(-len(items) // 25) > 1
    assert len({i["appid"] for i in items}) == len(items)
    assert all(i["detailId"] == f"app|{i['appid']}" for i in items)


# --- Xiaomi ------------------------------------------------------------------------------------
def test_xiaomi_detail(server: MarketServer, truth: dict) -> None:
    app = pick(truth, lambda a: "xiaomi" in a["stores"] and not a["faults"] and a["policy"]["url"]
               and len(a["permissions"]) > 3)
    status, headers, body = get(f"{server.store_urls['xiaomi']}/details?id={app['package']}")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    page = Selector(text=body.decode("utf-8"))
    titles = page.css("div.intro-titles")
    assert titles.css("p::text").get() == app["developer"] and titles.css("h3::text").get() == app["name"]
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
        assert app["stores"] == ["appgallery", "xiaomi"]


# --- the rest ----------------------------------------------------------------------------------
def test_robots_and_hits(server: MarketServer) -> None:
    status, headers, body = get(f"{server.base_url}/robots.txt")
    assert status == 200 and body.decode() == "User-agent: *\nDisallow: /private/\n"
    before = server.hits["private"]
    assert get(f"{server.base_url}/private/admin")[0] == 200
    assert server.hits["private"] == before + 1
    assert set(server.store_urls) == {"itunes", "appgallery", "xiaomi"}
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
