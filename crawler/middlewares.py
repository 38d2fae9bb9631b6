"""Downloader middleware refusing policy URLs that point at private or loopback addresses.

Policy URLs come from store data, so a crafted one could make the crawler fetch from the
monitoring network itself. Requests marked ``meta["finmon_policy"]`` (redirects keep the
mark) are refused when their host resolves to a non-global address, unless the host is in
``FINMON_ALLOWED_PRIVATE_HOSTS`` (the local market simulator).
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket

from scrapy.utils.httpobj import urlparse_cached

from crawler.errors import PrivateAddressRefused

log = logging.getLogger(__name__)


def is_private(address: str) -> bool:
    """True for loopback, private, link-local, reserved, shared and unspecified addresses."""
    return not ipaddress.ip_address(address.split("%", 1)[0]).is_global


def _hostname(entry: str) -> str:
    """An allow-list entry (``host``, ``host:port``, ``[v6]:port``) → the bare lower-case host."""
    entry = entry.strip().lower()
    if entry.startswith("["):
        return entry[1:].split("]", 1)[0]
    return entry.split(":", 1)[0] if entry.count(":") == 1 else entry


class PrivateAddressMiddleware:
    def __init__(self, allowed_hosts, timeout: float) -> None:
        self.allowed = {_hostname(h) for h in allowed_hosts}
        self.timeout = timeout
        self._verdicts: dict[str, str | None] = {}  # host → private address found, or None

    @classmethod
    def from_crawler(cls, crawler):
        settings = crawler.settings
        return cls(settings.getlist("FINMON_ALLOWED_PRIVATE_HOSTS"), settings.getfloat("FINMON_RESOLVE_TIMEOUT"))

    async def process_request(self, request):
        if not request.meta.get("finmon_policy"):
            return None
        host = (urlparse_cached(request).hostname or "").lower()
        if host in self.allowed:
            return None
        if host not in self._verdicts:
            self._verdicts[host] = await self._private_address(host)
        address = self._verdicts[host]
        if address is not None:
            raise PrivateAddressRefused(f"{host} is a private address" if address == host else f"{host} resolves to private address {address}")
        return None

    async def _private_address(self, host: str) -> str | None:
        """The first non-global address ``host`` resolves to, or None (unresolvable hosts pass on)."""
        try:
            return host if is_private(host) else None
        except ValueError:
            pass  # not an IP literal
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM), self.timeout
            )
        except (OSError, asyncio.TimeoutError) as exc:
            log.debug("cannot resolve %s (%s); the download will report it", host, exc)
            return None
        return next((info[4][0] for info in infos if is_private(info[4][0])), None)
