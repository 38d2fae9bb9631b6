"""One crawl shared by any number of crawler processes, on any hosts, through Redis (scrapy-redis).

With ``FINMON_FRONTIER`` (a ``redis://`` URL) the crawl's requests live in Redis, not in one process: every process
started with the same ``FINMON_FRONTIER_CRAWL`` takes requests from the same queue, and one duplicate filter decides
for all of them (and for every store of the crawl, so a policy or APK linked from two stores is fetched once). Each
process writes its own part of the snapshot; ``finmon analyze`` reads the parts together.

Nothing is lost when a process dies, even by ``kill -9``: a request taken from the queue is *leased* to its process
(moved to that process's in-flight set, atomically) and only dropped from there once the process is done with it:
downloaded, parsed, its items written and the requests it led to queued. A process renews a heartbeat key every
second; when it has been silent for ``FINMON_FRONTIER_LEASE`` seconds, any other process puts its leased requests
back in the queue, each with its priority. A request the dead process had finished but not yet released is then
fetched again: the guarantee is at least once, never less, and "twice" is bounded by what one process holds at once
(``CONCURRENT_REQUESTS``, the few it has taken ahead and the few finished it has not released yet). To save round
trips, the requests queued in one turn of the event loop are pushed together (one script call), always before a lease
is released, and leases are taken a few at a time, the finished ones released in the same call; a queue found empty
is asked again once this process queues requests or at the next heartbeat. Requests Redis does not take (it restarts,
the network drops) stay in the process and are pushed again at the next try; until then no finished lease is
released.

The first process to open a store's crawl seeds it (the spider's start requests); the crawl is *drained* when it
was seeded, its queue is empty and no process holds a lease: then every process of it finishes. Keys, under
``<FINMON_FRONTIER_PREFIX>:<crawl>``:

    seen                        the duplicate filter (request fingerprints), shared by the crawl's stores
    <store>:queue               the requests to fetch (a sorted set by priority)
    <store>:leased:<worker>     the requests a process took and has not finished
    <store>:unreadable          queue entries a process could not read back (damaged, or written by another
                                version of the spiders): set aside with an errors.jsonl line, not fetched
    <store>:workers             the processes that joined
    <store>:seeder, :seeded     who seeds the store's crawl, and that it is seeded
    worker:<worker>             a process's heartbeat (expires after FINMON_FRONTIER_LEASE seconds)

A crawl that other hosts may join (``finmon crawl-worker``) is published in the hash ``<prefix>:open`` (see
:func:`publish`) while it runs. A drained crawl's keys expire after ``FINMON_FRONTIER_KEEP_DAYS``. One Redis server
(not a Redis Cluster) holds a crawl: the scripts below read keys they are not given.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
import uuid
from typing import Any

from redis.exceptions import RedisError
from scrapy import Request, signals
from scrapy.exceptions import NotConfigured
from scrapy_redis import connection
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.queue import PriorityQueue
from twisted.internet import task

from crawler.errors import OTHER
from crawler.spiders import ERRORS
from finmon.model import Listing, redact_url

log = logging.getLogger(__name__)

# KEYS: seen, queue. ARGV: fingerprint, score, request, dont_filter, then the same for the next request, and so on.
# Each request queued unless seen before (atomically: a process killed in between cannot leave a request marked
# seen that was never queued); for each, 1 if it was queued.
_PUSH = """
local queued = {}
for i = 1, #ARGV, 4 do
  if ARGV[i + 3] == '1' or redis.call('SADD', KEYS[1], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[2], ARGV[i + 1], ARGV[i + 2])
    queued[#queued + 1] = 1
  else
    queued[#queued + 1] = 0
  end
end
return queued
"""
# KEYS: queue, leased. ARGV: how many, then requests the caller is done with. Those leases dropped, then the first
# requests of the queue moved to the caller's leased set with their scores.
_LEASE = """
for i = 2, #ARGV do redis.call('ZREM', KEYS[2], ARGV[i]) end
local first = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local taken = {}
for i = 1, #first, 2 do
  redis.call('ZREM', KEYS[1], first[i])
  redis.call('ZADD', KEYS[2], first[i + 1], first[i])
  taken[#taken + 1] = first[i]
end
return taken
"""
# KEYS: queue, leased, workers, heartbeat. ARGV: worker. A silent worker's leased requests back to the queue.
_RECLAIM = """
if redis.call('EXISTS', KEYS[4]) == 1 then return -1 end
local leased = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #leased, 2 do redis.call('ZADD', KEYS[1], leased[i + 1], leased[i]) end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return #leased / 2
"""
# KEYS: seeded, queue, workers. ARGV: the leased key's prefix. 1 when seeded, empty and nothing leased.
_DRAINED = """
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('ZCARD', KEYS[2]) > 0 then return 0 end
for _, worker in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if redis.call('ZCARD', ARGV[1] .. worker) > 0 then return 0 end
end
return 1
"""
# KEYS: seeder, seeded, heartbeat key prefix. ARGV: worker, lease. Take the seeding over unless it is done or
# another live worker has it: 1 seed now, 0 wait, 2 seeded already.
_SEED = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 2 end
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] and redis.call('EXISTS', KEYS[3] .. holder) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""


class FrontierUnavailable(RuntimeError):
    """The frontier's Redis server does not answer (the message names it, without its password)."""


def connect(url: str):
    """A client of the frontier's Redis server, which answered a PING."""
    try:
        server = connection.get_redis(url=url, socket_timeout=30, socket_connect_timeout=10, retry_on_timeout=True)
        server.ping()
    except Exception as exc:  # a bad URL or any of redis-py's connection errors: all mean the same here
        raise FrontierUnavailable(f"the crawl frontier {redact_url(url)} does not answer: {exc}") from None
    return server


def publish(server, prefix: str, crawl: str, store: str, spec: dict[str, Any]) -> None:
    """Announce a store's shared crawl to the crawler hosts (``spec``: what they need to join it)."""
    server.hset(f"{prefix}:open", f"{crawl}:{store}", json.dumps(spec))


def withdraw(server, prefix: str, crawl: str, store: str) -> None:
    server.hdel(f"{prefix}:open", f"{crawl}:{store}")


def published(server, prefix: str) -> dict[str, dict[str, Any]]:
    """The announced crawls, by ``<crawl>:<store>``; an entry that is not a JSON object is skipped."""
    out = {}
    for key, value in server.hgetall(f"{prefix}:open").items():
        try:
            spec = json.loads(value)
        except ValueError:
            spec = None
        if isinstance(spec, dict):
            out[key.decode()] = spec
        else:
            log.warning("frontier: the announcement %r is not a crawl's description; skipped", key)
    return out


def worker_name() -> str:
    """This process's name in the frontier: host, pid and a random tag (pids are reused)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"


class JsonSerializer:
    """Requests as JSON (never pickle: the queue is shared over the network); bytes, dicts with bytes keys
    (headers) and listings (a spider's cb_kwargs) are tagged."""

    @staticmethod
    def dumps(obj: Any) -> bytes:
        return json.dumps(_tag(obj), ensure_ascii=False, separators=(",", ":")).encode()

    @staticmethod
    def loads(data: bytes) -> Any:
        return json.loads(data, object_hook=_untag)


def _tag(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return {"$b": base64.b64encode(obj).decode()}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _tag(v) for k, v in obj.items()}
        return {"$d": [[_tag(k), _tag(v)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [_tag(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, Listing):
        return {"$listing": obj.to_dict()}  # strings, numbers, tuples and JSON's dicts: nothing to tag
    raise TypeError(f"cannot queue a request holding a {type(obj).__name__}")


def _untag(obj: dict) -> Any:
    if len(obj) != 1:
        return obj
    if "$b" in obj:
        return base64.b64decode(obj["$b"])
    if "$d" in obj:
        return {k: v for k, v in obj["$d"]}
    if "$listing" in obj:
        return Listing.from_dict(obj["$listing"])
    return obj


class Frontier:
    """One store's part of a shared crawl, as seen by one process (its worker)."""

    def __init__(self, server, prefix: str, crawl: str, store: str, worker: str, lease: int, keep_days: float) -> None:
        self.server, self.worker, self.lease = server, worker, lease
        self.keep_seconds = int(keep_days * 86400)
        base = f"{prefix}:{crawl}"
        self.seen, self.heartbeat_prefix = f"{base}:seen", f"{base}:worker:"
        self.queue, self.workers = f"{base}:{store}:queue", f"{base}:{store}:workers"
        self.leased_prefix = f"{base}:{store}:leased:"
        self.leased = self.leased_prefix + worker
        self.unreadable = f"{base}:{store}:unreadable"
        self.seeder, self.seeded = f"{base}:{store}:seeder", f"{base}:{store}:seeded"
        self._push, self._lease, self._reclaim, self._drained, self._seed = (
            server.register_script(s) for s in (_PUSH, _LEASE, _RECLAIM, _DRAINED, _SEED))

    def beat(self) -> None:
        """Renew this worker's heartbeat, and its place among the crawl's workers (a worker that stalled past its
        lease was dropped from them; its leases from then on must count again)."""
        with self.server.pipeline() as pipe:
            pipe.set(self.heartbeat_prefix + self.worker, b"1", ex=self.lease)
            pipe.sadd(self.workers, self.worker)
            pipe.execute()

    def push(self, *requests: tuple[str, float, bytes, bool]) -> list[bool]:
        """Queue each request (fingerprint, score, encoded, dont_filter) unless its fingerprint was seen, in one round
        trip; for each, whether it was queued."""
        if not requests:
            return []
        args = [arg for fingerprint, score, data, dont_filter in requests
                for arg in (fingerprint, score, data, int(dont_filter))]
        return [bool(queued) for queued in self._push(keys=[self.seen, self.queue], args=args)]

    def take(self, count: int = 1, *done: bytes) -> list[bytes]:
        """Lease the first ``count`` queued requests to this worker, releasing the ``done`` ones in the same round
        trip."""
        return self._lease(keys=[self.queue, self.leased], args=[count, *done])

    def release(self, *data: bytes) -> None:
        """This worker is done with these leased requests."""
        if data:
            self.server.zrem(self.leased, *data)

    def set_aside(self, data: bytes) -> None:
        """A leased entry this worker cannot read: out of its leases (it must not go back to the queue, where every
        worker would fail on it again) and into the store's ``unreadable`` set, for an operator to look at."""
        with self.server.pipeline() as pipe:  # one transaction: never in neither
            pipe.zrem(self.leased, data)
            pipe.sadd(self.unreadable, data)
            pipe.execute()

    def give_back(self) -> int:
        """Put every request this worker holds back in the queue (a graceful stop); how many."""
        no_heartbeat = self.leased + ":none"  # a key that never exists: the script takes the leases back at once
        return self._reclaim(keys=[self.queue, self.leased, self.workers, no_heartbeat], args=[self.worker])

    def reclaim_silent(self) -> int:
        """Requests of workers whose heartbeat expired, back to the queue; how many."""
        total = 0
        for raw in self.server.smembers(self.workers):
            worker = raw.decode()
            if worker == self.worker:
                continue
            back = self._reclaim(keys=[self.queue, self.leased_prefix + worker, self.workers,
                                       self.heartbeat_prefix + worker], args=[worker])
            if back > 0:
                log.warning("frontier: worker %s went silent; %d of its requests are queued again", worker, back)
                total += back
        return total

    def seed_turn(self) -> int:
        """1: this worker seeds the store's crawl now; 0: another live worker is seeding; 2: it is seeded."""
        return self._seed(keys=[self.seeder, self.seeded, self.heartbeat_prefix], args=[self.worker, self.lease])

    def mark_seeded(self) -> None:
        self.server.set(self.seeded, b"1")

    def drained(self) -> bool:
        return bool(self._drained(keys=[self.seeded, self.queue, self.workers], args=[self.leased_prefix]))

    def queued(self) -> int:
        return self.server.zcard(self.queue)

    def expire(self) -> None:
        """Let the drained crawl's keys go after FINMON_FRONTIER_KEEP_DAYS."""
        with self.server.pipeline() as pipe:
            for key in (self.seen, self.queue, self.workers, self.seeder, self.seeded, self.unreadable):
                pipe.expire(key, self.keep_seconds)
            pipe.execute()


class FrontierScheduler:
    """Scrapy's scheduler for a shared crawl: requests go to, and come from, the store's queue in Redis.

    Each request taken is leased until the engine is done with it (see the module docstring)."""

    # Requests leased at once (they wait here, leased, until the engine asks) and pushes sent in one round trip at most
    TAKE, PUSH = 8, 64

    def __init__(self, crawler, frontier: Frontier) -> None:
        self.crawler, self.frontier = crawler, frontier
        self.fingerprints = RFPDupeFilter(frontier.server, key=frontier.seen)  # scrapy-redis's request fingerprint
        self.held: dict[Any, bytes] = {}  # request taken → its queue entry, until released
        self.taken: list[bytes] = []  # leased, not yet handed to the engine
        self.dry = False  # the queue was empty: not asked again until this process queues some or the next tick
        self.outgoing: list[tuple[Any, tuple[str, float, bytes, bool]]] = []  # requests to push, pushed together
        self.flush_call = None
        self.ticker: task.LoopingCall | None = None  # made in open(): a LoopingCall installs a reactor if none is
        self.spider = None
        self.queue: PriorityQueue | None = None

    @classmethod
    def from_crawler(cls, crawler):
        settings = crawler.settings
        url, crawl = settings.get("FINMON_FRONTIER"), settings.get("FINMON_FRONTIER_CRAWL")
        if not url or not crawl:
            raise NotConfigured("a shared crawl needs FINMON_FRONTIER (a redis:// URL) and FINMON_FRONTIER_CRAWL")
        try:
            server = connect(url)
        except FrontierUnavailable as exc:
            raise NotConfigured(str(exc)) from None
        store = crawler.spidercls.name
        frontier = Frontier(server, settings.get("FINMON_FRONTIER_PREFIX"), crawl, store,
                            settings.get("FINMON_FRONTIER_WORKER") or worker_name(),
                            settings.getint("FINMON_FRONTIER_LEASE"), settings.getfloat("FINMON_FRONTIER_KEEP_DAYS"))
        return cls(crawler, frontier)

    # --- Scrapy's scheduler interface ---------------------------------------------
    def open(self, spider) -> None:
        self.spider = spider
        self.queue = PriorityQueue(self.frontier.server, spider, self.frontier.queue, serializer=JsonSerializer)
        self.frontier.beat()
        self.frontier.reclaim_silent()
        log.info("frontier: %s joined %s (%d requests queued)", self.frontier.worker, self.frontier.queue,
                 self.frontier.queued())
        self.ticker = task.LoopingCall(self.tick)
        self.ticker.start(1.0, now=False)

    def close(self, reason: str) -> None:
        if self.ticker is not None and self.ticker.running:
            self.ticker.stop()
        self.release_finished()
        self.taken.clear()  # still leased in Redis: given back below
        back = self.frontier.give_back()
        if back:
            log.info("frontier: %d unfinished requests handed back to the queue", back)
        elif self.frontier.drained():
            self.frontier.expire()

    def has_pending_requests(self) -> bool:
        """Until the shared crawl is drained, this process waits for work (another may still add some); while Redis
        does not answer, it waits too."""
        try:
            self.release_finished()
            return bool(self.taken) or not self.frontier.drained()
        except RedisError as exc:
            log.warning("frontier: cannot tell whether the crawl is over: %s", exc)
            return True

    def enqueue_request(self, request) -> bool:
        """Queue a request: pushed with the others of this turn of the event loop, in one round trip, and always
        before a lease is released (a request requested before, here or by another process, is dropped then)."""
        try:
            data = self.encode(request)
        except (TypeError, ValueError) as exc:  # costs this request, with an error line, not the crawl
            self.spider.record_error(OTHER, request.url, f"cannot be queued in the frontier: {exc}")
            self.spider.settle(request, ERRORS)
            return True
        self.outgoing.append((request, (self.fingerprints.request_fingerprint(request), -request.priority, data,
                                        request.dont_filter)))
        if len(self.outgoing) >= self.PUSH:
            self.flush()
        elif self.flush_call is None:
            from twisted.internet import reactor

            self.flush_call = reactor.callLater(0, self.flush)
        return True

    def encode(self, request) -> bytes:
        """The request as the queue keeps it (what ``Request.to_dict`` gives, as scrapy-redis's queue encodes it),
        its callbacks named straight from the spider's methods: Scrapy would search the spider's members for them
        on every request. A callback that is not a method of the spider goes Scrapy's way."""
        named = {}
        for attr in ("callback", "errback"):
            method = getattr(request, attr)
            if callable(method):
                name = getattr(method, "__name__", "")
                if getattr(self.spider, name, None) != method:
                    return self.queue._encode_request(request)
                method = name
            named[attr] = method
        fields = {"url": request.url, **named, "headers": dict(request.headers)}
        for attr in request.attributes:
            fields.setdefault(attr, getattr(request, attr))
        if type(request) is not Request:
            fields["_class"] = f"{type(request).__module__}.{type(request).__name__}"
        return JsonSerializer.dumps(fields)

    def flush(self) -> bool:
        """Push the requests waiting to be queued; False when Redis did not take them: they are kept for the next try
        (and until then no finished lease is released: a process killed meanwhile leaves their parents leased)."""
        if self.flush_call is not None and self.flush_call.active():
            self.flush_call.cancel()
        self.flush_call = None
        outgoing, self.outgoing = self.outgoing, []
        if not outgoing:
            return True
        try:
            queued = self.frontier.push(*(entry for _, entry in outgoing))
        except RedisError as exc:
            self.outgoing[:0] = outgoing
            log.warning("frontier: %d requests not queued yet, kept for the next try: %s", len(outgoing), exc)
            return False
        self.dry = self.dry and not any(queued)
        self.crawler.stats.inc_value("scheduler/enqueued/redis", sum(queued))
        for (request, _), fresh in zip(outgoing, queued):
            if not fresh:  # requested before, maybe by another process: the spider's ledger says what that means
                self.crawler.signals.send_catch_log(signals.request_dropped, request=request, spider=self.spider)
        return True

    def next_request(self):
        if not self.taken and not self.dry:
            done = self.releasable()
            try:
                self.taken = self.frontier.take(self.TAKE, *(self.held[request] for request in done))
            except RedisError as exc:  # nothing taken, nothing released: asked again at the next call or tick
                log.warning("frontier: cannot take requests: %s", exc)
                return None
            for request in done:
                del self.held[request]
            self.dry = not self.taken
        while self.taken:
            data = self.taken.pop(0)
            try:
                request = self.queue._decode_request(data)
            except Exception as exc:  # anything in a shared queue may be damaged, or another version's: costs it
                if not self.set_aside(data, exc):
                    return None
                continue
            self.held[request] = data
            self.crawler.stats.inc_value("scheduler/dequeued/redis")
            return request
        return None

    def set_aside(self, data: bytes, exc: Exception) -> bool:
        """A queue entry that cannot be read back as a request: kept aside, an errors.jsonl line naming its URL where
        it has one, an error in the ledger (the process that queued it counted a request). False when Redis did not
        answer: the entry stays leased and first in line, for the next call."""
        try:
            self.frontier.set_aside(data)
        except RedisError as err:
            self.taken.insert(0, data)
            log.warning("frontier: cannot set an unreadable entry aside yet: %s", err)
            return False
        try:
            url = json.loads(data).get("url")
        except (ValueError, AttributeError, RecursionError):
            url = None
        url = url if isinstance(url, str) else f"(a queue entry of {len(data)} bytes)"
        self.spider.record_error(OTHER, url, f"cannot be read back from the frontier, set aside in "
                                             f"{self.frontier.unreadable}: {type(exc).__name__}: {exc}")
        self.crawler.stats.inc_value(f"finmon/ledger/{ERRORS}")
        return True

    def __len__(self) -> int:
        return self.frontier.queued() + len(self.taken)

    # --- leases --------------------------------------------------------------------
    def releasable(self) -> list:
        """The leased requests whose leases may go now: the engine is done with them (no longer among its requests
        in progress: downloaded, parsed, items written) and the requests they led to are pushed, pushed here first;
        none while Redis has not taken those."""
        if not self.flush():
            return []
        in_progress = _engine_requests(self.crawler)
        return [request for request in self.held if request not in in_progress]

    def release_finished(self) -> None:
        """Release the leases of the finished requests (what they led to pushed first)."""
        done = self.releasable()
        if done:
            self.frontier.release(*(self.held.pop(request) for request in done))

    def tick(self) -> None:
        """Every second: the heartbeat, finished leases, silent workers' requests back, and a nudge to the engine
        (requests another process queued are taken without waiting for Scrapy's five-second heartbeat)."""
        self.dry = False
        try:
            self.frontier.beat()
            self.release_finished()
            self.frontier.reclaim_silent()
        except Exception as exc:  # a Redis hiccup: the next tick tries again; the lease outlives a few
            log.warning("frontier: %s", exc)
            return
        engine = self.crawler.engine
        if engine is not None and engine.spider is not None:
            _engine_slot(self.crawler).nextcall.schedule()


class SeedOnce:
    """Spider middleware of a shared crawl: the first process of a store's crawl sends the start requests; the
    others wait until it has (and take the seeding over if its heartbeat stops first)."""

    def __init__(self, crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_start(self, start):
        scheduler = _engine_slot(self.crawler).scheduler
        frontier = scheduler.frontier
        while (turn := await _patiently(frontier.seed_turn)) == 0:
            await asyncio.sleep(1.0)  # the crawl's reactor runs on asyncio (TWISTED_REACTOR)
        if turn == 2:
            return
        log.info("frontier: %s seeds %s", frontier.worker, frontier.queue)
        async for item_or_request in start:
            yield item_or_request
        while not scheduler.flush():  # the last start requests are queued before the crawl counts as seeded
            await asyncio.sleep(1.0)
        await _patiently(frontier.mark_seeded)


async def _patiently(call):
    """``call()``, tried again every second while Redis does not answer (a restart must not end the seeding)."""
    while True:
        try:
            return call()
        except RedisError as exc:
            log.warning("frontier: %s; trying again", exc)
            await asyncio.sleep(1.0)


def _engine_slot(crawler):
    """The engine's slot (Scrapy keeps no public handle on it)."""
    return crawler.engine._slot


def _engine_requests(crawler) -> set:
    """The requests the engine has taken from the scheduler and not finished with."""
    slot = _engine_slot(crawler) if crawler.engine is not None else None
    return slot.inprogress if slot is not None else set()
