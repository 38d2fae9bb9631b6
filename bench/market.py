"""The whole chain at market scale, stage by stage: crawl, analyse (with SQLite indexing), report, search.

For each size the simulator serves a fresh market on loopback (in this process, so its memory is not
counted; its CPU is printed apart) and each stage runs as the operator would run it, in its own processes:
the stores' crawls side by side (``python -m crawler.run``, one process per store, as ``finmon crawl``
starts them, each with its extraction worker; Google Play after the others, looking up the Android apps they
listed), then ``finmon analyze`` and ``finmon report``. Per stage it
prints wall seconds and share of the end to end, CPU seconds, peak RSS of its largest process; for the
crawl also responses/s and crawler CPU per response; then the index and report sizes, search latency in
process (p50/p95 over a fixed query mix, interpreter start-up measured apart), the analyzers' speed on one
core against a no-op pass over the same apps, the report rendered again from the same index (the
weekly case of an unchanged market: every page linked, none rendered), and an unchanged recrawl against
the first crawl.
With ``--bare``, the crawler against a bare Scrapy spider (``bench/crawl_vs_bare.py``) and a raw asyncio
HTTP client (aiohttp) fetching the same URLs, side by side. With ``--es`` (after ``finmon es install``), the
analysis indexed into Elasticsearch too: that stage's time, finmon's bulk writes against raw
``streaming_bulk`` of the same documents, and search latency on that backend. With ``--keep DIR``, the crawls,
the SQLite index and the report stay in ``DIR/<apps>`` for a look afterwards (otherwise a temporary folder).

    python bench/market.py [--apps 1000,10000] [--seed 7] [--bare] [--es] [--keep DIR] [--json]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
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
ES_SAMPLE = 5000  # apps whose analysis is written twice for the bulk comparison (held in memory meanwhile)

RAW_CLIENT = """
import asyncio, json, sys
import aiohttp

async def fetch_all(urls):
    limit = asyncio.Semaphore(16)  # the bare spider's CONCURRENT_REQUESTS_PER_DOMAIN (one host here)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as session:
        async def get(url):
            async with limit:
                try:
                    async with session.get(url) as response:
                        await response.read()
                        return 1
                except aiohttp.ClientError:
                    return 0
        print(sum(await asyncio.gather(*(get(u) for u in urls))))

asyncio.run(fetch_all(json.load(open(sys.argv[1]))))
"""


def own_cpu() -> float:
    """CPU seconds of this process so far (the simulator's thread, while the stages run elsewhere)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# Starts a command and writes its peak RSS (KB) to the file named first. A process's ru_maxrss counts the RSS of
# the process that spawned it (Linux keeps the high-water mark across exec), so a command started straight from
# this process, which holds the simulator's market, would be charged with this process's memory; started from
# this small launcher, it is charged with the launcher's few MB at most.
LAUNCHER = ("import os, subprocess, sys; child = subprocess.Popen(sys.argv[2:]); _, status, usage = os.wait4(child.pid, 0); "
            "open(sys.argv[1], 'w').write(str(usage.ru_maxrss)); sys.exit(os.waitstatus_to_exitcode(status))")


def run_processes(commands: list[list[str]], env: dict[str, str] | None = None) -> dict:
    """Run commands side by side; wall seconds, CPU seconds of all, peak RSS (MB) of the largest process,
    and the CPU seconds this process (the simulator) spent meanwhile."""
    started, simulator = time.perf_counter(), own_cpu()
    outputs = [(tempfile.TemporaryFile(), tempfile.TemporaryFile(), tempfile.NamedTemporaryFile()) for _ in commands]
    procs = [subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER, rss.name, *cmd], cwd=ROOT, stdout=out,
                              stderr=err, env={**os.environ, **(env or {})})
             for cmd, (out, err, rss) in zip(commands, outputs)]
    cpu, peak, failed, last_lines = 0.0, 0, [], []
    for proc, cmd, (out, err, rss) in zip(procs, commands, outputs):
        _, status, usage = os.wait4(proc.pid, 0)  # CPU of the launcher and the command it waited for
        proc.returncode = os.waitstatus_to_exitcode(status)
        cpu += usage.ru_utime + usage.ru_stime
        peak = max(peak, int(Path(rss.name).read_text() or 0))
        rss.close()
        out.seek(0), err.seek(0)
        last_lines.append((out.read().decode(errors="replace").strip().splitlines() or [""])[-1])
        if proc.returncode != 0:
            failed.append(f"{' '.join(cmd[:4])} … exit {proc.returncode}: {err.read().decode(errors='replace')[-500:]}")
        out.close(), err.close()
    if failed:
        raise SystemExit("\n".join(failed))
    return {"seconds": time.perf_counter() - started, "cpu_seconds": cpu, "peak_rss_mb": peak / 1024,
            "simulator_cpu_seconds": own_cpu() - simulator, "last_lines": last_lines}


def discovered(market: MarketServer, out: Path) -> dict[str, list[int]]:
    """Per store, [listings the crawl wrote, listings the simulator's store has, of which it serves broken on
    purpose (a store fault that is not transient: malformed JSON, a lasting 503)]: every app discovered or not."""
    truth: dict[str, set[str]] = {store: set() for store in market.store_urls}
    broken: dict[str, int] = dict.fromkeys(market.store_urls, 0)
    for app in market.market.apps():
        ids = market.market.app_truth(app)["store_ids"]
        for store in app.stores:
            truth[store].add(str(ids[store]))
            broken[store] += any(f.startswith(f"{store}_") and "transient" not in f for f in app.faults)
    found = {}
    for store, ids in truth.items():
        with open(out / store / "listings.jsonl", encoding="utf-8") as lines:
            crawled = {str(json.loads(line)["store_id"]) for line in lines if line.strip()}
        found[store] = [len(crawled & ids), len(ids), broken[store]]
    return found


def crawl(market: MarketServer, out: Path, previous: Path | None = None) -> dict:
    """Each store's crawl in its own process, side by side, as ``finmon crawl`` runs them (Google Play after the
    others, looking up the Android apps they listed); the stage figures and the crawl counters."""
    claims = out / ".claims"  # shared by the stores' crawls, as finmon crawl shares them
    claims.mkdir(parents=True)

    def command(store: str, *settings: str) -> list[str]:
        cmd = [sys.executable, "-m", "crawler.run", "--out", str(out / store), "--store",
               f"{store}={market.store_urls[store]}", "--allow-host", market.base_url.split("//", 1)[1],
               "--log-level", "WARNING", "--set", f"FINMON_SHARED_CLAIMS={claims}"]
        if previous is not None:
            cmd += ["--set", f"FINMON_PREVIOUS_SNAPSHOT={previous / store}"]
        return cmd + [arg for value in settings for arg in ("--set", value)]

    first = [store for store in market.store_urls if store not in jobs.LOOKUP_STORES]
    stage = run_processes([command(store) for store in first])
    listings = json.dumps([str(out / store / "listings.jsonl") for store in first])
    later = [store for store in market.store_urls if store in jobs.LOOKUP_STORES]
    if later:
        second = run_processes([command(store, f"FINMON_LOOKUP_LISTINGS={listings}") for store in later])
        for key in ("seconds", "cpu_seconds", "simulator_cpu_seconds"):
            stage[key] += second[key]
        stage["peak_rss_mb"] = max(stage["peak_rss_mb"], second["peak_rss_mb"])
    del stage["last_lines"]
    runs = [json.loads((out / store / "run.json").read_text(encoding="utf-8")) for store in market.store_urls]
    total = lambda key: sum(r["counters"].get(key, 0) for r in runs)  # noqa: E731
    stage.update(responses=total("responses"), listings=total("listings"), not_modified=total("not_modified"),
                 capped=total("discovery_capped"), outcomes=sorted({r["outcome"] for r in runs}))
    stage["responses_per_s"] = stage["responses"] / stage["seconds"]
    stage["cpu_ms_per_response"] = 1000 * stage["cpu_seconds"] / max(stage["responses"], 1)
    stage["discovered"] = discovered(market, out)
    return stage


def finmon(*args: str, env: dict[str, str] | None = None) -> dict:
    stage = run_processes([[sys.executable, "-m", "finmon.cli", *args]], env)
    del stage["simulator_cpu_seconds"], stage["last_lines"]
    return stage


def search_latency(store) -> dict:
    """p50/p95 of store.search over the query mix (each query with and without a filter), in process."""
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
    """A bare Scrapy spider and a raw aiohttp client on the detail, policy and APK URLs of the first crawl."""
    sys.path.insert(0, str(Path(__file__).parent))
    from crawl_vs_bare import BARE_SPIDER

    snap = jobs.load_snapshot(out)
    listings = snap.listings
    urls = sorted({lst.source_url for lst in listings} | set(snap.policies) | set(snap.policy_failures)
                  | {lst.apk_url for lst in listings if lst.apk_url})
    (tmp / "urls.json").write_text(json.dumps(urls))
    result: dict = {"urls": len(urls)}
    for name, script in (("bare", BARE_SPIDER), ("raw", RAW_CLIENT)):
        (tmp / f"{name}.py").write_text(script)
        stage = run_processes([[sys.executable, str(tmp / f"{name}.py"), str(tmp / "urls.json")]])
        rate = len(urls) / stage["seconds"]
        result[name] = {"pages_per_s": rate, "responses": int(stage["last_lines"][0]), "ratio": first["responses_per_s"] / rate,
                        "cpu_ms_per_response": 1000 * stage["cpu_seconds"] / len(urls),
                        "simulator_cpu_seconds": stage["simulator_cpu_seconds"]}
    return result


def analyzer_speed(crawl_dir: Path, keep: int) -> tuple[dict, list]:
    """Apps with a policy analysed per CPU second on one core (every rule), against a no-op pass over the
    same apps; and the first ``keep`` (app, analysis) pairs, for the Elasticsearch stage."""
    import analyzers
    from finmon.model import Analysis

    apps = [app for batch in jobs.app_batches(jobs.load_snapshot(crawl_dir), 1000) for app in batch]
    with_policy = sum(1 for app in apps if app.policy is not None)
    started = time.process_time()
    for app in apps:
        Analysis(app.key, "other", 0.0, ())
    noop = time.process_time() - started
    kept: list = []
    started = time.process_time()
    for app in apps:
        analysis = analyzers.analyze(app)
        if len(kept) < keep:
            kept.append((app, analysis))
    rules = time.process_time() - started
    return ({"apps": len(apps), "with_policy": with_policy, "policies_per_cpu_s": with_policy / rules,
             "noop_per_cpu_s": with_policy / max(noop, 1e-6)}, kept)


def elasticsearch_stage(crawl_dir: Path, tmp: Path, apps: int, analysed: list) -> dict:
    """``finmon analyze`` into Elasticsearch; finmon's bulk writes of analysed apps against raw
    ``streaming_bulk`` of the very documents they produced (into empty indices with the same mappings);
    search latency there."""
    from elasticsearch import Elasticsearch, helpers

    import analyzers
    from finmon import settings
    from index.elastic import ElasticStore
    from index.es_node import LocalElasticsearch

    node = LocalElasticsearch()
    was_running = node.health() is not None
    url = node.start()
    analyse, ours, raw = (f"bench{apps}-{name}" for name in ("analyze", "finmon", "raw"))
    try:
        stage = finmon("analyze", str(crawl_dir), "--db", str(tmp / "unused.db"),
                       env={"FINMON_ES_URL": url, "FINMON_ES_PREFIX": analyse})
        store, seen, version = ElasticStore(url, prefix=ours), jobs.utcnow(), analyzers.analysis_version(None)
        started = time.perf_counter()
        for start in range(0, len(analysed), settings.FINMON_ANALYZE_BATCH):
            batch = analysed[start:start + settings.FINMON_ANALYZE_BATCH]
            store.save_analysis([app for app, _ in batch], [analysis for _, analysis in batch], seen,
                                inputs={app.key: jobs.input_hash(app, version) for app, _ in batch})
        finmon_seconds = time.perf_counter() - started
        aliases = {index: next(iter(body["aliases"])) for index, body in store.es.indices.get_alias(
            index=f"{ours}-*").items()}
        docs = [{"_index": aliases[hit["_index"]].replace(ours, raw, 1), "_id": hit["_id"], "_source": hit["_source"]}
                for hit in helpers.scan(store.es, index=f"{ours}-*", query={"query": {"match_all": {}}})]
        target = ElasticStore(url, prefix=raw)  # the same mappings, empty
        started = time.perf_counter()
        for ok, item in helpers.streaming_bulk(target.es, docs, chunk_size=settings.FINMON_ES_BULK_DOCS,
                                               max_chunk_bytes=settings.FINMON_ES_BULK_BYTES):
            if not ok:
                raise SystemExit(f"raw bulk refused a document: {item}")
        target.es.indices.refresh(index=f"{raw}-*")
        raw_seconds = time.perf_counter() - started
        return {"stage": stage, "apps_written": len(analysed), "docs": len(docs), "finmon_bulk_s": finmon_seconds,
                "raw_bulk_s": raw_seconds, "bulk_ratio": raw_seconds / finmon_seconds,
                "search": search_latency(ElasticStore(url, prefix=analyse))}
    finally:
        es = Elasticsearch(url)
        for prefix in (analyse, ours, raw):
            for index in es.indices.get(index=f"{prefix}-*"):
                es.indices.delete(index=index)
            for template in es.options(ignore_status=404).indices.get_index_template(name=f"{prefix}-*")["index_templates"]:
                es.indices.delete_index_template(name=template["name"])
        es.close()
        if not was_running:
            node.stop()


def folder_size(path: Path) -> tuple[int, float]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files) / 1e6


def measure(apps: int, seed: int, bare: bool, es: bool, keep: Path | None = None) -> dict:
    if keep is not None:
        (keep / str(apps)).mkdir(parents=True)  # a new folder: never mixed with an earlier run's files
    folder = tempfile.TemporaryDirectory() if keep is None else contextlib.nullcontext(str(keep / str(apps)))
    with folder as tmp_name, MarketServer(apps=apps, seed=seed) as market:
        tmp = Path(tmp_name)
        db = tmp / "finmon.db"
        stages = {"crawl": crawl(market, tmp / "crawl")}
        stages["analyse+index"] = finmon("analyze", str(tmp / "crawl"), "--db", str(db))
        stages["report"] = finmon("report", "--db", str(db), "--out", str(tmp / "report"))
        end_to_end = sum(s["seconds"] for s in stages.values())
        result = {"apps": apps, "seed": seed, "stages": stages, "end_to_end_s": end_to_end,
                  "report_again": finmon("report", "--db", str(db), "--out", str(tmp / "report")),
                  "index_mb": sum(p.stat().st_size for p in tmp.glob("finmon.db*")) / 1e6,
                  "report_files": folder_size(tmp / "report")[0], "report_mb": folder_size(tmp / "report")[1],
                  "search": search_latency(jobs.open_store(db, read_only=True)), "start_up_ms": start_up()}
        result["analyzers"], analysed = analyzer_speed(tmp / "crawl", ES_SAMPLE if es else 0)
        if es:
            result["elasticsearch"] = elasticsearch_stage(tmp / "crawl", tmp, apps, analysed)
        del analysed
        recrawl = crawl(market, tmp / "recrawl", previous=tmp / "crawl")
        result["recrawl"] = {"seconds": recrawl["seconds"], "not_modified": recrawl["not_modified"],
                             "responses_per_s": recrawl["responses_per_s"],
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
          f"per response (one process per store and their workers), {c['listings']} listings, searches capped "
          f"{c['capped']}, outcomes {', '.join(c['outcomes'])}; the simulator meanwhile {c['simulator_cpu_seconds']:.1f} "
          f"CPU s")
    print("discovered (listings crawled / the store's listings, of which served broken on purpose): " + ", ".join(
        f"{store} {found:,} / {listed:,} ({broken:,})" for store, (found, listed, broken) in c["discovered"].items()))
    print(f"index {result['index_mb']:.0f} MB; report {result['report_files']} files, {result['report_mb']:.0f} MB")
    again = result["report_again"]
    print(f"the report again from the same index (each page unchanged, linked): {again['seconds']:.1f} s, "
          f"{again['cpu_seconds']:.1f} CPU s, peak RSS {again['peak_rss_mb']:.0f} MB")
    print(f"search in process: p50 {result['search']['p50_ms']:.1f} ms, p95 {result['search']['p95_ms']:.1f} ms; "
          f"`finmon --help` start-up {result['start_up_ms']:.0f} ms")
    a = result["analyzers"]
    print(f"analyzers on one core: {a['policies_per_cpu_s']:.0f} apps with a policy per CPU second ({a['with_policy']} "
          f"of {a['apps']} apps have one); a no-op pass over the same apps {a['noop_per_cpu_s']:.0f}/s")
    if "elasticsearch" in result:
        e = result["elasticsearch"]
        print(f"Elasticsearch: finmon analyze {e['stage']['seconds']:.1f} s (peak RSS {e['stage']['peak_rss_mb']:.0f} "
              f"MB); writing {e['apps_written']} apps' analysis ({e['docs']} documents): finmon {e['finmon_bulk_s']:.1f} "
              f"s, raw streaming_bulk of the same documents {e['raw_bulk_s']:.1f} s = {e['bulk_ratio']:.2f}; search "
              f"p50 {e['search']['p50_ms']:.1f} ms, p95 {e['search']['p95_ms']:.1f} ms")
    r = result["recrawl"]
    print(f"unchanged recrawl: {r['seconds']:.1f} s ({r['not_modified']} answered 304, {r['responses_per_s']:.0f} "
          f"responses/s): first crawl {r['first_over_unchanged']:.2f}x its time")
    if "bare" in result:
        b = result["bare"]
        for name, label in (("bare", "a bare Scrapy spider"), ("raw", "a raw aiohttp client")):
            print(f"crawler vs {label} on the same {b['urls']} URLs ({b[name]['responses']} answered): "
                  f"{c['responses_per_s']:.0f} vs "
                  f"{b[name]['pages_per_s']:.0f} pages/s = {b[name]['ratio']:.2f} ({b[name]['cpu_ms_per_response']:.2f} "
                  f"ms CPU per response; the simulator {b[name]['simulator_cpu_seconds']:.1f} CPU s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", default="1000", help="comma-separated market sizes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--bare", action="store_true", help="also time a bare Scrapy spider and a raw HTTP client")
    parser.add_argument("--es", action="store_true", help="also index into Elasticsearch (after `finmon es install`)")
    parser.add_argument("--keep", type=Path, help="keep each size's crawls, index and report in KEEP/<apps>")
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of tables")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", file=sys.stderr)
    for apps in (int(n) for n in args.apps.split(",")):
        result = measure(apps, args.seed, args.bare, args.es, args.keep)
        print(json.dumps(result)) if args.json else print_table(result)


if __name__ == "__main__":
    main()
