import asyncio

import pytest
from scrapy import Request
from twisted.internet.error import DNSLookupError

from crawler.errors import PrivateAddressRefused, classify
from crawler.middlewares import GuardedResolver, NameRefused, UrlGuardMiddleware, guard_of
from crawler.urlguard import UrlGuard

STORE = "http://127.0.0.1:8800/xiaomi"


def middleware(allow=(), answers=None):
    """A middleware whose resolver answers from ``answers`` (host → address, or an exception to raise)."""
    answers = answers or {}
    resolved = []

    async def resolve(host):
        resolved.append(host)
        answer = answers[host]
        if isinstance(answer, Exception):
            raise answer
        return answer

    mw = UrlGuardMiddleware(UrlGuard(allow, [STORE]), resolve)
    mw.resolved = resolved
    return mw


def refusal(mw, url):
    with pytest.raises(PrivateAddressRefused) as refused:
        asyncio.run(mw.process_request(Request(url)))
    return classify(refused.value)


def passes(mw, url):
    return asyncio.run(mw.process_request(Request(url))) is None


def test_every_request_is_guarded_not_only_policies():
    mw = middleware()
    for url in ("http://127.0.0.1:8800/apple/cn/app/id1400000001", "http://127.0.0.1:8800/apk/com.a.apk",
                "http://127.0.0.1:8800/policies/a/privacy.html", "http://10.0.0.1/store", "http://127.0.0.1:18081/x"):
        kind, reason = refusal(mw, url)
        assert kind == "private_address" and url in reason


def test_the_store_api_itself_passes():
    mw = middleware()
    assert passes(mw, STORE + "/search?keywords=x") and passes(mw, STORE + "/details?id=com.a")
    assert passes(mw, "http://127.0.0.1:8800/robots.txt") and mw.resolved == []


def test_file_and_other_schemes_are_refused():
    assert refusal(middleware(), "file:///etc/hostname")[0] == "unsupported_url"
    assert refusal(middleware(), "ftp://127.0.0.1/a.apk")[0] == "unsupported_url"


def test_allowed_host_and_port():
    mw = middleware(["127.0.0.1:18081"])
    assert passes(mw, "http://127.0.0.1:18081/apk/a.apk")
    assert refusal(mw, "http://127.0.0.1:18082/apk/a.apk")[0] == "private_address"
    assert passes(middleware(["127.0.0.1"]), "http://127.0.0.1:18082/apk/a.apk")


def test_hostnames_are_checked_by_what_the_resolver_answers():
    mw = middleware(["sim.local:9000"], {"policy.example.com": "93.184.216.34", "sim.local": "127.0.0.1",
                                         "rebind.test": NameRefused("rebind.test resolves to private address 10.0.0.7"),
                                         "gone.test": DNSLookupError("no such name")})
    assert passes(mw, "https://policy.example.com/p.html")
    assert passes(mw, "http://sim.local:9000/p.html")
    assert refusal(mw, "http://sim.local:9001/p.html") == (
        "private_address", "refused http://sim.local:9001/p.html: sim.local:9001 resolves to 127.0.0.1, "
        "a private address (allow it with --allow-host)")
    kind, reason = refusal(mw, "http://rebind.test/p.html")
    assert kind == "private_address" and "10.0.0.7" in reason
    assert passes(mw, "http://gone.test/p.html")  # the download reports the failed lookup


def test_the_resolver_refuses_private_answers_for_names_nobody_allowed():
    """What the connection resolves is checked again: a name that turns private after the check is not dialled."""
    from scrapy.resolver import dnscache

    resolver = GuardedResolver(None, 100, 5.0, UrlGuard(["sim.local"], [STORE]))
    names = {"rebind.test": "10.0.0.7", "sim.local": "127.0.0.1", "public.test": "8.8.8.8", "127.0.0.1": "127.0.0.1"}
    for name, address in names.items():
        dnscache[name] = address
    try:
        failures, answers = [], []
        resolver.getHostByName("rebind.test").addCallbacks(answers.append, failures.append)
        resolver.getHostByName("sim.local").addCallback(answers.append)
        resolver.getHostByName("public.test").addCallback(answers.append)
        resolver.getHostByName("127.0.0.1").addCallback(answers.append)  # the store's own host
    finally:
        for name in names:
            del dnscache[name]
    assert answers == ["127.0.0.1", "8.8.8.8", "127.0.0.1"]
    assert failures[0].check(NameRefused) and "10.0.0.7" in str(failures[0].value)


def test_from_settings(make_crawler):
    crawler = make_crawler(FINMON_ALLOWED_PRIVATE_HOSTS=["127.0.0.1:18081"])
    guard = guard_of(crawler.settings)
    assert guard.allowed == {("127.0.0.1", 18081)}
    assert guard.admits("http://127.0.0.1:9/itunes/search?term=x") is None  # the stores of the test settings
    assert crawler.settings["TWISTED_DNS_RESOLVER"] == "crawler.middlewares.GuardedResolver"
