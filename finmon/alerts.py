"""Alerts: after each analysis, what is new and serious goes to the operators' sinks (a webhook, e-mail).

An alert item is a finding first seen in the analysis at or above FINMON_ALERT_SEVERITY, or an app that newly
matches the watch list (FINMON_ALERT_WATCHLIST: developers and packages). Each configured sink gets one message per
run with every item waiting for it, grouped by app and linking to the web application (FINMON_SERVE_URL).

The ledger (a small SQLite file) keeps, per sink, each item queued for it and when the sink accepted it. An item is
queued once per sink and marked sent only after the sink accepted the message holding it, so nothing is sent twice;
a sink that fails (after FINMON_ALERT_TRIES attempts) keeps its items waiting, and the next run sends them with the
new ones. A failing sink is logged and counted in the analysis run (``alerts/failed``), never fails the analysis.
"""
from __future__ import annotations

import contextlib
import fcntl
import html
import http.client
import json
import logging
import os
import re
import smtplib
import sqlite3
import ssl
import time
import unicodedata
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Protocol
from urllib.parse import quote, urlencode, urlsplit

from finmon import settings
from finmon.model import SEVERITIES, Finding, Run, parse_utc, redact_url, utcnow

log = logging.getLogger(__name__)

KINDS = ("watch", "finding")  # an app newly matching the watch list, a new finding; listed in this order
WATCH_FIELDS = ("developer", "package")
EVIDENCE_CHARS = 160  # of a finding's evidence text shown in a message
_PAGE = 1000  # new findings read from the index at a time
# Control characters (C0, DEL, C1) and bidirectional overrides: shown escaped in a message (ESC as \x1b).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
_NEVER = datetime.max.replace(tzinfo=timezone.utc)


class AlertConfigError(ValueError):
    """A setting of the alerts is wrong; the message names the variable."""


class SinkError(Exception):
    """A sink did not accept a message. ``transient``: worth another attempt (a connection error, a timeout, 5xx)."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


# --- configuration -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SmtpConfig:
    """E-mail over SMTP, from the environment only (FINMON_SMTP_*)."""

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    username: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = True
    ca_certs: str = ""


@dataclass(frozen=True)
class AlertConfig:
    """Everything the alerts read from settings and the environment; :meth:`from_env` checks it."""

    severity: str = settings.FINMON_ALERT_SEVERITY
    webhook: str = ""
    smtp: SmtpConfig | None = None
    watchlist: str = ""
    serve_url: str = settings.FINMON_SERVE_URL
    tries: int = settings.FINMON_ALERT_TRIES
    backoff: float = settings.FINMON_ALERT_BACKOFF
    timeout: float = settings.FINMON_ALERT_TIMEOUT
    max_listed: int = settings.FINMON_ALERT_MAX_LISTED

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> AlertConfig:
        """The configuration; :class:`AlertConfigError` names the first wrong variable. With no sink configured the
        alerts are off, and only the sinks' variables are checked."""

        def text(name: str) -> str:
            return str(environ.get(name, getattr(settings, name, ""))).strip()

        def number(name: str, kind: type, low: float) -> Any:
            raw = text(name)
            try:
                value = kind(raw)
            except ValueError:
                raise AlertConfigError(f"{name} must be a number, not {raw!r}") from None
            if value < low:
                raise AlertConfigError(f"{name} must be at least {low}, not {raw!r}")
            return value

        webhook = text("FINMON_ALERT_WEBHOOK")
        if webhook and not _is_http_url(webhook):
            raise AlertConfigError(f"FINMON_ALERT_WEBHOOK must be an http(s) URL, not {redact_url(webhook)!r}")
        smtp = _smtp_from_env(environ)
        if not webhook and smtp is None:
            return cls()  # alerts off: the rest is not read (FINMON_SERVE_URL, say, is the web application's too)
        severity = text("FINMON_ALERT_SEVERITY").lower()
        if severity not in SEVERITIES:
            raise AlertConfigError(f"FINMON_ALERT_SEVERITY must be one of {', '.join(SEVERITIES)}, not {severity!r}")
        watchlist = text("FINMON_ALERT_WATCHLIST")
        if watchlist and not os.path.isfile(watchlist):
            raise AlertConfigError(f"FINMON_ALERT_WATCHLIST: no such file {watchlist}")
        serve_url = text("FINMON_SERVE_URL").rstrip("/")
        if not _is_http_url(serve_url):
            raise AlertConfigError(f"FINMON_SERVE_URL must be an http(s) URL, not {serve_url!r}")
        return cls(severity=severity, webhook=webhook, smtp=smtp, watchlist=watchlist,
                   serve_url=serve_url, tries=number("FINMON_ALERT_TRIES", int, 1),
                   backoff=number("FINMON_ALERT_BACKOFF", float, 0), timeout=number("FINMON_ALERT_TIMEOUT", float, 0.1),
                   max_listed=number("FINMON_ALERT_MAX_LISTED", int, 1))

    @property
    def severities(self) -> tuple[str, ...]:
        """The severities alerted: the threshold and those above it, most severe first."""
        return SEVERITIES[: SEVERITIES.index(self.severity) + 1]

    def sinks(self) -> list[Sink]:
        """The configured sinks (none: alerts are off)."""
        out: list[Sink] = []
        if self.webhook:
            out.append(WebhookSink(self.webhook, self.timeout))
        if self.smtp is not None:
            out.append(EmailSink(self.smtp, self.timeout))
        return out


def _smtp_from_env(environ: Mapping[str, str]) -> SmtpConfig | None:
    def env(name: str) -> str:
        return environ.get(name, "").strip()

    host = env("FINMON_SMTP_HOST")
    if not host:
        stray = sorted(name for name in environ if name.startswith("FINMON_SMTP_") and environ[name].strip())
        if stray:
            raise AlertConfigError(f"{stray[0]} is set but FINMON_SMTP_HOST is empty: set it, or unset {stray[0]}")
        return None
    raw_port = env("FINMON_SMTP_PORT") or str(settings.FINMON_SMTP_PORT)
    if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
        raise AlertConfigError(f"FINMON_SMTP_PORT must be a port number, not {raw_port!r}")
    sender = env("FINMON_SMTP_FROM")
    recipients = tuple(addr.strip() for addr in env("FINMON_SMTP_TO").split(",") if addr.strip())
    for name, addresses in (("FINMON_SMTP_FROM", [sender]), ("FINMON_SMTP_TO", recipients or [""])):
        for address in addresses:
            if "@" not in address or _CONTROL.search(address):
                raise AlertConfigError(f"{name} must hold e-mail addresses, not {address!r}")
    username, password = env("FINMON_SMTP_USERNAME"), environ.get("FINMON_SMTP_PASSWORD", "")
    if bool(username) != bool(password):
        raise AlertConfigError("FINMON_SMTP_USERNAME and FINMON_SMTP_PASSWORD go together: set both or neither")
    if not (username + password).isascii():
        raise AlertConfigError("FINMON_SMTP_USERNAME and FINMON_SMTP_PASSWORD must be ASCII (as smtplib sends them)")
    raw_tls = (env("FINMON_SMTP_STARTTLS") or str(settings.FINMON_SMTP_STARTTLS)).lower()
    if raw_tls not in _TRUE + _FALSE:
        raise AlertConfigError(f"FINMON_SMTP_STARTTLS must be 1 or 0, not {raw_tls!r}")
    ca_certs = env("FINMON_SMTP_CA_CERTS")
    if ca_certs and not os.path.isfile(ca_certs):
        raise AlertConfigError(f"FINMON_SMTP_CA_CERTS: no such file {ca_certs}")
    return SmtpConfig(host=host, port=int(raw_port), sender=sender, recipients=recipients, username=username,
                      password=password, starttls=raw_tls in _TRUE, ca_certs=ca_certs)


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def ledger_path(default: Path | None = None, environ: Mapping[str, str] = os.environ) -> Path:
    """The ledger: FINMON_ALERT_LEDGER when set, else ``default``, else beside the SQLite index (FINMON_DB)."""
    configured = str(environ.get("FINMON_ALERT_LEDGER", settings.FINMON_ALERT_LEDGER)).strip()
    if configured:
        return Path(configured)
    return default or beside_index(Path(environ.get("FINMON_DB") or settings.FINMON_DB))


def beside_index(index: Path) -> Path:
    """The ledger kept beside an SQLite index: finmon.db → finmon.alerts.sqlite."""
    return index.with_name(f"{index.stem}.alerts.sqlite")


# --- the watch list ----------------------------------------------------------------------------------------------
def _folded(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text or "").split()).casefold()


@dataclass(frozen=True)
class WatchList:
    """Developers (compared without case, width or blank differences) and packages (exact; an app key matches too)."""

    developers: frozenset[str] = frozenset()
    packages: frozenset[str] = frozenset()

    def __len__(self) -> int:
        return len(self.developers) + len(self.packages)

    def matches(self, app: Mapping[str, Any]) -> list[dict[str, str]]:
        """Why ``app`` (a store's app record) is watched: ``[{"field", "value"}]``, empty when it is not."""
        out = []
        if app.get("developer") and _folded(app["developer"]) in self.developers:
            out.append({"field": "developer", "value": app["developer"]})
        package = app.get("package") or ""
        if package in self.packages or app.get("key") in self.packages:
            out.append({"field": "package", "value": package or app.get("key", "")})
        return out


def load_watchlist(path: str | Path) -> tuple[WatchList, int]:
    """The watch list file and how many of its lines were skipped.

    One entry a line: ``developer: NAME`` or ``package: NAME`` (an Android package or iOS bundle id, or an app key
    such as ``android:com.example.loan``); blank lines and lines starting with ``#`` are ignored. Any other line is a
    warning naming it, and is skipped. An unreadable file raises :class:`AlertConfigError`.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise AlertConfigError(f"FINMON_ALERT_WATCHLIST: cannot read {path}: {reason}") from None
    entries: dict[str, set[str]] = {name: set() for name in WATCH_FIELDS}
    skipped = 0
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.replace("：", ":").partition(":")
        name, value = name.strip().lower(), value.strip()
        if not sep or name not in entries or not value:
            skipped += 1
            log.warning('%s:%d: not a watch-list entry (expected "developer: NAME" or "package: NAME"), skipped: %s',
                        path, number, _plain(line)[:120])
            continue
        entries[name].add(_folded(value) if name == "developer" else value)
    return WatchList(frozenset(entries["developer"]), frozenset(entries["package"])), skipped


# --- the ledger --------------------------------------------------------------------------------------------------
_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    sink TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, app_key TEXT NOT NULL, severity TEXT NOT NULL,
    body TEXT, run TEXT NOT NULL, queued_at TEXT NOT NULL, sent_at TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '', PRIMARY KEY (sink, kind, id)
);
CREATE INDEX IF NOT EXISTS items_waiting ON items (sink, sent_at);
CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_ORDER = ("kind = 'finding', CASE severity WHEN 'high' THEN 0 WHEN 'medium' THEN 1 WHEN 'low' THEN 2 ELSE 3 END, "
          "app_key, id")


@dataclass(frozen=True)
class Item:
    """One thing to tell a sink: a new finding (``id`` its id) or a watched app (``id`` its app key)."""

    kind: str
    id: str
    app_key: str
    severity: str = ""  # the finding's; "" for a watch-list match
    body: dict[str, Any] = field(default_factory=dict)  # what a message shows of it

    @classmethod
    def of_finding(cls, finding: Finding) -> Item:
        ev = finding.evidence
        return cls("finding", finding.id, finding.app_key, finding.severity, {
            "rule_id": finding.rule_id, "severity": finding.severity, "title": finding.title,
            "evidence": _short(ev.text or ev.detail or ev.key), "evidence_key": ev.key,
            "first_seen": finding.first_seen})


class Ledger:
    """What each sink was sent (item ids, kept) and what waits for it (with what a message shows of it)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    @classmethod
    @contextlib.contextmanager
    def open(cls, path: Path) -> Iterator[Ledger]:
        """The ledger at ``path`` (created when missing), held exclusively (a lock file beside it) until closed: two
        analyses finishing together never send the same item twice."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with contextlib.closing(sqlite3.connect(path, timeout=settings.FINMON_SQLITE_BUSY_TIMEOUT)) as db:
                db.executescript(_SCHEMA)
                yield cls(db)

    @classmethod
    @contextlib.contextmanager
    def read(cls, path: Path) -> Iterator[Ledger | None]:
        """The ledger for reading only, without waiting for a run that holds it; None when there is none."""
        if not path.is_file():
            yield None
            return
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            yield cls(db)

    def queue(self, sink: str, items: Iterable[Item], run_id: str) -> int:
        """Queue each item not queued or sent to ``sink`` before; how many were new."""
        now = utcnow()
        with self.db:
            before = self.db.total_changes
            self.db.executemany(
                "INSERT OR IGNORE INTO items (sink, kind, id, app_key, severity, body, run, queued_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(sink, i.kind, i.id, i.app_key, i.severity, json.dumps(i.body, ensure_ascii=False), run_id, now)
                 for i in items])
            return self.db.total_changes - before

    def sinks(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT DISTINCT sink FROM items ORDER BY sink")]

    def waiting(self, sink: str, limit: int | None = None) -> list[Item]:
        """Items waiting for ``sink``: watch-list apps first, then findings most severe first, by app."""
        rows = self.db.execute("SELECT kind, id, app_key, severity, body FROM items WHERE sink = ? AND sent_at IS NULL "
                               f"ORDER BY {_ORDER} LIMIT ?", (sink, -1 if limit is None else limit))
        return [Item(kind, id_, key, severity, json.loads(body or "{}")) for kind, id_, key, severity, body in rows]

    def counts(self, sink: str) -> dict[str, int]:
        """Waiting for ``sink``: ``{"finding", "watch"}`` items, ``apps`` (distinct), ``finding_apps``."""
        out = {kind: 0 for kind in KINDS}
        out.update(self.db.execute("SELECT kind, count(*) FROM items WHERE sink = ? AND sent_at IS NULL GROUP BY kind",
                                   (sink,)).fetchall())
        out["apps"], out["finding_apps"] = self.db.execute(
            "SELECT count(DISTINCT app_key), count(DISTINCT CASE kind WHEN 'finding' THEN app_key END) FROM items "
            "WHERE sink = ? AND sent_at IS NULL", (sink,)).fetchone()
        return out

    def sent(self, sink: str) -> int:
        """Marks every item waiting for ``sink`` as sent now (their bodies are dropped, the ids kept); how many."""
        with self.db:
            return self.db.execute("UPDATE items SET sent_at = ?, body = NULL, attempts = attempts + 1, error = '' "
                                   "WHERE sink = ? AND sent_at IS NULL", (utcnow(), sink)).rowcount

    def failed(self, sink: str, error: str) -> None:
        with self.db:
            self.db.execute("UPDATE items SET attempts = attempts + 1, error = ? WHERE sink = ? AND sent_at IS NULL",
                            (error[:500], sink))

    @property
    def unread_since(self) -> str | None:
        """The start of an analysis whose new findings could not be read from the index (the next run reads from
        there on), None when every analysis's were read."""
        row = self.db.execute("SELECT value FROM state WHERE name = 'unread_since'").fetchone()
        return row[0] if row else None

    @unread_since.setter
    def unread_since(self, value: str | None) -> None:
        with self.db:
            if value is None:
                self.db.execute("DELETE FROM state WHERE name = 'unread_since'")
            else:
                self.db.execute("INSERT OR REPLACE INTO state (name, value) VALUES ('unread_since', ?)", (value,))


# --- messages ----------------------------------------------------------------------------------------------------
def _plain(text: Any) -> str:
    """Untrusted text (an app name, evidence) for a message: control characters escaped visibly, one line."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], "" if text is None else str(text))


def _short(text: str, limit: int = EVIDENCE_CHARS) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


@dataclass
class Message:
    """One message to one sink: the items listed (grouped by app), the counts of all, the links."""

    run: str
    threshold: str
    severities: tuple[str, ...]
    serve_url: str
    apps: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    created: str = field(default_factory=utcnow)
    test: bool = False

    @property
    def search_urls(self) -> dict[str, str]:
        """The web application's search page for the new findings of each severity alerted."""
        return {sev: f"{self.serve_url}/search?{urlencode({'severity': sev, 'status': 'new', 'sort': 'newest'})}"
                for sev in self.severities}

    @property
    def subject(self) -> str:
        if self.test:
            return "finmon: test message"
        level = {1: "high ", 2: "high or medium "}.get(len(self.severities), "")
        parts = []
        if self.counts.get("finding"):
            parts.append(f"{self.counts['finding']:,} new {level}finding{'' if self.counts['finding'] == 1 else 's'} "
                         f"in {_plural(self.counts['finding_apps'], 'app')}")
        if self.counts.get("watch"):
            parts.append(f"{_plural(self.counts['watch'], 'app')} newly matching the watch list")
        return "finmon: " + ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """The webhook's body (see the README, "Alerts")."""
        return {"source": "finmon", "test": self.test, "run": self.run, "created": self.created,
                "subject": self.subject, "threshold": self.threshold,
                "counts": {"findings": self.counts.get("finding", 0), "watchlist": self.counts.get("watch", 0),
                           "apps": self.counts.get("apps", 0), "unlisted": self.counts.get("unlisted", 0)},
                "search": [{"severity": sev, "url": url} for sev, url in self.search_urls.items()],
                "apps": self.apps}

    def text(self) -> str:
        if self.test:
            return f"This is a test message from finmon's alerts (sent {self.created}).\n"
        lines = [self.subject, f"Analysis {self.run}; sent {self.created}.", ""]
        lines += [f"New {sev} findings: {url}" for sev, url in self.search_urls.items()]
        for app in self.apps:
            stores = ", ".join(map(_plain, app["stores"])) or "-"
            lines += ["", f"{_plain(app['name']) or app['app_key']} ({_plain(app['app_key'])})",
                      f"  developer: {_plain(app['developer']) or '-'}; stores: {stores}", f"  {app['url']}"]
            lines += [f"  watch list: {m['field']} {_plain(m['value'])}" for m in app["watchlist"]]
            for f in app["findings"]:
                lines += [f"  [{f['severity']}] {f['rule_id']} {_plain(f['title'])}", f"      {_plain(f['evidence'])}",
                          f"      {f['url']}"]
        if self.counts.get("unlisted"):
            lines += ["", f"… and {_plural(self.counts['unlisted'], 'more item')} not listed here: see the search "
                          "page above."]
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        esc = lambda value: html.escape(_plain(value), quote=True)  # noqa: E731
        link = lambda url, label: f'<a href="{esc(url)}">{esc(label)}</a>'  # noqa: E731
        if self.test:
            body = f"<p>This is a test message from finmon's alerts (sent {esc(self.created)}).</p>"
        else:
            parts = [f"<h1 style=\"font-size:1.2em\">{esc(self.subject)}</h1>",
                     f"<p>Analysis {esc(self.run)}; sent {esc(self.created)}.</p><p>"
                     + " · ".join(link(url, f"new {sev} findings") for sev, url in self.search_urls.items()) + "</p>"]
            for app in self.apps:
                parts.append(f"<h2 style=\"font-size:1.05em\">{link(app['url'], app['name'] or app['app_key'])} "
                             f"<code>{esc(app['app_key'])}</code></h2><p>developer: {esc(app['developer'] or '-')}; "
                             f"stores: {esc(', '.join(app['stores']) or '-')}</p><ul>")
                parts += [f"<li>watch list: {esc(m['field'])} <strong>{esc(m['value'])}</strong></li>"
                          for m in app["watchlist"]]
                parts += [f"<li><strong>[{esc(f['severity'])}] {esc(f['rule_id'])}</strong> {esc(f['title'])}<br>"
                          f"<q>{esc(f['evidence'])}</q> {link(f['url'], 'evidence')}</li>" for f in app["findings"]]
                parts.append("</ul>")
            if self.counts.get("unlisted"):
                more = _plural(self.counts["unlisted"], "more item")
                parts.append(f"<p>… and {esc(more)} not listed here: see the search pages above.</p>")
            body = "\n".join(parts)
        return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body style=\"font-family:'PingFang SC',"
                f"'Microsoft YaHei','Noto Sans CJK SC',sans-serif\">{body}</body></html>")


def app_url(serve_url: str, key: str) -> str:
    return f"{serve_url}/app/{quote(key, safe=':')}"


def evidence_url(serve_url: str, finding_id: str) -> str:
    return f"{serve_url}/evidence/{quote(finding_id, safe='')}"


def compose(ledger: Ledger, sink: str, store, config: AlertConfig, run_id: str) -> Message:
    """The message for everything waiting for ``sink``: the first FINMON_ALERT_MAX_LISTED items listed by app (app
    name, developer and stores read from ``store`` when it has the app), the rest counted."""
    counts = ledger.counts(sink)
    listed = ledger.waiting(sink, config.max_listed)
    counts["unlisted"] = counts["finding"] + counts["watch"] - len(listed)
    groups: dict[str, dict[str, Any]] = {}
    for item in listed:
        if item.app_key not in groups:
            groups[item.app_key] = {"app_key": item.app_key, **_app_fields(store, item.app_key),
                                    "url": app_url(config.serve_url, item.app_key), "watchlist": [], "findings": []}
        if item.kind == "watch":
            groups[item.app_key]["watchlist"] += item.body.get("matched", [])
        else:
            groups[item.app_key]["findings"].append({"id": item.id, **item.body,
                                                     "url": evidence_url(config.serve_url, item.id)})
    for group in groups.values():
        group["findings"].sort(key=lambda f: (SEVERITIES.index(f["severity"]) if f["severity"] in SEVERITIES else 9,
                                              f["rule_id"], f["id"]))
    return Message(run=run_id, threshold=config.severity, severities=config.severities, serve_url=config.serve_url,
                   apps=list(groups.values()), counts=counts)


def _app_fields(store, key: str) -> dict[str, Any]:
    """Name, developer and stores of an app as the index has them (blank when it cannot say)."""
    app = None
    if store is not None:
        try:
            app = store.app(key)
        except Exception as exc:  # the message goes without the name rather than not at all
            log.warning("alerts: could not read app %s from the index (%s)", key, str(exc)[:200])
    app = app or {}
    return {"name": app.get("name") or "", "developer": app.get("developer") or "",
            "stores": list(app.get("stores") or [])}


# --- sinks -------------------------------------------------------------------------------------------------------
class Sink(Protocol):
    name: str

    def describe(self) -> str:
        """Where it sends, as logs may show it (no secret)."""

    def send(self, message: Message) -> None:
        """Deliver one message; :class:`SinkError` when the other side did not accept it."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirected POST is not a delivery: the 3xx is reported as it is


class WebhookSink:
    """A JSON POST (:meth:`Message.to_json`); any 2xx answer is acceptance."""

    name = "webhook"

    def __init__(self, url: str, timeout: float) -> None:
        self.url, self.timeout = url, timeout
        self._opener = urllib.request.build_opener(_NoRedirect)

    def describe(self) -> str:
        return f"webhook {redact_url(self.url)}"

    def send(self, message: Message) -> None:
        body = json.dumps(message.to_json(), ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8", "User-Agent": "finmon-alerts"})
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read(65536)
        except urllib.error.HTTPError as exc:
            with contextlib.closing(exc):
                code = exc.code
            raise SinkError(f"HTTP {code}", transient=code >= 500 or code in (408, 429)) from None
        except urllib.error.URLError as exc:
            raise SinkError(f"cannot connect: {exc.reason}", transient=True) from None
        except (OSError, http.client.HTTPException) as exc:  # a timeout, a connection reset, a garbled answer
            raise SinkError(f"{type(exc).__name__}: {exc}", transient=True) from None


class EmailSink:
    """An e-mail (plain text and HTML) over SMTP; STARTTLS unless turned off, and a password only over TLS."""

    name = "email"

    def __init__(self, config: SmtpConfig, timeout: float) -> None:
        self.config, self.timeout = config, timeout

    def describe(self) -> str:
        return f"e-mail via {self.config.host}:{self.config.port} to {', '.join(self.config.recipients)}"

    def email(self, message: Message) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = message.subject
        mail["From"] = self.config.sender
        mail["To"] = ", ".join(self.config.recipients)
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = make_msgid("finmon", domain=self.config.sender.rpartition("@")[2] or "localhost")
        mail.set_content(message.text())
        mail.add_alternative(message.html(), subtype="html")
        return mail

    def send(self, message: Message) -> None:
        cfg = self.config
        try:
            refused = self._send(self.email(message))
        except SinkError:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise SinkError(f"every recipient refused: {_smtp_reasons(exc.recipients)}",
                            transient=all(400 <= code < 500 for code in codes)) from None
        except smtplib.SMTPResponseException as exc:  # sender refused, authentication, STARTTLS refused, data refused
            reason = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            transient = 400 <= exc.smtp_code < 500
            raise SinkError(f"SMTP {exc.smtp_code} {_plain(reason)[:200]}", transient=transient) from None
        except (ssl.SSLError, ssl.CertificateError) as exc:
            raise SinkError(f"TLS with {cfg.host}:{cfg.port} failed: {exc}", transient=False) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise SinkError(f"{cfg.host}:{cfg.port}: {exc}", transient=False) from None
        except (OSError, smtplib.SMTPException) as exc:  # connection refused or lost, a timeout
            raise SinkError(f"{type(exc).__name__}: {exc}", transient=True) from None
        if refused:
            log.warning("alerts: %s refused some recipients: %s", self.describe(), _smtp_reasons(refused))

    def _send(self, mail: EmailMessage) -> dict[str, tuple[int, bytes]]:
        """One SMTP session; the recipients the server refused (when it took at least one)."""
        cfg = self.config
        smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=self.timeout)  # a greeting other than 220 raises
        try:
            smtp.ehlo()
            if cfg.starttls:
                if not smtp.has_extn("starttls"):
                    raise SinkError(f"{cfg.host}:{cfg.port} does not offer STARTTLS (set FINMON_SMTP_STARTTLS=0 only "
                                    "for a server without a password on a trusted network)", transient=False)
                smtp.starttls(context=ssl.create_default_context(cafile=cfg.ca_certs or None))
                smtp.ehlo()
            if cfg.username:
                if not cfg.starttls:
                    raise SinkError("refusing to send the SMTP password over a connection without TLS "
                                    "(FINMON_SMTP_STARTTLS is off)", transient=False)
                smtp.login(cfg.username, cfg.password)
            refused = smtp.send_message(mail, from_addr=cfg.sender, to_addrs=list(cfg.recipients))
            with contextlib.suppress(smtplib.SMTPException, OSError):  # accepted already: a lost goodbye is no matter
                smtp.quit()
            return refused
        finally:
            smtp.close()


def _smtp_reasons(refused: Mapping[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{addr} {code} {msg.decode('utf-8', 'replace') if isinstance(msg, bytes) else msg}"
                     for addr, (code, msg) in refused.items())[:300]


def deliver(sink: Sink, message: Message, tries: int, backoff: float) -> str | None:
    """Send with up to ``tries`` attempts, ``backoff`` seconds before the second, doubled for each next one; a refusal
    that another attempt cannot change ends it at once. None when delivered, else why not."""
    attempt = 1
    while True:
        try:
            sink.send(message)
            return None
        except SinkError as exc:
            if not exc.transient or attempt >= tries:
                return f"{exc} (attempt {attempt} of {tries})"
            delay = backoff * 2 ** (attempt - 1)
            log.warning("alerts: %s: %s; trying again in %.3g s", sink.describe(), exc, delay)
            time.sleep(delay)
            attempt += 1


# --- after an analysis -------------------------------------------------------------------------------------------
def after_analysis(store, run: Run, ledger_file: Path | None = None,
                   environ: Mapping[str, str] = os.environ) -> dict[str, int]:
    """Queue what the analysis ``run`` (just stored in ``store``) found new at or above the threshold, and the apps
    newly matching the watch list, then send each configured sink everything waiting for it in one message.

    ``ledger_file``: where the ledger is unless FINMON_ALERT_LEDGER says (:func:`ledger_path`). Never raises: a failure
    is logged and counted. Returns counters for the run: ``alerts/new`` (items queued), ``alerts/sent`` and
    ``alerts/failed`` (messages), ``alerts/pending`` (items still waiting), ``alerts/errors`` (configuration, watch
    list or index problems), ``alerts/watchlist_bad_lines``; nothing when no sink is configured.
    """
    try:
        config = AlertConfig.from_env(environ)
    except AlertConfigError as exc:
        log.error("alerts: %s; nothing sent", exc)
        return {"alerts/errors": 1}
    sinks = config.sinks()
    if not sinks:
        log.debug("alerts off: no sink configured (FINMON_ALERT_WEBHOOK, FINMON_SMTP_HOST)")
        return {}
    counters: Counter[str] = Counter()
    try:
        with Ledger.open(ledger_path(ledger_file, environ)) as ledger:
            _queue(ledger, store, run, config, sinks, counters)
            for sink in sinks:
                _dispatch(ledger, sink, store, config, run.id, counters)
    except Exception:  # a full disk, a broken ledger: the analysis stands, and the log says why
        log.exception("alerts after %s failed", run.id)
        counters["alerts/errors"] += 1
    return {name: counters[name] for name in ("alerts/new", "alerts/sent", "alerts/failed", "alerts/pending",
                                              "alerts/errors", "alerts/watchlist_bad_lines")}


def _queue(ledger: Ledger, store, run: Run, config: AlertConfig, sinks: list[Sink], counters: Counter[str]) -> None:
    """Queue for each sink the findings first seen since the run started (and since an earlier run whose new findings
    could not be read) at or above the threshold, and the newly watched apps."""
    since = min((t for t in (run.started, ledger.unread_since) if t), key=lambda t: parse_utc(t) or _NEVER)
    try:
        for severity in config.severities:
            after = ""
            while page := store.first_seen(since, severity=severity, after=after, limit=_PAGE):
                items = [Item.of_finding(f) for f in page]
                for sink in sinks:
                    counters["alerts/new"] += ledger.queue(sink.name, items, run.id)
                after = page[-1].id
        ledger.unread_since = None
    except Exception as exc:  # the index went away after the analysis: the next run reads from ``since`` on
        ledger.unread_since = since
        log.error("alerts: could not read the new findings of %s from the index (%s); the next analysis will",
                  run.id, str(exc)[:300])
        counters["alerts/errors"] += 1
    if not config.watchlist:
        return
    try:
        watchlist, skipped = load_watchlist(config.watchlist)
        counters["alerts/watchlist_bad_lines"] += skipped
        if not len(watchlist):
            return
        watched = [Item("watch", app["key"], app["key"], "", {"matched": found})
                   for app in store.apps() if (found := watchlist.matches(app))]
    except Exception as exc:
        log.error("alerts: watch list not applied (%s)", str(exc)[:300])
        counters["alerts/errors"] += 1
        return
    for sink in sinks:
        counters["alerts/new"] += ledger.queue(sink.name, watched, run.id)  # an app watched before stays as it was


def _dispatch(ledger: Ledger, sink: Sink, store, config: AlertConfig, run_id: str, counters: Counter[str]) -> None:
    """One message to ``sink`` with everything waiting for it; its items are marked sent only once it accepted."""
    if not sum(ledger.counts(sink.name)[kind] for kind in KINDS):
        return
    try:
        message = compose(ledger, sink.name, store, config, run_id)
        error = deliver(sink, message, config.tries, config.backoff)
    except Exception as exc:  # a bug making or sending it: kept waiting, said, counted
        log.exception("alerts: %s: the message could not be made or sent", sink.describe())
        error = f"{type(exc).__name__}: {exc}"
    if error is None:
        sent = ledger.sent(sink.name)
        counters["alerts/sent"] += 1
        log.info("alerts: %s accepted %s (%d items)", sink.describe(), message.subject, sent)
    else:
        ledger.failed(sink.name, error)
        counters["alerts/failed"] += 1
        waiting = ledger.counts(sink.name)
        log.error("alerts: %s failed: %s; %d items wait for the next run", sink.describe(), error,
                  waiting["finding"] + waiting["watch"])
    waiting = ledger.counts(sink.name)
    counters["alerts/pending"] += waiting["finding"] + waiting["watch"]


# --- for operators (finmon alerts …) ---------------------------------------------------------------------------
def send_test(config: AlertConfig) -> dict[str, str | None]:
    """A test message to each configured sink, one attempt each: sink description → None (accepted) or why not."""
    message = Message(run="", threshold=config.severity, severities=config.severities, serve_url=config.serve_url,
                      test=True)
    return {sink.describe(): deliver(sink, message, 1, 0.0) for sink in config.sinks()}


def waiting_messages(path: Path, store, config: AlertConfig) -> dict[str, Message]:
    """Per sink with items waiting in the ledger at ``path``: the message its next run would send (without new
    items). Read only; an absent ledger has nothing waiting."""
    with Ledger.read(path) as ledger:
        if ledger is None:
            return {}
        return {sink: compose(ledger, sink, store, config, "(next analysis)") for sink in ledger.sinks()
                if sum(ledger.counts(sink)[kind] for kind in KINDS)}
