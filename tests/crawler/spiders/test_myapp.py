import asyncio
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from scrapy.http import HtmlResponse
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawler.spiders.myapp import MyAppSpider
from finmon.model import Listing

BASE = "http://127.0.0.1:9/myapp"
SEARCH = BASE + "/myapp/searchAjax.htm"


def query(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


async def collect(agen):
    return [x async for x in agen]


@pytest.fixture
def spider(make_spider):
    return make_spider(MyAppSpider, FINMON_STORES={"myapp": BASE})


def search_page(packages, has_next=0, pns=""):
    items = [{"appId": 100 + n, "appName": f"应用{n}", "pkgName": p, "authorName": "某某科技有限公司"}
             for n, p in enumerate(packages)]
    body = {"success": True, "obj": {"appDetails": items, "hasNext": has_next, "pageNumberStack": pns},
            "pageContext": 0}
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def test_start_searches_each_keyword_from_its_first_page_then_each_category(spider):
    requests = asyncio.run(collect(spider.start()))
    assert len(requests) == len(spider.keywords) + 1  # the default category list: 114 (理财)
    assert requests[-1].callback == spider.parse_category and requests[-1].cb_kwargs == {"category": 114, "offset": 0}
    first = requests[0]
    assert first.url == SEARCH + "?kw=%E8%B4%B7%E6%AC%BE&pns=&sid=0"
    assert query(first.url) == {"kw": "贷款", "pns": "", "sid": "0"}
    assert first.callback == spider.parse_search and first.cb_kwargs == {"keyword": "贷款", "page": 1}


def test_search_requests_new_apps_and_the_next_page(spider, respond):
    page = respond(SEARCH + "?kw=x&pns=&sid=0", search_page(["com.a.loan", "com.b.pay"], 1, "MTA="),
                   "application/json")
    out = list(spider.parse_search(page, keyword="x", page=1))
    details = [r.url for r in out if r.callback == spider.parse_detail]
    (following,) = [r for r in out if r.callback == spider.parse_search]
    assert details == [BASE + "/appdetail/com.a.loan", BASE + "/appdetail/com.b.pay"]
    assert query(following.url) == {"kw": "x", "pns": "MTA=", "sid": "0"}
    assert following.cb_kwargs == {"keyword": "x", "page": 2}
    page = respond(SEARCH + "?kw=x&pns=MTA%3D&sid=0", search_page(["com.b.pay", "com.c.bank"]), "application/json")
    out = list(spider.parse_search(page, keyword="x", page=2))
    assert [r.url for r in out] == [BASE + "/appdetail/com.c.bank"]  # the last page: hasNext 0; com.b.pay seen
    assert not spider.crawler.stats.get_value("finmon/discovery_capped")


def test_the_real_answer_has_one_app_and_no_next_page(spider, fx, respond):
    out = list(spider.parse_search(respond(SEARCH, fx.bytes("myapp_search_real.json"), "application/json"),
                                   keyword="银行", page=1))
    assert [r.url for r in out] == [BASE + "/appdetail/cmb.pb"]


def test_a_search_with_more_pages_than_the_cap_is_counted(spider, respond):
    spider.max_pages = 2
    page = respond(SEARCH, search_page(["com.a.loan"], 1, "MTA="), "application/json")
    out = list(spider.parse_search(page, keyword="x", page=2))
    assert [r.callback for r in out] == [spider.parse_detail]  # its apps, but no third page
    assert spider.crawler.stats.get_value("finmon/discovery_capped") == 1


def test_detail_yields_the_listing_then_its_policy_and_apk(spider, fx, respond):
    url = BASE + "/appdetail/com.larus.nova"
    listing, policy = list(spider.parse_detail(respond(url, fx.bytes("myapp_detail_real.html"))))
    assert isinstance(listing, Listing) and listing.store == "myapp" and listing.source_url == url
    assert (listing.name, listing.legal_entity) == ("豆包", "北京春田知韵科技有限公司")
    assert policy.url == "https://www.doubao.com/legal/privacy" and policy.callback == spider.parse_policy
    assert listing.apk_url is None  # empty download_url on the real page: no APK request
    html = fx.text("myapp_detail_real.html").replace('"download_url":""', '"download_url":"/apk/com.larus.nova.apk"', 1)
    listing, apk = list(spider.parse_detail(respond(url, html.encode("utf-8"))))  # the policy: fetched already
    assert apk.url == listing.apk_url == "http://127.0.0.1:9/apk/com.larus.nova.apk"
    assert apk.callback == spider.parse_apk and apk.meta["download_slot"] == "finmon-apk"


def test_layout_change_is_recorded(spider, fx, respond):
    url = BASE + "/appdetail/com.larus.nova"
    assert list(spider.parse_detail(respond(url, fx.bytes("myapp_detail_layout_changed.html")))) == []
    stats = spider.crawler.stats.get_stats()
    assert stats["finmon/errors/layout_changed"] == 1 and stats["finmon/errors"] == 1
    assert list(spider.parse_search(respond(SEARCH, fx.bytes("myapp_search_layout_changed.json"), "application/json"),
                                    keyword="银行", page=1)) == []
    assert spider.crawler.stats.get_value("finmon/errors/layout_changed") == 2


def test_an_app_the_store_does_not_have_is_not_found_not_a_layout_change(spider, respond):
    gone = respond(BASE + "/appdetail/com.gone.app", "<html><body><p>抱歉，找不到该应用</p></body></html>".encode())
    assert list(spider.parse_detail(gone)) == []
    for status in (404, 503):
        request = spider.detail_request(BASE + f"/appdetail/com.gone{status}.app", spider.parse_detail)
        failure = Failure(HttpError(HtmlResponse(request.url, status=status, body=b"", request=request)))
        failure.request = request
        spider.store_failed(failure)
    stats = spider.crawler.stats.get_stats()
    assert stats["finmon/errors/not_found"] == 2 and stats["finmon/errors/http_5xx"] == 1
    assert "finmon/errors/layout_changed" not in stats


def test_category_lists_are_walked_until_a_page_comes_back_empty(make_spider, respond):
    spider = make_spider(MyAppSpider, FINMON_STORES={"myapp": BASE}, FINMON_KEYWORDS=[], FINMON_MYAPP_CATEGORIES=[114],
                         FINMON_MYAPP_CATEGORY_PAGE_SIZE=2)
    (first,) = asyncio.run(collect(spider.start()))
    assert first.url == BASE + "/myapp/cate/appList.htm?orgame=1&categoryId=114&pageSize=2&pageContext=0"
    page = json.dumps({"success": True, "obj": [{"pkgName": "com.a", "appId": 1}, {"pkgName": "com.b", "appId": 2}],
                       "pageContext": 2}).encode()
    out = list(spider.parse_category(respond(first.url, page, content_type="application/json"), **first.cb_kwargs))
    assert [r.url for r in out] == [BASE + "/appdetail/com.a", BASE + "/appdetail/com.b",
                                    BASE + "/myapp/cate/appList.htm?orgame=1&categoryId=114&pageSize=2&pageContext=2"]
    last = respond(out[-1].url, b'{"success": true, "obj": [], "pageContext": 2}', content_type="application/json")
    assert list(spider.parse_category(last, **out[-1].cb_kwargs)) == []  # the end of the list
    spider.max_pages = 1
    assert [r.callback for r in spider.parse_category(respond(first.url, page, content_type="application/json"),
                                                      **first.cb_kwargs)] == []  # both seen; the cap is said
    assert spider.crawler.stats.get_value("finmon/discovery_capped") == 1
