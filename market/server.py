"""The market simulator's HTTP server: three store formats, policies, robots.txt and faults.

One aiohttp application serves every store under its own path prefix (see the shared spec):
``/itunes`` (iTunes Search/Lookup JSON) with app pages under ``/apple``, ``/appgallery``
(AppGallery-like JSON API), ``/xiaomi`` (Xiaomi-like HTML), ``/myapp`` (Tencent MyApp's search JSON and
app pages, market/myapp.py) and ``/policies``. Search indexes
for the configured keywords are built at startup from the population's cards; full apps and
policy texts are generated on first request.

Detail pages, the Apple app page, policies and APKs carry a strong ``ETag`` (a hash of what
determines their bytes: seed, resource, host and the weeks it changed in, never of the body),
``Last-Modified`` and ``Cache-Control: no-cache``, and answer a matching ``If-None-Match`` (or,
without one, a recent enough ``If-Modified-Since``) with an empty 304. :meth:`MarketServer.advance`
moves a running server to the next week.
"""
from __future__ import annotations

import asyncio
import collections
import hashlib
import io
import json
import logging
import random
import re
import threading
from datetime import date, datetime, time, timezone
from email.utils import format_datetime, parsedate_to_datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, urlsplit

import jinja2
from aiohttp import web

from finmon import settings
from market import googleplay, myapp
from market.apk import build_apk, zip_bomb
from market.population import (LABELS, PREFIX, TERMS, App, Card, Market, Policy, apk_path, apk_spec, category_of,
                               policy_document)

log = logging.getLogger(__name__)

STORES = ("itunes", "appgallery", "xiaomi", "googleplay", "myapp")
ITUNES_TRACK_BASE = 1_400_000_000
APPGALLERY_ID_BASE = 1_000_000
ITUNES_MAX_LIMIT = 200
APPGALLERY_MAX_RESULTS = 100
APPGALLERY_SEARCH_LAYOUT = (1001, "searchresultcard")  # (layoutId, layoutName) of search results: parsers ignore the name
# The detail card of each field a wrong-typed fault replaces (market/data/population.json wrong_type_fields).
APPGALLERY_FIELD_CARDS = {"name": "detailheadcard", "intro": "detailheadcard", "releaseDate": "detailappinfocard",
                          "developer": "detailappinfocard", "appIntro": "detailappintrocard"}
XIAOMI_PAGE_SIZE = 30
SEARCH_CACHE_SIZE = 256  # keywords outside settings.FINMON_KEYWORDS kept indexed
ROBOTS_TXT = "User-agent: *\nDisallow: /private/\n"
CONTENT_VERSION = 2  # part of every ETag: bump it when a template or a page format changes
NOT_MODIFIED = "not_modified"  # the hits key counting 304 answers
UNREACHABLE_PORT = 1  # where an unreachable app page points (tcpmux: nothing listens on it here)
FAULTED = "faulted"  # the hits key counting answers with a seeded fault (an app's faults, a policy's 500)
# Hostile links (opt-in: MarketServer(hostile=rate)): store data links a private address, a local file,
# another loopback port, this server by a name that resolves to loopback, or a redirect into the
# cloud-metadata range, or the APK is a zip bomb.
HOSTILE_KINDS = ("private", "file", "other_port", "loopback_name", "redirect_private")
BOMB_BYTES = 1024 ** 3  # what a zip-bomb APK's classes.dex inflates to
METADATA_URL = "http://169.254.169.254/latest/meta-data/"

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


class MarketApp:
    """The request handlers over one :class:`Market`, with its search indexes and fault state."""

    def __init__(self, market: Market, keywords: list[str] | None = None, hostile: float = 0.0,
                 bomb_bytes: int = BOMB_BYTES) -> None:
        self.market = market
        self.hostile, self.bomb_bytes = hostile, bomb_bytes
        self.cards = {c.index: c for c in market.cards()}  # the listed apps, by index
        self.hits: collections.Counter[str] = collections.Counter()  # requests per route name, and 304s
        self.fetches: collections.Counter[str] = collections.Counter()  # requests per method, URL path and body
        self._served: set[str] = set()  # detail pages already hit once (transient faults)
        self._xiaomi_ids = {c.package: c.index for c in self.cards.values() if "xiaomi" in c.stores}
        self._play_ids = {c.package: c.index for c in self.cards.values() if "googleplay" in c.stores}
        self._myapp_categories: dict[int, list[int]] = {}  # categoryId -> indices of its apps, built on first use
        self._android_ids = {c.package: c.index for c in self.cards.values() if c.platform == "android"}
        self._search: dict[str, dict[str, list[int]]] = {}
        self._fixed = set(settings.FINMON_KEYWORDS if keywords is None else keywords)
        for keyword in self._fixed:
            self._search[keyword] = self._scan(keyword)

    def switch(self, fresh: "MarketApp") -> None:
        """Serve ``fresh``'s market and indexes from now on (call it on the server's loop); hits carry over."""
        self.market, self.cards, self._search = fresh.market, fresh.cards, fresh._search
        self._xiaomi_ids, self._android_ids = fresh._xiaomi_ids, fresh._android_ids
        self._play_ids, self._myapp_categories = fresh._play_ids, fresh._myapp_categories

    # --- application ----------------------------------------------------------
    def build(self) -> web.Application:
        app = web.Application(middlewares=[self._count])
        routes: list[tuple[str, Callable]] = [
            ("/robots.txt", self.robots),
            ("/itunes/search", self.itunes_search),
            ("/itunes/lookup", self.itunes_lookup),
            ("/apple/cn/app/id{track_id:\\d+}", self.itunes_page),
            ("/appgallery/uowap/index", self.appgallery),
            ("/xiaomi/search", self.xiaomi_search),
            ("/xiaomi/details", self.xiaomi_details),
            ("/policies/{slug}/{file}", self.policy),
            ("/apk/{package}.apk", self.apk),
            ("/private/{tail:.*}", self.private),
            ("/redirect/{target}/{package}", self.hostile_redirect),
            ("/googleplay/store/search", self.googleplay_search),
            ("/googleplay/store/apps/details", self.googleplay_details),
            ("/googleplay/store/apps/datasafety", self.googleplay_datasafety),
            ("/myapp/myapp/searchAjax.htm", self.myapp_search),
            ("/myapp/myapp/cate/appList.htm", self.myapp_category),
            ("/myapp/appdetail/{package}", self.myapp_detail),
        ]
        for path, handler in routes:
            app.router.add_get(path, handler, name=handler.__name__)
        app.router.add_post("/googleplay/_/PlayStoreUi/data/batchexecute", self.googleplay_batch,
                            name="googleplay_batch")
        return app

    @web.middleware
    async def _count(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        route = request.match_info.route
        self.hits[route.name or "unknown"] += 1
        body = await request.read() if request.can_read_body else b""
        self.fetches[f"{request.method} {request.path_qs} {hashlib.sha256(body).hexdigest()[:16] if body else ''}"] += 1
        return await handler(request)

    # --- search ---------------------------------------------------------------
    def _scan(self, keyword: str) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {store: [] for store in STORES}
        if keyword:
            for card in self.cards.values():
                if keyword in card.name or keyword in card.description:
                    for store in card.stores:
                        found[store].append(card.index)
        return found

    def search(self, store: str, keyword: str) -> list[int]:
        """Indices of the apps listed on ``store`` whose name or description contains ``keyword``."""
        keyword = keyword.strip()
        hits = self._search.get(keyword)
        if hits is None:
            if len(self._search) - len(self._fixed) >= SEARCH_CACHE_SIZE:
                stale = next(k for k in self._search if k not in self._fixed)
                del self._search[stale]
            hits = self._search[keyword] = self._scan(keyword)
        return hits[store]

    def _transient(self, store: str, ident: str, app: App) -> bool:
        """True on the first request for a detail page with a transient fault."""
        if f"{store}_transient_503" not in app.faults or f"{store}:{ident}" in self._served:
            return False
        self._served.add(f"{store}:{ident}")
        return True

    def _card(self, index: int, store: str) -> Card | None:
        card = self.cards.get(index)
        return card if card is not None and store in card.stores else None

    def _validators(self, request: web.Request, resource: str, modified: str, *revisions: object) -> dict[str, str]:
        """ETag, Last-Modified (``modified``, an ISO date) and Cache-Control of a resource: the ETag hashes
        what determines its bytes (the resource, the host its links use, the weeks it changed in), not them."""
        key = f"{CONTENT_VERSION}|{self.market.seed}|{resource}|{request.host}|{revisions}"
        etag = hashlib.blake2b(key.encode(), digest_size=12).hexdigest()
        when = datetime.combine(date.fromisoformat(modified), time(), timezone.utc)
        return {"ETag": f'"{etag}"', "Last-Modified": format_datetime(when, usegmt=True), "Cache-Control": "no-cache"}

    def _not_modified(self, request: web.Request, headers: dict[str, str]) -> web.Response | None:
        """An empty 304 when the client's copy is current (If-None-Match, else If-Modified-Since)."""
        tags = request.if_none_match
        if tags is not None:
            fresh = any(tag.value in ("*", headers["ETag"][1:-1]) for tag in tags)
        else:
            since = request.if_modified_since
            fresh = since is not None and since >= parsedate_to_datetime(headers["Last-Modified"])
        if not fresh:
            return None
        self.hits[NOT_MODIFIED] += 1
        return web.Response(status=304, headers=headers)

    def hostile_link(self, app: App) -> tuple[str, str] | None:
        """(target, kind) of the hostile link in ``app``'s store data, drawn at the ``hostile`` rate per
        (seed, app): target detail (iOS app page), policy or apk; kind one of HOSTILE_KINDS, or apk_bomb."""
        if not self.hostile:
            return None
        rng = random.Random(f"{self.market.seed}:hostile:{app.index}")
        if rng.random() >= self.hostile:
            return None
        targets = [t for t, has in (("detail", app.platform == "ios"), ("policy", app.policy.path is not None),
                                    ("apk", app.apk is not None)) if has]
        target = targets[int(rng.random() * len(targets))]
        kinds = HOSTILE_KINDS + (("apk_bomb",) if target == "apk" else ())
        return target, kinds[int(rng.random() * len(kinds))]

    def _link(self, origin: str, app: App, target: str, normal: str | None) -> str | None:
        """The URL of ``target`` in the app's store data: ``normal``, or its hostile link."""
        hostile = self.hostile_link(app)
        if hostile is None or hostile[0] != target or hostile[1] == "apk_bomb":
            return normal
        return {"private": f"http://10.255.255.1/{target}/{app.package}", "file": "file:///etc/hostname",
                "other_port": f"http://127.0.0.1:1/{target}/{app.package}",
                "loopback_name": f"http://localhost:{urlsplit(origin).port}/{target}/{app.package}",
                "redirect_private": f"{origin}/redirect/{target}/{app.package}"}[hostile[1]]

    def policy_url(self, request: web.Request, app: App) -> str | None:
        return self._link(_origin(request), app, "policy", _origin(request) + app.policy.path if app.policy.path else None)

    def apk_url(self, request: web.Request, app: App) -> str | None:
        return self._link(_origin(request), app, "apk", _origin(request) + apk_path(app) if app.apk is not None else None)

    def hostile_links(self, origin: str) -> dict[str, dict[str, str | None]]:
        """App key → {"target", "kind", "url"} of every listed app with a hostile link (for the tests)."""
        out = {}
        for card in self.cards.values():
            app = self.market[card.index]
            hostile = self.hostile_link(app)
            if hostile is not None:
                target, kind = hostile
                normal = {"detail": f"{origin}/apple/cn/app/id{app.track_id}", "apk": origin + apk_path(app),
                          "policy": f"{origin}{app.policy.path}"}[target]
                out[app.key] = {"target": target, "kind": kind, "url": self._link(origin, app, target, normal)}
        return out

    # --- handlers -------------------------------------------------------------
    async def robots(self, request: web.Request) -> web.Response:
        return web.Response(text=ROBOTS_TXT)

    async def private(self, request: web.Request) -> web.Response:
        return web.Response(text="<html><body><p>内部页面</p></body></html>", content_type="text/html")

    async def hostile_redirect(self, request: web.Request) -> web.Response:
        """A store-data link that redirects into the cloud-metadata range."""
        raise web.HTTPFound(METADATA_URL)

    async def itunes_search(self, request: web.Request) -> web.Response:
        term = request.query.get("term", "")
        limit = _int(request.query.get("limit"), 50, 1, ITUNES_MAX_LIMIT)
        offset = _int(request.query.get("offset"), 0, 0, None)
        indices = self.search("itunes", term)[offset:offset + limit]
        return self._itunes_json(request, [self.market[i] for i in indices])

    async def itunes_lookup(self, request: web.Request) -> web.Response:
        apps = []
        for raw in filter(None, request.query.get("id", "").split(",")):
            card = self._card(_int(raw, -1, None, None) - ITUNES_TRACK_BASE, "itunes")
            if card is not None:
                apps.append(self.market[card.index])
        bundles = set(filter(None, request.query.get("bundleId", "").split(",")))
        if bundles:
            apps += [self.market[c.index] for c in self.cards.values() if c.package in bundles and "itunes" in c.stores]
        return self._itunes_json(request, apps)

    def _itunes_json(self, request: web.Request, apps: list[App]) -> web.Response:
        origin = _origin(request)
        body = {"resultCount": len(apps), "results": [
            {**_itunes_result(origin, app), "trackViewUrl": self._link(origin, app, "detail", _track_view_url(origin, app)),
             **self._wrong_typed(app, "itunes"), **self._unreachable_page(origin, app)}
            for app in apps]}
        if any({"itunes_wrong_type", "itunes_unreachable_page"} & set(app.faults) for app in apps):
            self.hits[FAULTED] += 1
        return web.Response(text=json.dumps(body, ensure_ascii=False), content_type="text/javascript")

    @staticmethod
    def _unreachable_page(origin: str, app: App) -> dict[str, str]:
        """The app page on a port of this host where nothing listens, for an app with ``itunes_unreachable_page``."""
        if "itunes_unreachable_page" not in app.faults:
            return {}
        return {"trackViewUrl": f"http://{urlsplit(origin).hostname}:{UNREACHABLE_PORT}/apple/cn/app/id{app.track_id}"}

    def _wrong_typed(self, app: App, store: str) -> dict[str, Any]:
        """{field: wrong-typed value} for an app with the ``<store>_wrong_type`` fault, else {}."""
        if f"{store}_wrong_type" not in app.faults:
            return {}
        field, value = self.market.wrong_typed_field(app, store)
        return {field: value}

    async def itunes_page(self, request: web.Request) -> web.Response:
        card = self._card(int(request.match_info["track_id"]) - ITUNES_TRACK_BASE, "itunes")
        if card is None:
            raise web.HTTPNotFound()
        app = self.market[card.index]
        headers = self._validators(request, f"apple:{app.index}", max(app.updated, app.policy.effective),
                                   app.changes, app.policy.revisions)  # privacy labels follow the policy
        if (unchanged := self._not_modified(request, headers)) is not None:
            return unchanged
        updated = date.fromisoformat(app.updated)
        html = _templates.get_template("itunes_app.html").render(
            app=app, base=_origin(request), category=app.category("itunes"),
            updated_text=f"{updated.year}年{updated.month}月{updated.day}日",
            policy_url=self.policy_url(request, app), labels=app.privacy_labels())
        return web.Response(text=html, content_type="text/html", headers=headers)

    async def appgallery(self, request: web.Request) -> web.Response:
        uri = request.query.get("uri", "")
        if request.query.get("method") != "internal.getTabDetail" or "|" not in uri:
            return _json({"rtnCode": 1, "rtnDesc": "invalid request"}, status=400)
        kind, _, value = uri.partition("|")
        if kind == "searchApp":
            return self._appgallery_search(request, value)
        if kind == "app":
            return self._appgallery_detail(request, value)
        return _json({"rtnCode": 1, "rtnDesc": "unknown uri"}, status=400)

    def _appgallery_search(self, request: web.Request, keyword: str) -> web.Response:
        size = _int(request.query.get("maxResults"), 25, 1, APPGALLERY_MAX_RESULTS)
        page = _int(request.query.get("reqPageNum"), 1, 1, None)
        found = self.search("appgallery", keyword)
        items = []
        for i in found[(page - 1) * size:page * size]:
            app = self.market[i]
            appid = f"C{APPGALLERY_ID_BASE + i}"
            items.append({"appid": appid, "name": app.name, "package": app.package,
                          "icon": f"{_origin(request)}/static/icon/{appid}.png", "tagName": app.category("appgallery"),
                          "kindName": app.category("appgallery"), "downCountDesc": _install_text(app.downloads),
                          "memo": app.description.split("。", 1)[0][:40], "detailId": f"app|{appid}",
                          "appVersionName": app.version})
        pages = -(-len(found) // size)
        layout = {"layoutId": APPGALLERY_SEARCH_LAYOUT[0], "layoutName": APPGALLERY_SEARCH_LAYOUT[1]}
        return _json({"rtnCode": 0, "name": f"searchApp|{keyword}", "statKey": "searchApp", "count": len(found),
                      "totalPages": pages, "hasNextPage": int(page < pages), "layout": [{**layout, "maxRows": -1}],
                      "layoutData": [{**layout, "dataList": items}]})

    def _appgallery_detail(self, request: web.Request, appid: str) -> web.Response:
        number = _int(appid[1:], -1, None, None) if appid.startswith("C") else -1
        card = self._card(number - APPGALLERY_ID_BASE, "appgallery")
        if card is None:
            return _json({"rtnCode": 1, "rtnDesc": "app not found"}, status=404)
        app = self.market[card.index]
        if self._transient("appgallery", appid, app):
            self.hits[FAULTED] += 1
            raise web.HTTPServiceUnavailable()
        if "appgallery_redirect_chain" in app.faults:  # to the same page with one more hop, without end
            self.hits[FAULTED] += 1
            hop = _int(request.query.get("hop"), 0, 0, None) + 1
            raise web.HTTPFound(request.rel_url.update_query(hop=hop))
        headers = self._validators(request, f"appgallery:{app.index}", app.updated, app.changes)
        if (unchanged := self._not_modified(request, headers)) is not None:
            return unchanged
        labels = LABELS["permissions"]
        icon = f"{_origin(request)}/static/icon/{appid}.png"
        cards: dict[str, dict[str, Any]] = {
            "detailheadcard": {"appid": appid, "name": app.name, "icoUri": icon, "intro": _install_text(app.downloads),
                               "stars": str(app.rating), "gradeCount": str(app.rating_count)},
            "detailhiddencard": {"appid": appid, "package": app.package, "name": app.name, "versionName": app.version,
                                 "versionCode": str(_version_code(app.version)), "icon": icon,
                                 "downurl": self.apk_url(request, app), "detailId": f"app|{appid}",
                                 "size": app.size_bytes},
            "detailappinfocard": {"developer": app.legal_entity("appgallery"), "releaseDate": app.updated,
                                  "version": app.version, "sizeDesc": f"{app.size_bytes / 1048576:.1f}MB"},
            "detailappintrocard": {"appIntro": app.description},
            "appdetailpermissioncard": {"permissions": [  # card name unconfirmed (no public source shows one)
                labels[p.removeprefix(PREFIX)] if "appgallery_string_permissions" in app.faults
                else {"name": p, "desc": labels[p.removeprefix(PREFIX)]} for p in app.permissions]},
        }
        for field, value in self._wrong_typed(app, "appgallery").items():
            cards[APPGALLERY_FIELD_CARDS[field]][field] = value
        url = self.policy_url(request, app)
        if url:
            cards["appprivacycard"] = {"privacyUrl": url}  # card name unconfirmed, as the permissions'
        layout = [{"layoutId": 2001 + n, "layoutName": name, "dataList": [card]}
                  for n, (name, card) in enumerate(cards.items())]
        text = json.dumps({"rtnCode": 0, "name": f"app|{appid}", "statKey": "appdetail",
                           "layout": [{"layoutId": c["layoutId"], "layoutName": c["layoutName"]} for c in layout],
                           "layoutData": layout}, ensure_ascii=False)
        if "appgallery_malformed_json" in app.faults:
            text = text[: len(text) // 2]
        if {"appgallery_malformed_json", "appgallery_wrong_type", "appgallery_string_permissions"} & set(app.faults):
            self.hits[FAULTED] += 1
        return web.Response(text=text, content_type="application/json", headers=headers)

    async def xiaomi_search(self, request: web.Request) -> web.Response:
        keyword = request.query.get("keywords", "")
        page = _int(request.query.get("page"), 1, 1, None)
        found = self.search("xiaomi", keyword)
        cards = [self.cards[i] for i in found[(page - 1) * XIAOMI_PAGE_SIZE:page * XIAOMI_PAGE_SIZE]]
        html = _templates.get_template("xiaomi_search.html").render(
            keyword=keyword, keyword_q=quote(keyword), cards=cards, page=page,
            has_next=page * XIAOMI_PAGE_SIZE < len(found))
        return web.Response(text=html, content_type="text/html")

    async def xiaomi_details(self, request: web.Request) -> web.Response:
        package = request.query.get("id", "")
        index = self._xiaomi_ids.get(package)
        if index is None:
            raise web.HTTPNotFound()
        app = self.market[index]
        if "xiaomi_503" in app.faults or self._transient("xiaomi", package, app):
            self.hits[FAULTED] += 1
            raise web.HTTPServiceUnavailable()
        if "xiaomi_redirect_loop" in app.faults:  # to itself
            self.hits[FAULTED] += 1
            raise web.HTTPFound(request.rel_url)
        headers = self._validators(request, f"xiaomi:{app.index}", app.updated, app.changes)
        if (unchanged := self._not_modified(request, headers)) is not None:
            return unchanged
        labels = LABELS["permissions"]
        html = _templates.get_template("xiaomi_details.html").render(
            app=app, category=app.category("xiaomi"), legal_entity=app.legal_entity("xiaomi"),
            policy_url=self.policy_url(request, app),
            apk_url=self.apk_url(request, app),
            permission_labels=[labels[p.removeprefix(PREFIX)] for p in app.permissions])
        return web.Response(text=html, content_type="text/html", headers=headers)

    async def googleplay_search(self, request: web.Request) -> web.Response:
        """The first page of a Google Play search (its ~30 results; a token says there are more)."""
        found = self.search("googleplay", request.query.get("q", ""))
        apps = [self.market[i] for i in found[:googleplay.SEARCH_PAGE_SIZE]]
        return web.Response(text=googleplay.search_page(apps, len(found) > googleplay.SEARCH_PAGE_SIZE),
                            content_type="text/html")

    def _play_app(self, request: web.Request) -> App:
        index = self._play_ids.get(request.query.get("id", ""))
        if index is None:
            raise web.HTTPNotFound()
        return self.market[index]

    async def googleplay_details(self, request: web.Request) -> web.Response:
        app = self._play_app(request)
        if self._transient("googleplay", app.package, app):
            self.hits[FAULTED] += 1
            raise web.HTTPServiceUnavailable()
        # the page summarises the Data safety form, which follows the policy: it changes with either
        headers = self._validators(request, f"googleplay:{app.index}", app.updated, app.changes, app.policy.revisions)
        if (unchanged := self._not_modified(request, headers)) is not None:
            return unchanged
        page = googleplay.details_page(app, _origin(request), self.policy_url(request, app))
        return web.Response(text=page, content_type="text/html", headers=headers)

    async def googleplay_datasafety(self, request: web.Request) -> web.Response:
        app = self._play_app(request)
        if "googleplay_datasafety_500" in app.faults:
            self.hits[FAULTED] += 1
            raise web.HTTPInternalServerError()
        return web.Response(text=googleplay.datasafety_page(app, self.policy_url(request, app)),
                            content_type="text/html")

    async def googleplay_batch(self, request: web.Request) -> web.Response:
        """The batchexecute endpoint, for the permission list (RPC xdSrCf) only; an unknown app gets a null payload."""
        form = await request.post()
        try:
            call = json.loads(str(form.get("f.req", "")))[0][0]
            package = json.loads(call[1])[0][1][0]
        except (ValueError, TypeError, IndexError, KeyError):
            raise web.HTTPBadRequest(text="f.req: not a batchexecute call")
        if call[0] != "xdSrCf":
            raise web.HTTPBadRequest(text=f"unknown rpc {call[0]!r}")
        index = self._play_ids.get(package)
        return web.Response(text=googleplay.permissions_answer(self.market[index] if index is not None else None),
                            content_type="application/json")

    async def myapp_category(self, request: web.Request) -> web.Response:
        """The older MyApp site's category list: the apps of ``categoryId``, ``pageSize`` from ``pageContext``."""
        category = _int(request.query.get("categoryId"), -1, None, None)
        size = _int(request.query.get("pageSize"), 20, 1, 100)
        start = _int(request.query.get("pageContext"), 0, 0, None)
        listed = self._myapp_categories.get(category)
        if listed is None:
            listed = self._myapp_categories[category] = [
                i for i in sorted(self.cards) if "myapp" in self.cards[i].stores
                and myapp.category_id(category_of(self.cards[i], "myapp")) == category]
        items = [myapp.search_item(app, _origin(request), self.apk_url(request, app))
                 for app in (self.market[i] for i in listed[start:start + size])]
        return web.Response(text=myapp.category_answer(items, start), content_type="application/json",
                            charset="utf-8")

    async def myapp_search(self, request: web.Request) -> web.Response:
        """The older MyApp site's search API: a page of results from the offset its ``pns`` encodes."""
        start = myapp.offset_of(request.query.get("pns", ""))
        found = self.search("myapp", request.query.get("kw", ""))
        end = start + myapp.SEARCH_PAGE_SIZE
        items = [myapp.search_item(app, _origin(request), self.apk_url(request, app))
                 for app in (self.market[i] for i in found[start:end])]
        return web.Response(text=myapp.search_answer(items, end if end < len(found) else None),
                            content_type="application/json", charset="utf-8")

    async def myapp_detail(self, request: web.Request) -> web.Response:
        """The MyApp app page (``/appdetail/<package>``); 404 for a package the store does not list."""
        card = self._card(self._android_ids.get(request.match_info["package"], -1), "myapp")
        if card is None:
            raise web.HTTPNotFound()
        app = self.market[card.index]
        if self._transient("myapp", app.package, app):
            self.hits[FAULTED] += 1
            raise web.HTTPServiceUnavailable()
        headers = self._validators(request, f"myapp:{app.index}", app.updated, app.changes)
        if (unchanged := self._not_modified(request, headers)) is not None:
            return unchanged
        wrong = self._wrong_typed(app, "myapp")
        if wrong:
            self.hits[FAULTED] += 1
        page = myapp.detail_page(app, _origin(request), self.policy_url(request, app), self.apk_url(request, app), wrong)
        return web.Response(text=page, content_type="text/html", charset="utf-8", headers=headers)

    async def apk(self, request: web.Request) -> web.Response:
        """The app's APK, built from its spec; a seeded fault serves it truncated."""
        index = self._android_ids.get(request.match_info["package"])
        app = self.market[index] if index is not None else None
        if app is None or app.apk is None:
            raise web.HTTPNotFound()
        headers = self._validators(request, f"apk:{app.index}", app.updated, app.changes)
        if (unchanged := self._not_modified(request, headers)) is not None:
            return unchanged
        if self.hostile_link(app) == ("apk", "apk_bomb"):
            return web.Response(body=zip_bomb(apk_spec(app), self.bomb_bytes), headers=headers,
                                content_type="application/vnd.android.package-archive")
        body = build_apk(apk_spec(app))
        if app.apk.invalid:
            self.hits[FAULTED] += 1
            body = body[: len(body) // 3]
        return web.Response(body=body, content_type="application/vnd.android.package-archive", headers=headers)

    async def policy(self, request: web.Request) -> web.Response:
        policy = self.market.find_policy(request.path)
        if policy is None or not policy.has_text:
            raise web.HTTPNotFound()
        if policy.fault:
            self.hits[FAULTED] += 1
            raise web.HTTPInternalServerError()
        headers = self._validators(request, f"policy:{policy.path}", policy.effective, policy.revisions)
        if (unchanged := self._not_modified(request, headers)) is not None:
            return unchanged
        if policy.variant == "pdf":
            return web.Response(body=render_pdf(self.market.seed, policy), content_type="application/pdf",
                                headers=headers)
        html = render_policy_html(self.market, policy, utf8=policy.variant == "html")
        if policy.variant == "gbk":  # no charset in the header nor in the page
            return web.Response(body=html.encode("gbk"), headers={**headers, "Content-Type": "text/html"})
        return web.Response(text=html, content_type="text/html", charset="utf-8", headers=headers)


def render_policy_html(market: Market, policy: Policy, utf8: bool = True) -> str:
    """The policy page; without ``utf8`` the page carries no charset declaration."""
    return _templates.get_template("policy.html").render(doc=market.policy_document(policy), utf8=utf8)


@lru_cache(maxsize=1024)
def render_pdf(seed: int, policy: Policy) -> bytes:
    """The policy as a PDF (reportlab, CID font STSong-Light), lines never broken inside a data-type term."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    font = "STSong-Light"
    if font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    doc = policy_document(seed, policy)
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=1)
    pdf.setTitle(doc["title"])
    width, height = A4
    margin = 56
    y = height - margin

    def line(text: str, size: float, gap: float = 0.0) -> None:
        nonlocal y
        if y - size * 1.5 < margin:
            pdf.showPage()
            y = height - margin
        pdf.setFont(font, size)
        pdf.drawString(margin, y - size, text)
        y -= size * 1.6 + gap

    blocks = [(doc["title"], 16.0), (doc["updated"], 9.0), (doc["effective"], 9.0)]
    for section in doc["sections"]:
        if section["heading"]:
            blocks.append((section["heading"], 12.0))
        blocks += [(p, 9.5) for p in section["paragraphs"]]
    for text, size in blocks:
        measure = partial(pdfmetrics.stringWidth, fontName=font, fontSize=size)
        for row in _wrap(text, doc["language"], measure, width - 2 * margin, tuple(doc["keep_together"])):
            line(row, size)
        y -= size * 0.6
    pdf.save()
    return buffer.getvalue()


_NO_LINE_START = set("，。、；：！？）」”’,.;:!?)")
_TERMS = {t for lang in ("zh", "en") for terms in TERMS[lang].values() for t in terms}
_TERMS |= {t for terms in TERMS["traps"].values() for t in terms}
_TERMS_PATTERN = "|".join(re.escape(t) for t in sorted(_TERMS, key=len, reverse=True))  # longest first
_ATOMS = {lang: re.compile(f"{_TERMS_PATTERN}|{rest}", re.S) for lang, rest in (("zh", "."), ("en", r"\S+|\s"))}


def _wrap(text: str, lang: str, measure: Callable[[str], float], width: float,
          keep_together: tuple[str, ...] = ()) -> list[str]:
    """Greedy line breaking that never splits a data-type term or a ``keep_together`` sentence
    (unless it is longer than a line) and never starts a line with punctuation."""
    units = [re.escape(s) for s in keep_together if measure(s) <= width]
    # the units split the text (the odd pieces); the pieces between them split into terms and characters or words
    pieces = re.split(f"({'|'.join(units)})", text) if units else [text]
    atoms: list[str] = []
    for n, piece in enumerate(pieces):
        for atom in [piece] if n % 2 else _ATOMS.get(lang, _ATOMS["en"]).findall(piece):
            if atoms and atom and atom[0] in _NO_LINE_START:
                atoms[-1] += atom
            elif atom:
                atoms.append(atom)
    rows, row, row_width = [], "", 0.0  # widths add up: the fonts here have no kerning
    for atom in atoms:
        atom_width = measure(atom)
        if row and row_width + atom_width > width:
            rows.append(row.rstrip())
            row = atom.lstrip()
            row_width = measure(row)
        else:
            row += atom
            row_width += atom_width
    if row.strip():
        rows.append(row.rstrip())
    return rows


def _itunes_result(base: str, app: App) -> dict[str, Any]:
    """One result of the iTunes Search/Lookup API, with its real field names."""
    genre = app.category("itunes")
    artwork = f"{base}/static/artwork/{app.track_id}"
    return {
        "wrapperType": "software",
        "kind": "software",
        "trackId": app.track_id,
        "trackName": app.name,
        "trackCensoredName": app.name,
        "bundleId": app.package,
        "artistId": app.artist_id,
        "artistName": app.developer_display,
        "artistViewUrl": f"{base}/apple/cn/developer/id{app.artist_id}",
        "sellerName": app.legal_entity("itunes"),
        "sellerUrl": f"https://www.{app.developer_slug}.com.cn/",
        "primaryGenreName": genre,
        "primaryGenreId": 6015,
        "genres": [genre],
        "genreIds": ["6015"],
        "version": app.version,
        "currentVersionReleaseDate": f"{app.updated}T08:00:00Z",
        "releaseDate": f"{app.released}T08:00:00Z",
        "releaseNotes": "修复已知问题，提升使用体验。",
        "description": app.description,
        "userRatingCount": app.rating_count,
        "averageUserRating": app.rating,
        "userRatingCountForCurrentVersion": app.rating_count,
        "averageUserRatingForCurrentVersion": app.rating,
        "trackViewUrl": _track_view_url(base, app),
        "artworkUrl60": f"{artwork}/60x60bb.jpg",
        "artworkUrl100": f"{artwork}/100x100bb.jpg",
        "artworkUrl512": f"{artwork}/512x512bb.jpg",
        "screenshotUrls": [],
        "ipadScreenshotUrls": [],
        "appletvScreenshotUrls": [],
        "supportedDevices": ["iPhone12-iPhone12", "iPhone14-iPhone14", "iPhone15-iPhone15"],
        "features": [],
        "advisories": [],
        "isGameCenterEnabled": False,
        "isVppDeviceBasedLicensingEnabled": True,
        "price": 0.0,
        "formattedPrice": "免费",
        "currency": "CNY",
        "minimumOsVersion": "12.0",
        "fileSizeBytes": str(app.size_bytes),
        "languageCodesISO2A": ["EN", "ZH"],
        "contentAdvisoryRating": "4+",
        "trackContentRating": "4+",
    }


def _install_text(downloads: int) -> str:
    """An install count as AppGallery writes it: "152万次安装", "1.2亿次安装", "5230次安装"."""
    if downloads >= 100_000_000:
        return f"{downloads / 100_000_000:.1f}亿次安装"
    return f"{downloads // 10_000}万次安装" if downloads >= 10_000 else f"{downloads}次安装"


def _version_code(version: str) -> int:
    """The versionCode of a "major.minor.patch" version (as the APK's manifest has it)."""
    major, minor, patch = (int(x) for x in version.split("."))
    return major * 10_000 + minor * 100 + patch


def _track_view_url(base: str, app: App) -> str:
    return f"{base}/apple/cn/app/id{app.track_id}"


def _origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _int(raw: str | None, default: int, low: int | None, high: int | None) -> int:
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        value = default
    if low is not None:
        value = max(low, value)
    if high is not None:
        value = min(high, value)
    return value


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(body, ensure_ascii=False), status=status, content_type="application/json")


def build_app(market: Market, keywords: list[str] | None = None, hostile: float = 0.0,
              bomb_bytes: int = BOMB_BYTES) -> tuple[web.Application, MarketApp]:
    """The aiohttp application serving ``market`` and its handler object (for hits and indexes)."""
    handlers = MarketApp(market, keywords, hostile, bomb_bytes)
    return handlers.build(), handlers


class MarketServer:
    """The simulator on a background thread with its own event loop; use as a context manager.

    ``with MarketServer(apps=300, seed=7) as m:`` → ``m.base_url``, ``m.store_urls``,
    ``m.truth()``, ``m.hits`` (requests per route, 304s under ``NOT_MODIFIED``), ``m.fetches`` (per request),
    ``m.advance()``.
    ``hostile=rate`` gives that share of apps a hostile link (:meth:`MarketApp.hostile_link`), listed by
    ``m.hostile_links()``; a zip-bomb APK inflates to ``bomb_bytes``. ``fault_rate=share`` gives that share of
    apps a data fault (``market.population.DATA_FAULTS``: wrong-typed fields, plain-string permission lists,
    redirect loops, an unreachable app page), named in the truth's ``faults``; answers with a fault are counted in ``m.hits["faulted"]``.
    """

    def __init__(self, apps: int = settings.MARKET_APPS, seed: int = settings.MARKET_SEED, week: int = 0,
                 host: str = settings.MARKET_HOST, port: int = 0, start_timeout: float = 60.0, hostile: float = 0.0,
                 bomb_bytes: int = BOMB_BYTES, fault_rate: float | None = None) -> None:
        self.market = Market(apps, seed, week, fault_rate=fault_rate)
        self.hostile, self.bomb_bytes = hostile, bomb_bytes  # hostile links: the share of apps, off by default
        self.host = host
        self.port = port
        self.base_url = ""
        self.store_urls: dict[str, str] = {}
        self._start_timeout = start_timeout
        self._handlers: MarketApp | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def hits(self) -> collections.Counter[str]:
        return self._handlers.hits if self._handlers else collections.Counter()

    @property
    def fetches(self) -> collections.Counter[str]:
        """How often each request (method, path and query, digest of the body) was made."""
        return self._handlers.fetches if self._handlers else collections.Counter()

    def truth(self) -> dict[str, Any]:
        """The current week's ground truth, with policy URLs on this server."""
        return self.market.truth()

    def hostile_links(self) -> dict[str, dict[str, str | None]]:
        """App key → the hostile link its store data carries (``hostile`` > 0; see MarketApp.hostile_link)."""
        return self._handlers.hostile_links(self.base_url) if self._handlers else {}

    def advance(self, weeks: int = 1) -> Market:
        """Move the market ``weeks`` weeks on (a running server switches between two requests); the new market."""
        market = Market(self.market.initial_apps, self.market.seed, self.market.week + weeks, self.market.base_url,
                        fault_rate=self.market.fault_rate)
        if self._handlers is not None and self._loop is not None and self._thread is not None:
            fresh = MarketApp(market, hostile=self.hostile, bomb_bytes=self.bomb_bytes)  # cards and search indexes built here, not on the server's loop

            async def switch() -> None:
                self._handlers.switch(fresh)  # type: ignore[union-attr]

            asyncio.run_coroutine_threadsafe(switch(), self._loop).result(self._start_timeout)
        self.market = market
        log.info("market simulator: week %d, %d apps", market.week, len(market))
        return market

    def start(self) -> "MarketServer":
        app, self._handlers = build_app(self.market, hostile=self.hostile, bomb_bytes=self.bomb_bytes)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, args=(app,), name="market-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(self._start_timeout):
            raise TimeoutError("market server did not start")
        if self._error is not None:
            self._thread.join()
            raise self._error
        self.base_url = f"http://{self.host}:{self.port}"
        self.market.base_url = self.base_url
        self.store_urls = {store: f"{self.base_url}/{store}" for store in STORES}
        log.info("market simulator: %d apps (seed %d, week %d) at %s", len(self.market), self.market.seed,
                 self.market.week, self.base_url)
        return self

    def _run(self, app: web.Application) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, self.host, self.port)
            loop.run_until_complete(site.start())
            self.port = runner.addresses[0][1]
        except BaseException as exc:  # reported to start() in the caller's thread
            self._error = exc
            loop.run_until_complete(runner.cleanup())
            loop.close()
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        self._thread = None

    def __enter__(self) -> "MarketServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(apps: int = settings.MARKET_APPS, seed: int = settings.MARKET_SEED,
          host: str = settings.MARKET_HOST, port: int = 8800, week: int = 0, hostile: float = 0.0,
          fault_rate: float | None = None) -> None:
    """Serve the simulator's week ``week`` on host:port until interrupted (blocking; for ``finmon market serve``),
    with ``hostile`` the share of apps carrying a hostile link and ``fault_rate`` the share with a data fault."""
    market = Market(apps, seed, week, fault_rate=fault_rate)
    app, _ = build_app(market, hostile=hostile)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            bound = runner.addresses[0][1]
            market.base_url = f"http://{host}:{bound}"
            log.info("market simulator: %d apps (seed %d, week %d) at %s; stores: %s", len(market), seed, week,
                     market.base_url, ", ".join(f"{market.base_url}/{s}" for s in STORES))
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        log.info("market simulator stopped")
