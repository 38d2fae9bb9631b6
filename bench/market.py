"""The whole chain at market scale, stage by stage: crawl, analyse (with SQLite indexing), report, search.

For each size the simulator serves a fresh market on loopback (in this process, so its memory is not
counted) and each stage runs as the operator would run it, in its own processes: the three stores' crawls
side by side (``python -m crawler.run``, one process per store, as ``finmon crawl`` starts them), then
``finmon analyze`` and ``finmon report``. Per stage it prints wall seconds and share of the end to end,
CPU seconds, peak RSS of its largest process; for the crawl also responses/s and crawler CPU per response;
then the index and report sizes, search latency in process (p50/p95 over a fixed query mix, interpreter
start-up measured apart), an unchanged recrawl against the first crawl, and, with ``--bare``, the crawler
against a bare Scrapy spider fetching the same URLs (``bench/crawl_vs_bare.py``), side by side.

    python bench/market.py [--apps 1000,10000] [--seed 7] [--bare] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# run as a script, this file's folder comes first on sys.path, where its own name hides the simulator package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from finmon import jobs  # noqa: E402
from market.server import MarketServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ["通讯录", "短信", "位置", "借款", "征信", "收集", "第三方", "com", "privacy", "贷款 通讯录"]


def run_processes(commands: list[list[str]]) -> dict:
    """Run commands side by side; wall seconds, CPU seconds of all, peak RSS (MB) of the largest process."""
    started = time.perf_counter()
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for cmd in commands]
    cpu, peak, failed = 0.0, 0, []
    for proc, cmd in zip(procs, commands):
        stderr = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)  # usage of the process and the children it waited for
        proc.returncode = os.waitstatus_to_exitcode(status)
        cpu += usage.ru_utime + usage.ru_stime
        peak = max(peak, usage.ru_maxrss)
        if proc.returncode not in (0,):
            failed.append(f"{' '.join(cmd[:4])} … exit {proc.returncode}: {stderr.decode(errors='replace')[-500:]}")
    if failed:
        raise SystemExit("\n".join(failed))
    return {"seconds": time.perf_counter() - started, "cpu_seconds": cpu, "peak_rss_mb": peak / 1024}


def crawl(market: MarketServer, out: Path, previous: Path | None = None) -> dict:
    """Each store's crawl in its own process, side by side; the stage figures and the crawl counters."""
    commands, claims = [], out / ".claims"  # shared by the stores' crawls, as finmon crawl shares them
    claims.mkdir(parents=True)
    for store, url in market.store_urls.items():
        cmd = [sys.executable, "-m", "crawler.run", "--out", str(out / store), "--store", f"{store}={url}",
               "--allow-host", market.base_url.split("//", 1)[1], "--log-level", "WARNING",
               "--set", f"FINMON_SHARED_CLAIMS={claims}"]
        if previous is not None:
            cmd += ["--set", f"FINMON_PREVIOUS_SNAPSHOT={previous / store}"]
        commands.append(cmd)
    stage = run_processes(commands)
    runs = [json.loads((out / store / "run.json").read_text(encoding="utf-8")) for store in market.store_urls]
    total = lambda key: sum(r["counters"].get(key, 0) for r in runs)  # noqa: E731
    stage.update(responses=total("responses"), listings=total("listings"), not_modified=total("not_modified"),
                 capped=total("discovery_capped"), outcomes=sorted({r["outcome"] for r in runs}))
    stage["responses_per_s"] = stage["responses"] / stage["seconds"]
    stage["cpu_ms_per_response"] = 1000 * stage["cpu_seconds"] / max(stage["responses"], 1)
    return stage


def finmon(*args: str) -> dict:
    return run_processes([[sys.executable, "-m", "finmon.cli", *args]])


def search_latency(db: Path) -> dict:
    """p50/p95 of store.search over the query mix (each query with and without a filter), in process."""
    store = jobs.open_store(db, read_only=True)
    times = []
    try:
        for _ in range(5):
            for query in QUERIES:
                for filters in ({}, {"severity": "high"}):
                    started = time.perf_counter()
                    store.search(query, limit=20, **filters)
                    times.append(1000 * (time.perf_counter() - started))
    finally:
        store.close()
    times.sort()
    return {"p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))]}


def start_up() -> float:
    """Milliseconds for `finmon --help` (interpreter and CLI imports), the best of five."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "finmon.cli", "--help"], cwd=ROOT, capture_output=True, check=True)
        best = min(best, time.perf_counter() - started)
    return 1000 * best


def bare_ratio(out: Path, first: dict, tmp: Path) -> dict:
    """The bare Scrapy spider on the detail, policy and APK URLs of the first crawl, and the pages/s ratio."""
    sys.path.insert(0, str(Path(__file__).parent))
    from crawl_vs_bare import BARE_SPIDER

    snap = jobs.load_snapshot(out)
    urls = sorted({lst.source_url for lst in snap.listings} | set(snap.policies) | set(snap.policy_failures)
                  | {lst.apk_url for lst in snap.listings if lst.apk_url})
    (tmp / "urls.json").write_text(json.dumps(urls))
    (tmp / "bare.py").write_text(BARE_SPIDER)
    stage = run_processes([[sys.executable, str(tmp / "bare.py"), str(tmp / "urls.json")]])
    rate = len(urls) / stage["seconds"]
    return {"bare_pages_per_s": rate, "ratio": first["responses_per_s"] / rate}


def folder_size(path: Path) -> tuple[int, float]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files) / 1e6


def measure(apps: int, seed: int, bare: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp_name, MarketServer(apps=apps, seed=seed) as market:
        tmp = Path(tmp_name)
        db = tmp / "finmon.db"
        stages = {"crawl": crawl(market, tmp / "crawl")}
        stages["analyse+index"] = finmon("analyze", str(tmp / "crawl"), "--db", str(db))
        stages["report"] = finmon("report", "--db", str(db), "--out", str(tmp / "report"))
        end_to_end = sum(s["seconds"] for s in stages.values())
        result = {"apps": apps, "seed": seed, "stages": stages, "end_to_end_s": end_to_end,
                  "index_mb": sum(p.stat().st_size for p in tmp.glob("finmon.db*")) / 1e6,
                  "report_files": folder_size(tmp / "report")[0], "report_mb": folder_size(tmp / "report")[1],
                  "search": search_latency(db), "start_up_ms": start_up()}
        recrawl = crawl(market, tmp / "recrawl", previous=tmp / "crawl")
        result["recrawl"] = {"seconds": recrawl["seconds"], "not_modified": recrawl["not_modified"],
                             "first_over_unchanged": stages["crawl"]["seconds"] / recrawl["seconds"]}
        if bare:
            result["bare"] = bare_ratio(tmp / "crawl", stages["crawl"], tmp)
    return result


def print_table(result: dict) -> None:
    total = result["end_to_end_s"]
    print(f"\n== {result['apps']} apps (seed {result['seed']}): end to end {total:.1f} s")
    print(f"{'stage':<15}{'seconds':>9}{'share':>8}{'CPU s':>9}{'peak RSS MB':>13}")
    for name, s in result["stages"].items():
        print(f"{name:<15}{s['seconds']:>9.1f}{s['seconds'] / total:>8.0%}{s['cpu_seconds']:>9.1f}"
              f"{s['peak_rss_mb']:>13.0f}")
    c = result["stages"]["crawl"]
    print(f"crawl: {c['responses']} responses, {c['responses_per_s']:.0f}/s, {c['cpu_ms_per_response']:.2f} ms CPU "
          f"per response (three processes), {c['listings']} listings, searches capped {c['capped']}, "
          f"outcomes {', '.join(c['outcomes'])}")
    print(f"index {result['index_mb']:.0f} MB; report {result['report_files']} files, {result['report_mb']:.0f} MB")
    print(f"search in process: p50 {result['search']['p50_ms']:.1f} ms, p95 {result['search']['p95_ms']:.1f} ms; "
          f"`finmon --help` start-up {result['start_up_ms']:.0f} ms")
    r = result["recrawl"]
    print(f"unchanged recrawl: {r['seconds']:.1f} s ({r['not_modified']} answered 304): first crawl "
          f"{r['first_over_unchanged']:.2f}x its time")
    if "bare" in result:
        print(f"crawler vs bare Scrapy on the same URLs: {c['responses_per_s']:.0f} vs "
              f"{result['bare']['bare_pages_per_s']:.0f} pages/s = {result['bare']['ratio']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", default="1000", help="comma-separated market sizes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--bare", action="store_true", help="also time a bare Scrapy spider on the same URLs")
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of tables")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", file=sys.stderr)
    for apps in (int(n) for n in args.apps.split(",")):
        result = measure(apps, args.seed, args.bare)
        print(json.dumps(result)) if args.json else print_table(result)


if __name__ == "__main__":
    main()
