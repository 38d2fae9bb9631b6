"""Android apps on Xiaomi GetApps (format not confirmed on a whole real page: docs/stores.md): search pages (next
links) → detail page → policy."""
from __future__ import annotations

from urllib.parse import urlencode

from crawler.parsers import parse_xiaomi_detail, parse_xiaomi_search
from crawler.spiders import StoreSpider


class XiaomiSpider(StoreSpider):
    name = "xiaomi"
    store = "xiaomi"

    async def start(self):
        for keyword in self.keywords:
            url = f"{self.base_url}/search?{urlencode({'keywords': keyword, 'page': 1})}"
            yield self.store_request(url, self.parse_search, keyword=keyword, page=1)

    def parse_search(self, response, keyword: str, page: int):
        found = self.parsed(response, parse_xiaomi_search, response.text, response.url, problems=[])
        if found is None:
            return
        detail_urls, next_url = found
        for url in detail_urls:
            if self.first_time(url):
                yield self.detail_request(url, self.parse_detail)
        if next_url and page >= self.max_pages:
            self.discovery_capped(keyword, page)
        elif next_url:
            yield self.store_request(next_url, self.parse_search, keyword=keyword, page=page + 1)

    def parse_detail(self, response):
        listing = self.page_listing(response, parse_xiaomi_detail, response.text, response.url, problems=[])
        if listing is None:
            return
        yield from self.listing_and_links(listing)
