"""One guard for every URL that comes from store data: detail pages, policies, APKs and each redirect hop.

Store data is untrusted, so a crafted link could make the crawler read local files or fetch from the
monitoring network itself. A URL passes when:

- its scheme is http or https (``file:``, ``ftp:``, ``data:`` … are refused: ``unsupported_url``);
- it is under a configured store API base URL (same scheme, host and port, path below the base path),
  or is the robots.txt of a store's origin: the stores are configuration, not store data;
- its host and port match an allow entry (``host:port`` allows that port only, ``host`` any port); or
- its host is, or resolves to, a global address (loopback, private, link-local, reserved, shared and
  cloud-metadata ranges are refused: ``private_address``).

No DNS rebinding between the check and the connection. In a crawl the check resolves the host through
the reactor's resolver, :class:`crawler.middlewares.GuardedResolver` (Scrapy's ``TWISTED_DNS_RESOLVER``),
which caches the answer; the download then connects through the same resolver and so to the cached,
checked address. Should the cache have dropped it meanwhile, the resolver checks again by itself: it
refuses a non-global answer for every name that no allow entry or store names. Outside a crawl
(:func:`crawler.policy.fetch_policy`), :func:`guarded_connection` resolves, checks and connects to the
checked address in one step for every hop. The one trust left is in names operators list themselves: a
listed name allowed on one port may resolve anew between the check of another port and the connection;
and with an HTTP proxy configured (``http_proxy``), the proxy resolves the name again.
"""
from __future__ import annotations

import ipaddress
import posixpath
import socket
from typing import Iterable
from urllib.parse import unquote, urlsplit

SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
UNSUPPORTED_URL = "unsupported_url"
PRIVATE_ADDRESS = "private_address"


class UrlRefused(Exception):
    """A URL the guard does not let through; ``kind`` is the errors.jsonl kind."""

    def __init__(self, message: str, kind: str = PRIVATE_ADDRESS) -> None:
        super().__init__(message)
        self.kind = kind


def is_global(address: str) -> bool:
    """True only for globally routable addresses (an IPv4-mapped IPv6 address is judged as its IPv4 one)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def ip_literal(host: str) -> str | None:
    """``host`` as a normalised IP address when it is one, else None."""
    try:
        return str(ipaddress.ip_address(host.strip("[]").split("%", 1)[0]))
    except ValueError:
        return None


def parse_allow_entry(entry: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` → (lower-case host, port or None)."""
    entry = entry.strip().lower()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        host, port = entry.split(":")
    else:
        host, port = entry, ""
    if not host or (port and not port.isdigit()):
        raise ValueError(f"not a host or host:port: {entry!r}")
    return ip_literal(host) or host, int(port) if port else None


def _host_port(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of an http(s) URL; UrlRefused for any other."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UrlRefused(f"refused {url[:200]}: not an http(s) URL", UNSUPPORTED_URL)
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise UrlRefused(f"refused {url[:200]}: bad port", UNSUPPORTED_URL) from None
    host = (parts.hostname or "").lower()
    if not host:
        raise UrlRefused(f"refused {url[:200]}: no host", UNSUPPORTED_URL)
    return scheme, ip_literal(host) or host, port, posixpath.normpath("/" + unquote(parts.path).lstrip("/"))


class UrlGuard:
    """The allow entries and store base URLs of a crawl (or of ``finmon check``), and the checks using them."""

    def __init__(self, allow_hosts: Iterable[str] = (), store_urls: Iterable[str] = ()) -> None:
        self.allowed = {parse_allow_entry(entry) for entry in allow_hosts}
        self.stores = [_host_port(url) for url in store_urls if url]
        self.trusted_names = {host for host, _ in self.allowed} | {host for _, host, _, _ in self.stores}

    def admits(self, url: str) -> tuple[str, int] | None:
        """None when ``url`` passes without resolving anything, else the (host, port) whose address decides.

        Raises UrlRefused for a scheme other than http(s) and for an IP literal that is not global.
        """
        scheme, host, port, path = _host_port(url)
        for s_scheme, s_host, s_port, s_path in self.stores:
            if (scheme, host, port) == (s_scheme, s_host, s_port) and (
                    path == "/robots.txt" or path == s_path or path.startswith(s_path.rstrip("/") + "/")):
                return None
        return None if self.admits_host(url, host, port) else (host, port)

    def admits_host(self, url: str, host: str, port: int) -> bool:
        """True when host:port is allowed or a global IP literal, False when its address must be checked;
        UrlRefused for an IP literal that is not global (``url`` names the request)."""
        if (host, port) in self.allowed or (host, None) in self.allowed:
            return True
        if ip_literal(host) is not None:
            self.check_address(url, host, port, host)
            return True
        return False

    def check_address(self, url: str, host: str, port: int, address: str) -> None:
        """UrlRefused when ``address`` (what ``host`` resolved to) is not global and host:port is not allowed."""
        if is_global(address) or (host, port) in self.allowed or (host, None) in self.allowed:
            return
        where = f"{host}:{port}" if address == host else f"{host}:{port} resolves to {address}"
        raise UrlRefused(f"refused {url[:200]}: {where}, a private address (allow it with --allow-host)")

    def trusts_name(self, host: str) -> bool:
        """Whether an allow entry or a store names ``host`` (its private answers are not refused when resolved)."""
        return (ip_literal(host) or host.lower()) in self.trusted_names


def guarded_connection(guard: UrlGuard, url: str):
    """``socket.create_connection`` for http.client that resolves once, checks every answer and connects to
    a checked address (``url`` names the request in refusals)."""

    def connect(address, timeout=socket.getdefaulttimeout(), source_address=None):
        host, port = address
        host = ip_literal(host) or host.lower()
        if guard.admits_host(url, host, port):
            return socket.create_connection((host, port), timeout, source_address)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        for *_, sockaddr in infos:
            guard.check_address(url, host, port, sockaddr[0])
        return socket.create_connection((infos[0][4][0], port), timeout, source_address)

    return connect
