import asyncio

import pytest
from scrapy import Request

from crawler.errors import PrivateAddressRefused
from crawler.middlewares import PrivateAddressMiddleware, is_private


def run(mw, url, policy=True):
    return asyncio.run(mw.process_request(Request(url, meta={"finmon_policy": policy})))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8800/policies/a.html",
        "http://10.1.2.3/p.html",
        "http://192.168.1.1/p.html",
        "http://172.16.0.5/p.html",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/p.html",
        "http://0.0.0.0/p.html",
        "http://localhost/p.html",
    ],
)
def test_private_policy_urls_are_refused(url):
    with pytest.raises(PrivateAddressRefused):
        run(PrivateAddressMiddleware([], timeout=2), url)


def test_allowed_hosts_and_other_requests_pass():
    mw = PrivateAddressMiddleware(["127.0.0.1:8800", "[::1]"], timeout=2)
    assert run(mw, "http://127.0.0.1:8800/policies/a.html") is None
    assert run(mw, "http://[::1]:9000/p.html") is None
    assert run(mw, "http://8.8.8.8/p.html") is None  # a global address literal: no lookup needed
    assert run(PrivateAddressMiddleware([], timeout=2), "http://10.0.0.1/store", policy=False) is None


def test_is_private():
    assert is_private("100.64.0.1") and is_private("fe80::1%eth0") and not is_private("1.1.1.1")


def test_from_settings(make_crawler):
    crawler = make_crawler(FINMON_ALLOWED_PRIVATE_HOSTS=["127.0.0.1"])
    mw = PrivateAddressMiddleware.from_crawler(crawler)
    assert mw.allowed == {"127.0.0.1"} and mw.timeout == 5.0
