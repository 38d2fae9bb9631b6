"""The weekly risk report: ``index.html`` plus one page per app under ``apps/``.

It reads the store only (any :class:`index.base.Store`). The HTML is self-contained: inline
CSS, charts as inline SVG, no script, no web font, no CDN, and a Content-Security-Policy that
forbids loading anything. App names, policy text and URLs are untrusted: Jinja2 autoescapes
everything, and only http(s) URLs become links.

UI strings are English message ids in the templates (``_("…")``), translated through a gettext
catalog per language, ``reports/locale/<lang>/LC_MESSAGES/messages.po``, which Babel compiles in
memory at render time. A .po catalog rather than a JSON file: Jinja2's i18n extension,
``pybabel extract`` (see ``reports/babel.cfg``) and translators' editors all speak it, so keeping
the catalog in sync is a standard command, and loading it costs a few lines. English needs no
catalog. Rule titles come from the rule table (``title``, ``title_en`` for English).
"""
from __future__ import annotations

import ctypes
import dataclasses
import fcntl
import glob
import json
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, as_completed, wait
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import urlsplit

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream
from markupsafe import Markup

from finmon import settings
from finmon.evidence import serve_url
from finmon.model import Evidence, PolicyVersion, chunks, parse_utc, sha256_hex
from finmon.processes import die_with_parent

HERE = Path(__file__).resolve().parent
LANGS = ("zh", "en")
FAMILIES = "PCDSVR"
SEVERITIES = ("high", "medium", "low")
SEVERITY_COLORS = {"high": "#c0392b", "medium": "#e67e22", "low": "#b7950b"}


def N_(message: str) -> str:
    """Marks a message id for the catalog; translated where it is shown."""
    return message


LABELS: dict[str, dict[str, str]] = {
    "severity": {"high": N_("High"), "medium": N_("Medium"), "low": N_("Low")},
    "status": {"new": N_("New"), "open": N_("Open"), "resolved": N_("Resolved")},
    "family": {
        "P": N_("Permissions"), "C": N_("Personal information collection"), "D": N_("Disclosure consistency"),
        "S": N_("Third-party SDKs"), "V": N_("App vulnerabilities"), "R": N_("Registration and marketing"),
    },
    "finance": {
        "payment": N_("Online payment"), "lending": N_("Online lending"), "investment": N_("Investment"),
        "banking": N_("Mobile banking"), "securities": N_("Securities"), "insurance": N_("Insurance"),
        "other": N_("Other finance"),
    },
    "policy": {
        "ok": N_("Available"), "none": N_("No policy link"), "not_found": N_("Policy page missing (404)"),
        "unavailable": N_("Policy unavailable (error)"),
    },
    "outcome": {"ok": N_("OK"), "running": N_("Running"), "failed": N_("Failed"), "interrupted": N_("Interrupted")},
    "platform": {"android": N_("Android"), "ios": N_("iOS")},
}


# -- catalog -------------------------------------------------------------------
@lru_cache(maxsize=None)
def translations(lang: str) -> NullTranslations:
    """The compiled catalog for ``lang`` (English: none, the message ids are English)."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, not {lang!r}")
    po = HERE / "locale" / lang / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return NullTranslations()
    with open(po, "rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


class TranslatedLiterals(Extension):
    """Translates ``_("a literal")`` once, when a template is compiled (an environment serves one language), into
    what the i18n extension's call gives at every render: the translation as markup, formatted with no variables.
    A call with variables or a message that is not a literal stays a call. About a third of an app page's rendering
    went into these calls."""

    def filter_stream(self, stream: TokenStream) -> Iterator[Token]:
        tokens = list(stream)
        gettext = self.environment.translations.gettext  # type: ignore[attr-defined]
        i = 0
        while i < len(tokens):
            name, *call = tokens[i:i + 4]
            if name.test("name:_") and [t.type for t in call] == ["lparen", "string", "rparen"]:
                line = name.lineno
                yield from (Token(line, "lparen", "("), Token(line, "string", gettext(call[1].value) % {}),
                            Token(line, "pipe", "|"), Token(line, "name", "safe"), Token(line, "rparen", ")"))
                i += 4
            else:
                yield tokens[i]
                i += 1


def environment(lang: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n", TranslatedLiterals],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.translations = translations(lang)  # type: ignore[attr-defined]
    env.install_gettext_translations(env.translations, newstyle=True)  # type: ignore[attr-defined]
    env.filters["safe_url"] = safe_url
    env.filters["short_time"] = short_time
    env.filters["label"], env.filters["badge"] = _labellers(env.translations.gettext)  # type: ignore[attr-defined]
    env.globals.update(labels=LABELS, colors=SEVERITY_COLORS, severities=SEVERITIES, quote_parts=quote_parts,
                       app_filename=app_filename, lang=lang)
    return env


# -- small helpers (pure, tested) -------------------------------------------------
def _labellers(gettext: Callable[[str], str]) -> tuple[Callable[[Any, str], str], Callable[[Any, str], Markup]]:
    """The ``label`` and ``badge`` filters of one language: ``value|label("finance")`` is the translated label of
    a known value, else the value (or "—"); ``value|badge("severity")`` that label in a coloured badge. A page
    shows dozens of them: each is built once (a macro call per badge was a tenth of a page's rendering)."""

    @lru_cache(maxsize=1024)
    def label(value: Any, kind: str) -> str:
        known = LABELS[kind]
        return gettext(known[value]) if value in known else (value or "—")

    @lru_cache(maxsize=1024)
    def badge(value: Any, kind: str) -> Markup:
        known = LABELS[kind]
        return Markup('<span class="badge {}">{}</span>').format(value, gettext(known[value]) if value in known else value)

    return label, badge


def safe_url(url: Any) -> str | None:
    """``url`` if it is an absolute http(s) URL, else None: nothing else becomes a link."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


@lru_cache(maxsize=4096)  # the findings of one analysis share their times: a page shows few distinct ones
def short_time(value: Any) -> str:
    """``2024-03-04T10:00:00+00:00`` → ``2024-03-04 10:00 UTC``; anything else as given."""
    if not value:
        return ""
    moment = parse_utc(value)
    return str(value) if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def app_filename(key: str) -> str:
    """A safe, stable file name for an app's page (keys are ``platform:package``, from untrusted stores)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", key.replace(":", "_", 1))
    if safe != key.replace(":", "_", 1) or len(safe) > 100 or safe.startswith("."):
        safe = f"{safe.lstrip('.')[:80]}-{sha256_hex(key)[:10]}"
    return f"{safe}.html"


def quote_parts(evidence: Evidence, policy_text: str | None = None) -> tuple[str, str, str]:
    """The quoted sentence split as (before, matched term, after) for highlighting.

    The term is ``evidence.detail`` where it occurs in the quote; failing that, the span that
    ``start``/``end`` select in the policy text when that span lies inside the quote (offsets
    given for the term rather than the sentence). Otherwise nothing is highlighted.
    """
    text = evidence.text or evidence.key
    term = evidence.detail if evidence.detail and evidence.detail in text else ""
    if not term and policy_text and evidence.start is not None and evidence.end is not None:
        if 0 <= evidence.start < evidence.end <= len(policy_text):
            span = policy_text[evidence.start:evidence.end]
            term = span if span != text and span in text else ""
    if not term:
        return text, "", ""
    i = text.index(term)
    return text[:i], term, text[i + len(term):]


# -- the week ------------------------------------------------------------------------
def week_window(week: str | date | None, fallback: str | None = None) -> tuple[datetime, datetime]:
    """[Monday 00:00 UTC, next Monday) of an ISO week ("2024-W10"), a date's week, or ``fallback``'s."""
    if isinstance(week, str):
        m = re.fullmatch(r"(\d{4})-?W(\d{1,2})", week.strip())
        if not m:
            raise ValueError(f"week must look like 2024-W10, not {week!r}")
        day = date.fromisocalendar(int(m[1]), int(m[2]), 1)
    elif isinstance(week, datetime):
        day = week.astimezone(timezone.utc).date() if week.tzinfo else week.date()
    elif isinstance(week, date):
        day = week
    else:
        day = ((fallback and parse_utc(fallback)) or datetime.now(timezone.utc)).date()
    monday = day - timedelta(days=day.weekday())
    start = datetime(monday.year, monday.month, monday.day, tzinfo=timezone.utc)
    return start, start + timedelta(days=7)


# -- charts (geometry here, drawing in templates/_charts.html) ---------------------------
def _text_width(text: str, size: int = 12) -> float:
    """Rough rendered width of ``text``: CJK and full-width characters are square, the rest about half."""
    return sum(size if ord(ch) > 0x2E7F else size * 0.6 for ch in text)


def bar_chart(items: list[tuple[str, int, str]], width: int = 420, row: int = 26) -> dict:
    """Horizontal bars: (label, value, colour) → rows with their geometry."""
    top = max((v for _, v, _ in items), default=0) or 1
    label_w = int(min(width / 2, max([60.0] + [_text_width(label) + 14 for label, _, _ in items])))
    span = width - label_w - 48
    rows = [
        {"label": label, "value": value, "color": color, "y": i * row, "w": round(span * value / top, 1)}
        for i, (label, value, color) in enumerate(items)
    ]
    return {"width": width, "height": max(row * len(items), row), "row": row, "label_w": label_w, "rows": rows}


def trend_chart(weeks: list[dict[str, Any]], width: int = 420, height: int = 180) -> dict:
    """Grouped columns per week: new (red) and resolved (green), with their counts on top."""
    top = max((max(w["new"], w["resolved"]) for w in weeks), default=0) or 1
    plot_h, slot = height - 62, (width - 20) / max(len(weeks), 1)
    bar_w = max(4.0, slot / 2 - 6)
    cols = []
    for i, w in enumerate(weeks):
        x = 10 + i * slot + (slot - 2 * bar_w - 2) / 2
        h_new, h_res = plot_h * w["new"] / top, plot_h * w["resolved"] / top
        cols.append({
            "label": w["label"], "new": w["new"], "resolved": w["resolved"], "x": round(x, 1),
            "cx": round(10 + i * slot + slot / 2, 1), "w": round(bar_w, 1),
            "new_y": round(16 + plot_h - h_new, 1), "new_h": round(h_new, 1),
            "res_y": round(16 + plot_h - h_res, 1), "res_h": round(h_res, 1),
        })
    return {"width": width, "height": height, "base": 16 + plot_h, "cols": cols}


# -- the data --------------------------------------------------------------------------
def _rule_text(rule: dict[str, Any] | None, field: str, lang: str, default: str = "") -> str:
    """A rule's ``field`` in ``lang``: ``<field>_en`` for English when the rule table has it."""
    rule = rule or {}
    return (lang == "en" and rule.get(f"{field}_en")) or rule.get(field) or default


def market_overview(apps: Iterable[dict[str, Any]], top_n: int) -> dict[str, Any]:
    """What the report's overview says of every app, in one pass over ``apps`` (``Store.apps()``, streamed), keeping
    only the ``top_n`` riskiest apps and the app keys (for the app pages): nothing else grows with the market."""
    out: dict[str, Any] = {"keys": [], "high_apps": 0, "ranked_total": 0, "latest": "", "policy": Counter()}
    ranked: list[tuple[tuple, dict[str, Any]]] = []

    def keep_top() -> None:
        ranked.sort(key=lambda item: item[0])
        del ranked[top_n:]

    for app in apps:
        out["keys"].append(app["key"])
        out["high_apps"] += bool(app["counts"]["high"])
        out["policy"][app.get("policy_status") or "none"] += 1
        out["latest"] = max(out["latest"], app.get("analysed_at") or app.get("last_seen") or "")
        if app["risk_score"] > 0:
            out["ranked_total"] += 1
            ranked.append(((-app["risk_score"], -app["counts"]["high"], app["key"]), app))
            if len(ranked) >= 2 * top_n + 100:
                keep_top()
    keep_top()
    out["ranked"] = [app for _, app in ranked]
    return out


def build_context(store: Any, lang: str, week: str | date | None, _: Callable[[str], str]) -> dict[str, Any]:
    """Everything index.html shows, read from the store (its memory does not grow with the market, but for the
    app keys)."""
    market = market_overview(store.apps(), settings.FINMON_REPORT_TOP_APPS)
    runs = store.runs(settings.FINMON_REPORT_RUNS)
    latest = max([market["latest"]] + [r["started"] for r in runs])
    start, end = week_window(week, latest or None)
    rules = {r["id"]: r for r in store.rules()}
    examples_n = settings.FINMON_REPORT_EXAMPLES_PER_RULE
    changes = store.changes(start.isoformat(), end.isoformat(), limit=examples_n)

    trend = []
    for back in range(settings.FINMON_REPORT_TREND_WEEKS - 1, -1, -1):
        w_start = start - timedelta(weeks=back)
        got = changes if back == 0 else store.changes(w_start.isoformat(), (w_start + timedelta(weeks=1)).isoformat(),
                                                      limit=0)
        iso = w_start.isocalendar()
        trend.append({"label": f"W{iso.week:02d}", **got["counts"]})

    latest_crawls: dict[str, dict] = {}  # runs come newest first: the latest crawl of each store
    for run in runs:
        if run["kind"] == "crawl":
            latest_crawls.setdefault(run["job"] or run["id"], run)
    discovery_capped = {job.removeprefix("crawl:"): run["counters"]["discovery_capped"]
                        for job, run in sorted(latest_crawls.items()) if run["counters"].get("discovery_capped")}

    # the unresolved findings are counted by the index; only each rule's first few are read (every finding's rule
    # is in the rule table, which each analysis saves whole and whose change re-analyses every app)
    unresolved = ("new", "open")
    counted = store.rule_counts(status=unresolved)
    severity_counts: Counter = Counter()
    families = []
    for fam in FAMILIES + "".join(sorted({r[:1] for r in rules} - set(FAMILIES))):
        ids = sorted(r for r in rules if r[:1] == fam)
        if not ids:
            continue
        blocks = []
        for rule_id in ids:
            count = counted.get(rule_id, {"count": 0, "apps": 0, "severity": {}})
            severity_counts.update(count["severity"])
            found = store.findings(rule=rule_id, status=unresolved, limit=examples_n) if count["count"] else []
            rule, first = rules.get(rule_id), found[0] if found else None
            blocks.append({
                "id": rule_id, "title": _rule_text(rule, "title", lang, first.title if first else ""),
                "severity": (rule or {}).get("severity") or (first.severity if first else ""),
                "confidence": (rule or {}).get("confidence") or (first.confidence if first else ""),
                "description": _rule_text(rule, "description", lang),
                "regulation": _rule_text(rule, "regulation", lang, first.regulation if first else ""),
                "not_applied": _rule_text(rule, "not_applied", lang) if (rule or {}).get("applied") is False else "",
                "count": count["count"], "apps": count["apps"], "examples": found,
            })
        families.append({"id": fam, "label": LABELS["family"].get(fam, fam), "rules": blocks,
                         "count": sum(b["count"] for b in blocks)})

    # the apps the page names: the ranking's, and those of the findings it quotes
    shown = {a["key"]: a for a in market["ranked"]}
    quoted = {f.app_key for f in changes["new"] + changes["resolved"]}
    quoted.update(f.app_key for family in families for block in family["rules"] for f in block["examples"])
    shown.update((a["key"], a) for a in store.apps(quoted - shown.keys()))

    sev_items = [(_(LABELS["severity"][s]), severity_counts.get(s, 0), SEVERITY_COLORS[s]) for s in SEVERITIES]
    fam_items = [(f"{f['id']} · {_(f['label'])}", f["count"], "#34495e") for f in families]
    policy_counts = market["policy"]
    policy_items = [(_(LABELS["policy"].get(k, k)), policy_counts.get(k, 0), c)
                    for k, c in (("ok", "#27ae60"), ("none", "#c0392b"), ("not_found", "#c0392b"),
                                 ("unavailable", "#7f8c8d"))]
    iso = start.isocalendar()
    return {
        "week": {"year": iso.year, "number": iso.week, "name": f"{iso.year}-W{iso.week:02d}",
                 "start": start.date().isoformat(), "end": (end - timedelta(days=1)).date().isoformat()},
        "generated": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "kpi": {
            "apps": len(market["keys"]),
            "high_apps": market["high_apps"],
            "unresolved": sum(severity_counts.get(s, 0) for s in SEVERITIES),
            "severity": {s: severity_counts.get(s, 0) for s in SEVERITIES},
            "new": changes["counts"]["new"],
            "resolved": changes["counts"]["resolved"],
            "no_policy": sum(policy_counts.get(k, 0) for k in ("none", "not_found")),
        },
        "charts": {"severity": bar_chart(sev_items), "family": bar_chart(fam_items),
                   "policy": bar_chart(policy_items), "trend": trend_chart(trend)},
        "ranked": market["ranked"],
        "ranked_total": market["ranked_total"],
        "new": changes["new"],
        "resolved": changes["resolved"],
        "families": families,
        "runs": runs,
        "discovery_capped": discovery_capped,
        "apps": shown,
        "app_keys": market["keys"],
        "rule_titles": {rid: _rule_text(r, "title", lang) for rid, r in rules.items()},
        "rule_regulations": {rid: _rule_text(r, "regulation", lang) for rid, r in rules.items()},
        "weights": settings.FINMON_RISK_WEIGHTS,
        "evidence_base": safe_url(serve_url()),  # a finding with a capture links to <this>/evidence/<finding id>
        "top_n": settings.FINMON_REPORT_TOP_APPS,
        "examples_n": examples_n,
    }


def render_report(store: Any, out_dir: str | Path, lang: str = "zh", week: str | date | None = None,
                  workers: int | None = None, reuse_from: str | Path | None = None) -> Path:
    """Render index.html and apps/<app>.html into ``out_dir``; returns the path of index.html.

    ``week`` is an ISO week ("2024-W10") or a date in it; by default the week of the latest
    analysis in the store. "New" and "resolved" count findings first seen / resolved that week.
    The report is rendered into a new sibling folder and swapped in whole: until then the previous
    report stays as it was, and a failure (a full disk) leaves it so and removes the new folder.
    ``workers``: processes that render the app pages (default ``FINMON_REPORT_WORKERS``; 0 or 1: this one).
    ``reuse_from``: the report whose unchanged app pages are linked instead of rendered (default: ``out_dir``'s).
    """
    ctx = build_context(store, lang, week, translations(lang).gettext)
    return write_report(store, lang, ctx, out_dir, workers, reuse_from)


def write_report(store: Any, lang: str, ctx: dict[str, Any], out_dir: str | Path, workers: int | None = None,
                 reuse_from: str | Path | None = None) -> Path:
    """The report of ``ctx`` (from :func:`build_context`) into ``out_dir`` as :func:`render_report` describes, with
    ``kpis.json`` (its week and the figures of its KPI block) beside index.html; returns the path of index.html."""
    env = environment(lang)
    out = Path(out_dir).absolute()
    if out.is_dir() and not _holds_a_report_only(out):
        raise ReportError(f"{out} holds other files than a report: give an empty or new folder")
    if not out.parent.exists():
        out.parent.mkdir(parents=True)
    new = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    rendering = os.open(new, os.O_RDONLY)
    fcntl.flock(rendering, fcntl.LOCK_EX)  # held while rendering; the kernel drops it if this process dies
    try:
        _remove_leftovers(out)
        pages = new / "apps"
        pages.mkdir()
        _render_app_pages(store, lang, ctx, out if reuse_from is None else Path(reuse_from).absolute(), pages,
                          settings.FINMON_REPORT_WORKERS if workers is None else workers)
        (new / "index.html").write_text(env.get_template("index.html").render(ctx), encoding="utf-8")
        (new / KPIS).write_text(json.dumps({"week": ctx["week"], "generated": ctx["generated"], "lang": lang,
                                            "kpi": ctx["kpi"]}, sort_keys=True, indent=1), encoding="utf-8")
        new.chmod(0o755)  # mkdtemp's folder is private; a report folder is as any other
        _swap_in(new, out)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    finally:
        os.close(rendering)
    return out / "index.html"


# What an app page shows besides its app (StrictUndefined: a page reading anything else fails to render).
APP_PAGE_CONTEXT = ("rule_titles", "rule_regulations", "weights", "evidence_base")
PAGE_KEYS = "pages.json"  # in a report folder: each app page's file name -> the digest of what it shows
KPIS = "kpis.json"  # in a report folder: its week and KPI figures, which the archive's index lists (reports/archive.py)


def _render_app_pages(store: Any, lang: str, ctx: dict[str, Any], old: Path, pages: Path, workers: int) -> None:
    """apps/<app>.html for every app; a page whose inputs are those of the previous report's page is linked
    from it instead of rendered again (its footer keeps the time it was rendered).

    The pages are read, rendered and written in batches of app keys, by ``workers`` worker processes (each opens
    the store again, see ``Store.opener``) when there is more than one batch, with a few batches in flight so
    memory stays flat in the number of apps."""
    try:
        old_keys = json.loads((old / PAGE_KEYS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old_keys = {}
    names = ((app_filename(key), key) for key in ctx["app_keys"])
    batches = chunks(((name, key, old_keys.get(name)) for name, key in names), settings.FINMON_REPORT_BATCH)
    args = (lang, {name: ctx[name] for name in APP_PAGE_CONTEXT}, ctx["generated"], old / "apps", pages)
    keys: dict[str, str] = {}
    opener = store.opener()
    if workers > 1 and len(ctx["app_keys"]) > settings.FINMON_REPORT_BATCH and opener is not None:
        _write_in_workers(workers, (opener, *args), batches, keys)
    else:
        writer = PageWriter(store, *args)
        for batch in batches:
            keys.update(writer.write(batch))
    (pages.parent / PAGE_KEYS).write_text(json.dumps(keys, sort_keys=True), encoding="utf-8")


def _write_in_workers(workers: int, args: tuple, batches: Iterator[list], keys: dict[str, str]) -> None:
    """Each batch to a worker process (spawned; they die with this process), at most two per worker in flight."""
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_start_page_worker, initargs=args) as pool:
        running: set[Future] = set()
        try:
            for batch in batches:
                if len(running) >= 2 * workers:
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        keys.update(future.result())
                running.add(pool.submit(_write_batch, batch))
            for future in as_completed(running):
                keys.update(future.result())
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


class PageWriter:
    """Reads apps from ``store``, renders and writes their pages into ``pages``, or links a page unchanged since
    ``old_pages``."""

    def __init__(self, store: Any, lang: str, page_ctx: dict[str, Any], generated: str, old_pages: Path,
                 pages: Path) -> None:
        self.store, self.lang, self.page_ctx, self.generated = store, lang, page_ctx, generated
        self.old_pages, self.pages = old_pages, pages
        self.template = environment(lang).get_template("app.html")
        # what every page is rendered from besides its app: templates, catalog and code, language, page context
        self.shared_digest = sha256_hex(_renderer_digest() + json.dumps([lang, page_ctx], sort_keys=True, default=repr))

    def write(self, batch: list[tuple[str, str, str | None]]) -> dict[str, str]:
        """Each (file name, app key, digest of its previous page) written; returns file name -> digest. An app
        gone from the store since the report began has no page."""
        keys = {}
        for name, app_key, old_key in batch:
            app = self.store.app(app_key)
            if app is None:
                continue
            keys[name] = key = self.digest(app)
            if old_key == key:
                try:
                    os.link(self.old_pages / name, self.pages / name)
                    continue
                except OSError:
                    pass  # gone or on another file system: render it
            html = self.template.render(self.page_ctx, app=app, generated=self.generated)
            (self.pages / name).write_text(html, encoding="utf-8")
        return keys

    def digest(self, app: dict[str, Any]) -> str:
        """A digest of everything the page of ``app`` is rendered from (records, such as findings, by their repr:
        every field, in order, at half the cost of converting them to dicts; the policy's text by its sha256)."""
        policy = app.get("policy")
        if isinstance(policy, PolicyVersion):
            app = {**app, "policy": dataclasses.replace(policy, text="")}
        return sha256_hex(self.shared_digest + json.dumps(app, sort_keys=True, default=repr))


_page_writer: PageWriter | None = None  # a worker process's


def _start_page_worker(opener: Callable[[], Any], *args: Any) -> None:
    die_with_parent()
    global _page_writer
    _page_writer = PageWriter(opener(), *args)


def _write_batch(batch: list) -> dict[str, str]:
    assert _page_writer is not None, "not a page worker"
    return _page_writer.write(batch)


@lru_cache(maxsize=1)
def _renderer_digest() -> str:
    files = sorted((HERE / "templates").glob("*")) + sorted((HERE / "locale").rglob("*.po")) + [Path(__file__)]
    return sha256_hex(b"".join(path.read_bytes() for path in files))


class ReportError(Exception):
    """The report cannot be written where it was asked."""


def _remove_leftovers(out: Path) -> None:
    """Remove the folders a render killed outright left beside ``out``, but none a live render holds."""
    for folder in out.parent.glob(f".{glob.escape(out.name)}.*-*"):
        if folder.name.startswith(f".{out.name}.old-"):  # a previous report, already swapped out
            shutil.rmtree(folder, ignore_errors=True)
        elif folder.name.startswith(f".{out.name}.new-"):
            try:
                held = os.open(folder, os.O_RDONLY)
            except OSError:
                continue
            try:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(folder, ignore_errors=True)
            except BlockingIOError:
                pass  # being rendered
            finally:
                os.close(held)


def _holds_a_report_only(folder: Path) -> bool:
    """True when ``folder`` holds nothing but a report's files (swapping it out loses nothing else)."""
    pages = folder / "apps"
    return (all(p.name in ("index.html", "apps", PAGE_KEYS, KPIS) for p in folder.iterdir())
            and (not pages.is_dir() or all(p.suffix == ".html" and p.is_file() for p in pages.iterdir())))


def _swap_in(new: Path, out: Path) -> None:
    """Put folder ``new`` in place of ``out``: one atomic exchange where Linux offers it, else two renames."""
    if not out.exists():
        new.rename(out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))  # empty: a rename may replace it
    if not _exchange(new, out):
        out.rename(old)
        new.rename(out)
    else:
        new.rename(old)  # after the exchange ``new`` holds the previous report
    shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where that is not available."""
    rename = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None) if sys.platform.startswith("linux") else None
    if rename is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if rename(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (38, 22):  # ENOSYS, EINVAL: the kernel or the file system cannot exchange
        return False
    raise OSError(errno, os.strerror(errno), str(b))
