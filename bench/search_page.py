"""The search page's latency over a demo index, on SQLite and on Elasticsearch: p50/p95 of a full page (hits and
facets, rendered) and of its JSON twin, over HTTP on loopback, for a mix of queries with and without a filter.

    python bench/search_page.py --apps 2000          # needs `finmon es install` for the Elasticsearch half
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QUERIES = ["通讯录", "短信", "位置", "借款", "征信", "收集", "第三方", "com", "privacy", "贷款 通讯录"]
FILTERS = ({}, {"severity": "high"}, {"rule": "C202", "store": "xiaomi"})


def finmon(*args: str, env: dict | None = None) -> None:
    import os

    subprocess.run([sys.executable, "-m", "finmon.cli", *args], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, **(env or {})})


def latency(open_store, rounds: int) -> dict:
    """p50/p95 in ms of /search and /api/search over the query mix, the server in a thread of this process."""
    from tests.finmon.conftest import Served
    from finmon.web import create_app

    served = Served(create_app(open_store))
    out = {}
    try:
        for path in ("/search", "/api/search"):
            times = []
            for _ in range(rounds):
                for query in QUERIES:
                    for filters in FILTERS:
                        started = time.perf_counter()
                        with urllib.request.urlopen(served.url + path + "?" + urlencode({"q": query, **filters})) as r:
                            r.read()
                        times.append(1000 * (time.perf_counter() - started))
            times.sort()
            out[path] = {"p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))],
                         "requests": len(times)}
    finally:
        served.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=5, help="times the query mix is asked")
    parser.add_argument("--no-es", action="store_true", help="SQLite only")
    args = parser.parse_args()

    from index.sqlite import SQLiteStore

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        finmon("demo", "--apps", str(args.apps), "--seed", str(args.seed), "--out", str(out))
        results = {"sqlite": latency(lambda: SQLiteStore(out / "finmon.db", read_only=True), args.rounds)}
        if not args.no_es:
            from elasticsearch import Elasticsearch

            from index.elastic import ElasticStore
            from index.es_node import LocalElasticsearch

            node = LocalElasticsearch()
            was_running = node.health() is not None
            url, prefix = node.start(), f"bench-search-{args.apps}"
            try:
                finmon("analyze", str(out / "crawl"), "--db", str(out / "unused.db"),
                       env={"FINMON_ES_URL": url, "FINMON_ES_PREFIX": prefix})
                results["elasticsearch"] = latency(lambda: ElasticStore(url, prefix=prefix), args.rounds)
            finally:
                es = Elasticsearch(url)
                for index in es.indices.get(index=f"{prefix}-*"):
                    es.indices.delete(index=index)
                for template in es.options(ignore_status=404).indices.get_index_template(
                        name=f"{prefix}-*")["index_templates"]:
                    es.indices.delete_index_template(name=template["name"])
                es.close()
                if not was_running:
                    node.stop()
    print(f"search page over {args.apps} apps ({len(QUERIES) * len(FILTERS)} queries x {args.rounds} rounds)")
    print(f"{'backend':<14}{'path':<13}{'p50 ms':>9}{'p95 ms':>9}")
    for backend, paths in results.items():
        for path, figures in paths.items():
            print(f"{backend:<14}{path:<13}{figures['p50_ms']:>9.1f}{figures['p95_ms']:>9.1f}")


if __name__ == "__main__":
    main()
