"""Item pipelines: validate and write listings; extract and write policies; inspect and write APKs.

Extraction and inspection run in the crawl's worker processes (:mod:`crawler.workers`).
"""
from __future__ import annotations

import dataclasses

from scrapy.exceptions import DropItem

from analyzers.apk import ApkError, inspect_apk
from crawler.errors import APK_INVALID, EXTRACTION_FAILED, LAYOUT_CHANGED, OTHER
from crawler.items import ApkFetch, PolicyFetch
from crawler.policy import ExtractionFailed, PolicyExtractor
from crawler.previous import PreviousCapture
from crawler.snapshot import Snapshot
from crawler.workers import WorkerDied, Workers
from finmon.evidence import rebase
from finmon.model import Listing, dumps

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


class _DownloadPipeline:
    """What the policy and APK pipelines share: one record line per URL, reuse on 304, counters.

    A ``304 Not Modified`` (the item is ``unchanged``) copies the previous capture's record, so the
    body is neither downloaded nor extracted or inspected again, and the line cites the archived record
    the earlier one cited; the body of a fetched item is dropped once its record is written.
    """

    kind = ""  # the snapshot file: "policies" | "apks"
    item_class: type = object
    inner = ""  # the line's field holding the parsed record, whose ``capture`` is the line's too

    def __init__(self, crawler) -> None:
        self.crawler = crawler
        self.snapshot = Snapshot.of(crawler.settings)
        self.previous = PreviousCapture.of(crawler.settings)
        self.workers = Workers.of(crawler.settings)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def close_spider(self) -> None:
        self.workers.release()

    async def process_item(self, item):
        if not isinstance(item, self.item_class):
            return item
        stats = self.crawler.stats
        record = self.previous.record(self.kind, item.url) if item.unchanged else None
        if record is not None:
            folder = self.previous.folder(self.kind, item.url)
            capture = rebase(record.get("capture") or "", folder, self.snapshot.path)
            record.update(unchanged=True, checked_at=item.fetched_at, capture=capture)
            if isinstance(record.get(self.inner), dict):
                record[self.inner]["capture"] = capture
            status = "unchanged"
        else:
            if item.unchanged:  # cannot happen unless the previous snapshot lost the line
                item.status, item.error = "unavailable", f"{OTHER}: 304 Not Modified without an earlier capture"
                self.snapshot.error(stats, item.store, OTHER, item.url, "304 Not Modified without an earlier capture")
            record = await self.record(item)
            status = record["status"]
        self.snapshot.write(self.kind, record)
        stats.inc_value(f"finmon/{self.kind}")
        stats.inc_value(f"finmon/{self.kind}/{status}")
        item.body = b""  # the record is written; do not keep the body alive
        return item

    async def record(self, item) -> dict:
        """The record of a fetched item (``status`` ok or not)."""
        raise NotImplementedError


class PolicyPipeline(_DownloadPipeline):
    """Extracts each fetched policy (once per distinct body) and writes one policies.jsonl line per URL."""

    kind, item_class, inner = "policies", PolicyFetch, "version"

    def __init__(self, crawler) -> None:
        super().__init__(crawler)
        self.extractor = PolicyExtractor(crawler.settings.getint("FINMON_POLICY_CACHE_SIZE"), self.workers)

    async def record(self, item: PolicyFetch) -> dict:
        version = None
        if item.status == "ok":
            stats = self.crawler.stats
            try:
                version, warnings = await self.extractor.extract(
                    item.url, item.final_url, item.body, item.content_type, item.fetched_at
                )
            except (ExtractionFailed, WorkerDied) as exc:
                item.status, item.error = "unavailable", f"{EXTRACTION_FAILED}: {exc}"
                self.snapshot.error(stats, item.store, EXTRACTION_FAILED, item.url, str(exc))
            else:
                version = dataclasses.replace(version, capture=item.capture)
                for warning in warnings:
                    stats.inc_value("finmon/warnings")
                    stats.inc_value(f"finmon/warnings/{warning}")
        return {"url": item.url, "status": item.status, "version": version.to_dict() if version else None,
                "error": item.error, "etag": item.etag, "last_modified": item.last_modified,
                "capture": item.capture}


class ApkPipeline(_DownloadPipeline):
    """Hashes and inspects each downloaded APK and writes one apks.jsonl line per URL (the file is not kept: its
    inspection is archived as a WARC ``metadata`` record)."""

    kind, item_class, inner = "apks", ApkFetch, "apk"

    def __init__(self, crawler) -> None:
        super().__init__(crawler)
        settings = crawler.settings
        self.limits = (settings.getint("FINMON_APK_MAX_BYTES"), settings.getint("FINMON_APK_MAX_ENTRY_BYTES"),
                       settings.getint("FINMON_APK_MAX_INFLATED_BYTES"))

    async def record(self, item: ApkFetch) -> dict:
        info = None
        if item.status == "ok":
            try:
                info = await self.workers.run(inspect_apk, item.body, item.url, *self.limits)
            except (ApkError, WorkerDied) as exc:
                item.status, item.error = "invalid", f"{APK_INVALID}: {exc}"
                self.snapshot.error(self.crawler.stats, item.store, APK_INVALID, item.url, str(exc))
        capture = ""
        if info is not None:
            inspection = info.to_dict()
            del inspection["capture"]
            capture = self.snapshot.captures.metadata(item.url, dumps(inspection).encode(), item.fetched_at)
            info = dataclasses.replace(info, capture=capture)
        return {"url": item.url, "status": item.status, "fetched_at": item.fetched_at,
                "apk": info.to_dict() if info else None, "error": item.error, "etag": item.etag,
                "last_modified": item.last_modified, "capture": capture}
