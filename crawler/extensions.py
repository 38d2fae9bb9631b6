"""The run recorder: opens the snapshot when a spider opens, writes run.json when the last one closes."""
from __future__ import annotations

from scrapy import signals

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
