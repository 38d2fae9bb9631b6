"""Shared fixtures for the crawler tests: saved store responses and crawler settings."""
from __future__ import annotations

from pathlib import Path

import pytest

import finmon.settings

FIXTURES = Path(__file__).parent / "fixtures"


class Fixtures:
    """Saved store responses in tests/crawler/fixtures."""

    path = FIXTURES

    def __truediv__(self, name: str) -> Path:
        return FIXTURES / name

    def bytes(self, name: str) -> bytes:
        return (FIXTURES / name).read_bytes()

    def text(self, name: str) -> str:
        return (FIXTURES / name).read_text(encoding="utf-8")


@pytest.fixture
def fx() -> Fixtures:
    return Fixtures()


@pytest.fixture
def crawler_settings(tmp_path):
    """finmon.settings as a dict, pointed at a temporary snapshot directory and dummy stores."""
    settings = {k: getattr(finmon.settings, k) for k in dir(finmon.settings) if k.isupper()}
    settings["FINMON_STORES"] = {
        "itunes": "http://127.0.0.1:9/itunes",
        "appgallery": "http://127.0.0.1:9/appgallery",
        "xiaomi": "http://127.0.0.1:9/xiaomi",
        "googleplay": "http://127.0.0.1:9/googleplay",
    }
    settings["FINMON_SNAPSHOT_DIR"] = str(tmp_path / "snapshot")
    return settings


@pytest.fixture(autouse=True)
def _close_snapshots():
    """Snapshots, previous captures and crawl workers are process-wide: close the ones a test opened."""
    from crawler.previous import PreviousCapture
    from crawler.snapshot import Snapshot
    from crawler.workers import Workers

    yield
    Snapshot.close_all()
    PreviousCapture.forget_all()
    for workers in list(Workers._shared.values()):
        workers.close()


def through(pipeline, *items):
    """Each item through an async pipeline, side by side on one event loop as Scrapy runs them; the results."""
    import asyncio

    async def each():
        return await asyncio.gather(*(pipeline.process_item(item) for item in items))

    return asyncio.run(each())


@pytest.fixture
def make_crawler(crawler_settings):
    """A configured (not started) Scrapy crawler for a spider class, with finmon's settings."""
    from scrapy.utils.test import get_crawler

    def make(spidercls=None, **overrides):
        return get_crawler(spidercls, {**crawler_settings, **overrides})

    return make


@pytest.fixture
def make_spider(make_crawler):
    """A spider built from finmon's settings (stores on 127.0.0.1:9), ready to call callbacks on."""

    def make(spidercls, **overrides):
        crawler = make_crawler(spidercls, **overrides)
        spider = spidercls.from_crawler(crawler)
        crawler.spider = spider
        return spider

    return make


def response(url: str, body: bytes, content_type: str = "text/html; charset=utf-8", status: int = 200, cb_kwargs=None):
    """A response to ``url`` as the downloader would hand it to a callback."""
    from scrapy import Request
    from scrapy.http import HtmlResponse, TextResponse

    cls = HtmlResponse if "html" in content_type else TextResponse
    request = Request(url, cb_kwargs=cb_kwargs)
    return cls(url, body=body, headers={"Content-Type": content_type}, status=status, request=request)


@pytest.fixture
def respond():
    return response
