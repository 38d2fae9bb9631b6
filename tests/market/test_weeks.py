"""The market week by week (Market(week=w), MarketServer.advance) and conditional requests, on 127.0.0.1."""
from __future__ import annotations

import collections
import hashlib
import json
import urllib.error
import urllib.request
from datetime import date, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from parsel import Selector

from market.population import PREFIX, RULES, WEEKS, Market, policy_document, week_date
from market.server import NOT_MODIFIED, MarketServer

# Digests of week 0 as it was before weeks existed: update them only when the population changes on purpose
# (last: Google Play and MyApp listings, legal entities, Data safety forms, the stores' real page layouts).
WEEK0_TRUTH_SHA256 = "c1183bbd3813560ccda8463ece6755ddf0ed3eadf09e621f26cc0d048364acf8"  # Market(300, 7)
WEEK0_PAGES_SHA256 = "c9a078b2c08c5afad007e20795aa1594a0a98134895a713844c32955349609ca"  # MarketServer(60, 7)


def get(url: str, **headers: str) -> tuple[int, dict, bytes]:
    assert url.startswith("http://127.0.0.1:")
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def resources(base: str, app: dict) -> dict[str, str]:
    """Kind → URL of an app's content-stable resources (apple, appgallery, xiaomi, apk, policy)."""
    ids, out = app["store_ids"], {}
    if "itunes" in ids:
        out["apple"] = f"{base}/apple/cn/app/id{ids['itunes']}"
    if "appgallery" in ids:
        uri = quote(f"app|{ids['appgallery']}", safe="")
        out["appgallery"] = f"{base}/appgallery/uowap/index?method=internal.getTabDetail&uri={uri}"
    if "xiaomi" in ids:
        out["xiaomi"] = f"{base}/xiaomi/details?id={ids['xiaomi']}"
    if app["apk"]:
        out["apk"] = base + app["apk"]["path"]
    if app["policy"]["variant"] in ("html", "gbk", "pdf"):
        out["policy"] = app["policy"]["url"]
    return out


def found(server: MarketServer, name: str) -> set[str]:
    """Keys of the apps each store's search lists for ``name`` (one page is enough for an app name)."""
    base = server.base_url
    itunes = json.loads(get(f"{base}/itunes/search?term={quote(name)}&limit=200")[2])["results"]
    uri = quote(f"searchApp|{name}", safe="")
    gallery = json.loads(get(f"{base}/appgallery/uowap/index?method=internal.getTabDetail&uri={uri}"
                             "&maxResults=100")[2])["layoutData"][0]["dataList"]
    page = Selector(text=get(f"{base}/xiaomi/search?keywords={quote(name)}")[2].decode("utf-8"))
    xiaomi = [href.split("id=", 1)[1] for href in page.css("ul.applist li a::attr(href)").getall()]
    return ({f"ios:{r['bundleId']}" for r in itunes} | {f"android:{i['package']}" for i in gallery}
            | {f"android:{p}" for p in xiaomi})


def digest(truth: dict) -> str:
    return hashlib.sha256(json.dumps(truth, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@pytest.fixture(scope="module")
def weeks() -> list[dict]:
    """Truths of weeks 0..3 of 2000 apps, seed 7."""
    return [Market(2000, 7, week).truth() for week in range(4)]


# --- the population week by week ----------------------------------------------------------------
def test_week0_is_the_population_as_first_drawn() -> None:
    truth = Market(300, 7, week=0).truth()
    assert digest(truth) == WEEK0_TRUTH_SHA256 == digest(Market(300, 7).truth())
    assert set(truth) == {"apps", "seed", "app_list"} and "changed" not in truth["app_list"][0]


def test_weeks_are_deterministic_and_differ() -> None:
    third = Market(600, 7, week=3).truth()
    assert Market(600, 7, week=3).truth() == third
    assert Market(600, 7, week=2).truth()["app_list"] != third["app_list"]
    assert Market(600, 8, week=3).truth()["app_list"] != third["app_list"]
    assert (third["week"], third["seed"], third["apps"]) == (3, 7, len(third["app_list"]))
    with pytest.raises(ValueError):
        Market(10, 7, week=-1)


def test_app_i_evolves_the_same_whatever_the_population_size() -> None:
    small, large = Market(300, 7, week=2), Market(600, 7, week=2)
    for i in range(300):
        assert small.present(i) == large.present(i)
        if small.present(i):
            assert small.app_truth(small[i]) == large.app_truth(large[i]), i
    first = Market(600, 7)  # new apps are the next indices, drawn like any other app
    assert small.size > 300
    for i in range(300, small.size):
        new, drawn = small.app_truth(small[i]), first.app_truth(first[i])
        for field in ("key", "name", "developer", "stores", "store_ids", "apk", "faults"):
            assert new[field] == drawn[field], (i, field)
        assert small[i].changes or new["permissions"] == drawn["permissions"]


def test_each_week_builds_on_the_previous_one_and_truth_says_what_changed(weeks: list[dict]) -> None:
    dangerous = {PREFIX + p for p in RULES["dangerous_permissions"]}
    for week in (1, 2, 3):
        before = {a["key"]: a for a in weeks[week - 1]["app_list"]}
        now = {a["key"]: a for a in weeks[week]["app_list"]}
        assert weeks[week]["week"] == week and weeks[week]["apps"] == len(now)
        assert weeks[week]["removed"] == [k for k in before if k not in now]
        assert {k for k, a in now.items() if a["changed"] == ["new"]} == set(now) - set(before)
        for key, app in now.items():
            if key not in before:
                continue
            old, changed = before[key], app["changed"]
            assert set(changed) <= {"policy", "permissions"}
            assert (app["policy"] != old["policy"]) == ("policy" in changed)
            assert (app["permissions"] != old["permissions"]) == ("permissions" in changed)
            if "policy" in changed:
                assert len(set(app["policy"]["declared"]) ^ set(old["policy"]["declared"])) == 1
                assert app["policy"]["effective_date"] == week_date(week) > old["policy"]["effective_date"]
                assert app["policy"]["url"] == old["policy"]["url"]
            if "permissions" in changed:
                [added] = set(app["permissions"]) - set(old["permissions"])
                assert added in dangerous and set(old["permissions"]) < set(app["permissions"])
            if not changed:
                assert app == {**old, "changed": []}
        by_url = collections.defaultdict(set)  # a shared policy changes for all its apps
        for app in now.values():
            if app["policy"]["url"]:
                by_url[app["policy"]["url"]].add(json.dumps(app["policy"], sort_keys=True))
        assert all(len(versions) == 1 for versions in by_url.values())


def test_weekly_rates(weeks: list[dict]) -> None:
    new = max(1, round(2000 * WEEKS["new"]))
    for week in (1, 2, 3):
        before, now = weeks[week - 1]["app_list"], weeks[week]["app_list"]
        changed = collections.Counter(c for a in now for c in a["changed"])
        assert changed["new"] == new == 40
        assert 0.01 < len(weeks[week]["removed"]) / len(before) < 0.035
        android = sum(a["platform"] == "android" and "new" not in a["changed"] for a in now)
        assert 0.015 < changed["permissions"] / android < 0.05
        texts = {a["policy"]["url"] for a in now if a["policy"]["variant"] in ("html", "gbk", "pdf")}
        policies = {a["policy"]["url"] for a in now if "policy" in a["changed"]}
        assert 0.025 < len(policies) / len(texts) < 0.08


def test_findings_and_texts_follow_the_changes(weeks: list[dict]) -> None:
    dangerous = RULES["dangerous_permissions"]
    grown = [a for a in weeks[3]["app_list"] if "permissions" in a["changed"]
             and a["policy"]["variant"] in ("html", "gbk", "pdf")]
    assert grown
    for app in grown:  # the new permission's data type is missing from the policy, unless it declares it
        before = next(b for b in weeks[2]["app_list"] if b["key"] == app["key"])
        [added] = set(app["permissions"]) - set(before["permissions"])
        dtype = dangerous[added.removeprefix(PREFIX)]
        assert (dtype in app["expected"].get("D301", [])) == (dtype not in app["policy"]["declared"])
    first, later = Market(2000, 7), Market(2000, 7, week=3)
    moved = [app for app in later if app.policy.revisions and app.index < first.size]
    assert moved
    for app in moved[:30]:  # a changed policy is a new cache key with a new text and date
        old, new = policy_document(7, first[app.index].policy), policy_document(7, app.policy)
        assert new != old and new["effective"] != old["effective"]


def test_market_truth_cli_takes_a_week(monkeypatch: pytest.MonkeyPatch) -> None:
    from finmon.cli import main

    result = CliRunner().invoke(main, ["market", "truth", "--apps", "40", "--seed", "7", "--week", "2"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == Market(40, 7, week=2).truth()
    calls = []
    monkeypatch.setattr("market.server.serve", lambda **kwargs: calls.append(kwargs))
    result = CliRunner().invoke(main, ["market", "serve", "--apps", "40", "--week", "3", "--port", "1"])
    assert result.exit_code == 0, result.output
    assert calls and calls[0]["week"] == 3 and calls[0]["apps"] == 40


# --- conditional requests -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def server():
    with MarketServer(apps=300, seed=7) as market:
        yield market


def test_week0_pages_are_the_ones_served_before_weeks_existed() -> None:
    with MarketServer(apps=60, seed=7) as server:
        h = hashlib.sha256()
        for app in server.truth()["app_list"]:
            kinds = resources(server.base_url, app)
            urls = [kinds[k] for k in ("apple", "appgallery", "xiaomi", "apk") if k in kinds]
            for url in urls + ([app["policy"]["url"]] if app["policy"]["url"] else []):
                status, _, body = get(url)
                body = b"" if url.endswith(".pdf") else body.replace(server.base_url.encode(), b"BASE")
                h.update(f"{url.replace(server.base_url, 'BASE')} {status}\n".encode() + body)
        assert h.hexdigest() == WEEK0_PAGES_SHA256


def test_conditional_requests_get_an_empty_304(server: MarketServer) -> None:
    samples: dict[str, str] = {}
    for app in server.truth()["app_list"]:
        for kind, url in resources(server.base_url, app).items() if not app["faults"] else ():
            samples.setdefault(f"policy-{app['policy']['variant']}" if kind == "policy" else kind, url)
    assert set(samples) == {"apple", "appgallery", "xiaomi", "apk", "policy-html", "policy-gbk", "policy-pdf"}
    etags = set()
    for label, url in samples.items():
        status, headers, body = get(url)
        etag, modified = headers["ETag"], headers["Last-Modified"]
        assert status == 200 and body and headers["Cache-Control"] == "no-cache", label
        assert etag.startswith('"') and etag.endswith('"') and len(etag) > 10  # strong
        assert parsedate_to_datetime(modified).date() < date.fromisoformat(week_date(0))
        etags.add(etag)
        before = server.hits[NOT_MODIFIED]
        status, headers_304, body_304 = get(url, **{"If-None-Match": etag})
        assert (status, body_304) == (304, b""), label
        assert (headers_304["ETag"], headers_304["Last-Modified"]) == (etag, modified)
        assert get(url, **{"If-None-Match": f'"other", {etag}'})[0] == 304
        assert get(url, **{"If-Modified-Since": modified})[0] == 304
        later = format_datetime(parsedate_to_datetime(modified) + timedelta(days=3), usegmt=True)
        assert get(url, **{"If-Modified-Since": later})[0] == 304
        assert server.hits[NOT_MODIFIED] == before + 4
        earlier = format_datetime(parsedate_to_datetime(modified) - timedelta(days=1), usegmt=True)
        assert get(url, **{"If-Modified-Since": earlier})[::2] == (200, body)
        assert get(url, **{"If-None-Match": '"other"', "If-Modified-Since": modified})[::2] == (200, body)
        assert get(url)[1]["ETag"] == etag
    assert len(etags) == len(samples)
    ios = next(a for a in server.truth()["app_list"] if a["platform"] == "ios")
    status, headers, _ = get(f"{server.base_url}/itunes/lookup?id={ios['store_ids']['itunes']}")
    assert status == 200 and "ETag" not in headers  # search and lookup answers stay unconditional


def test_faults_come_before_conditional_answers(server: MarketServer) -> None:
    by_fault: dict[str, list[dict]] = {}
    for app in server.truth()["app_list"]:
        for fault in app["faults"]:
            by_fault.setdefault(fault, []).append(app)
    any_tag = {"If-None-Match": "*"}
    for app in by_fault["policy_500"]:
        assert get(app["policy"]["url"], **any_tag)[0] == 500
    for app in by_fault["xiaomi_503"]:
        assert get(resources(server.base_url, app)["xiaomi"], **any_tag)[0] == 503
    for fault in ("appgallery_transient_503", "xiaomi_transient_503"):
        for app in by_fault[fault]:
            url = resources(server.base_url, app)[fault.split("_")[0]]
            assert [get(url, **any_tag)[0], get(url, **any_tag)[0], get(url)[0]] == [503, 304, 200]
    for app in by_fault["appgallery_malformed_json"]:
        status, headers, body = get(resources(server.base_url, app)["appgallery"])
        assert status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(body)
        assert get(resources(server.base_url, app)["appgallery"], **{"If-None-Match": headers["ETag"]})[0] == 304
    invalid = next(a for a in server.truth()["app_list"] if a["apk"] and a["apk"]["invalid"])
    status, headers, body = get(server.base_url + invalid["apk"]["path"])
    assert status == 200 and body.startswith(b"PK")
    assert get(server.base_url + invalid["apk"]["path"], **{"If-None-Match": headers["ETag"]})[:3:2] == (304, b"")


def test_advance_moves_a_running_server_to_the_next_week() -> None:
    touches = {"policy": {"policy", "apple"}, "permissions": {"appgallery", "xiaomi", "apk"}}
    with MarketServer(apps=300, seed=7) as server:
        base = server.base_url
        first = {a["key"]: a for a in server.truth()["app_list"]}
        crawled = {(key, kind): get(url) for key, app in first.items() if not app["faults"]
                   for kind, url in resources(base, app).items()}
        assert server.advance() is server.market and server.market.week == 1
        truth = server.truth()
        assert truth == Market(300, 7, week=1, base_url=base).truth()
        now = {a["key"]: a for a in truth["app_list"]}
        seen: collections.Counter[str] = collections.Counter()
        before = server.hits[NOT_MODIFIED]
        for key, app in now.items():
            for kind, url in resources(base, app).items() if not app["faults"] else ():
                if key not in first:
                    assert get(url)[0] == 200
                    seen["new"] += 1
                    continue
                _, old_headers, old_body = crawled[key, kind]
                status, headers, body = get(url, **{"If-None-Match": old_headers["ETag"]})
                if kind in {k for what in app["changed"] for k in touches[what]}:
                    assert status == 200 and headers["ETag"] != old_headers["ETag"], (key, kind)
                    assert parsedate_to_datetime(headers["Last-Modified"]).date().isoformat() == week_date(1)
                    assert kind == "apple" or body != old_body
                    seen[kind] += 1
                else:
                    assert (status, body) == (304, b""), (key, kind)
                    assert get(url)[2] == old_body
                    seen["unchanged"] += 1
        assert server.hits[NOT_MODIFIED] == before + seen["unchanged"]
        assert all(seen[k] for k in ("new", "unchanged", "policy", "appgallery", "xiaomi", "apk")), seen
        urls = {a["policy"]["url"] for a in now.values()}
        assert truth["removed"]
        for key in truth["removed"]:
            app = first[key]
            for kind, url in resources(base, app).items():
                if kind != "policy":
                    assert get(url)[0] == 404, (key, kind)
                elif "policy_500" not in app["faults"]:  # a shared policy outlives one of its apps
                    assert get(url)[0] == (200 if url in urls else 404)
            assert key not in found(server, app["name"])
        for key, app in now.items():
            if app["changed"] == ["new"]:
                assert key in found(server, app["name"])
        server.advance(2)
        assert server.truth() == Market(300, 7, week=3, base_url=base).truth()
        assert get(f"{base}/robots.txt")[0] == 200
