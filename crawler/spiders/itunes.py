"""iOS apps through the iTunes Search API, then each app page for its privacy policy and labels."""
from __future__ import annotations

import dataclasses
from urllib.parse import urlencode

from crawler.parsers import parse_apple_page, parse_itunes_search, with_hash
from crawler.spiders import StoreSpider
from finmon.model import Listing


class ItunesSpider(StoreSpider):
    name = "itunes"
    store = "itunes"

    def setup(self, settings) -> None:
        self.country = settings.get("FINMON_ITUNES_COUNTRY")
        self.page_size = settings.getint("FINMON_ITUNES_PAGE_SIZE")

    async def start(self):
        for term in self.keywords:
            yield self.search(term, 0)

    def search(self, term: str, offset: int):
        query = {"term": term, "country": self.country, "entity": "software", "limit": self.page_size, "offset": offset}
        return self.store_request(f"{self.base_url}/search?{urlencode(query)}", self.parse_search, term=term, offset=offset)

    def parse_search(self, response, term: str, offset: int):
        problems: list = []
        listings = self.parsed(response, parse_itunes_search, response.body, problems=problems)
        if listings is None:
            return
        for listing in listings:
            if self.first_time(listing.store_id):
                yield self.detail_request(listing.source_url, self.parse_app_page, listing=listing)
        next_offset = offset + self.page_size
        # a full page has a next one; results that could not be read count (an item with a bad optional field
        # counts twice, which costs at most one extra request, never a page)
        results = len(listings) + len({problem.item for problem in problems})
        if results >= self.page_size and next_offset >= self.page_size * self.max_pages:
            self.discovery_capped(term, self.max_pages)
        elif results >= self.page_size:
            yield self.search(term, next_offset)

    def parse_app_page(self, response, listing: Listing):
        """The app page adds the policy link and privacy labels to the search result's listing."""
        page = self.page_listing(response, _page_listing, listing, response, problems=[])
        if page is None:
            return
        yield from self.listing_and_links(with_hash(dataclasses.replace(
            listing, privacy_url=page.privacy_url, privacy_labels=page.privacy_labels, etag=page.etag,
            last_modified=page.last_modified, capture=page.capture)))


def _page_listing(listing: Listing, response, problems: list | None = None) -> Listing:
    """The search result's listing with what the app page says (parse_apple_page)."""
    privacy_url, labels = parse_apple_page(response.text, response.url, problems)
    return dataclasses.replace(listing, privacy_url=privacy_url, privacy_labels=labels)
