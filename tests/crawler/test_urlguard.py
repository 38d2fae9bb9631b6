import socket

import pytest

from crawler.urlguard import UrlGuard, UrlRefused, guarded_connection, is_global, parse_allow_entry

STORE = "http://127.0.0.1:8800/itunes"


@pytest.mark.parametrize("url", [
    "file:///etc/hostname", "ftp://example.com/a.apk", "data:text/html,<p>x</p>", "gopher://example.com/",
    "javascript:alert(1)", "http:///no-host", "http://example.com:99999999/",
])
def test_only_http_urls_pass(url):
    with pytest.raises(UrlRefused) as refused:
        UrlGuard().admits(url)
    assert refused.value.kind == "unsupported_url" and url[:20] in str(refused.value)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8800/policies/a.html", "http://10.1.2.3/p.html", "http://192.168.1.1/p.html",
    "http://172.16.0.5/p.html", "http://169.254.169.254/latest/meta-data/", "http://100.100.100.200/meta",
    "http://[::1]/p.html", "http://[::ffff:127.0.0.1]/p.html", "http://[fd00:ec2::254]/", "http://0.0.0.0/p.html",
    "https://[fe80::1%25eth0]/", "http://224.0.0.1/", "http://240.0.0.1/",
])
def test_non_global_ip_literals_are_refused(url):
    with pytest.raises(UrlRefused) as refused:
        UrlGuard().admits(url)
    assert refused.value.kind == "private_address" and "--allow-host" in str(refused.value)


def test_hostnames_are_left_to_their_address():
    guard = UrlGuard()
    assert guard.admits("http://8.8.8.8/p.html") is None
    assert guard.admits("https://Policy.Example.COM/p.html") == ("policy.example.com", 443)
    assert guard.admits("http://localhost:81/") == ("localhost", 81)
    with pytest.raises(UrlRefused, match="localhost:81 resolves to 127.0.0.1"):
        guard.check_address("http://localhost:81/", "localhost", 81, "127.0.0.1")
    guard.check_address("http://policy.example.com/", "policy.example.com", 80, "93.184.216.34")


def test_an_allow_entry_with_a_port_allows_that_port_only():
    guard = UrlGuard(["127.0.0.1:18081", "[::1]", "sim.local:9000"])
    assert guard.admits("http://127.0.0.1:18081/apk/a.apk") is None
    with pytest.raises(UrlRefused, match="127.0.0.1:18082"):
        guard.admits("http://127.0.0.1:18082/apk/a.apk")
    assert guard.admits("http://[::1]:1/") is None and guard.admits("http://[::1]:2/") is None
    assert guard.admits("http://sim.local:9000/") is None
    assert guard.admits("http://sim.local:9001/") == ("sim.local", 9001)
    with pytest.raises(UrlRefused):
        guard.check_address("http://sim.local:9001/", "sim.local", 9001, "127.0.0.1")
    assert guard.trusts_name("SIM.local") and not guard.trusts_name("other.local")


def test_the_store_api_passes_and_nothing_else_of_its_host():
    guard = UrlGuard(store_urls=[STORE])
    for url in (STORE, STORE + "/search?term=x", STORE + "/lookup", "http://127.0.0.1:8800/robots.txt"):
        assert guard.admits(url) is None, url
    for url in ("http://127.0.0.1:8800/apple/cn/app/id1", "http://127.0.0.1:8800/policies/a.html",
                "http://127.0.0.1:8800/itunes/../policies/a.html", "http://127.0.0.1:8800/itunes%2f..%2fapk/a.apk",
                "http://127.0.0.1:8800/itunesx", "https://127.0.0.1:8800/itunes/search", "http://127.0.0.1:8801/itunes"):
        with pytest.raises(UrlRefused):
            guard.admits(url)
    assert guard.trusts_name("127.0.0.1")


@pytest.mark.parametrize("entry, parsed", [
    ("127.0.0.1", ("127.0.0.1", None)), ("127.0.0.1:8800", ("127.0.0.1", 8800)), ("[::1]:80", ("::1", 80)),
    ("::1", ("::1", None)), ("Sim.Local", ("sim.local", None)),
])
def test_allow_entries(entry, parsed):
    assert parse_allow_entry(entry) == parsed


def test_is_global():
    assert is_global("1.1.1.1") and is_global("2606:4700::1111")
    assert not is_global("100.64.0.1") and not is_global("fe80::1%eth0") and not is_global("::ffff:10.0.0.1")


def test_the_connection_goes_to_the_address_checked(monkeypatch):
    """One resolution decides and is connected to: a private answer is refused, a global one is dialled as is."""
    answers = {"rebind.test": "127.0.0.1", "public.test": "93.184.216.34"}
    dialled = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, **kw: [(socket.AF_INET, socket.SOCK_STREAM, 6, "",
                                                                           (answers[host], port))])
    monkeypatch.setattr(socket, "create_connection", lambda address, *args: dialled.append(address) or "sock")
    connect = guarded_connection(UrlGuard(), "http://rebind.test/p.html")
    with pytest.raises(UrlRefused, match="rebind.test:80 resolves to 127.0.0.1"):
        connect(("rebind.test", 80))
    assert connect(("public.test", 80)) == "sock" and dialled == [("93.184.216.34", 80)]
