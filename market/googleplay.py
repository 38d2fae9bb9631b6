"""The simulator's Google Play pages, in the shapes of the real ones (docs/stores.md): data in
AF_initDataCallback script blocks, an app's record an array whose field n sits at index n - 1, the Data safety
record an object keyed by field number, the permission list a batchexecute answer.

Pure functions from an :class:`~market.population.App` to a page body; market.server serves them.
"""
from __future__ import annotations

import html
import json
from datetime import date, datetime, time, timezone
from typing import Any

from market.population import LABELS, PREFIX, RULES, App

RECORD_FIELDS = 155  # the length of a real details record
SEARCH_PAGE_SIZE = 30  # results Google Play's web search shows for a query
_PLAY_LABELS: dict[str, list[str]] = {k: v for k, v in LABELS["permissions_play"].items() if not k.startswith("_")}
_DATA_SAFETY: dict[str, list[str]] = RULES["data_safety"]["types"]
_PRACTICES = ("Data is encrypted in transit", "You can request that data be deleted")


def _put(root: list, path: tuple[int, ...], value: Any) -> None:
    """Set ``root[p0][p1]…`` to ``value``, growing the arrays on the way with nulls."""
    for step in path[:-1]:
        while len(root) <= step:
            root.append(None)
        if root[step] is None:
            root[step] = []
        root = root[step]
    while len(root) <= path[-1]:
        root.append(None)
    root[path[-1]] = value


def _page(title: str, blocks: dict[str, Any], canonical: str = "") -> str:
    """A page with one AF_initDataCallback script per block (``ds:N`` key → data)."""
    scripts = "".join(
        f"<script class=\"{key}\" nonce=\"sim\">AF_initDataCallback({{key: '{key}', hash: '1', "
        f"data:{json.dumps(data, ensure_ascii=False)}, sideChannel: {{}}}});</script>" for key, data in blocks.items())
    link = f'<link rel="canonical" href="{html.escape(canonical)}">' if canonical else ""
    return (f'<!doctype html><html lang="en" dir="ltr"><head><meta charset="utf-8"><title id="main-title">'
            f"{html.escape(title)}</title>{link}{scripts}</head><body></body></html>")


def details_page(app: App, origin: str, policy_url: str | None) -> str:
    """The app's details page: its record under ds:5 (other blocks of the real page left out)."""
    record: list = [None] * RECORD_FIELDS
    legal = app.legal_entity("googleplay")
    updated = int(datetime.combine(date.fromisoformat(app.updated), time(8), timezone.utc).timestamp())
    _put(record, (0,), [app.name])
    _put(record, (13,), [f"{app.downloads:,}+", app.downloads, app.downloads, ""])
    _put(record, (68,), [app.developer_display, [None, None, None, None, [None, None,
                                                 f"/store/apps/dev?id={app.artist_id}"]], str(app.artist_id)])
    contact = [[None] * 5 + [[None, None, f"https://www.{app.developer_slug}.com.cn/"]],
               [f"support@{app.developer_slug}.com.cn"], None, None,
               [legal, [f"legal@{app.developer_slug}.com.cn"], [f"1 {app.developer_slug.title()} Road\nChina"], None]]
    _put(record, (69,), contact)
    _put(record, (72,), [[None, html.escape(app.description).replace("\n", "<br>")]])
    _put(record, (79,), [[[app.category("googleplay"), None, "FINANCE"]]])
    if policy_url:
        _put(record, (99,), [[None] * 5 + [[None, None, policy_url]]])
    _put(record, (140,), [[[app.version]]])
    _put(record, (145,), [[app.updated, [updated, 0]]])
    url = f"{origin}/googleplay/store/apps/details?id={app.package}&hl=en"
    return _page(f"{app.name} - Apps on Google Play", {"ds:5": [[[[]]], [None, None, record]]}, url)


def datasafety_page(app: App, policy_url: str | None) -> str:
    """The app's Data safety page: its record under ds:3, keyed by field number as on the real page."""
    collected: dict[str, list] = {}
    for type_id in app.data_safety:
        category, data_type = _DATA_SAFETY[type_id]
        collected.setdefault(category, []).append([data_type, 0, "App functionality, Account management"])
    entries = [[[[None, 2], category, [None, ", ".join(row[0] for row in rows)]], None, None, None, rows]
               for category, rows in collected.items()]
    section_collected = [entries or None, "Data collected" if entries else "No data collected"]
    section_shared = [None, "No data shared with third parties"]
    practices = [[[None, 2], label, [None, label]] for label in _PRACTICES]
    record: dict[str, Any] = {"138": [None, None, None, None, [section_shared, section_collected], None, None, None,
                                      None, [[None, 2], "Security practices", practices]]}
    if policy_url:
        record["100"] = [[None] * 5 + [[None, None, policy_url]]]
    return _page(f"Data safety: {app.name}", {"ds:3": [None, [None, None, [[app.name], record]]]})


def permissions_answer(app: App | None) -> str:
    """The batchexecute answer of the permission list (RPC xdSrCf): groups of English labels, "Other" apart."""
    if app is None:
        payload = None
    else:
        groups: dict[str, list] = {}
        for permission in app.permissions:
            group, label = _PLAY_LABELS.get(permission.removeprefix(PREFIX), ("Other", permission))
            groups.setdefault(group, []).append([None, label])
        common = [[name, [None, 2], labels, ["perm"]] for name, labels in groups.items() if name != "Other"]
        other = [["Other", [None, 2], groups["Other"], ["perm"]]] if "Other" in groups else []
        payload = json.dumps([common, other, []])
    frames = [["wrb.fr", "xdSrCf", payload, None, None, None, "1"], ["di", 35], ["af.httprm", 35, "1", 17]]
    return ")]}'\n\n" + json.dumps(frames) + "\n"


def search_page(apps: list[App], more: bool) -> str:
    """A search page: the results section ([0][1][1][22]), with a continuation token when there are more."""
    entries = [[[[app.package, 7], None, None, app.name]] for app in apps]
    token = [None, None, None, [None, "sim-more"]] if more else [""]
    section = [None] * 22 + [[entries, token]]
    return _page("Search - Google Play", {"ds:4": [[None, [[None] * 24, section]]]})
