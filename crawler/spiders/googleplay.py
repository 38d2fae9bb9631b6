"""Android apps on Google Play: search page → details page → Data safety page → permission list → policy.

Every page type follows the real format as recorded from the live store (docs/stores.md, the fixtures'
SOURCES.md). Discovery reads a search's first page only: Google Play's web search shows about 30 results per
query, and paging beyond them goes through a batchexecute call (``qnKhOb``) whose answer was not confirmed on a
real response, so a search page that offers more results is counted as capped discovery, never passed over in
silence. The spider also looks up by package every Android app the other stores' crawls listed
(FINMON_LOOKUP_LISTINGS): a lookup answered 404 means the app is not on Google Play (counted, not an error). The
Data safety page and the permission list each cost only their part of the listing when they fail.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from urllib.parse import urlencode

import scrapy

from crawler.errors import classify
from crawler.parsers import (parse_googleplay_datasafety, parse_googleplay_details, parse_googleplay_permissions,
                             parse_googleplay_search, with_hash)
from crawler.spiders import ERRORS, ITEMS, StoreSpider
from finmon.model import Listing, utcnow

log = logging.getLogger(__name__)

PERMISSIONS_RPC = "xdSrCf"


class GooglePlaySpider(StoreSpider):
    name = "googleplay"
    store = "googleplay"

    def setup(self, settings) -> None:
        self.locale = {"hl": settings.get("FINMON_GOOGLEPLAY_LANG"), "gl": settings.get("FINMON_GOOGLEPLAY_COUNTRY")}
        self.lookup_listings = settings.getlist("FINMON_LOOKUP_LISTINGS")

    async def start(self):
        for keyword in self.keywords:
            url = f"{self.base_url}/store/search?{urlencode({'q': keyword, 'c': 'apps', **self.locale})}"
            yield self.store_request(url, self.parse_search, keyword=keyword)
        for package in android_packages(self.lookup_listings):
            if self.first_time(package):
                request = self.detail_request(self.details_url(package), self.parse_details)
                yield request.replace(errback=self.lookup_failed)

    def details_url(self, package: str) -> str:
        return f"{self.base_url}/store/apps/details?{urlencode({'id': package, **self.locale})}"

    def lookup_failed(self, failure):
        """A looked-up package that Google Play does not list (404/410) is an answer, not a loss."""
        response = getattr(failure.value, "response", None)
        if response is not None and response.status in (404, 410):
            self.crawler.stats.inc_value("finmon/lookup_not_listed")
            self.settle(failure.request, ITEMS)
        else:
            self.store_failed(failure)

    def parse_search(self, response, keyword: str):
        found = self.parsed(response, parse_googleplay_search, response.text, problems=[])
        if found is None:
            return
        packages, more = found
        for package in packages:
            if self.first_time(package):
                yield self.detail_request(self.details_url(package), self.parse_details)
        if more:
            self.discovery_capped(keyword, 1, "the first page of Google Play's search results")

    def parse_details(self, response):
        listing = self.page_listing(response, parse_googleplay_details, response.text, response.url, problems=[])
        if listing is None:
            return
        if response.status == 304:  # the earlier capture's listing, with its Data safety and permissions
            yield from self.listing_and_links(listing)
            return
        url = f"{self.base_url}/store/apps/datasafety?{urlencode({'id': listing.package, 'hl': self.locale['hl']})}"
        yield scrapy.Request(url, callback=self.parse_datasafety, errback=self.part_failed,
                             cb_kwargs={"listing": listing})

    def parse_datasafety(self, response, listing: Listing):
        """The Data safety form, its page archived as the evidence of what the developer declared."""
        declared = self.parsed(response, parse_googleplay_datasafety, response.text, problems=[])
        capture = self.snapshot.capture(response, utcnow()) if declared is not None else ""
        yield self.permissions_request(dataclasses.replace(listing, data_safety=declared, data_safety_capture=capture))

    def permissions_request(self, listing: Listing) -> scrapy.Request:
        """The batchexecute call that answers the app's permission list (RPC xdSrCf)."""
        request = json.dumps([[[PERMISSIONS_RPC, json.dumps([[None, [listing.package, 7], []]]), None, "1"]]])
        return scrapy.FormRequest(
            f"{self.base_url}/_/PlayStoreUi/data/batchexecute?{urlencode({'rpcids': PERMISSIONS_RPC, **self.locale})}",
            formdata={"f.req": request}, callback=self.parse_permissions, errback=self.part_failed,
            cb_kwargs={"listing": listing})

    def parse_permissions(self, response, listing: Listing):
        permissions = self.parsed(response, parse_googleplay_permissions, response.body, problems=[])
        yield from self.listing_and_links(with_hash(dataclasses.replace(listing, permissions=permissions or ())))

    def part_failed(self, failure):
        """The Data safety page or the permission list was lost: an error line, and the listing goes on without
        that part."""
        request = failure.request
        kind, reason = classify(failure)
        self.record_error(kind, request.url, reason)
        self.settle(request, ERRORS)
        listing = request.cb_kwargs["listing"]
        if request.callback == self.parse_datasafety:
            yield self.permissions_request(listing)
        else:
            yield from self.listing_and_links(with_hash(listing))


def android_packages(paths: list[str]) -> list[str]:
    """The Android packages listed in some listings.jsonl files, in order, once each; a file that cannot be read, or
    a line that is not a listing, is skipped with a warning."""
    packages: dict[str, None] = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as lines:
                for number, line in enumerate(lines, 1):
                    try:
                        row = json.loads(line)
                    except ValueError:
                        log.warning("%s:%d: not a listing line, skipped", path, number)
                        continue
                    package = row.get("package") if isinstance(row, dict) and row.get("platform") == "android" else None
                    if isinstance(package, str) and package:
                        packages.setdefault(package, None)
        except OSError as exc:
            log.warning("lookup listings %s not read: %s", path, exc)
    return list(packages)
