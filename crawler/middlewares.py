"""The crawl's side of :mod:`crawler.urlguard`: a downloader middleware checking every request, and the
resolver that checks and pins the address each connection goes to.

Every request passes :class:`UrlGuardMiddleware`, redirect hops included (the redirect middleware sends
each hop through the downloader again), so a URL from store data reaches the network only when the guard
admits it; requests under a configured store base URL (``FINMON_STORES``) pass as configuration. A
hostname is resolved through the reactor's resolver, :class:`GuardedResolver`, whose cached answer is
then what the connection uses; see :mod:`crawler.urlguard` for why that leaves no room for DNS rebinding.
"""
from __future__ import annotations

import logging

from scrapy.resolver import CachingThreadedResolver
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.error import DNSLookupError

from crawler.errors import PrivateAddressRefused
from crawler.urlguard import UrlGuard, UrlRefused, is_global

log = logging.getLogger(__name__)


def guard_of(settings) -> UrlGuard:
    """The URL guard of a crawl: FINMON_ALLOWED_PRIVATE_HOSTS and the store URLs of FINMON_STORES."""
    return UrlGuard(settings.getlist("FINMON_ALLOWED_PRIVATE_HOSTS"), settings.getdict("FINMON_STORES").values())


class NameRefused(DNSLookupError):
    """A name that resolved to a non-global address and that no allow entry or store names."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GuardedResolver(CachingThreadedResolver):
    """Scrapy's caching resolver that refuses non-global answers for names the guard does not trust."""

    def __init__(self, reactor, cache_size: int, timeout: float, guard: UrlGuard) -> None:
        super().__init__(reactor, cache_size, timeout)
        self.guard = guard

    @classmethod
    def from_crawler(cls, crawler, reactor):
        settings = crawler.settings
        cache_size = settings.getint("DNSCACHE_SIZE") if settings.getbool("DNSCACHE_ENABLED") else 0
        return cls(reactor, cache_size, settings.getfloat("DNS_TIMEOUT"), guard_of(settings))

    def getHostByName(self, name, timeout=()):
        return super().getHostByName(name, timeout).addCallback(self._checked, name)

    def _checked(self, address: str, name: str) -> str:
        if is_global(address) or self.guard.trusts_name(name):
            return address
        log.warning("refused to connect to %s: it resolves to private address %s", name, address)
        raise NameRefused(f"{name} resolves to private address {address}")


class UrlGuardMiddleware:
    """Refuses requests the URL guard does not admit (``private_address`` or ``unsupported_url``)."""

    def __init__(self, guard: UrlGuard, resolve) -> None:
        self.guard = guard
        self.resolve = resolve  # async host → address, through the resolver the connection will use

    @classmethod
    def from_crawler(cls, crawler):
        from twisted.internet import reactor

        async def resolve(host: str) -> str:
            return await maybe_deferred_to_future(reactor.resolve(host))

        return cls(guard_of(crawler.settings), resolve)

    async def process_request(self, request):
        try:
            pending = self.guard.admits(request.url)
            if pending is None:
                return None
            host, port = pending
            try:
                address = await self.resolve(host)
            except NameRefused as exc:
                raise UrlRefused(f"refused {request.url[:200]}: {exc.reason} (allow it with --allow-host)") from None
            except DNSLookupError as exc:
                log.debug("cannot resolve %s (%s); the download will report it", host, exc)
                return None
            self.guard.check_address(request.url, host, port, address)
        except UrlRefused as exc:
            raise PrivateAddressRefused(str(exc), exc.kind) from None
        return None
