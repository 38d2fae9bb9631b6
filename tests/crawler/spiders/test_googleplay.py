import asyncio
import json
from urllib.parse import parse_qs

from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawler.spiders.googleplay import GooglePlaySpider
from finmon.model import Listing

BASE = "http://127.0.0.1:9/googleplay"
DETAILS = BASE + "/store/apps/details?id=com.mojang.minecraftpe&hl=en&gl=hk"


async def collect(agen):
    return [x async for x in agen]


def test_start_searches_each_keyword_in_the_configured_storefront(make_spider):
    spider = make_spider(GooglePlaySpider)
    first = asyncio.run(collect(spider.start()))[0]
    assert first.url == BASE + "/store/search?q=%E8%B4%B7%E6%AC%BE&c=apps&hl=en&gl=hk"


def test_search_requests_each_new_app_once_and_counts_a_page_with_more_results(make_spider, fx, respond):
    spider = make_spider(GooglePlaySpider)
    page = fx.bytes("googleplay_search_panda.html")
    out = list(spider.parse_search(respond(BASE + "/store/search?q=panda", page), keyword="panda"))
    assert [r.url for r in out] == [f"{BASE}/store/apps/details?id={p}&hl=en&gl=hk"
                                    for p in ("com.pandaexpress.app", "com.sinyee.babybus.restaurant", "com.yq.xmmg.gp")]
    assert list(spider.parse_search(respond(BASE + "/store/search?q=panda", page), keyword="panda")) == []
    assert not spider.crawler.stats.get_value("finmon/discovery_capped")
    more = page.replace(b'[""]]]', b'[null,null,null,[null,"token"]]]]')
    list(spider.parse_search(respond(BASE + "/store/search?q=x", more), keyword="x"))
    assert spider.crawler.stats.get_value("finmon/discovery_capped") == 1  # said, not silent


def test_details_then_data_safety_then_permissions_make_one_listing(make_spider, fx, respond):
    spider = make_spider(GooglePlaySpider)
    (datasafety,) = spider.parse_details(respond(DETAILS, fx.bytes("googleplay_details_minecraft.html")))
    assert datasafety.url == BASE + "/store/apps/datasafety?id=com.mojang.minecraftpe&hl=en"
    listing = datasafety.cb_kwargs["listing"]
    assert listing.legal_entity == "Microsoft Corporation" and listing.capture  # the details page is archived
    (permissions,) = spider.parse_datasafety(
        respond(datasafety.url, fx.bytes("googleplay_datasafety_translate.html"), cb_kwargs=datasafety.cb_kwargs),
        **datasafety.cb_kwargs)
    assert permissions.method == "POST" and "/_/PlayStoreUi/data/batchexecute" in permissions.url
    call = json.loads(parse_qs(permissions.body.decode())["f.req"][0])[0][0]
    assert call[0] == "xdSrCf" and json.loads(call[1]) == [[None, ["com.mojang.minecraftpe", 7], []]]
    out = list(spider.parse_permissions(
        respond(permissions.url, fx.bytes("googleplay_permissions_translate.txt"), content_type="application/json"),
        **permissions.cb_kwargs))
    final, policy = out
    assert isinstance(final, Listing) and final.data_safety["collected"] and "android.permission.CAMERA" in final.permissions
    assert final.content_hash == final.content_digest() != listing.content_hash
    assert policy.url == "http://go.microsoft.com/fwlink/?LinkId=521839"


def test_a_lost_data_safety_page_or_permission_list_costs_only_that_part(make_spider, fx, respond):
    spider = make_spider(GooglePlaySpider)
    (datasafety,) = spider.parse_details(respond(DETAILS, fx.bytes("googleplay_details_minecraft.html")))
    busy = respond(datasafety.url, b"busy", status=503)
    failure = Failure(HttpError(busy))
    failure.request = datasafety
    (permissions,) = spider.part_failed(failure)
    assert permissions.cb_kwargs["listing"].data_safety is None  # not declared ≠ not fetched: None, and an error
    failure = Failure(HttpError(respond(permissions.url, b"busy", status=503)))
    failure.request = permissions
    final, _policy = spider.part_failed(failure)
    assert isinstance(final, Listing) and final.permissions == () and final.name.startswith("Minecraft")
    stats = spider.crawler.stats.get_stats()
    assert stats["finmon/errors/http_5xx"] == 2


def test_layout_change_is_recorded(make_spider, respond):
    spider = make_spider(GooglePlaySpider)
    assert list(spider.parse_details(respond(DETAILS, b"<html><body>new design</body></html>"))) == []
    assert spider.crawler.stats.get_value("finmon/errors/layout_changed") == 1


def test_google_play_crawls_with_its_own_politeness_settings(make_crawler):
    crawler = make_crawler(GooglePlaySpider)
    assert crawler.settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN") == 4
    assert crawler.settings.getbool("ROBOTSTXT_OBEY") and crawler.settings.getbool("AUTOTHROTTLE_ENABLED")
    other = make_crawler(GooglePlaySpider, FINMON_STORE_SETTINGS={})
    assert other.settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN") == 16


def test_looks_up_the_android_apps_other_stores_listed(make_spider, tmp_path, respond):
    listings = tmp_path / "listings.jsonl"
    rows = [{"platform": "android", "package": "com.a"}, {"platform": "ios", "package": "com.ios"},
            {"platform": "android", "package": "com.a"}, {"platform": "android", "package": "com.b"}]
    listings.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n", encoding="utf-8")
    spider = make_spider(GooglePlaySpider, FINMON_LOOKUP_LISTINGS=[str(listings), str(tmp_path / "missing.jsonl")],
                         FINMON_KEYWORDS=["x"])
    requests = asyncio.run(collect(spider.start()))
    lookups = [r for r in requests if r.callback == spider.parse_details]
    assert [r.url for r in lookups] == [f"{BASE}/store/apps/details?id={p}&hl=en&gl=hk" for p in ("com.a", "com.b")]
    assert all(r.errback == spider.lookup_failed for r in lookups)
    missing = Failure(HttpError(respond(lookups[0].url, b"", status=404)))
    missing.request = lookups[0]
    spider.lookup_failed(missing)
    busy = Failure(HttpError(respond(lookups[1].url, b"", status=503)))
    busy.request = lookups[1]
    spider.lookup_failed(busy)
    stats = spider.crawler.stats.get_stats()
    assert stats["finmon/lookup_not_listed"] == 1  # not on Google Play: an answer, not an error
    assert stats["finmon/ledger/items"] == 1 and stats["finmon/errors/http_5xx"] == 1


def test_the_data_safety_page_is_archived_and_carried_forward_on_a_304(make_spider, fx, respond, tmp_path):
    from crawler.pipelines import ListingPipeline
    from crawler.previous import PreviousCapture
    from crawler.snapshot import Snapshot
    from finmon.evidence import read_capture, resolve

    prev, again_dir = tmp_path / "prev", tmp_path / "again"
    first = make_spider(GooglePlaySpider, FINMON_SNAPSHOT_DIR=str(prev))
    page = respond(DETAILS, fx.bytes("googleplay_details_minecraft.html"))
    page.headers["ETag"] = '"g1"'
    (datasafety,) = first.parse_details(page)
    (permissions,) = first.parse_datasafety(respond(datasafety.url, fx.bytes("googleplay_datasafety_translate.html")),
                                            **datasafety.cb_kwargs)
    form = permissions.cb_kwargs["listing"].data_safety_capture
    assert read_capture(resolve(form, prev)).url == datasafety.url  # archived as received
    listing, _policy = first.parse_permissions(
        respond(permissions.url, fx.bytes("googleplay_permissions_translate.txt"), content_type="application/json"),
        **permissions.cb_kwargs)
    ListingPipeline.from_crawler(first.crawler).process_item(listing)
    Snapshot.close_all()
    PreviousCapture.forget_all()

    again = make_spider(GooglePlaySpider, FINMON_PREVIOUS_SNAPSHOT=str(prev), FINMON_SNAPSHOT_DIR=str(again_dir))
    reused, _policy = again.parse_details(respond(DETAILS, b"", status=304))
    assert reused.data_safety == listing.data_safety and reused.data_safety_capture.startswith("../prev/")
    assert read_capture(resolve(reused.data_safety_capture, again_dir)).url == datasafety.url
