import asyncio

from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawler.spiders.xiaomi import XiaomiSpider
from finmon.model import Listing

BASE = "http://127.0.0.1:9/xiaomi"


async def collect(agen):
    return [x async for x in agen]


def test_start(make_spider):
    spider = make_spider(XiaomiSpider)
    first = asyncio.run(collect(spider.start()))[0]
    assert first.url == BASE + "/search?keywords=%E8%B4%B7%E6%AC%BE&page=1"


def test_search_follows_details_and_next(make_spider, fx, respond):
    spider = make_spider(XiaomiSpider)
    out = list(spider.parse_search(respond(BASE + "/search?keywords=x&page=2", fx.bytes("xiaomi_search.html")),
                                   keyword="x", page=2))
    details = [r.url for r in out if r.callback == spider.parse_detail]
    (next_page,) = [r for r in out if r.callback == spider.parse_search]
    assert details == [f"http://127.0.0.1:9/xiaomi/details?id={p}" for p in ("com.anxin.loan", "com.wenying.invest", "com.kuaihua.pay")]
    assert next_page.url.endswith("page=3") and next_page.cb_kwargs == {"keyword": "x", "page": 3}
    assert not spider.crawler.stats.get_value("finmon/discovery_capped")
    spider.max_pages = 3
    out = list(spider.parse_search(respond(BASE + "/search?keywords=x&page=3", fx.bytes("xiaomi_search.html")),
                                   keyword="x", page=3))
    assert out == []  # page cap reached, details seen
    assert spider.crawler.stats.get_value("finmon/discovery_capped") == 1  # and the cap is counted, not silent


def test_detail(make_spider, fx, respond):
    spider = make_spider(XiaomiSpider)
    listing, policy, apk = list(spider.parse_detail(respond(BASE + "/details?id=com.anxin.loan", fx.bytes("xiaomi_detail.html"))))
    assert isinstance(listing, Listing) and "android.permission.READ_CONTACTS" in listing.permissions
    assert policy.url == "https://www.anxin.example/policies/anxin/privacy.html"
    assert apk.url == listing.apk_url == BASE.rsplit("/", 1)[0] + (
        "/download/123456?id=com.anxin.loan&ref=appstore.mobile_download&nonce=1&appClientId=2882303761517485445"
        "&appSignature=x")
    assert apk.callback == spider.parse_apk and apk.meta["download_maxsize"] == spider.apk_max_bytes
    assert apk.meta["download_slot"] == "finmon-apk"  # APK downloads in flight are capped together


def test_layout_change_and_5xx_are_recorded(make_spider, fx, respond):
    spider = make_spider(XiaomiSpider)
    assert list(spider.parse_detail(respond(BASE + "/details?id=x", fx.bytes("xiaomi_detail_layout_changed.html")))) == []
    page = respond(BASE + "/details?id=y", b"busy", status=503)
    failure = Failure(HttpError(page))
    failure.request = page.request
    spider.store_failed(failure)
    stats = spider.crawler.stats.get_stats()
    assert stats["finmon/errors/layout_changed"] == 1 and stats["finmon/errors/http_5xx"] == 1 and stats["finmon/errors"] == 2


def test_policy_url_that_is_not_http_fails_at_once(make_spider):
    spider = make_spider(XiaomiSpider)
    (fetch,) = list(spider.policy("javascript:void(0)"))
    assert fetch.status == "unavailable" and fetch.error.startswith("unsupported_url")
    assert list(spider.policy("javascript:void(0)")) == [] and list(spider.policy(None)) == []
