"""One crawler process against two sharing a crawl through the Redis frontier, on the same simulated market.

Each configuration crawls the market's stores (Google Play aside: it looks up what the others listed) in a
``python -m crawler.run`` process, the two-process one through ``FINMON_FRONTIER``. Every process does its CPU work
on its own event loop (``FINMON_CRAWL_WORKERS=0``), so one process uses one core and two use both; the simulator
runs in this process, on the same cores, in the same state for both (see ``simulator``). AutoThrottle is off in
both: on loopback the latency it steers by is our own CPU load, not a store's, so it would hold two processes to the
pace of one, which is its job against a real store (``--set AUTOTHROTTLE_ENABLED=true`` shows it). Prints both times
and CPU and how many requests either made more than once; each two-process time is set against the mean of the
one-process runs just before and after it (the machine's speed drifts), and the median of these ratios is the figure.

    python bench/frontier.py [--apps 5000] [--seed 7] [--rounds 1] [--redis redis://HOST:PORT/DB] [--set NAME=VALUE]…

Without --redis it starts a throwaway ``redis-server`` (Debian's package) on a free loopback port.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import json
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

# run as a script, this file's folder comes first on sys.path, where bench/market.py hides the simulator package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from finmon import jobs  # noqa: E402
from market.apk import build_apk  # noqa: E402
from market.population import apk_spec, policy_document  # noqa: E402
from market.server import MarketServer, render_pdf  # noqa: E402

STORES = ("itunes", "appgallery", "xiaomi", "myapp")


@contextlib.contextmanager
def throwaway_redis():
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (Debian package redis-server); or give --redis URL")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
                              stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait()


@contextlib.contextmanager
def simulator(apps: int, seed: int):
    """A fresh simulator (its transient faults answer the first requests only) in the same state for both
    configurations: before the clock starts its apps are generated, its policy texts and PDFs rendered and its APKs
    built (its caches hold them), as a store has its files before a crawl; what it does per request (pages, JSON)
    is timed, on the crawl's cores."""
    policy_document.cache_clear()
    render_pdf.cache_clear()
    build_apk.cache_clear()
    with MarketServer(apps=apps, seed=seed) as market:
        for policy in market.market.policies().values():
            if policy.has_text:
                market.market.policy_document(policy)
                if policy.variant == "pdf":
                    render_pdf(seed, policy)
        for app in market.market.apps():
            if app.apk is not None:
                build_apk(apk_spec(app))
        yield market


def crawl(market, out: Path, processes: int, redis_url: str, extra: list[str]) -> tuple[float, float, float, int,
                                                                                     list[dict]]:
    """Seconds, CPU seconds of the crawl processes and of the simulator, requests made more than once (robots.txt
    aside) and the processes' run records."""
    before = collections.Counter(market.fetches)
    cmd = [sys.executable, "-m", "crawler.run", "--allow-host", "127.0.0.1", "--set", "FINMON_CRAWL_WORKERS=0",
           "--set", "AUTOTHROTTLE_ENABLED=false",
           "--log-level", "ERROR", *(arg for value in extra for arg in ("--set", value))]
    for store in STORES:
        cmd += ["--store", f"{store}={market.store_urls[store]}"]
    if processes > 1:
        cmd += ["--set", f"FINMON_FRONTIER={redis_url}", "--set", f"FINMON_FRONTIER_CRAWL={uuid.uuid4().hex}"]
    started, children, own = time.perf_counter(), _cpu(resource.RUSAGE_CHILDREN), _cpu(resource.RUSAGE_SELF)
    procs = [subprocess.Popen([*cmd, "--out", str(out / f"part{n}")], stdout=subprocess.PIPE, text=True)
             for n in range(processes)]
    outputs = [proc.communicate()[0] for proc in procs]
    seconds = time.perf_counter() - started
    crawl_cpu, simulator_cpu = _cpu(resource.RUSAGE_CHILDREN) - children, _cpu(resource.RUSAGE_SELF) - own
    if any(proc.returncode not in (0, 1) for proc in procs):
        raise SystemExit(f"a crawl process failed: exit codes {[proc.returncode for proc in procs]}")
    fetched = collections.Counter(market.fetches)
    fetched.subtract(before)
    return seconds, crawl_cpu, simulator_cpu, sum(1 for k, n in fetched.items() if n > 1 and "/robots.txt" not in k), [
        json.loads(text) for text in outputs]


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=1,
                        help="two processes this many times, each between two runs of one process (one, two, one, "
                             "two, … one); the median ratio of the rounds is the figure")
    parser.add_argument("--redis", default="", help="a Redis to use (default: start a throwaway redis-server)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a crawl setting for both configurations (JSON values are decoded); repeatable")
    args = parser.parse_args()
    print(f"apps={args.apps} seed={args.seed} stores={','.join(STORES)}", flush=True)
    ratios = []
    with contextlib.ExitStack() as stack:
        redis_url = args.redis or stack.enter_context(throwaway_redis())
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))

        def measure(processes: int, name: str) -> float:
            with simulator(args.apps, args.seed) as market:
                seconds, cpu, simulator_cpu, twice, runs = crawl(market, tmp / name, processes, redis_url, args.set)
            listings = len(jobs.load_snapshot(tmp / name).listings)
            shares = [run["counters"].get("listings", 0) for run in runs]
            print(f"  {'one process  ' if processes == 1 else 'two processes'} : {seconds:6.1f} s, crawl CPU "
                  f"{cpu:6.1f} s, simulator CPU {simulator_cpu:5.1f} s, {listings} listings (per process {shares}), "
                  f"{twice} requests made more than once", flush=True)
            return seconds

        # the machine's speed drifts: each two-process time is set against the one-process runs on either side of it
        before = measure(1, "one-0")
        for round_ in range(1, args.rounds + 1):
            two = measure(2, f"two-{round_}")
            after = measure(1, f"one-{round_}")
            ratios.append(two / statistics.mean((before, after)))
            print(f"round {round_}: ratio two/one {ratios[-1]:.2f} (one process {before:.1f} and {after:.1f} s around "
                  f"it)", flush=True)
            before = after
    print(f"ratio two/one, median of {len(ratios)}: {statistics.median(ratios):.2f} (target <= 0.6); requests made "
          "more than once: the retries of the simulator's 5xx answers, as many in both unless sharing adds some")


if __name__ == "__main__":
    main()
