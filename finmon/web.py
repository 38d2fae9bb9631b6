"""`finmon serve`: the investigators' read-only web application, over the store interface (SQLite or Elasticsearch).

Built on aiohttp. Every page is rendered on the server with the report's templates and styles, from the same
function that answers its JSON twin under ``/api/`` (``/search`` and ``/api/search`` take the same parameters and
show the same hits), so a page's URL is its permalink. Nothing here writes: only GET (and HEAD) routes exist.

Routes: ``/search`` (full text with facets, sort and pages), ``/app/<key>`` (listing history, permissions, policy
versions, findings with their life cycle), ``/app/<key>/diff?from=&to=`` (what changed between two policy
versions), ``/evidence/<finding id>`` (the capture a finding rests on), and under ``/api/`` the same as JSON plus
``/api/export?…&format=csv|json``: the whole result set of a search as a download.

The store belongs to one thread (an SQLite connection is used by the thread that opened it); pages wait for it
on the event loop. Bound to loopback by default; any other address needs a token (``FINMON_SERVE_TOKEN``), and
with a token every request must carry it (``Authorization: Bearer …``, or the cookie that ``/?token=…`` sets).
"""
from __future__ import annotations

import asyncio
import csv
import hmac
import io
import ipaddress
import json
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import quote, urlencode

from aiohttp import web

from finmon import settings
from finmon.evidence import evidence_link
from finmon.model import SEVERITIES, FINDING_STATUSES, utcnow
from index.base import FACETS, HIT_KINDS, SORTS, StoreError, StoreUnavailable, query_words, week_bounds

log = logging.getLogger(__name__)

FILTERS = (*FACETS, "kind")  # the filters a search page takes: one value each
TOKEN_COOKIE = "finmon_token"
TOKEN = web.AppKey("token", str)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
EXPORT_COLUMNS = ("kind", "id", "app_key", "app_name", "stores", "rule_id", "rule_title", "severity", "status",
                  "snippet", "url", "title", "fetched_at")


class BadRequest(ValueError):
    """A parameter of the request is not one the page takes; the message says which and why."""


@dataclass(frozen=True)
class SearchRequest:
    """A search as a URL gives it: the words, one value per filter, the sort and the page (from 1)."""

    q: str = ""
    filters: dict[str, str] = field(default_factory=dict)
    sort: str = "relevance"
    page: int = 1

    @classmethod
    def from_query(cls, params: Any) -> SearchRequest:
        """Checked parameters of a request (``q``, each filter, ``sort``, ``page``); BadRequest names a wrong one."""
        filters = {name: params.get(name, "").strip() for name in FILTERS if params.get(name, "").strip()}
        allowed = {"severity": SEVERITIES, "status": FINDING_STATUSES, "kind": HIT_KINDS}
        for name, values in allowed.items():
            if name in filters and filters[name] not in values:
                raise BadRequest(f"{name} must be one of {', '.join(values)}, not {filters[name]!r}")
        if "week" in filters:
            try:
                week_bounds(filters["week"])
            except ValueError as exc:
                raise BadRequest(str(exc)) from None
        sort = params.get("sort") or "relevance"
        if sort not in SORTS:
            raise BadRequest(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
        try:
            page = int(params.get("page") or 1)
        except ValueError:
            raise BadRequest(f"page must be a number, not {params.get('page')!r}") from None
        if not 1 <= page <= settings.FINMON_SEARCH_MAX_HITS:
            raise BadRequest(f"page must be between 1 and {settings.FINMON_SEARCH_MAX_HITS}")
        return cls(q=params.get("q", ""), filters=filters, sort=sort, page=page)

    def href(self, path: str = "/search", **changes: Any) -> str:
        """This search's URL with ``changes`` (a filter set to None is dropped; any change but the page goes back
        to page 1)."""
        params = {"q": self.q, **self.filters, "sort": self.sort, "page": self.page}
        if any(name != "page" for name in changes):
            params["page"] = 1
        params.update(changes)
        shown = {k: v for k, v in params.items()
                 if v not in (None, "") and not (k == "sort" and v == "relevance") and not (k == "page" and v == 1)}
        return f"{path}?{urlencode(shown)}" if shown else path

    def store_options(self) -> dict[str, Any]:
        return {name: self.filters.get(name) for name in FILTERS}


def mark_parts(text: str, match: list[int] | None) -> tuple[str, str, str]:
    """A snippet cut around its match, so a template can mark it: (before, match, after)."""
    if not match:
        return text, "", ""
    start, end = match
    return text[:start], text[start:end], text[end:]


class StoreThread:
    """The store, opened and used by one thread of its own; ``await call(fn)`` runs ``fn(store)`` there."""

    def __init__(self, open_store: Callable[[], Any]) -> None:
        self._open_store = open_store
        self._store: Any = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="finmon-store")

    def _run(self, fn: Callable[[Any], Any]) -> Any:
        if self._store is None:
            self._store = self._open_store()
        return fn(self._store)

    async def call(self, fn: Callable[[Any], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._run, fn)

    def close(self) -> None:
        def close_store() -> None:
            if self._store is not None:
                self._store.close()

        self._pool.submit(close_store).result()
        self._pool.shutdown(wait=True)


# -- the answers (JSON-able dicts); each page renders one ----------------------------------------------------------
async def search_answer(store: StoreThread, ask: SearchRequest) -> dict[str, Any]:
    """One page of hits, the facets of the whole result set and the links a page needs."""
    size = settings.FINMON_SERVE_PAGE_SIZE
    options = ask.store_options()

    def read(s: Any) -> tuple[list[dict], dict]:
        hits = s.search(ask.q, **options, sort=ask.sort, limit=size, offset=(ask.page - 1) * size)
        return hits, s.facets(ask.q, **options)

    hits, facets = await store.call(read) if query_words(ask.q) else ([], None)
    total = sum(facets["total"].values()) if facets else 0
    pages = max(1, math.ceil(total / size))
    for hit in hits:
        hit["href"] = app_href(hit["app_key"]) if hit.get("app_key") else None
        if hit["kind"] == "finding":
            hit["evidence_href"] = evidence_link(hit["id"], base="")
    facet_links = {}
    for name in FACETS:
        facet_links[name] = [
            {**value, "selected": ask.filters.get(name) == value["value"],
             "href": ask.href(**{name: None if ask.filters.get(name) == value["value"] else value["value"]})}
            for value in (facets or {}).get(name, [])]
    return {
        "query": ask.q, "filters": ask.filters, "sort": ask.sort, "page": ask.page, "page_size": size,
        "pages": pages, "total": (facets or {}).get("total", {"finding": 0, "policy": 0}), "hits": hits,
        "facets": facet_links,
        "links": {
            "self": ask.href(), "api": ask.href("/api/search"),
            "previous": ask.href(page=ask.page - 1) if ask.page > 1 else None,
            "next": ask.href(page=ask.page + 1) if ask.page < pages else None,
            "csv": ask.href("/api/export", format="csv", page=None),
            "json": ask.href("/api/export", format="json", page=None),
            "remove": {name: ask.href(**{name: None}) for name in ask.filters},
        },
    }


def app_href(key: str) -> str:
    return f"/app/{quote(key, safe=':')}"


async def app_answer(store: StoreThread, key: str) -> dict[str, Any]:
    """Everything the index holds about one app; web.HTTPNotFound for an unknown key."""
    app = await store.call(lambda s: s.app(key))
    if app is None:
        raise web.HTTPNotFound(text=f"no app {key!r} in the index")
    return app


def app_json(app: dict[str, Any]) -> dict[str, Any]:
    """An app as ``/api/app`` gives it: findings and the policy as plain records, each finding with its id and
    evidence link."""
    return {**app, "policy": app["policy"].to_dict() if app.get("policy") is not None else None,
            "findings": [{**f.to_dict(), "id": f.id, "evidence_href": evidence_link(f.id, base="")}
                         for f in app["findings"]]}


async def diff_answer(store: StoreThread, key: str, old: str, new: str) -> dict[str, Any]:
    """What changed between two kept policy versions of an app (sha256 or a unique prefix of one)."""
    from analyzers.policy_text import policy_diff

    app = await store.call(lambda s: s.app(key))
    if app is None:
        raise web.HTTPNotFound(text=f"no app {key!r} in the index")
    versions = app["policy_versions"]

    def pick(prefix: str, default: int) -> dict[str, Any]:
        if not prefix:
            if len(versions) <= default:
                raise BadRequest(f"{key} has {len(versions)} policy version(s): nothing to compare")
            return versions[default]
        found = [v for v in versions if v["sha256"].startswith(prefix)]
        if len(found) != 1:
            raise BadRequest(f"{len(found)} policy versions of {key} start with {prefix!r}")
        return found[0]

    to, since = pick(new, 0), pick(old, 1)
    texts = await store.call(lambda s: {v["sha256"]: s.policy(v["sha256"]).text for v in (since, to)})
    return {"app": key, "name": app.get("name"), "from": since, "to": to, "versions": versions,
            **policy_diff(texts[since["sha256"]], texts[to["sha256"]], since["sha256"][:12], to["sha256"][:12])}


# -- the application ---------------------------------------------------------------------------------------------
class Pages:
    """Request handlers: each reads its answer, then renders it as a page or returns it as JSON."""

    def __init__(self, store: StoreThread, lang: str) -> None:
        from reports.weekly import environment

        self.store, self.lang = store, lang
        self.env = environment(lang)
        self.env.globals.update(mark_parts=mark_parts, app_href=app_href, generated=utcnow(), evidence_base="",
                                weights=settings.FINMON_RISK_WEIGHTS)
        self._rules: dict[str, dict[str, Any]] | None = None

    async def rules(self) -> dict[str, dict[str, Any]]:
        if self._rules is None:
            self._rules = {r["id"]: r for r in await self.store.call(lambda s: s.rules())}
        return self._rules

    async def render(self, template: str, status: int = 200, **ctx: Any) -> web.Response:
        from reports.weekly import _rule_text

        rules = await self.rules()
        ctx.update(rule_titles={rid: _rule_text(r, "title", self.lang) for rid, r in rules.items()},
                   rule_regulations={rid: _rule_text(r, "regulation", self.lang) for rid, r in rules.items()},
                   generated=utcnow())
        html = self.env.get_template(template).render(ctx)
        return web.Response(text=html, content_type="text/html", status=status)

    async def search(self, request: web.Request) -> web.Response:
        ask = SearchRequest.from_query(request.query)
        return await self.render("search.html", answer=await search_answer(self.store, ask), ask=ask,
                                 facet_names=FACETS, sorts=SORTS)

    async def api_search(self, request: web.Request) -> web.Response:
        return json_response(await search_answer(self.store, SearchRequest.from_query(request.query)))

    async def app(self, request: web.Request) -> web.Response:
        app = await app_answer(self.store, request.match_info["key"])
        return await self.render("web_app.html", app=app)

    async def api_app(self, request: web.Request) -> web.Response:
        return json_response(app_json(await app_answer(self.store, request.match_info["key"])))

    async def diff(self, request: web.Request) -> web.Response:
        answer = await diff_answer(self.store, request.match_info["key"], request.query.get("from", ""),
                                   request.query.get("to", ""))
        return await self.render("web_diff.html", diff=answer)

    async def api_diff(self, request: web.Request) -> web.Response:
        return json_response(await diff_answer(self.store, request.match_info["key"], request.query.get("from", ""),
                                               request.query.get("to", "")))

    async def export(self, request: web.Request) -> web.StreamResponse:
        """Every hit of a search (up to FINMON_SERVE_EXPORT_MAX_HITS) as CSV or JSON, read page by page."""
        ask = SearchRequest.from_query(request.query)
        fmt = request.query.get("format", "csv")
        if fmt not in ("csv", "json"):
            raise BadRequest(f"format must be csv or json, not {fmt!r}")
        response = web.StreamResponse(headers={
            "Content-Type": "text/csv; charset=utf-8" if fmt == "csv" else "application/json; charset=utf-8",
            "Content-Disposition": f'attachment; filename="finmon-search.{fmt}"'})
        await response.prepare(request)
        step, offset, first = settings.FINMON_SEARCH_MAX_HITS, 0, True
        write = lambda text: response.write(text.encode("utf-8"))  # noqa: E731
        await write("\ufeff" if fmt == "csv" else "[")  # a BOM: spreadsheet programs then read UTF-8
        if fmt == "csv":
            await write(csv_rows([EXPORT_COLUMNS]))
        while query_words(ask.q) and offset < settings.FINMON_SERVE_EXPORT_MAX_HITS:
            hits = await self.store.call(lambda s, at=offset: s.search(ask.q, **ask.store_options(), sort=ask.sort,
                                                                       limit=step, offset=at))
            if fmt == "csv":
                await write(csv_rows([[export_cell(hit.get(c)) for c in EXPORT_COLUMNS] for hit in hits]))
            else:
                for hit in hits:
                    await write(("" if first else ",\n") + json.dumps(hit, ensure_ascii=False, default=str))
                    first = False
            if len(hits) < step:
                break
            offset += step
        if fmt == "json":
            await write("]\n")
        await response.write_eof()
        return response

    async def evidence(self, request: web.Request) -> web.Response:
        answer = await evidence_answer(self.store, request.match_info["finding_id"])
        return await self.render("web_evidence.html", status=200 if answer["verified"] else 409, capture=answer)

    async def api_evidence(self, request: web.Request) -> web.Response:
        answer = await evidence_answer(self.store, request.match_info["finding_id"])
        return json_response(answer, status=200 if answer["verified"] else 409)

    async def evidence_body(self, request: web.Request) -> web.Response:
        """The captured body as a download (never shown as a page of this site), only when its digest checks."""
        finding_id = request.match_info["finding_id"]
        answer, body = await evidence_answer(self.store, finding_id, with_body=True)
        if not answer["verified"]:
            raise web.HTTPConflict(text=answer["error"])
        return web.Response(body=body, headers={
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{finding_id}.body"',
            "Content-Security-Policy": "sandbox"})


async def evidence_answer(store: StoreThread, finding_id: str, with_body: bool = False) -> Any:
    """The capture a finding rests on, its digest checked: ``{"finding", "verified", "error", "capture"}``."""
    from finmon import evidence

    finding = await store.call(lambda s: s.finding(finding_id))
    if finding is None:
        raise web.HTTPNotFound(text=f"no finding {finding_id!r} in the index")
    answer: dict[str, Any] = {"finding": {**finding.to_dict(), "id": finding.id}, "verified": False, "error": "",
                              "capture": None, "body_href": evidence_link(finding_id, base="") + "/body"}
    body = b""
    try:
        capture = await asyncio.get_running_loop().run_in_executor(None, evidence.read_capture, finding.capture)
    except evidence.EvidenceError as exc:
        answer["error"] = str(exc)
    else:
        body = capture.body
        answer.update(verified=True, capture=capture.summary())
    return (answer, body) if with_body else answer


def export_cell(value: Any) -> str:
    """A CSV cell that a spreadsheet shows as text: lists joined, and a leading = + - @ (a formula) quoted away."""
    text = ", ".join(map(str, value)) if isinstance(value, list) else ("" if value is None else str(value))
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_rows(rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, ensure_ascii=False, default=str), status=status,
                        content_type="application/json")


@web.middleware
async def guard(request: web.Request, handler: Callable) -> web.StreamResponse:
    """The token check, and errors as one clear line (JSON under /api/)."""
    token = request.app[TOKEN]
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip() or request.cookies.get(
            TOKEN_COOKIE, "")
        login = request.query.get("token", "")
        if login and hmac.compare_digest(login.encode(), token.encode()):
            found = web.HTTPFound(request.rel_url.with_query({k: v for k, v in request.query.items() if k != "token"}))
            found.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
            raise found
        if not hmac.compare_digest(given.encode(), token.encode()):
            return _error(request, 401, "a token is required (Authorization: Bearer …, or open /?token=…)")
    try:
        response = await handler(request)
    except BadRequest as exc:
        response = _error(request, 400, str(exc))
    except (web.HTTPNotFound, web.HTTPConflict) as exc:
        response = _error(request, exc.status, exc.text or exc.reason)
    except StoreUnavailable as exc:
        response = _error(request, 503, str(exc))
    except StoreError as exc:
        response = _error(request, 500, str(exc))
    return response


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def _error(request: web.Request, status: int, message: str) -> web.Response:
    if request.path.startswith("/api/"):
        return json_response({"error": message}, status=status)
    return web.Response(text=f"{status}: {message}\n", status=status, content_type="text/plain")


def create_app(open_store: Callable[[], Any], lang: str = "zh", token: str | None = None) -> web.Application:
    """The application over the store ``open_store()`` returns (called once, in the store's thread)."""
    app = web.Application(middlewares=[guard])
    store = StoreThread(open_store)
    pages = Pages(store, lang)
    app[TOKEN] = token or ""

    async def home(request: web.Request) -> web.Response:
        raise web.HTTPFound("/search")

    async def close(_: web.Application) -> None:
        store.close()

    app.on_cleanup.append(close)
    app.on_response_prepare.append(_security_headers)
    app.add_routes([
        web.get("/", home),
        web.get("/search", pages.search), web.get("/api/search", pages.api_search),
        web.get("/api/export", pages.export),
        web.get("/app/{key}", pages.app), web.get("/api/app/{key}", pages.api_app),
        web.get("/app/{key}/diff", pages.diff), web.get("/api/app/{key}/diff", pages.api_diff),
        web.get("/evidence/{finding_id}", pages.evidence), web.get("/api/evidence/{finding_id}", pages.api_evidence),
        web.get("/evidence/{finding_id}/body", pages.evidence_body),
    ])
    return app


def check_binding(host: str, token: str | None) -> None:
    """Loopback needs nothing; any other address a token. ValueError says so."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not token:
        raise ValueError(f"serving on {host} (not loopback) needs a token: set FINMON_SERVE_TOKEN")


def serve(open_store: Callable[[], Any], host: str, port: int, lang: str = "zh", token: str | None = None,
          print_line: Callable[[str], None] = print) -> None:
    """Run the application until interrupted (check the binding first: :func:`check_binding`)."""
    web.run_app(create_app(open_store, lang=lang, token=token), host=host, port=port, print=print_line,
                access_log=None)

