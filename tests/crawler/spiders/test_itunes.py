import asyncio
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from scrapy import Request
from scrapy.exceptions import NotConfigured

from crawler.items import PolicyFetch
from crawler.spiders.itunes import ItunesSpider
from finmon.model import Listing

BASE = "http://127.0.0.1:9/itunes"


async def collect(agen):
    return [x async for x in agen]


def test_start_searches_every_keyword(make_spider):
    spider = make_spider(ItunesSpider)
    requests = asyncio.run(collect(spider.start()))
    assert len(requests) == len(spider.keywords)
    query = parse_qs(urlsplit(requests[0].url).query)
    assert requests[0].url.startswith(BASE + "/search?")
    assert query == {"term": ["贷款"], "country": ["cn"], "entity": ["software"], "limit": ["200"], "offset": ["0"]}


def test_search_follows_app_pages_once_and_paginates(make_spider, fx, respond):
    spider = make_spider(ItunesSpider)
    spider.page_size = 2
    url = BASE + "/search?term=x&offset=0"
    out = list(spider.parse_search(respond(url, fx.bytes("itunes_search.json"), "text/javascript; charset=utf-8"), term="x", offset=0))
    pages = [r for r in out if r.callback == spider.parse_app_page]
    assert [r.url for r in pages] == [json.loads(fx.bytes("itunes_search.json"))["results"][i]["trackViewUrl"] for i in (0, 1)]
    (next_page,) = [r for r in out if r.callback == spider.parse_search]
    assert parse_qs(urlsplit(next_page.url).query)["offset"] == ["2"]
    again = list(spider.parse_search(respond(url, fx.bytes("itunes_search.json"), "text/javascript"), term="y", offset=0))
    assert [r for r in again if r.callback == spider.parse_app_page] == []  # already seen
    assert not spider.crawler.stats.get_value("finmon/discovery_capped")
    spider.max_pages = 1
    capped = list(spider.parse_search(respond(url, fx.bytes("itunes_search.json"), "text/javascript"), term="z",
                                      offset=0))
    assert [r for r in capped if r.callback == spider.parse_search] == []
    assert spider.crawler.stats.get_value("finmon/discovery_capped") == 1


def test_app_page_completes_the_listing_and_requests_the_policy(make_spider, fx, respond):
    spider = make_spider(ItunesSpider)
    out = list(spider.parse_search(respond(BASE + "/search", fx.bytes("itunes_search.json"), "application/json"), term="x", offset=0))
    listing = out[0].cb_kwargs["listing"]
    page = respond(out[0].url, fx.bytes("apple_app_page.html"), cb_kwargs={"listing": listing})
    item, policy = list(spider.parse_app_page(page, listing=listing))
    assert isinstance(item, Listing) and item.privacy_url.startswith("https://render.alipay.com/")
    assert item.privacy_labels[0] == "标识符" and item.content_hash != listing.content_hash
    assert isinstance(policy, Request) and policy.meta["download_maxsize"] == 5 * 1024 * 1024
    assert list(spider.parse_app_page(page, listing=listing))[1:] == []  # the policy URL is fetched once


def test_malformed_search_costs_the_page_only(make_spider, fx, respond):
    spider = make_spider(ItunesSpider)
    url = BASE + "/search?term=bad"
    assert list(spider.parse_search(respond(url, fx.bytes("itunes_truncated.json"), "application/json"), term="bad", offset=0)) == []
    assert spider.crawler.stats.get_value("finmon/errors/malformed_json") == 1
    spider.snapshot.close()
    (error,) = [json.loads(x) for x in (spider.snapshot.path / "errors.jsonl").read_text().splitlines()]
    assert error["store"] == "itunes" and error["url"] == url and error["kind"] == "malformed_json"


def test_policy_response_and_failure(make_spider, respond):
    from scrapy.spidermiddlewares.httperror import HttpError
    from twisted.python.failure import Failure

    spider = make_spider(ItunesSpider)
    url = "http://127.0.0.1:9/policies/a.html"
    (fetch,) = list(spider.parse_policy(respond(url, b"<html>x</html>"), url=url))
    assert isinstance(fetch, PolicyFetch) and fetch.status == "ok" and fetch.body == b"<html>x</html>"
    missing = respond(url, b"", status=404, cb_kwargs={"url": url})
    failure = Failure(HttpError(missing))
    failure.request = missing.request
    (fetch,) = list(spider.policy_failed(failure))
    assert (fetch.status, fetch.error) == ("not_found", "not_found: HTTP 404")
    assert spider.crawler.stats.get_value("finmon/errors/not_found") == 1


def test_empty_store_url_names_the_setting(make_crawler):
    crawler = make_crawler(ItunesSpider, FINMON_STORES={"itunes": ""})
    with pytest.raises(NotConfigured, match=r"FINMON_STORES\['itunes'\]"):
        ItunesSpider.from_crawler(crawler)
