"""Android apps through Tencent MyApp (应用宝, sj.qq.com): keyword search pages → app page → policy and APK.

What is confirmed of the real formats, and what is not:

* The app page, ``{base}/appdetail/<package>``, is confirmed by a real page of 2026 (豆包,
  tests/crawler/fixtures/myapp_detail_real.html): the site renders it on the server with its data in a
  ``__NEXT_DATA__`` script, the app's record in the GameDetail card (:func:`crawler.parsers.parse_myapp_detail`).
  A page of an app the store does not have (HTTP 404, or a 找不到-style page) is ``not_found``, not a layout change.
* Search, ``{base}/myapp/searchAjax.htm?kw=KW&pns=PNS&sid=0``, is the older site's search API: its answers
  (``obj.appDetails``, ``obj.hasNext``, ``obj.pageNumberStack`` as the next ``pns``) are confirmed by real responses
  from 2015 and 2020 only, and the current site may have retired it. The current site's search page
  (``/search?q=KW``) carries a SearchList card whose paging could not be confirmed, so it is not used.
* Category lists, ``{base}/myapp/cate/appList.htm?orgame=1&categoryId=N&pageSize=S&pageContext=OFFSET``
  (FINMON_MYAPP_CATEGORIES), walked until a page comes back empty, are the older site's too and known from public
  scrapers' code only.
"""
from __future__ import annotations

from urllib.parse import quote, urlencode

from scrapy.spidermiddlewares.httperror import HttpError

from crawler.errors import NOT_FOUND
from crawler.parsers import parse_myapp_category, parse_myapp_detail, parse_myapp_search
from crawler.spiders import ERRORS, StoreSpider


class MyAppSpider(StoreSpider):
    name = "myapp"
    store = "myapp"

    def setup(self, settings) -> None:
        self.categories = [int(c) for c in settings.getlist("FINMON_MYAPP_CATEGORIES")]
        self.category_page_size = settings.getint("FINMON_MYAPP_CATEGORY_PAGE_SIZE")

    async def start(self):
        for keyword in self.keywords:
            yield self.search(keyword, "", 1)
        for category in self.categories:
            yield self.category(category, 0)

    def category(self, category: int, offset: int):
        query = {"orgame": 1, "categoryId": category, "pageSize": self.category_page_size, "pageContext": offset}
        return self.store_request(f"{self.base_url}/myapp/cate/appList.htm?{urlencode(query)}", self.parse_category,
                                  category=category, offset=offset)

    def parse_category(self, response, category: int, offset: int):
        """One page of a category list: its new apps' pages, then the next page until one comes back empty."""
        packages = self.parsed(response, parse_myapp_category, response.body, problems=[])
        if not packages:
            return
        for package in packages:
            if self.first_time(package):
                yield self.detail_request(self.detail_url(package), self.parse_detail)
        page = offset // self.category_page_size + 1
        if page >= self.max_pages:
            self.discovery_capped(f"category {category}", page)
        else:
            yield self.category(category, offset + self.category_page_size)

    def search(self, keyword: str, pns: str, page: int):
        url = f"{self.base_url}/myapp/searchAjax.htm?{urlencode({'kw': keyword, 'pns': pns, 'sid': 0})}"
        return self.store_request(url, self.parse_search, keyword=keyword, page=page)

    def detail_url(self, package: str) -> str:
        return f"{self.base_url}/appdetail/{quote(package, safe='.')}"

    def parse_search(self, response, keyword: str, page: int):
        """One search page: its new apps' pages, then the next page while the store gives one (hasNext and a
        pageNumberStack), up to FINMON_MAX_PAGES."""
        found = self.parsed(response, parse_myapp_search, response.body, problems=[])
        if found is None:
            return
        packages, next_pns = found
        for package in packages:
            if self.first_time(package):
                yield self.detail_request(self.detail_url(package), self.parse_detail)
        if next_pns and page >= self.max_pages:
            self.discovery_capped(keyword, page)
        elif next_pns:
            yield self.search(keyword, next_pns, page + 1)

    def parse_detail(self, response):
        listing = self.page_listing(response, parse_myapp_detail, response.text, response.url, problems=[])
        if listing is None:
            return
        yield from self.listing_and_links(listing)

    def store_failed(self, failure) -> None:
        """As for any store page, except that an app page answered 404 or 410 is an app the store does not have
        (removed since search listed it): ``not_found``."""
        exc = failure.value
        if (isinstance(exc, HttpError) and exc.response.status in (404, 410)
                and failure.request.callback == self.parse_detail):
            url = failure.request.meta.get("redirect_urls", [failure.request.url])[0]
            self.record_error(NOT_FOUND, url, f"HTTP {exc.response.status}: the store has no such app")
            self.settle(failure.request, ERRORS)
            return
        super().store_failed(failure)
