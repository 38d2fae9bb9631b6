"""Store spiders. :class:`StoreSpider` holds what they share: the store URL, keywords,
error recording, the request ledger and the policy and APK downloads (each deduplicated by URL).

The request ledger: every request a spider issues (``ledger/requests``, counted when first scheduled, not its
retries or redirect hops) ends in exactly one of ``ledger/items`` (its response was parsed: a search page's
links, a listing, a policy or APK fetch), ``ledger/errors`` (an errors.jsonl line says why it was lost) or
``ledger/duplicates`` (the duplicate filter dropped it, with an errors.jsonl line of kind ``duplicate``, except in a
crawl shared with other processes, where that is how they split the work). So at the end of a finished crawl
requests = items + errors + duplicates (in a shared crawl, summed over its processes).
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable

import scrapy
from scrapy import signals
from scrapy.exceptions import NotConfigured

from crawler.errors import DUPLICATE, NOT_FOUND, OTHER, REDIRECT_LOOP, UNSUPPORTED_URL, classify
from crawler.items import ApkFetch, PolicyFetch
from crawler.parsers import ParseError
from crawler.previous import PreviousCapture
from crawler.snapshot import Snapshot
from finmon.evidence import rebase
from finmon.model import Listing, utcnow

log = logging.getLogger(__name__)


def store_url(settings, store: str) -> str:
    """The store's base URL from ``FINMON_STORES``; NotConfigured naming the setting when empty."""
    url = (settings.getdict("FINMON_STORES").get(store) or "").rstrip("/")
    if not url:
        raise NotConfigured(f"FINMON_STORES[{store!r}] is empty: set the {store} store's base URL")
    return url


class StoreSpider(scrapy.Spider):
    """Base of the store spiders (subclasses set ``name`` and ``store``)."""

    store = ""

    @classmethod
    def update_settings(cls, settings) -> None:
        """The store's own politeness settings (FINMON_STORE_SETTINGS) over the project's."""
        super().update_settings(settings)
        for name, value in settings.getdict("FINMON_STORE_SETTINGS").get(cls.store, {}).items():
            settings.set(name, value, priority="spider")

    @classmethod
    def from_crawler(cls, crawler, *args: Any, **kwargs: Any):
        spider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        spider.base_url = store_url(settings, cls.store)
        spider.keywords = settings.getlist("FINMON_KEYWORDS")
        spider.max_pages = settings.getint("FINMON_MAX_PAGES")
        spider.policy_max_bytes = settings.getint("FINMON_POLICY_MAX_BYTES")
        spider.apk_max_bytes = settings.getint("FINMON_APK_MAX_BYTES")
        spider.apk_slot = settings.get("FINMON_APK_SLOT")
        spider.snapshot = Snapshot.of(settings)
        spider.previous = PreviousCapture.of(settings)
        spider.seen = set()
        spider.shared_crawl = bool(settings.get("FINMON_FRONTIER"))  # crawler/frontier.py
        spider.setup(settings)
        crawler.signals.connect(spider.request_scheduled, signal=signals.request_scheduled)
        crawler.signals.connect(spider.request_dropped, signal=signals.request_dropped)
        crawler.signals.connect(spider.callback_failed, signal=signals.spider_error)
        return spider

    def setup(self, settings) -> None:
        """Read the spider's own settings (subclasses)."""

    # --- requests ---------------------------------------------------------------

    def store_request(self, url: str, callback: Callable, **cb_kwargs: Any) -> scrapy.Request:
        """A request for a store page; a failure costs that page only."""
        return scrapy.Request(url, callback=callback, errback=self.store_failed, cb_kwargs=cb_kwargs)

    def detail_request(self, url: str, callback: Callable, **cb_kwargs: Any) -> scrapy.Request:
        """A request for an app's detail page, conditional when the previous capture has validators for it."""
        return self._conditional("listings", url, callback, self.store_failed, cb_kwargs, {})

    def page_listing(self, response, parser: Callable, *args: Any, **kwargs: Any) -> Listing | None:
        """The listing a detail page shows: parsed (with the page's validators and the page archived as its
        capture), or on a 304 the previous capture's listing of that page, captured again now (its archived page
        still the one it cites). None after recording why there is none."""
        if response.status == 304:
            record = self.previous.record("listings", response.url)
            if record is None:
                self.record_error(OTHER, response.url, "304 Not Modified without an earlier capture")
                self.settle(response.request, ERRORS)
                return None
            self.settle(response.request, ITEMS)
            folder = self.previous.folder("listings", response.url)
            earlier = {name: rebase(record.get(name) or "", folder, self.snapshot.path)
                       for name in ("capture", "data_safety_capture")}
            return dataclasses.replace(Listing.from_dict(record), fetched_at=utcnow(), **earlier)
        listing = self.parsed(response, parser, *args, **kwargs)
        if listing is None:
            return None
        validators = _validators(response)
        return dataclasses.replace(listing, etag=validators["etag"], last_modified=validators["last_modified"],
                                   capture=self.snapshot.capture(response, listing.fetched_at))

    def discovery_capped(self, keyword: str, pages: int, why: str = "FINMON_MAX_PAGES") -> None:
        """A search has more pages than the spider follows (FINMON_MAX_PAGES, or what the store lets it page
        through: ``why``): apps beyond them go unseen."""
        self.crawler.stats.inc_value("finmon/discovery_capped")
        log.warning("%s: search %r stopped at %s (%d pages); the apps beyond it are not discovered",
                    self.store, keyword, why, pages)

    def first_time(self, key: str) -> bool:
        """True the first time ``key`` (an app id, a detail URL) is seen by this spider."""
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def policy(self, url: str | None):
        """Fetch a listing's policy URL the first time this snapshot sees it (yields a request).

        A URL that is not http(s) yields its failure straight away.
        """
        if not url or not self.snapshot.claim(url):
            return
        if not url.startswith(("http://", "https://")):
            self.record_error(UNSUPPORTED_URL, url, "not an http(s) URL")
            yield PolicyFetch(url, self.store, "unavailable", utcnow(), error=f"{UNSUPPORTED_URL}: not an http(s) URL")
            return
        yield self._conditional("policies", url, self.parse_policy, self.policy_failed, {"url": url},
                                {"download_maxsize": self.policy_max_bytes})

    def apk(self, url: str | None):
        """Download a listing's APK the first time this snapshot sees its URL (size-capped by FINMON_APK_MAX_BYTES).

        APK downloads share one download slot (FINMON_APK_SLOT), so at most FINMON_APK_DOWNLOADS_AT_ONCE
        bodies of up to FINMON_APK_MAX_BYTES each are in memory at once, whatever the hosts."""
        if not url or not self.snapshot.claim(url):
            return
        if not url.startswith(("http://", "https://")):
            self.record_error(UNSUPPORTED_URL, url, "not an http(s) URL")
            yield ApkFetch(url, self.store, "unavailable", utcnow(), error=f"{UNSUPPORTED_URL}: not an http(s) URL")
            return
        yield self._conditional("apks", url, self.parse_apk, self.apk_failed, {"url": url},
                                {"download_maxsize": self.apk_max_bytes, "download_warnsize": 0,
                                 "download_slot": self.apk_slot})

    def _conditional(self, kind: str, url: str, callback: Callable, errback: Callable, cb_kwargs: dict,
                     meta: dict) -> scrapy.Request:
        """A request that carries the previous capture's validators for ``url`` (of ``kind``), if it has any,
        and then lets a 304 through to its callback."""
        headers = self.previous.validators(kind, url)
        if headers:
            meta = {**meta, "handle_httpstatus_list": [304]}
        return scrapy.Request(url, callback=callback, errback=errback, cb_kwargs=cb_kwargs, headers=headers, meta=meta)

    def listing_and_links(self, listing):
        """The listing, then the downloads it links to: its policy and its APK."""
        yield listing
        yield from self.policy(listing.privacy_url)
        yield from self.apk(listing.apk_url)

    # --- outcomes -----------------------------------------------------------------

    def record_error(self, kind: str, url: str, reason: str, item: str = "", field: str = "") -> None:
        """An errors.jsonl line (naming the item and field when the loss is that narrow) and its counters."""
        log.warning("%s %s: %s (%s)", self.store, kind, url, reason)
        self.snapshot.error(self.crawler.stats, self.store, kind, url, reason, item=item, field=field)

    def settle(self, request, outcome: str) -> None:
        """Enter how ``request`` ended in the ledger (ITEMS, ERRORS or DUPLICATES), once per request."""
        if request is None or request.meta.get(SETTLED):
            return
        request.meta[SETTLED] = outcome
        self.crawler.stats.inc_value(f"finmon/ledger/{outcome}")

    def parsed(self, response, parser: Callable, *args: Any, problems: list[ParseError] | None = None,
               **kwargs: Any) -> Any:
        """``parser(*args)``, or None after recording a layout change / malformed response. With a ``problems``
        list, the parser takes it and appends the items or fields it could not read: each is recorded as an
        error line (and left in the list for the caller)."""
        try:
            result = parser(*args, **({} if problems is None else {"problems": problems}), **kwargs)
        except ParseError as exc:
            self.record_error(exc.kind, response.url, str(exc), item=exc.item, field=exc.field)
            self.settle(response.request, ERRORS)
            return None
        finally:
            for problem in problems or ():
                self.record_error(problem.kind, response.url, str(problem), item=problem.item, field=problem.field)
        self.settle(response.request, ITEMS)
        return result

    def store_failed(self, failure) -> None:
        """A store page was lost: an error line for the URL the spider requested (the first of any redirects)."""
        kind, reason = classify(failure)
        self.record_error(kind, failure.request.meta.get("redirect_urls", [failure.request.url])[0], reason)
        self.settle(failure.request, ERRORS)

    # --- the ledger's signals -------------------------------------------------------

    def request_scheduled(self, request, spider) -> None:
        if spider is self and _issued_by_spider(request):
            self.crawler.stats.inc_value("finmon/ledger/requests")

    def request_dropped(self, request, spider) -> None:
        """The scheduler dropped a request as a duplicate: a redirect hop back to a URL already requested is a
        redirect loop (an error of the request that redirected), anything else a duplicate."""
        if spider is not self:
            return
        if self.shared_crawl and _issued_by_spider(request):  # another process of the crawl requested it first
            self.settle(request, DUPLICATES)
        elif _issued_by_spider(request):
            self.record_error(DUPLICATE, request.url, "dropped by the duplicate filter: requested before")
            self.settle(request, DUPLICATES)
        else:
            hops = " → ".join([*request.meta.get("redirect_urls", []), request.url])
            self.record_error(REDIRECT_LOOP, request.meta.get("redirect_urls", [request.url])[0],
                              f"redirected back to a URL already requested: {hops}")
            self.settle(request, ERRORS)

    def callback_failed(self, failure, response, spider) -> None:
        """A callback raised (a bug, not a store fault): the request still ends in an error line."""
        if spider is not self:
            return
        exc = failure.value
        self.record_error(OTHER, response.url, f"callback failed: {type(exc).__name__}: {exc}"[:300])
        self.settle(response.request, ERRORS)

    def parse_policy(self, response, url: str):
        """The policy's response, archived as received (a 304 is not: the earlier capture is carried forward)."""
        self.settle(response.request, ITEMS)
        fetched_at = utcnow()
        yield PolicyFetch(
            url=url,
            store=self.store,
            status="ok",
            fetched_at=fetched_at,
            final_url=response.url,
            body=response.body,
            content_type=response.headers.get("Content-Type", b"").decode("latin-1"),
            capture="" if response.status == 304 else self.snapshot.capture(response, fetched_at),
            **_validators(response),
        )

    def parse_apk(self, response, url: str):
        self.settle(response.request, ITEMS)
        yield ApkFetch(url=url, store=self.store, status="ok", fetched_at=utcnow(), body=response.body,
                       **_validators(response))

    def apk_failed(self, failure):
        url = failure.request.cb_kwargs.get("url", failure.request.url)
        kind, reason = classify(failure)
        self.record_error(kind, url, reason)
        self.settle(failure.request, ERRORS)
        yield ApkFetch(url=url, store=self.store, status="unavailable", fetched_at=utcnow(), error=f"{kind}: {reason}")

    def policy_failed(self, failure):
        url = failure.request.cb_kwargs.get("url", failure.request.url)
        kind, reason = classify(failure, policy=True)
        self.record_error(kind, url, reason)
        self.settle(failure.request, ERRORS)
        status = "not_found" if kind == NOT_FOUND else "unavailable"
        yield PolicyFetch(url=url, store=self.store, status=status, fetched_at=utcnow(), error=f"{kind}: {reason}")


ITEMS, ERRORS, DUPLICATES = "items", "errors", "duplicates"  # how a request ends (the ledger)
SETTLED = "finmon_settled"  # request meta: the ledger entry it ended in


def _issued_by_spider(request) -> bool:
    """Whether a request is one the spider issued, not a retry or a redirect hop of one."""
    return "redirect_times" not in request.meta and "retry_times" not in request.meta


def _validators(response) -> dict:
    """ETag and Last-Modified of a response, and whether it is a 304 (the previous capture still holds)."""
    headers = response.headers
    return {"etag": headers.get("ETag", b"").decode("latin-1"),
            "last_modified": headers.get("Last-Modified", b"").decode("latin-1"),
            "unchanged": response.status == 304}
