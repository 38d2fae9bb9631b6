"""Android apps through an AppGallery-like JSON API: keyword search pages → app detail → policy."""
from __future__ import annotations

from urllib.parse import urlencode

from crawler.parsers import parse_appgallery_detail, parse_appgallery_search
from crawler.spiders import StoreSpider


class AppGallerySpider(StoreSpider):
    name = "appgallery"
    store = "appgallery"

    def setup(self, settings) -> None:
        self.page_size = settings.getint("FINMON_APPGALLERY_PAGE_SIZE")

    async def start(self):
        for keyword in self.keywords:
            yield self.search(keyword, 1)

    def api(self, **query) -> str:
        return f"{self.base_url}/uowap/index?{urlencode({'method': 'internal.getTabDetail', 'serviceType': 20, **query})}"

    def search(self, keyword: str, page: int):
        url = self.api(uri=f"searchApp|{keyword}", reqPageNum=page, maxResults=self.page_size)
        return self.store_request(url, self.parse_search, keyword=keyword, page=page)

    def parse_search(self, response, keyword: str, page: int):
        found = self.parsed(response, parse_appgallery_search, response.body, problems=[])
        if found is None:
            return
        detail_ids, total_pages = found
        for detail_id in detail_ids:
            if self.first_time(detail_id):
                yield self.detail_request(self.api(uri=detail_id), self.parse_detail)
        if page == 1:
            if total_pages > self.max_pages:
                self.discovery_capped(keyword, self.max_pages)
            for next_page in range(2, min(total_pages, self.max_pages) + 1):
                yield self.search(keyword, next_page)

    def parse_detail(self, response):
        listing = self.page_listing(response, parse_appgallery_detail, response.body, response.url, problems=[])
        if listing is None:
            return
        yield from self.listing_and_links(listing)
