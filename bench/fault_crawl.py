"""Fault-injection crawl: every app of the market is crawled or failed with a reason, none is lost.

    .venv/bin/python bench/fault_crawl.py [--apps 2000] [--fault-rate 0.5] [--seed 7]

Serves a market whose apps carry data faults at ``--fault-rate`` (wrong-typed fields, plain-string permission
lists, redirect loops, app pages on a port where nothing listens; besides the simulator's usual 503s, malformed
JSON, failing policies and truncated APKs), crawls it with finmon's crawl job (the simulator's host allowed, on
any port) and prints: the share of the simulator's
answers that were faulted; apps expected, crawled, failed with a reason (by error kind), lost; the same per
(app, store) listing; and per store the request ledger, requests = items + errors + duplicates. Exits 1 when
an app or a listing is lost or a ledger does not add up.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote

# run as a script, this file's folder comes first on sys.path, where bench/market.py hides the simulator package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

LEDGER = ("ledger/requests", "ledger/items", "ledger/errors", "ledger/duplicates")
# The store id an error line's URL names: iTunes app page /id<trackId>, AppGallery uri=app|<appid>, Xiaomi id=<package>
URL_IDS = {"itunes": re.compile(r"/id(\d+)"), "appgallery": re.compile(r"app\|(C\d+)"),
           "xiaomi": re.compile(r"[?&]id=([^&#]+)"), "googleplay": re.compile(r"[?&]id=([^&#]+)"),
           "myapp": re.compile(r"/appdetail/([^/?#]+)")}


def _jsonl(paths: Iterator[Path]) -> Iterator[dict]:
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield json.loads(line)


def account(truth: dict[str, Any], crawl_dir: Path) -> dict[str, Any]:
    """Compare a crawl (one folder per store) with the market truth.

    A listing (app, store) is ``crawled`` when the store's listings hold its store id, ``failed`` when an error
    line names it (its item, or its id in the URL), else ``lost``. An app is crawled when one of its listings is,
    failed when each of them failed, else lost.
    """
    crawled = {(row["store"], str(row["store_id"])) for row in _jsonl(crawl_dir.glob("*/listings.jsonl"))}
    reasons: dict[tuple[str, str], str] = {}
    for error in _jsonl(crawl_dir.glob("*/errors.jsonl")):
        store = error.get("store", "")
        named = [error.get("item", "")] + URL_IDS.get(store, re.compile("$^")).findall(unquote(error.get("url", "")))
        for ident in filter(None, named):
            reasons.setdefault((store, ident), error["kind"])
    pairs: Counter[str] = Counter()
    apps: Counter[str] = Counter()
    failed_kinds: Counter[str] = Counter()
    lost: list[str] = []
    for app in truth["app_list"]:
        states = []
        for store, ident in app["store_ids"].items():
            key = (store, str(ident))
            state = "crawled" if key in crawled else "failed" if key in reasons else "lost"
            pairs[state] += 1
            states.append((state, reasons.get(key)))
        if any(state == "crawled" for state, _ in states):
            apps["crawled"] += 1
        elif all(state == "failed" for state, _ in states):
            apps["failed"] += 1
            failed_kinds.update(kind for _, kind in states)
        else:
            apps["lost"] += 1
            lost.append(app["key"])
    runs = {path.parent.name: json.loads(path.read_text(encoding="utf-8")) for path in crawl_dir.glob("*/run.json")}
    ledgers = {store: {name: run["counters"].get(name, 0) for name in LEDGER} for store, run in runs.items()}
    return {"expected": len(truth["app_list"]), "apps": dict(apps), "failed_kinds": dict(failed_kinds),
            "listings": dict(pairs), "lost_apps": lost, "ledgers": ledgers,
            "outcomes": {store: (run["outcome"], run.get("error", "")) for store, run in runs.items()}}


def ledger_adds_up(ledger: dict[str, int]) -> bool:
    requests, items, errors, duplicates = (ledger[name] for name in LEDGER)
    return requests == items + errors + duplicates


def main() -> int:
    from finmon import jobs
    from market.server import FAULTED, NOT_MODIFIED, MarketServer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=2000)
    parser.add_argument("--fault-rate", type=float, default=0.5, help="share of apps with a data fault")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="fault-crawl-"))
    started = time.monotonic()
    with MarketServer(apps=args.apps, seed=args.seed, fault_rate=args.fault_rate) as market:
        jobs.crawl(out, market.store_urls, allow_hosts=[market.host])  # any port: unreachable pages are tried
        truth, hits = market.truth(), market.hits
    seconds = time.monotonic() - started
    answers = sum(count for route, count in hits.items() if route not in (FAULTED, NOT_MODIFIED))
    result = account(truth, out)
    print(f"market: {args.apps} apps, seed {args.seed}, data faults on {args.fault_rate:.0%} of apps; "
          f"crawl {seconds:.0f} s into {out}")
    print(f"responses faulted: {hits[FAULTED]} of {answers} ({hits[FAULTED] / max(answers, 1):.1%})")
    apps = result["apps"]
    print(f"apps expected: {result['expected']}  crawled: {apps.get('crawled', 0)}  "
          f"failed-with-reason: {apps.get('failed', 0)} {result['failed_kinds']}  lost: {apps.get('lost', 0)}")
    listings = result["listings"]
    print(f"listings (app, store) expected: {sum(listings.values())}  crawled: {listings.get('crawled', 0)}  "
          f"failed-with-reason: {listings.get('failed', 0)}  lost: {listings.get('lost', 0)}")
    for store, ledger in sorted(result["ledgers"].items()):
        requests, items, errors, duplicates = (ledger[name] for name in LEDGER)
        print(f"{store}: requests {requests} = items {items} + errors {errors} + duplicates {duplicates}: "
              f"{'holds' if ledger_adds_up(ledger) else 'DOES NOT HOLD'}; outcome {result['outcomes'][store][0]}")
    if result["lost_apps"]:
        print("lost:", ", ".join(result["lost_apps"][:20]))
    ok = not apps.get("lost") and not listings.get("lost") and all(map(ledger_adds_up, result["ledgers"].values()))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
