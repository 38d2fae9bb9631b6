"""A first crawl against a second crawl of the unchanged market, side by side in one run, then next week.

Runs the scheduler's own crawl jobs (each store's crawl in a subprocess, then the incremental analysis)
on the local simulator into a temporary data directory: (1) the first crawl; (2) the same market again,
where policies and APKs come back as 304 Not Modified and no app is re-analysed; (3) after the simulator
advanced one week. Prints wall-clock seconds per round (crawl and analysis of every store), the ratio of
the first to the second, the 304s and the apps analysed.

    python bench/recrawl.py [--apps 1000] [--seed 7]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

# run as a script, this file's folder comes first on sys.path, where bench/market.py hides the simulator package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import scheduler  # noqa: E402
from index.sqlite import SQLiteStore  # noqa: E402
from market.server import NOT_MODIFIED, MarketServer  # noqa: E402


def round_trip(data: Path, stores: list[str]) -> tuple[float, list[dict]]:
    """Crawl and analyse every store once; the seconds and the runs it added."""
    store = SQLiteStore(data / "finmon.db") if (data / "finmon.db").exists() else None
    before = {r["id"] for r in store.runs(limit=10_000)} if store else set()
    if store:
        store.close()
    started = time.perf_counter()
    for name in stores:
        scheduler.crawl_job(str(data), name)
    seconds = time.perf_counter() - started
    store = SQLiteStore(data / "finmon.db")
    try:
        return seconds, [r for r in store.runs(limit=10_000) if r["id"] not in before]
    finally:
        store.close()


def summary(runs: list[dict]) -> str:
    crawls = [r["counters"] for r in runs if r["kind"] == "crawl"]
    analysed = sum(r["counters"].get("apps_analysed", 0) for r in runs if r["kind"] == "analyze")
    total = lambda key: sum(c.get(key, 0) for c in crawls)  # noqa: E731
    return (f"{total('responses'):5d} responses ({total('not_modified'):5d} were 304), "
            f"{total('response_bytes') / 1e6:6.1f} MB; policies fetched {total('policies/ok'):4d} / unchanged "
            f"{total('policies/unchanged'):4d}; APKs fetched {total('apks/ok'):4d} / unchanged "
            f"{total('apks/unchanged'):4d}; apps analysed {analysed:4d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, MarketServer(apps=args.apps, seed=args.seed) as market:
        os.environ.update({"FINMON_DATA_DIR": tmp, "FINMON_ES_URL": "", "FINMON_DB": "",
                           "FINMON_ALLOWED_PRIVATE_HOSTS": "127.0.0.1"})
        for name, url in market.store_urls.items():
            os.environ[f"FINMON_STORE_{name.upper()}"] = url
        stores = list(market.store_urls)
        data = Path(tmp)
        first, runs1 = round_trip(data, stores)
        second, runs2 = round_trip(data, stores)
        market.advance()
        changed = sum(1 for a in market.truth()["app_list"] if a.get("changed"))
        third, runs3 = round_trip(data, stores)
        served_304 = market.hits[NOT_MODIFIED]
    print(f"apps={args.apps} seed={args.seed} stores={','.join(stores)}; the simulator answered {served_304} 304s")
    print(f"first crawl + analysis : {first:6.2f}s  {summary(runs1)}")
    print(f"unchanged market again : {second:6.2f}s  {summary(runs2)}")
    print(f"next week, {changed:3d} changed : {third:6.2f}s  {summary(runs3)}")
    bytes1, bytes2 = (sum(r["counters"].get("response_bytes", 0) for r in rs if r["kind"] == "crawl")
                      for rs in (runs1, runs2))
    print(f"ratio first/unchanged: {first / second:.2f}x the seconds, {bytes1 / max(bytes2, 1):.1f}x the bytes")


if __name__ == "__main__":
    main()
