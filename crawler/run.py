"""Run the store spiders in this process and return the crawl's Run record.

``crawl()`` starts a Twisted reactor, which can run once per process: callers that crawl
repeatedly (the CLI, the scheduler, the tests) run ``python -m crawler.run`` as a subprocess::

    python -m crawler.run --out DIR --store itunes=URL [--store NAME=URL ...] [--allow-host HOST[:PORT] ...]

It prints the run record as JSON and exits 0 when the run's outcome is ``ok``, else 1.
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any, Iterable

from scrapy.crawler import CrawlerProcess
from scrapy.exceptions import NotConfigured
from scrapy.settings import Settings

from crawler.snapshot import new_run_id
from crawler.spiders import store_url
from crawler.urlguard import parse_allow_entry
from finmon.model import Run, utcnow

SETTINGS_MODULE = "finmon.settings"


def crawl_settings(
    out_dir: str | Path, store_urls: dict[str, str], settings_overrides: dict[str, Any] | None = None
) -> Settings:
    """finmon.settings + the snapshot directory, the store URLs and any overrides."""
    settings = Settings()
    settings.setmodule(SETTINGS_MODULE, priority="project")
    stores = {**settings.getdict("FINMON_STORES"), **store_urls}
    settings.set("FINMON_STORES", stores, priority="cmdline")
    settings.set("FINMON_SNAPSHOT_DIR", str(out_dir), priority="cmdline")
    if not settings.get("FINMON_RUN_ID"):
        settings.set("FINMON_RUN_ID", new_run_id(), priority="cmdline")
    for key, value in (settings_overrides or {}).items():
        settings.set(key, value, priority="cmdline")
    if settings.get("FINMON_FRONTIER"):  # a shared crawl: the queue and duplicate filter are in Redis
        settings.set("SCHEDULER", "crawler.frontier.FrontierScheduler", priority="cmdline")
        settings.set("SPIDER_MIDDLEWARES", {**settings.getdict("SPIDER_MIDDLEWARES"), "crawler.frontier.SeedOnce": 0},
                     priority="cmdline")
        settings.set("FINMON_SHARED_CLAIMS", "", priority="cmdline")
    apk_slot = {"concurrency": settings.getint("FINMON_APK_DOWNLOADS_AT_ONCE")}
    settings.set("DOWNLOAD_SLOTS", {**settings.getdict("DOWNLOAD_SLOTS"), settings.get("FINMON_APK_SLOT"): apk_slot},
                 priority="cmdline")
    return settings


def crawl(
    out_dir: str | Path,
    store_urls: dict[str, str],
    settings_overrides: dict[str, Any] | None = None,
    spiders: Iterable[str] | None = None,
) -> Run:
    """Crawl the stores into ``out_dir`` (a snapshot directory) and return the Run record.

    ``spiders`` defaults to every store with a URL (spider names are the store names:
    itunes, appgallery, xiaomi, googleplay, myapp). Raises NotConfigured naming ``FINMON_STORES`` when a
    requested store has no URL or none has one. Runs a reactor: once per process.
    """
    settings = crawl_settings(out_dir, store_urls, settings_overrides)
    stores = settings.getdict("FINMON_STORES")
    names = list(spiders) if spiders is not None else [name for name, url in stores.items() if url]
    if not names:
        raise NotConfigured("no store to crawl: every URL in FINMON_STORES is empty")
    for name in names:
        store_url(settings, name)
    process = CrawlerProcess(settings)
    # Scrapy leaves the root logger at NOTSET, so every debug record is built, then dropped.
    logging.root.setLevel(settings.get("LOG_LEVEL"))
    for name in names:
        process.crawl(name)
    _stop_once_on(signal.SIGUSR1, process)
    process.start()
    run_file = Path(out_dir) / "run.json"
    if run_file.exists():
        return Run.from_dict(json.loads(run_file.read_text(encoding="utf-8")))
    return Run(id=settings.get("FINMON_RUN_ID"), kind="crawl", started=utcnow(), ended=utcnow(), outcome="failed")


def _stop_once_on(signum: int, process: CrawlerProcess) -> None:
    """Stop the crawl gracefully on ``signum``, however often it comes.

    The parent's death is signalled this way (see ``finmon.jobs``); Linux sends it once per exiting
    thread of the parent, and a second SIGTERM would make Scrapy stop uncleanly, losing its checkpoint.
    """
    stopping = []

    def handler(signum, frame):
        if not stopping:
            stopping.append(signum)
            logging.getLogger(__name__).warning("the parent process died: stopping gracefully")
            from twisted.internet import reactor

            reactor.callFromThread(process.stop)

    signal.signal(signum, handler)


def _store_arg(value: str) -> tuple[str, str]:
    name, sep, url = value.partition("=")
    if not sep or not name or not url:
        raise argparse.ArgumentTypeError(f"expected NAME=URL, got {value!r}")
    return name.strip(), url.strip()


def _allow_arg(value: str) -> str:
    try:
        parse_allow_entry(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crawler.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="snapshot directory to write")
    parser.add_argument("--store", action="append", type=_store_arg, default=[], metavar="NAME=URL",
                        help="store base URL (itunes, appgallery, xiaomi, googleplay, myapp); repeatable")
    parser.add_argument("--allow-host", action="append", default=[], metavar="HOST[:PORT]", type=_allow_arg,
                        help="private/loopback host (with a port: that port only) that URLs from store data may "
                             "point at; repeatable")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a setting (JSON values are decoded); repeatable")
    parser.add_argument("--log-level", default=None, help="Scrapy LOG_LEVEL")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except ValueError:
            overrides[key] = value
    if args.allow_host:
        overrides["FINMON_ALLOWED_PRIVATE_HOSTS"] = args.allow_host
    if args.log_level:
        overrides["LOG_LEVEL"] = args.log_level
    stores = dict(args.store)
    try:
        run = crawl(args.out, stores, overrides, spiders=list(stores) or None)
    except NotConfigured as exc:
        sys.stderr.write(f"not configured: {exc}\n")
        return 2
    sys.stdout.write(json.dumps(run.to_dict(), ensure_ascii=False) + "\n")
    return 0 if run.outcome == "ok" else 1


if __name__ == "__main__":
    raise SystemExit(main())
