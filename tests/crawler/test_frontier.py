"""The shared crawl frontier on a real Redis server: its queue, leases and seeding, and crawls shared by processes."""
import asyncio
import collections
import json
import re
import signal
import subprocess
import sys
import time
import types
import uuid
from pathlib import Path

import pytest
import redis
import scrapy
from scrapy_redis.queue import PriorityQueue

from crawler.frontier import Frontier, JsonSerializer, SeedOnce
from finmon import jobs
from finmon.model import Listing
from market.server import MarketServer


@pytest.fixture
def server(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def frontier(server, worker, crawl="c", store="xiaomi", lease=30):
    return Frontier(server, "finmon-test", crawl, store, worker, lease, keep_days=1)


def refused(*args):
    """What a call to a Redis that does not answer does."""
    raise redis.ConnectionError("Connection refused")


def test_requests_survive_the_queue_as_json_with_their_bytes_headers_and_listings():
    listing = Listing(store="itunes", store_id="1", platform="ios", package="com.a", name="借钱", developer="d",
                      category="finance", source_url="https://apps.example/id1", fetched_at="2026-01-01T00:00:00Z",
                      permissions=("camera",))
    request = {"headers": {b"If-None-Match": [b'"v1"']}, "body": b"\x00\xff", "cb_kwargs": {"listing": listing},
               "meta": {"redirect_urls": ("a", "b")}}
    back = JsonSerializer.loads(JsonSerializer.dumps(request))
    assert back == {**request, "meta": {"redirect_urls": ["a", "b"]}}
    with pytest.raises(TypeError, match="cannot queue a request holding a object"):
        JsonSerializer.dumps({"meta": {"x": object()}})


def test_a_request_is_queued_once_across_the_stores_of_a_crawl_and_again_in_another_crawl(server):
    crawl = uuid.uuid4().hex
    xiaomi, itunes = frontier(server, "w1", crawl, "xiaomi"), frontier(server, "w1", crawl, "itunes")
    assert xiaomi.push(("fp-policy", 0, b"r1", False), ("fp-page", 0, b"r2", False)) == [True, True]
    assert itunes.push(("fp-policy", 0, b"r1-from-itunes", False)) == [False]  # the same policy URL
    assert itunes.push(("fp-policy", 0, b"retry", True)) == [True]  # a retry passes the filter
    assert frontier(server, "w1", uuid.uuid4().hex).push(("fp-policy", 0, b"r1", False)) == [True]
    assert (xiaomi.queued(), itunes.queued()) == (2, 1)


def test_a_taken_request_is_leased_until_released_and_a_silent_workers_leases_go_back_to_the_queue(server):
    crawl = uuid.uuid4().hex
    alive, dying = frontier(server, "alive", crawl), frontier(server, "dying", crawl)
    alive.beat(), dying.beat()
    alive.push(*((f"fp{n}", score, f"r{n}".encode(), False) for n, score in ((1, -1), (2, 0), (3, 0))))
    assert dying.take() == [b"r1"]  # the highest priority first
    assert alive.take(5) == [b"r2", b"r3"]
    alive.release(b"r2")
    assert alive.reclaim_silent() == 0  # "dying" still beats
    server.delete(dying.heartbeat_prefix + "dying")  # its lease ran out (killed: no more heartbeats)
    assert alive.reclaim_silent() == 1
    assert alive.queued() == 1 and server.zscore(alive.queue, b"r1") == -1  # back, with its priority
    assert server.smembers(alive.workers) == {b"alive"}
    dying.beat()  # it had only stalled: from its next heartbeat on, its leases count again
    assert server.smembers(alive.workers) == {b"alive", b"dying"}


def test_the_crawl_is_drained_once_seeded_with_nothing_queued_and_nothing_leased(server):
    crawl = uuid.uuid4().hex
    first, second = frontier(server, "first", crawl), frontier(server, "second", crawl)
    first.beat(), second.beat()
    assert not first.drained()  # not seeded yet: a worker that joins early waits
    assert first.seed_turn() == 1 and second.seed_turn() == 0  # one seeds, the other waits for it
    first.push(("fp", 0, b"r", False))
    first.mark_seeded()
    assert second.seed_turn() == 2
    assert not second.drained()
    assert second.take() == [b"r"]
    assert not first.drained()  # the second still works on it, and may queue more
    second.release(b"r")
    assert first.drained() and second.drained()


def test_seeding_passes_to_another_worker_when_the_seeder_goes_silent(server):
    crawl = uuid.uuid4().hex
    seeder, waiting = frontier(server, "seeder", crawl), frontier(server, "waiting", crawl)
    seeder.beat(), waiting.beat()
    assert seeder.seed_turn() == 1 and waiting.seed_turn() == 0
    server.delete(seeder.heartbeat_prefix + "seeder")
    assert waiting.seed_turn() == 1


# --- crawls shared by processes ---------------------------------------------------------------------------------

def _crawler(market, out: Path, redis_url: str, crawl: str, store: str = "xiaomi") -> subprocess.Popen:
    cmd = [sys.executable, "-m", "crawler.run", "--out", str(out), "--allow-host", "127.0.0.1",
           "--store", f"{store}={market.store_urls[store]}", "--set", f"FINMON_FRONTIER={redis_url}",
           "--set", f"FINMON_FRONTIER_CRAWL={crawl}", "--set", "FINMON_FRONTIER_PREFIX=finmon-test",
           "--set", "FINMON_FRONTIER_LEASE=4", "--set", "FINMON_CRAWL_WORKERS=0"]
    with open(out.with_suffix(".log"), "wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log)


def _expected(market, store: str) -> tuple[set, set]:
    """The store's listings (store, id) and the policy URLs they link, from the market's truth (without the apps
    whose store page always fails: the simulator's permanent store outages)."""
    apps = [a for a in market.truth()["app_list"] if store in a["stores"] and f"{store}_503" not in a["faults"]]
    listings = {(store, a["store_ids"][store]) for a in apps}
    policies = {a["policy"]["url"].replace(market.base_url, "") for a in apps if a["policy"]["url"]}
    return listings, policies


def _fetched_twice(market, before: collections.Counter) -> dict[str, int]:
    """Requests made more than once since ``before``, but robots.txt (once per process) and the requests of the
    apps the simulator answers with a 5xx at times (retried as in any crawl)."""
    fetched = collections.Counter(market.fetches)
    fetched.subtract(before)
    retried = [a for a in market.truth()["app_list"] if a["faults"]]
    ignore = {a["package"] for a in retried} | {a["policy"]["url"].replace(market.base_url, "") for a in retried
                                                 if a["policy"]["url"]}
    return {k: n for k, n in fetched.items()
            if n > 1 and "/robots.txt" not in k and not any(word in k for word in ignore)}


def _policies(snap, market) -> set:
    """The policy URLs the crawl fetched (read, or recorded as failed)."""
    return {url.replace(market.base_url, "") for url in [*snap.policies, *snap.policy_failures]}


@pytest.fixture(scope="module")
def market_5000():
    with MarketServer(apps=5000, seed=11, fault_rate=0) as market:
        yield market


def test_two_processes_share_one_crawl_of_5000_apps_every_app_once_and_no_url_twice(market_5000, redis_url, tmp_path):
    market, crawl = market_5000, uuid.uuid4().hex
    before = collections.Counter(market.fetches)
    procs = [_crawler(market, tmp_path / f"part{n}", redis_url, crawl) for n in range(2)]
    runs = [json.loads(proc.communicate(timeout=600)[0]) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    snap = jobs.load_snapshot(tmp_path)
    crawled = collections.Counter((lst.store, lst.store_id) for lst in snap.listings)
    listings, policies = _expected(market, "xiaomi")
    assert set(crawled) == listings and max(crawled.values()) == 1  # every app, each once
    assert _policies(snap, market) >= policies
    assert all(run["counters"]["listings"] > 0.2 * len(listings) for run in runs)  # both did a share of it
    assert not _fetched_twice(market, before)
    ledger = collections.Counter()
    for run in runs:
        ledger.update({k: v for k, v in run["counters"].items() if k.startswith("ledger/")})
    assert ledger["ledger/requests"] == ledger["ledger/items"] + ledger["ledger/errors"] + ledger["ledger/duplicates"]


def test_killing_one_of_two_processes_mid_crawl_loses_nothing(market_5000, redis_url, tmp_path):
    market, crawl = market_5000, uuid.uuid4().hex
    before = collections.Counter(market.fetches)
    survivor, victim = (_crawler(market, tmp_path / f"part{n}", redis_url, crawl) for n in range(2))
    listings, policies = _expected(market, "xiaomi")
    deadline = time.monotonic() + 300
    while _lines(tmp_path / "part1" / "listings.jsonl") < len(listings) // 6:  # a third of its half
        assert victim.poll() is None and time.monotonic() < deadline, "the victim ended before it could be killed"
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    survivor.communicate(timeout=600)
    assert survivor.returncode == 0
    snap = jobs.load_snapshot(tmp_path)
    assert {(lst.store, lst.store_id) for lst in snap.listings} == listings
    assert _policies(snap, market) >= policies
    requeued = sum(int(n) for n in re.findall(r"went silent; (\d+) of its requests",
                                               (tmp_path / "part0.log").read_text()))
    twice = _fetched_twice(market, before)
    # at least once: only what the killed process held when it died can have been fetched again
    assert 0 < requeued <= 64 and len(twice) <= requeued, (requeued, twice)


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except OSError:
        return 0


def test_pushes_survive_a_redis_that_lost_its_scripts(server):
    queue = frontier(server, "w", uuid.uuid4().hex)
    assert queue.push(("fp1", 0, b"r1", False)) == [True]
    server.script_flush()  # as after a restart of Redis
    assert queue.push(("fp2", 0, b"r2", False), ("fp1", 0, b"r1", False)) == [True, False]


def _scheduler(make_spider, redis_url):
    """An iTunes spider's frontier scheduler, opened without its ticker (which would install a reactor)."""
    from crawler.frontier import FrontierScheduler
    from crawler.spiders.itunes import ItunesSpider

    spider = make_spider(ItunesSpider, FINMON_FRONTIER=redis_url, FINMON_FRONTIER_CRAWL=uuid.uuid4().hex)
    scheduler = FrontierScheduler.from_crawler(spider.crawler)
    scheduler.spider = spider
    scheduler.queue = PriorityQueue(scheduler.frontier.server, spider, scheduler.frontier.queue,
                                    serializer=JsonSerializer)
    return spider, scheduler


def test_the_queue_encodes_a_request_as_scrapy_and_scrapy_redis_would(make_spider, redis_url):
    installed_before = "twisted.internet.reactor" in sys.modules  # later tests install the crawl's own reactor
    spider, scheduler = _scheduler(make_spider, redis_url)
    listing = Listing(store="itunes", store_id="1", platform="ios", package="com.a", name="借钱", developer="d",
                      category="finance", source_url="https://apps.example/id1", fetched_at="2026-01-01T00:00:00Z")
    requests = [spider.detail_request(listing.source_url, spider.parse_app_page, listing=listing),
                *spider.policy("https://policies.example/p.html")]
    for request in requests:
        assert scheduler.encode(request) == scheduler.queue._encode_request(request)
        assert scheduler.queue._decode_request(scheduler.encode(request)).to_dict(spider=spider) == request.to_dict(
            spider=spider)
    stranger = scrapy.Request("https://elsewhere.example/", callback=lambda response: None)  # not a spider method
    with pytest.raises(ValueError):  # Scrapy's own path refuses it: the request costs an error line
        scheduler.encode(stranger)
    scheduler.frontier.server.close()
    assert "twisted.internet.reactor" not in sys.modules or installed_before  # no reactor installed by this test


def test_an_empty_queue_is_asked_again_after_a_push_or_a_tick_and_finished_leases_go_back_with_the_next_take(
        make_spider, redis_url):
    spider, scheduler = _scheduler(make_spider, redis_url)
    in_progress = set()  # the engine's requests in progress
    spider.crawler.engine = types.SimpleNamespace(spider=None, _slot=types.SimpleNamespace(inprogress=in_progress))
    frontier, takes = scheduler.frontier, []  # (how many asked for, how many released with them)
    take = frontier.take
    frontier.take = lambda count, *done: takes.append((count, len(done))) or take(count, *done)

    def leased() -> int:
        return frontier.server.zcard(frontier.leased)

    assert scheduler.next_request() is None and scheduler.next_request() is None
    assert len(takes) == 1  # the queue was empty: not asked again at once
    scheduler.PUSH = 1  # pushed as soon as queued (no turn of the event loop to wait for here)
    scheduler.enqueue_request(scrapy.Request("https://apps.example/mine", callback=spider.parse_app_page))
    mine = scheduler.next_request()
    assert mine.url == "https://apps.example/mine" and len(takes) == 2  # its own push: asked again
    in_progress.add(mine)
    assert scheduler.next_request() is None and takes[-1] == (scheduler.TAKE, 0)  # dry again; mine still in progress
    in_progress.clear()
    frontier.push(("fp-other", 0, scheduler.encode(scrapy.Request("https://apps.example/other")), False))
    assert scheduler.next_request() is None and len(takes) == 3  # another process's push waits for the tick
    assert leased() == 1  # mine is finished, and still leased until the next take or tick
    scheduler.tick()  # which releases every finished request
    assert leased() == 0
    other = scheduler.next_request()
    assert other.url == "https://apps.example/other" and len(takes) == 4 and leased() == 1
    scheduler.enqueue_request(scrapy.Request("https://apps.example/mine-2", callback=spider.parse_app_page))
    mine_2 = scheduler.next_request()
    assert mine_2.url == "https://apps.example/mine-2" and takes[-1] == (scheduler.TAKE, 1)
    assert leased() == 1  # other (finished) went back in the call that leased mine-2
    in_progress.add(mine_2)
    assert scheduler.has_pending_requests() is True and leased() == 1  # in progress: kept
    in_progress.clear()
    frontier.mark_seeded()
    assert scheduler.has_pending_requests() is False and leased() == 0  # asked whether the crawl is over: released
    frontier.server.close()


def test_a_queue_entry_that_cannot_be_read_back_costs_that_entry_with_an_error_line_not_the_crawl(make_spider,
                                                                                                   redis_url):
    spider, scheduler = _scheduler(make_spider, redis_url)
    in_progress = set()  # the engine's requests in progress
    spider.crawler.engine = types.SimpleNamespace(spider=None, _slot=types.SimpleNamespace(inprogress=in_progress))
    frontier = scheduler.frontier
    good = json.loads(scheduler.encode(scrapy.Request("https://apps.example/good", callback=spider.parse_app_page)))
    listing = Listing(store="itunes", store_id="1", platform="ios", package="com.a", name="借钱", developer="d",
                      category="finance", source_url="https://apps.example/id1", fetched_at="2026-01-01T00:00:00Z")
    bad_listing = json.loads(scheduler.encode(spider.detail_request(listing.source_url, spider.parse_app_page,
                                                                    listing=listing)))
    bad_listing["cb_kwargs"]["listing"]["$listing"]["downloads"] = "many"  # a field of the wrong type
    entries = [
        b"\xff{ not json",
        json.dumps({**good, "url": "https://apps.example/renamed", "callback": "parse_renamed"}).encode(),
        json.dumps(bad_listing).encode(),
        json.dumps(good).encode(),
    ]
    frontier.push(*((f"fp{n}", n, entry, False) for n, entry in enumerate(entries)))  # the good one last
    set_aside = frontier.set_aside
    frontier.set_aside = refused
    assert scheduler.next_request() is None  # Redis did not answer: the entry stays leased, first in line
    assert not (spider.snapshot.path / "errors.jsonl").exists() and frontier.server.zcard(frontier.leased) == 4
    frontier.set_aside = set_aside
    taken = scheduler.next_request()
    assert taken.url == "https://apps.example/good"
    in_progress.add(taken)
    assert scheduler.next_request() is None
    errors = [json.loads(line) for line in (spider.snapshot.path / "errors.jsonl").read_text("utf-8").splitlines()]
    assert [e["url"] for e in errors] == ["(a queue entry of 11 bytes)", "https://apps.example/renamed",
                                          "https://apps.example/id1"]
    assert all(e["kind"] == "other" and "cannot be read back from the frontier" in e["reason"] for e in errors)
    assert "parse_renamed" in errors[1]["reason"] and "Listing.downloads" in errors[2]["reason"]
    assert spider.crawler.stats.get_value("finmon/ledger/errors") == 3
    assert frontier.server.smembers(frontier.unreadable) == set(entries[:3])  # kept for a look, never queued again
    assert frontier.server.zrange(frontier.leased, 0, -1) == [entries[3]]  # only the good one is leased
    in_progress.clear()
    frontier.mark_seeded()
    assert scheduler.has_pending_requests() is False  # the crawl drains: the unreadable ones hold nothing up
    frontier.server.close()


def test_while_redis_does_not_answer_requests_are_kept_leases_held_and_the_crawl_waits(make_spider, redis_url):
    spider, scheduler = _scheduler(make_spider, redis_url)
    spider.crawler.engine = types.SimpleNamespace(spider=None, _slot=types.SimpleNamespace(inprogress=set()))
    frontier, failures = scheduler.frontier, [2]  # the next two pushes fail, as when Redis restarts
    push = frontier.push

    def flaky_push(*requests):
        if failures[0]:
            failures[0] -= 1
            refused()
        return push(*requests)

    frontier.push(("fp-parent", 0, scheduler.encode(scrapy.Request("https://apps.example/parent")), False))
    assert scheduler.next_request().url == "https://apps.example/parent"  # finished at once (nothing in progress)
    frontier.push = flaky_push
    scheduler.PUSH = 1  # pushed as soon as queued
    assert scheduler.enqueue_request(scrapy.Request("https://apps.example/child", callback=spider.parse_app_page))
    scheduler.release_finished()  # Redis refuses again: the parent must stay leased while its child is not queued
    assert frontier.queued() == 0 and frontier.server.zcard(frontier.leased) == 1
    scheduler.release_finished()  # Redis is back
    assert frontier.queued() == 1 and frontier.server.zcard(frontier.leased) == 0
    frontier.mark_seeded()
    answers = frontier.take, frontier.drained
    frontier.take = frontier.drained = refused
    assert scheduler.next_request() is None and scheduler.has_pending_requests() is True  # no answer: wait, no error
    frontier.take, frontier.drained = answers
    assert scheduler.next_request().url == "https://apps.example/child"
    frontier.server.close()


def test_the_seeder_waits_out_redis_and_counts_the_crawl_seeded_only_once_its_start_requests_are_queued(make_spider,
                                                                                                        redis_url):
    spider, scheduler = _scheduler(make_spider, redis_url)
    spider.crawler.engine = types.SimpleNamespace(spider=None, _slot=types.SimpleNamespace(scheduler=scheduler,
                                                                                            inprogress=set()))
    frontier, refusals = scheduler.frontier, [1]
    seed_turn, mark_seeded = frontier.seed_turn, frontier.mark_seeded

    def flaky_seed_turn():
        if refusals[0]:
            refusals[0] -= 1
            refused()
        return seed_turn()

    queued_when_seeded = []
    frontier.seed_turn = flaky_seed_turn
    frontier.mark_seeded = lambda: queued_when_seeded.append(frontier.queued()) or mark_seeded()
    scheduler.flush_call = types.SimpleNamespace(active=lambda: False)  # stands for the reactor's pending flush

    async def start():
        for n in range(2):
            yield scrapy.Request(f"https://apps.example/search?page={n}", callback=spider.parse_app_page)

    async def seed():  # as the engine does: each start request to the scheduler as it comes
        async for request in SeedOnce(spider.crawler).process_start(start()):
            scheduler.enqueue_request(request)

    asyncio.run(seed())
    assert refusals == [0] and queued_when_seeded == [2]  # Redis refused once; both queued before "seeded"
    assert frontier.seed_turn() == 2  # seeded: a process joining now does not seed again
    frontier.server.close()
