import json

import pytest
from scrapy.core.downloader import Slot
from scrapy.http import Response

from crawler.extensions import AnswerThrottle, RunRecorder, run_counters
from crawler.snapshot import Snapshot, outcome


def test_run_json_written_when_the_last_crawler_closes(make_crawler):
    first, second = make_crawler(FINMON_RUN_ID="crawl-test"), make_crawler(FINMON_RUN_ID="crawl-test")
    recorders = [RunRecorder.from_crawler(c) for c in (first, second)]
    for recorder in recorders:
        recorder.spider_opened(None)
    snapshot = Snapshot.of(first.settings)
    assert snapshot is Snapshot.of(second.settings)
    for name in ("listings", "policies", "errors"):
        assert (snapshot.path / f"{name}.jsonl").exists()
    first.stats.set_value("downloader/request_count", 10)
    first.stats.inc_value("finmon/listings", 3)
    first.stats.inc_value("finmon/ledger/requests", 4)
    first.stats.inc_value("finmon/ledger/items", 3)
    first.stats.inc_value("finmon/ledger/errors", 1)
    snapshot.error(first.stats, "xiaomi", "http_5xx", "http://127.0.0.1/x", "HTTP 503")
    second.stats.set_value("downloader/request_count", 5)
    second.stats.inc_value("finmon/errors/timeout")
    second.stats.inc_value("finmon/errors")
    recorders[0].spider_closed(None, "finished")
    assert not (snapshot.path / "run.json").exists()
    recorders[1].spider_closed(None, "finished")
    run = json.loads((snapshot.path / "run.json").read_text(encoding="utf-8"))
    assert run["id"] == "crawl-test" and run["kind"] == "crawl" and run["outcome"] == "ok"
    assert run["ended"] >= run["started"]
    counters = run["counters"]
    assert counters["requests"] == 15 and counters["listings"] == 3 and counters["policies"] == 0
    assert counters["errors"] == 2 and counters["errors/http_5xx"] == 1 and counters["errors/timeout"] == 1
    assert (counters["ledger/requests"], counters["ledger/items"], counters["ledger/duplicates"]) == (4, 3, 0)
    (error,) = [json.loads(line) for line in (snapshot.path / "errors.jsonl").read_text().splitlines()]
    assert set(error) == {"time", "store", "kind", "url", "reason"}


def test_run_counters_keep_finmon_stats():
    counters = run_counters({"downloader/response_count": 7, "finmon/warnings/charset_guessed": 2, "other": 1})
    assert counters["responses"] == 7 and counters["warnings/charset_guessed"] == 2 and "other" not in counters


def test_outcome():
    assert outcome(["finished", "finished"]) == ("ok", "")
    assert outcome(["finished", "shutdown"])[0] == "interrupted"
    assert outcome(["closespider_errorcount"]) == ("failed", "a spider closed with closespider_errorcount")


def ledger(requests: int, items: int, errors: int, duplicates: int = 0) -> dict[str, int]:
    return {"ledger/requests": requests, "ledger/items": items, "ledger/errors": errors,
            "ledger/duplicates": duplicates}


def test_a_crawl_that_reaches_nothing_or_loses_too_much_has_failed():
    state, why = outcome(["finished"], ledger(13, 0, 13), 0.5)
    assert state == "failed" and why.startswith("reached nothing: none of 13 requests")
    state, why = outcome(["finished"], ledger(10, 4, 6), 0.5)
    assert state == "failed" and "lost 6 of 10 requests (60%)" in why and "FINMON_MAX_LOSS_SHARE=0.5" in why
    assert outcome(["finished"], ledger(10, 5, 5), 0.5) == ("ok", "")
    assert outcome(["finished"], ledger(10, 8, 1, 1), 0.1) == ("ok", "")
    assert outcome(["shutdown"], ledger(0, 0, 0), 0.5)[0] == "interrupted"


def test_the_loss_share_comes_from_the_crawl_settings(make_crawler):
    crawler = make_crawler(FINMON_MAX_LOSS_SHARE=0.05)
    recorder = RunRecorder.from_crawler(crawler)
    recorder.spider_opened(None)
    for name, value in ledger(10, 9, 1).items():
        crawler.stats.set_value(f"finmon/{name}", value)
    recorder.spider_closed(None, "finished")
    run = json.loads((Snapshot.of(crawler.settings).path / "run.json").read_text(encoding="utf-8"))
    assert run["outcome"] == "failed" and "FINMON_MAX_LOSS_SHARE=0.05" in run["error"]


def test_a_new_snapshot_truncates_and_drops_the_old_run_record(tmp_path):
    (tmp_path / "run.json").write_text("{}")
    (tmp_path / "listings.jsonl").write_text("old\n")
    snapshot = Snapshot(tmp_path)
    snapshot.acquire()
    assert not (tmp_path / "run.json").exists()
    assert (tmp_path / "listings.jsonl").read_text() == ""
    run = snapshot.release({"requests": 1}, "shutdown")
    assert run.outcome == "interrupted" and json.loads((tmp_path / "run.json").read_text())["counters"] == {"requests": 1}


@pytest.mark.parametrize("status, lowered", [(200, True), (304, True), (404, True), (503, False), (302, False)])
def test_the_throttle_is_lowered_by_the_stores_plain_answers_not_by_errors(make_crawler, status, lowered):
    """A fast 304 (unchanged recrawl) or 404 (Google Play lookup of an app it does not list) lowers the delay a slow
    moment raised, as a 200 does; an error page does not (Scrapy's reason: it is quick because it is an error)."""
    crawler = make_crawler()
    assert crawler.settings.getdict("EXTENSIONS")["crawler.extensions.AnswerThrottle"] == 0
    assert crawler.settings.getdict("EXTENSIONS")["scrapy.extensions.throttle.AutoThrottle"] is None
    throttle = AnswerThrottle(crawler)
    throttle.mindelay, throttle.maxdelay = throttle._min_delay(), throttle._max_delay()  # as when the spider opens
    slot = Slot(concurrency=4, delay=8.0, jitter=0)
    throttle._adjust_delay(slot, 0.01, Response("http://127.0.0.1/app", status=status))
    assert (slot.delay < 8.0) is lowered
