"""The run recorder: opens the snapshot when a spider opens, writes run.json when the last one closes; and the
throttle that lets a store's plain answers (304, 404) slow it down and speed it up alike."""
from __future__ import annotations

from scrapy import signals
from scrapy.extensions.throttle import AutoThrottle

from crawler.snapshot import Snapshot

# Scrapy stats copied into the run record (besides every ``finmon/*`` stat, prefix dropped).
SCRAPY_COUNTERS = {
    "downloader/request_count": "requests",
    "downloader/response_count": "responses",
    "downloader/response_bytes": "response_bytes",
    "downloader/response_status_count/304": "not_modified",
    "item_scraped_count": "items",
    "item_dropped_count": "items_dropped",
    "retry/count": "retries",
    "log_count/ERROR": "log_errors",
}


class RunRecorder:
    """Keeps the snapshot's run record: counters by kind, outcome, start and end."""

    def __init__(self, crawler) -> None:
        self.crawler = crawler
        self.snapshot = Snapshot.of(crawler.settings)
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def spider_opened(self, spider) -> None:
        self.snapshot.acquire()

    def spider_closed(self, spider, reason: str) -> None:
        self.snapshot.release(run_counters(self.crawler.stats.get_stats()), reason)


def run_counters(stats: dict) -> dict[str, int]:
    """Scrapy stats → run counters: requests, responses, items, listings, policies, errors/<kind>, …"""
    counters = {name: int(stats.get(key, 0)) for key, name in SCRAPY_COUNTERS.items()}
    for key, value in stats.items():
        if key.startswith("finmon/") and isinstance(value, int):
            counters[key.removeprefix("finmon/")] = value
    for name in ("listings", "policies", "errors", "warnings", *LEDGER):
        counters.setdefault(name, 0)
    return counters


# The request ledger (crawler/spiders/__init__.py): every request the spiders issued, and how each ended.
LEDGER = ("ledger/requests", "ledger/items", "ledger/errors", "ledger/duplicates")


def ledger_gap(counters: dict[str, int]) -> int:
    """requests − (items + errors + duplicates): 0 when every request of a finished crawl is accounted for."""
    requests, items, errors, duplicates = (counters.get(name, 0) for name in LEDGER)
    return requests - (items + errors + duplicates)


class AnswerThrottle(AutoThrottle):
    """Scrapy's AutoThrottle, except that a 304 (Not Modified) or a 404 (not listed) may lower the delay as a 200
    does. AutoThrottle lowers it on 200s only (an error page is quick and small and would speed up a crawl of a
    failing site), so in an unchanged recrawl, nearly all 304s, or in Google Play's lookups, mostly 404s, one slow
    moment raised the delay for good, up to AUTOTHROTTLE_MAX_DELAY: 100,000 apps' Google Play recrawl went at one
    listing a second. These are the store's real answers, and their latency is its load."""

    ANSWERS = frozenset({304, 404})

    def _adjust_delay(self, slot, latency: float, response) -> None:
        if response.status in self.ANSWERS:
            response = response.replace(status=200)
        super()._adjust_delay(slot, latency, response)
