"""Android apps through AppGallery's JSON API (format not confirmed on real responses: docs/stores.md): keyword search
pages → app detail → policy."""
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
        """One search page: its apps' detail requests (each with the category the search item gives), then the
        next page while the store says there is one (hasNextPage), up to FINMON_MAX_PAGES."""
        found = self.parsed(response, parse_appgallery_search, response.body, problems=[], page=page)
        if found is None:
            return
        for detail_id in found.detail_ids:
            if self.first_time(detail_id):
                yield self.detail_request(self.api(uri=detail_id), self.parse_detail,
                                          category=found.categories.get(detail_id, ""))
        if found.has_next_page and page >= self.max_pages:
            self.discovery_capped(keyword, page)
        elif found.has_next_page:
            yield self.search(keyword, page + 1)

    def parse_detail(self, response, category: str = ""):
        listing = self.page_listing(response, parse_appgallery_detail, response.body, response.url, problems=[],
                                    category=category)
        if listing is None:
            return
        yield from self.listing_and_links(listing)
