"""The crawler against a bare Scrapy spider on the same simulator URLs, side by side in one run.

A bare spider (no pipelines, no parsing, default settings but robots.txt off) fetches the
pages our crawl fetched (store detail pages, policies and APKs, read back from its snapshot), so
the ratio shows what the crawler costs on top of Scrapy's own per-request cost. Each crawl
runs in its own process (a Twisted reactor starts once per process), one process each.

    python bench/crawl_vs_bare.py [--apps 1000] [--seed 7]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# run as a script, this file's folder comes first on sys.path, where bench/market.py hides the simulator package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from finmon import jobs  # noqa: E402
from market.server import MarketServer  # noqa: E402

BARE_SPIDER = """
import json, sys
import scrapy
from scrapy.crawler import CrawlerProcess

urls = json.load(open(sys.argv[1]))

class Bare(scrapy.Spider):
    name = "bare"
    async def start(self):
        for url in urls:
            yield scrapy.Request(url, dont_filter=True)
    def parse(self, response):
        pass

process = CrawlerProcess({"LOG_LEVEL": "WARNING", "ROBOTSTXT_OBEY": False, "TELNETCONSOLE_ENABLED": False,
                          "REMOTE_CONTROL_ENABLED": False, "CONCURRENT_REQUESTS": 32,
                          "CONCURRENT_REQUESTS_PER_DOMAIN": 16, "CONCURRENT_ITEMS": 10,
                          "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor"})
crawler = process.create_crawler(Bare)
process.crawl(crawler)
process.start()
print(crawler.stats.get_value("response_received_count", 0))
"""


def timed(cmd: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{cmd[1]} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, MarketServer(apps=args.apps, seed=args.seed) as market:
        out = Path(tmp) / "crawl"
        cmd = [sys.executable, "-m", "crawler.run", "--out", str(out), "--allow-host", "127.0.0.1"]
        for store, url in market.store_urls.items():
            cmd += ["--store", f"{store}={url}"]
        ours_seconds, stdout = timed(cmd)
        run = json.loads(stdout)
        ours_pages = run["counters"]["responses"]
        snap = jobs.load_snapshot(out)
        listings = snap.listings
        urls = sorted({lst.source_url for lst in listings} | set(snap.policies) | set(snap.policy_failures)
                      | {lst.apk_url for lst in listings if lst.apk_url})
        url_file = Path(tmp) / "urls.json"
        url_file.write_text(json.dumps(urls))
        script = Path(tmp) / "bare.py"
        script.write_text(BARE_SPIDER)
        bare_seconds, stdout = timed([sys.executable, str(script), str(url_file)])
        bare_pages = int(stdout.strip().splitlines()[-1])
    ours_rate, bare_rate = ours_pages / ours_seconds, bare_pages / bare_seconds
    print(f"apps={args.apps} seed={args.seed}")
    print(f"finmon crawl : {ours_pages:6d} responses in {ours_seconds:6.2f}s = {ours_rate:7.1f} pages/s "
          f"(search, detail, app and policy pages, APKs; parsing, extraction, APK inspection, snapshot writing)")
    print(f"bare Scrapy  : {bare_pages:6d} responses in {bare_seconds:6.2f}s = {bare_rate:7.1f} pages/s "
          f"(the detail, policy and APK URLs of that crawl, no parsing)")
    print(f"ratio finmon/bare pages per second: {ours_rate / bare_rate:.2f}")


if __name__ == "__main__":
    main()
