"""The request ledger of StoreSpider: every request issued ends in exactly one of items, errors, duplicates."""
import json

from scrapy import Request
from twisted.python.failure import Failure

from crawler.spiders.xiaomi import XiaomiSpider

URL = "http://127.0.0.1:9/xiaomi/details?id=com.example.loan"


def ledger(spider) -> dict[str, int]:
    stats = spider.crawler.stats
    return {name: stats.get_value(f"finmon/ledger/{name}", 0) for name in ("requests", "items", "errors", "duplicates")}


def error_lines(spider) -> list[dict]:
    spider.snapshot.close()
    return [json.loads(line) for line in (spider.snapshot.path / "errors.jsonl").read_text("utf-8").splitlines()]


def test_issued_requests_are_counted_once_not_their_retries_or_redirect_hops(make_spider):
    spider = make_spider(XiaomiSpider)
    spider.request_scheduled(Request(URL), spider)
    spider.request_scheduled(Request(URL, meta={"retry_times": 1}), spider)
    spider.request_scheduled(Request(URL + "2", meta={"redirect_times": 1}), spider)
    assert ledger(spider)["requests"] == 1


def test_a_duplicate_filtered_request_leaves_an_error_line(make_spider):
    spider = make_spider(XiaomiSpider)
    spider.request_dropped(Request(URL), spider)
    assert ledger(spider) == {"requests": 0, "items": 0, "errors": 0, "duplicates": 1}
    (line,) = error_lines(spider)
    assert (line["kind"], line["url"], line["store"]) == ("duplicate", URL, "xiaomi")


def test_a_redirect_back_to_the_same_url_is_a_redirect_loop(make_spider):
    spider = make_spider(XiaomiSpider)
    hop = Request(URL, meta={"redirect_times": 1, "redirect_urls": [URL]})
    spider.request_dropped(hop, spider)
    assert ledger(spider)["errors"] == 1
    (line,) = error_lines(spider)
    assert line["kind"] == "redirect_loop" and line["url"] == URL and f"{URL} → {URL}" in line["reason"]


def test_a_callback_that_raises_still_ends_its_request_in_an_error_line_once(make_spider, respond):
    spider = make_spider(XiaomiSpider)
    response = respond(URL, b"<html></html>")
    spider.callback_failed(Failure(KeyError("oops")), response, spider)
    spider.callback_failed(Failure(KeyError("again")), response, spider)
    assert ledger(spider)["errors"] == 1  # settled once
    lines = error_lines(spider)
    assert lines[0]["kind"] == "other" and "KeyError" in lines[0]["reason"] and lines[0]["url"] == URL


def test_a_parsed_page_is_an_item_and_a_layout_change_an_error(make_spider, fx, respond):
    spider = make_spider(XiaomiSpider)
    list(spider.parse_detail(respond(URL, fx.bytes("xiaomi_detail.html"))))
    list(spider.parse_detail(respond(URL + "2", fx.bytes("xiaomi_detail_layout_changed.html"))))
    assert ledger(spider) == {"requests": 0, "items": 1, "errors": 1, "duplicates": 0}


def test_a_redirect_chain_failure_names_the_url_the_spider_requested(make_spider):
    from scrapy.exceptions import IgnoreRequest

    spider = make_spider(XiaomiSpider)
    failure = Failure(IgnoreRequest("max redirections reached"))
    failure.request = Request(URL + "&hop=6", meta={"redirect_times": 5, "redirect_urls": [URL, URL + "&hop=1"]})
    spider.store_failed(failure)
    (line,) = error_lines(spider)
    assert (line["kind"], line["url"]) == ("redirect_loop", URL)
