"""Item pipelines: validate and write listings; extract and write policies; inspect and write APKs."""
from __future__ import annotations

from scrapy.exceptions import DropItem

from analyzers.apk import ApkError, inspect_apk
from crawler.errors import APK_INVALID, EXTRACTION_FAILED, LAYOUT_CHANGED
from crawler.items import ApkFetch, PolicyFetch
from crawler.policy import ExtractionFailed, PolicyExtractor
from crawler.snapshot import Snapshot
from finmon.model import Listing

LISTING_REQUIRED = ("store", "store_id", "platform", "package", "name", "source_url", "fetched_at")
PLATFORMS = ("android", "ios")


class ListingPipeline:
    """Checks a Listing's required fields and writes it to listings.jsonl."""

    def __init__(self, crawler) -> None:
        self.crawler = crawler
        self.snapshot = Snapshot.of(crawler.settings)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_item(self, item):
        if not isinstance(item, Listing):
            return item
        missing = [f for f in LISTING_REQUIRED if not getattr(item, f)]
        if item.platform not in PLATFORMS:
            missing.append("platform")
        if missing:
            reason = "listing lacks " + ", ".join(missing)
            self.snapshot.error(self.crawler.stats, item.store, LAYOUT_CHANGED, item.source_url, reason)
            raise DropItem(reason)
        self.snapshot.write("listings", item.to_dict())
        self.crawler.stats.inc_value("finmon/listings")
        self.crawler.stats.inc_value(f"finmon/listings/{item.store}")
        return item


class PolicyPipeline:
    """Extracts each fetched policy (once per distinct body) and writes one policies.jsonl line per URL."""

    def __init__(self, crawler) -> None:
        self.crawler = crawler
        self.snapshot = Snapshot.of(crawler.settings)
        self.extractor = PolicyExtractor(crawler.settings.getint("FINMON_POLICY_CACHE_SIZE"))

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_item(self, item):
        if not isinstance(item, PolicyFetch):
            return item
        stats = self.crawler.stats
        version = None
        if item.status == "ok":
            try:
                version, warnings = self.extractor.extract(
                    item.url, item.final_url, item.body, item.content_type, item.fetched_at
                )
            except ExtractionFailed as exc:
                item.status, item.error = "unavailable", f"{EXTRACTION_FAILED}: {exc}"
                self.snapshot.error(stats, item.store, EXTRACTION_FAILED, item.url, str(exc))
            else:
                for warning in warnings:
                    stats.inc_value("finmon/warnings")
                    stats.inc_value(f"finmon/warnings/{warning}")
        record = {"url": item.url, "status": item.status, "version": version.to_dict() if version else None, "error": item.error}
        self.snapshot.write("policies", record)
        stats.inc_value("finmon/policies")
        stats.inc_value(f"finmon/policies/{item.status}")
        item.body = b""  # the text is written; do not keep the body alive
        return item


class ApkPipeline:
    """Hashes and inspects each downloaded APK and writes one apks.jsonl line per URL (the body is not kept)."""

    def __init__(self, crawler) -> None:
        self.crawler = crawler
        self.snapshot = Snapshot.of(crawler.settings)
        self.max_bytes = crawler.settings.getint("FINMON_APK_MAX_BYTES")

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_item(self, item):
        if not isinstance(item, ApkFetch):
            return item
        stats = self.crawler.stats
        info = None
        if item.status == "ok":
            try:
                info = inspect_apk(item.body, url=item.url, max_bytes=self.max_bytes)
            except ApkError as exc:
                item.status, item.error = "invalid", f"{APK_INVALID}: {exc}"
                self.snapshot.error(stats, item.store, APK_INVALID, item.url, str(exc))
        record = {"url": item.url, "status": item.status, "fetched_at": item.fetched_at,
                  "apk": info.to_dict() if info else None, "error": item.error}
        self.snapshot.write("apks", record)
        stats.inc_value("finmon/apks")
        stats.inc_value(f"finmon/apks/{item.status}")
        item.body = b""
        return item
