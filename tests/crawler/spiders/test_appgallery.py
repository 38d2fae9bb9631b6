import asyncio
from urllib.parse import parse_qs, urlsplit

from crawler.spiders.appgallery import AppGallerySpider
from finmon.model import Listing

BASE = "http://127.0.0.1:9/appgallery"


def query(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def collect(agen):
    return [x async for x in agen]


def test_start_requests_first_search_page(make_spider):
    spider = make_spider(AppGallerySpider)
    first = asyncio.run(collect(spider.start()))[0]
    assert first.url.startswith(BASE + "/uowap/index?")
    assert query(first.url) == {
        "method": "internal.getTabDetail", "serviceType": "20", "uri": "searchApp|贷款", "reqPageNum": "1", "maxResults": "25",
    }


def test_search_page_schedules_details_with_their_category_and_the_next_page(make_spider, fx, respond):
    spider = make_spider(AppGallerySpider)
    out = list(spider.parse_search(respond(BASE + "/uowap/index", fx.bytes("appgallery_search.json"), "application/json"), keyword="贷款", page=1))
    details = [(query(r.url)["uri"], r.cb_kwargs) for r in out if r.callback == spider.parse_detail]
    pages = [query(r.url)["reqPageNum"] for r in out if r.callback == spider.parse_search]
    assert details == [("app|C10132067", {"category": "金融理财"}), ("app|C10245511", {"category": "投资理财"}),
                       ("app|C10377789", {"category": "便捷生活"})]
    assert pages == ["2"]
    out = list(spider.parse_search(respond(BASE + "/uowap/index", fx.bytes("appgallery_search.json"), "application/json"), keyword="贷款", page=2))
    assert [query(r.url)["reqPageNum"] for r in out] == ["3"]  # details already seen; hasNextPage says go on
    assert not spider.crawler.stats.get_value("finmon/discovery_capped")


def test_search_stops_when_has_next_page_is_0_or_else_at_total_pages(make_spider, respond):
    spider = make_spider(AppGallerySpider)
    item = '{"appid":"C1","detailId":"app|C1","tagName":"金融理财"}'
    last = f'{{"rtnCode":0,"hasNextPage":0,"totalPages":9,"layoutData":[{{"layoutId":1,"layoutName":"x","dataList":[{item}]}}]}}'
    out = list(spider.parse_search(respond(BASE + "/uowap/index", last.encode(), "application/json"), keyword="贷款", page=1))
    assert [r.callback for r in out] == [spider.parse_detail]
    by_total = '{"rtnCode":0,"totalPages":2,"layoutData":[]}'
    for page, expected in ((1, ["2"]), (2, [])):
        out = list(spider.parse_search(respond(BASE + "/uowap/index", by_total.encode(), "application/json"),
                                       keyword="贷款", page=page))
        assert [query(r.url)["reqPageNum"] for r in out] == expected


def test_a_search_with_more_pages_than_the_cap_is_counted(make_spider, fx, respond):
    spider = make_spider(AppGallerySpider)
    spider.max_pages = 1
    out = list(spider.parse_search(respond(BASE + "/uowap/index", fx.bytes("appgallery_search.json"),
                                           "application/json"), keyword="贷款", page=1))
    assert [r for r in out if r.callback == spider.parse_search] == []
    assert spider.crawler.stats.get_value("finmon/discovery_capped") == 1


def test_detail_yields_listing_and_policy(make_spider, fx, respond):
    spider = make_spider(AppGallerySpider)
    url = BASE + "/uowap/index?method=internal.getTabDetail&uri=app%7CC10132067"
    listing, policy, apk = list(spider.parse_detail(respond(url, fx.bytes("appgallery_detail.json"), "application/json"),
                                                    category="金融理财"))
    assert isinstance(listing, Listing) and listing.source_url == url and listing.category == "金融理财"
    assert listing.legal_entity == listing.developer == "安心金融科技（深圳）有限公司"
    assert policy.url == listing.privacy_url and policy.callback == spider.parse_policy
    assert apk.url == listing.apk_url and apk.callback == spider.parse_apk


def test_truncated_detail_costs_one_item(make_spider, fx, respond):
    spider = make_spider(AppGallerySpider)
    out = list(spider.parse_detail(respond(BASE + "/d", fx.bytes("appgallery_detail_truncated.json"), "application/json")))
    assert out == [] and spider.crawler.stats.get_value("finmon/errors/malformed_json") == 1
