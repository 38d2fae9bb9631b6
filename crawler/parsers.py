"""Store parsers: pure functions from one saved store response to what it says.

Each function takes the response body (and its URL where links must be resolved) and
returns listings or links; none does I/O, so ``finmon parse STORE FILE`` runs them on a
saved file. A response whose required fields are missing raises :class:`LayoutChanged`
(the store changed its pages); undecodable JSON raises :class:`MalformedResponse`; a required field
of the wrong type raises :class:`FieldMalformed`. Where one response holds several items, or an item
has optional fields, the problem costs only that item or that field: it is appended to the
``problems`` list the caller passes (logged as a warning when none is passed), and the rest is parsed.
No other exception escapes a parser (tests/crawler/test_parsers_fuzz.py).
"""
from __future__ import annotations

import dataclasses
import json
import re
from functools import cache
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urljoin, urlsplit

import logging

from parsel import Selector

from finmon import settings
from finmon.model import Listing, utcnow

log = logging.getLogger(__name__)
DATA_DIR = Path(__file__).parent / "data"
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


class ParseError(Exception):
    """A store response, or one item or field of it, that could not be turned into data.

    ``item`` names the item (a store id, or its place such as ``results[3]``) and ``field`` the field,
    when the problem is that narrow; both are "" for a whole response.
    """

    kind = "parse_error"

    def __init__(self, store: str, reason: str, *, item: str = "", field: str = ""):
        where = " ".join(part for part in (item and f"item {item}", field and f"field {field}") if part)
        super().__init__(f"{store}: {where + ': ' if where else ''}{reason}")
        self.store = store
        self.reason = reason
        self.item = item
        self.field = field


class LayoutChanged(ParseError):
    """Required fields are missing: the store changed its layout."""

    kind = "layout_changed"

    def __init__(self, store: str, missing: list[str] | tuple[str, ...], *, item: str = ""):
        self.missing = tuple(missing)
        super().__init__(store, "layout changed, missing " + ", ".join(self.missing), item=item,
                         field=",".join(self.missing))


class FieldMalformed(ParseError):
    """A field holds a value of the wrong type (a number for a name, a string for a list, …)."""

    kind = "malformed_field"

    def __init__(self, store: str, item: str, field: str, value: Any, expected: str):
        super().__init__(store, f"expected {expected}, got {type(value).__name__} {_preview(value)}",
                         item=item, field=field)


class MalformedResponse(ParseError):
    """The body is not what its format promises (e.g. truncated JSON)."""

    kind = "malformed_json"


# --- helpers ----------------------------------------------------------------


@cache
def permission_labels() -> dict[str, str]:
    """The stores' Chinese permission labels → Android permission names (crawler/data)."""
    with open(DATA_DIR / "permission_labels.json", encoding="utf-8") as fh:
        return json.load(fh)["labels"]


UNMAPPED_LABEL = "unmapped-label:"


def permissions_from_labels(labels: list[str]) -> tuple[str, ...]:
    """Map permission labels back to permission names.

    A label missing from the table is kept as ``unmapped-label:<label>`` rather than lost,
    so an operator sees it and the table can grow.
    """
    table = permission_labels()
    cleaned = (label.strip("▪•·- \t\u3000") for label in labels)
    names = (table.get(label, UNMAPPED_LABEL + label) for label in cleaned if label)
    return tuple(dict.fromkeys(names))


def _load_json(store: str, body: bytes | str) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise MalformedResponse(store, f"undecodable JSON: {exc}") from exc
    except RecursionError as exc:
        raise MalformedResponse(store, "undecodable JSON: nested too deeply") from exc


def _preview(value: Any, limit: int = 40) -> str:
    """A short, one-line rendering of a bad value for an error line."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= limit else text[:limit] + "…"


def _report(problems: list[ParseError] | None, problem: ParseError) -> None:
    """Keep a problem that costs one item or field: in ``problems``, or as a warning when there is no list."""
    if problems is None:
        log.warning("%s", problem)
    else:
        problems.append(problem)


ID_FIELDS = ("trackId", "appid")  # store ids: an int or a non-empty string


def _require(store: str, record: dict, fields: tuple[str, ...], item: str = "") -> None:
    """Required fields present (LayoutChanged) and strings, or for ids ints or strings (FieldMalformed)."""
    missing = [f for f in fields if record.get(f) in (None, "")]
    if missing:
        raise LayoutChanged(store, missing, item=item)
    for name in fields:
        value = record[name]
        if name in ID_FIELDS and not _ident(value):
            raise FieldMalformed(store, item, name, value, "an id")
        if name not in ID_FIELDS and not isinstance(value, str):
            raise FieldMalformed(store, item, name, value, "a string")


def _optional_str(store: str, record: dict, name: str, item: str, problems: list | None) -> str:
    """An optional text field: "" when absent; a value of another type costs the field (a problem)."""
    value = record.get(name)
    if value is None or isinstance(value, str):
        return value or ""
    _report(problems, FieldMalformed(store, item, name, value, "a string"))
    return ""


def _optional_int(store: str, record: dict, name: str, item: str, problems: list | None) -> int | None:
    """An optional count (an int or a numeric string): None when absent or malformed (a problem)."""
    value = record.get(name)
    if value is None or value == "":
        return None
    number = None if isinstance(value, (bool, float, list, dict)) else _int(value)
    if number is None:
        _report(problems, FieldMalformed(store, item, name, value, "a whole number"))
    return number


def _ident(value: Any) -> str:
    """A store id from an int or a non-empty string; "" for anything else."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int) or (isinstance(value, str) and value.strip()):
        return str(value).strip()
    return ""


def _iso_date(value: str) -> str:
    value = (value or "").strip()
    return value[:10] if _ISO_DATE.match(value) else value


def _int(value: Any) -> int | None:
    try:
        return int(str(value).replace(",", "").strip())
    except (TypeError, ValueError, RecursionError):
        return None


def _text(sel, query: str) -> str:
    return " ".join(" ".join(sel.css(query).xpath("string()").getall()).split())


def with_hash(listing: Listing) -> Listing:
    """The listing with ``content_hash`` set (:meth:`Listing.content_digest`)."""
    return dataclasses.replace(listing, content_hash=listing.content_digest())


# --- iTunes / Apple -----------------------------------------------------------

ITUNES_REQUIRED = ("trackId", "bundleId", "trackName", "artistName", "trackViewUrl")


def parse_itunes_search(body: bytes | str, *, fetched_at: str | None = None,
                        problems: list[ParseError] | None = None) -> list[Listing]:
    """iTunes Search or Lookup JSON → one Listing per iOS software result.

    A result with a required field missing or of the wrong type costs that result, an optional field of the
    wrong type costs that field: each is a problem (see the module docstring). When no result of the page
    can be read, the page fails with the first result's problem (a layout change shows on the first page).
    The privacy policy URL and labels are not in this API: they come from the app page (:func:`parse_apple_page`).
    """
    data = _load_json("itunes", body)
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise LayoutChanged("itunes", ["results"])
    fetched_at = fetched_at or utcnow()
    listings, failed = [], []
    for place, result in enumerate(data["results"]):
        if isinstance(result, dict) and result.get("kind", "software") != "software":
            continue
        try:
            listings.append(_itunes_listing(result, f"results[{place}]", fetched_at, problems))
        except ParseError as exc:
            failed.append(exc)
    if failed and not listings:
        raise failed[0]
    for problem in failed:
        _report(problems, problem)
    return listings


def _itunes_listing(result: Any, place: str, fetched_at: str, problems: list[ParseError] | None) -> Listing:
    if not isinstance(result, dict):
        raise FieldMalformed("itunes", place, "results", result, "an object")
    track_id = _ident(result.get("trackId"))
    item = track_id or place
    _require("itunes", result, ITUNES_REQUIRED, item)
    return with_hash(
        Listing(
            store="itunes",
            store_id=track_id,
            platform="ios",
            package=result["bundleId"],
            name=result["trackName"],
            developer=result["artistName"],
            category=_optional_str("itunes", result, "primaryGenreName", item, problems),
            source_url=result["trackViewUrl"],
            fetched_at=fetched_at,
            version=_optional_str("itunes", result, "version", item, problems),
            updated=_iso_date(_optional_str("itunes", result, "currentVersionReleaseDate", item, problems)),
            description=_optional_str("itunes", result, "description", item, problems),
            rating_count=_optional_int("itunes", result, "userRatingCount", item, problems),
        )
    )


_PRIVACY_LINK_TEXT = re.compile(r"隐私政策|隐私协议|privacy policy", re.I)


def parse_apple_page(html: str, url: str = "", problems: list[ParseError] | None = None
                     ) -> tuple[str | None, tuple[str, ...]]:
    """Apple app page HTML → (developer privacy policy URL or None, privacy-label categories); a policy link
    that is not a URL costs that field (a problem)."""
    sel = Selector(text=html, type="html")
    missing = []
    if not _text(sel, "h1.product-header__title"):
        missing.append("product-header__title")
    section = sel.css("section.app-privacy")
    if not section:
        missing.append("app-privacy")
    if missing:
        raise LayoutChanged("itunes", missing)
    privacy_url = next(
        (a.attrib["href"] for a in section.css("a[href]") if _PRIVACY_LINK_TEXT.search(a.xpath("string()").get(""))),
        None,
    )
    labels = (" ".join(h.xpath("string()").get("").split()) for h in section.css(".privacy-type__data-category-heading"))
    privacy_url = _link("itunes", url, privacy_url, url, "privacy_url", problems)
    return privacy_url, tuple(dict.fromkeys(lab for lab in labels if lab))


# --- AppGallery -----------------------------------------------------------------


def _appgallery_layouts(body: bytes | str, problems: list[ParseError] | None = None) -> dict[str, list[dict]]:
    """The page's cards by layout name (``__root__``: the page itself); a card that is not an object is a problem."""
    data = _load_json("appgallery", body)
    if not isinstance(data, dict) or "rtnCode" not in data:
        raise LayoutChanged("appgallery", ["rtnCode"])
    code = data["rtnCode"]
    if not (isinstance(code, (int, str)) and not isinstance(code, bool) and str(code) == "0"):
        raise MalformedResponse("appgallery", f"rtnCode={_preview(data['rtnCode'])}")
    if not isinstance(data.get("layoutData"), list):
        raise LayoutChanged("appgallery", ["layoutData"])
    layouts: dict[str, list[dict]] = {}
    for place, layout in enumerate(data["layoutData"]):
        if not isinstance(layout, dict):
            _report(problems, FieldMalformed("appgallery", f"layoutData[{place}]", "layoutData", layout, "an object"))
            continue
        name, cards = layout.get("layoutName", ""), layout.get("dataList") or []
        if not isinstance(name, str) or not isinstance(cards, list):
            bad, value = ("layoutName", name) if not isinstance(name, str) else ("dataList", cards)
            _report(problems, FieldMalformed("appgallery", f"layoutData[{place}]", bad, value,
                                             "a string" if bad == "layoutName" else "a list"))
            continue
        for card in cards:
            if isinstance(card, dict):
                layouts.setdefault(name, []).append(card)
            else:
                _report(problems, FieldMalformed("appgallery", f"layoutData[{place}]", f"{name}.dataList", card,
                                                 "an object"))
    layouts["__root__"] = [data]
    return layouts


def parse_appgallery_search(body: bytes | str, problems: list[ParseError] | None = None) -> tuple[list[str], int]:
    """AppGallery search page JSON → (detail ids like ``app|C1000123``, totalPages).

    An entry without a usable id costs that entry (a problem); a page none of whose entries has one fails.
    """
    layouts = _appgallery_layouts(body, problems)
    total = _int(layouts["__root__"][0].get("totalPages"))
    if total is None:
        raise LayoutChanged("appgallery", ["totalPages"])
    ids, failed = [], []
    for place, entry in enumerate(layouts.get("searchlist", [])):
        detail_id, appid = entry.get("detailId"), _ident(entry.get("appid"))
        if isinstance(detail_id, str) and detail_id.strip():
            ids.append(detail_id.strip())
        elif detail_id not in (None, ""):
            failed.append(FieldMalformed("appgallery", appid or f"searchlist[{place}]", "detailId", detail_id,
                                         "a string"))
        elif appid:
            ids.append(f"app|{appid}")
        else:
            failed.append(LayoutChanged("appgallery", ["detailId"], item=f"searchlist[{place}]"))
    if failed and not ids:
        raise failed[0]
    for problem in failed:
        _report(problems, problem)
    return list(dict.fromkeys(ids)), total


APPGALLERY_REQUIRED = ("appid", "name", "package", "developer")


def parse_appgallery_detail(body: bytes | str, url: str, *, fetched_at: str | None = None,
                            problems: list[ParseError] | None = None) -> Listing:
    """AppGallery detail JSON → Listing (permissions and privacy URL from their cards).

    Permissions may be objects (``name``, ``desc``) or plain strings (a permission name, or a label mapped back
    to one); anything else, and optional fields of the wrong type, cost that entry or field (problems).
    """
    layouts = _appgallery_layouts(body, problems)
    headers = layouts.get("appdetailheadercard")
    if not headers:
        raise LayoutChanged("appgallery", ["appdetailheadercard"])
    head = headers[0]
    item = _ident(head.get("appid")) or url
    _require("appgallery", head, APPGALLERY_REQUIRED, item)
    names, labels = _appgallery_permissions(layouts.get("appdetailpermissioncard", []), item, problems)
    privacy_url = None
    for card in layouts.get("appprivacycard", []):
        privacy_url = privacy_url or _optional_str("appgallery", card, "privacyUrl", item, problems)
    download = _optional_str("appgallery", head, "downurl", item, problems)
    return with_hash(
        Listing(
            store="appgallery",
            store_id=_ident(head["appid"]),
            platform="android",
            package=head["package"],
            name=head["name"],
            developer=head["developer"],
            category=_optional_str("appgallery", head, "tagName", item, problems),
            source_url=url,
            fetched_at=fetched_at or utcnow(),
            version=_optional_str("appgallery", head, "versionName", item, problems),
            updated=_iso_date(_optional_str("appgallery", head, "releaseDate", item, problems)),
            description=_optional_str("appgallery", head, "intro", item, problems),
            downloads=_optional_int("appgallery", head, "downloads", item, problems),
            privacy_url=_join(url, privacy_url),
            permissions=tuple(dict.fromkeys(names + list(permissions_from_labels(labels)))),
            apk_url=_join(url, download),
        )
    )


_PERMISSION_NAME = re.compile(r"^[A-Za-z_][\w]*(\.[\w]+)+$")


def _appgallery_permissions(cards: list[dict], item: str, problems: list | None) -> tuple[list[str], list[str]]:
    """(permission names, labels) of the permission cards: objects with ``name``/``desc``, or plain strings."""
    names, labels = [], []
    for card in cards:
        perms = card.get("permissions") or []
        if not isinstance(perms, list):
            _report(problems, FieldMalformed("appgallery", item, "permissions", perms, "a list"))
            continue
        for perm in perms:
            if isinstance(perm, dict):
                name, desc = perm.get("name"), perm.get("desc")
                if isinstance(name, str) and name.strip():
                    names.append(name.strip())
                    continue
                perm = desc
            if isinstance(perm, str) and perm.strip():
                (names if _PERMISSION_NAME.match(perm.strip()) else labels).append(perm.strip())
            else:
                _report(problems, FieldMalformed("appgallery", item, "permissions[]", perm,
                                                 "a permission name, a label or an object with one"))
    return names, labels


def _link(store: str, base: str, href: str | None, item: str, field: str, problems: list | None) -> str | None:
    """``href`` resolved against ``base``; a link that is there but not a URL costs the field (a problem)."""
    joined = _join(base, href)
    if joined is None and href and href.strip():
        _report(problems, FieldMalformed(store, item, field, href, "a URL"))
    return joined


def _join(base: str, href: str | None) -> str | None:
    """``href`` resolved against ``base``; None for no link or one that is not a URL."""
    if not href or not href.strip():
        return None
    try:
        return urljoin(base, href.strip())
    except ValueError:
        return None


# --- Xiaomi ---------------------------------------------------------------------


def parse_xiaomi_search(html: str, url: str, problems: list[ParseError] | None = None) -> tuple[list[str], str | None]:
    """Xiaomi search page HTML → (absolute detail URLs, next page URL or None); a detail link that is not a URL
    costs that entry (a problem)."""
    sel = Selector(text=html, type="html")
    applist = sel.css("ul.applist")
    if not applist:
        raise LayoutChanged("xiaomi", ["applist"])
    urls = []
    for place, href in enumerate(applist.css("li a[href*='details']::attr(href)").getall()):
        joined = _join(url, href)
        if joined:
            urls.append(joined)
        else:
            _report(problems, FieldMalformed("xiaomi", f"applist[{place}]", "href", href, "a URL"))
    return list(dict.fromkeys(urls)), _join(url, sel.css("a.next::attr(href)").get())


def _xiaomi_pairs(sel: Selector, base_url: str) -> dict[str, tuple[str, str | None]]:
    """The label → (value text, value link) pairs of the detail box."""
    pairs: dict[str, tuple[str, str | None]] = {}
    items = sel.css("div.details ul.cf > li")
    for label_li, value_li in zip(items, items[1:]):
        label = " ".join(label_li.xpath("string()").get("").split())
        if not label.endswith(("：", ":")) or label[:-1] in pairs:
            continue
        href = value_li.css("a::attr(href)").get()
        value = " ".join(value_li.xpath("string()").get("").split())
        pairs[label[:-1].strip()] = (value, _join(base_url, href))
    return pairs


def parse_xiaomi_detail(html: str, url: str, *, fetched_at: str | None = None,
                        problems: list[ParseError] | None = None) -> Listing:
    """Xiaomi detail page HTML → Listing; permission labels are mapped back to names. A policy or APK link that is
    not a URL costs that field (a problem)."""
    sel = Selector(text=html, type="html")
    titles = sel.css("div.intro-titles")
    name = _text(titles, "h3")
    developer = " ".join(titles.xpath("./p[1]").xpath("string()").get("").split())
    pairs = _xiaomi_pairs(sel, url)
    package = pairs.get("包名", ("", None))[0] or parse_qs(urlsplit(url).query).get("id", [""])[0]
    missing = [f for f, v in (("name", name), ("developer", developer), ("package", package)) if not v]
    if not sel.css("div.details"):
        missing.append("details")
    if missing:
        raise LayoutChanged("xiaomi", missing)
    category = titles.css("p.special-font").xpath("string()").get("")
    category = re.split(r"[|｜]|支持：", category.split("分类：", 1)[-1])[0].strip()
    privacy_url = next((link for label, (_, link) in pairs.items() if "隐私" in label and link), None)
    if privacy_url is None:
        href = next((a.attrib["href"] for a in sel.css("a[href]") if "隐私政策" in a.xpath("string()").get("")), None)
        privacy_url = _link("xiaomi", url, href, package, "privacy_url", problems)
    description = "\n".join(
        line.strip() for line in sel.css("p.pslide")[:1].xpath(".//text()").getall() if line.strip()
    )
    labels = [" ".join(li.xpath("string()").get("").split()) for li in sel.css("ul.second-ul li")]
    apk_href = sel.css("a.download::attr(href)").get()
    return with_hash(
        Listing(
            store="xiaomi",
            store_id=package,
            platform="android",
            package=package,
            name=name,
            developer=developer,
            category=category,
            source_url=url,
            fetched_at=fetched_at or utcnow(),
            version=pairs.get("版本号", ("", None))[0],
            updated=_iso_date(pairs.get("更新时间", ("", None))[0]),
            description=description,
            privacy_url=privacy_url,
            permissions=permissions_from_labels(labels),
            apk_url=_link("xiaomi", url, apk_href, package, "apk_url", problems),
        )
    )


# --- saved files (``finmon parse``) -------------------------------------------------


def _decode(body: bytes) -> str:
    from crawler.policy import decode_body

    return decode_body(body, None)[0]


_FILE_PARSERS: dict[str, Callable[[bytes, str], Any]] = {
    "itunes": lambda body, url: [lst.to_dict() for lst in parse_itunes_search(body)],
    "apple-page": lambda body, url: dict(
        zip(("privacy_url", "privacy_labels"), parse_apple_page(_decode(body), url))
    ),
    "appgallery-search": lambda body, url: dict(zip(("detail_ids", "total_pages"), parse_appgallery_search(body))),
    "appgallery": lambda body, url: parse_appgallery_detail(body, url).to_dict(),
    "xiaomi-search": lambda body, url: dict(zip(("detail_urls", "next_url"), parse_xiaomi_search(_decode(body), url))),
    "xiaomi": lambda body, url: parse_xiaomi_detail(_decode(body), url).to_dict(),
    "policy": lambda body, url: _parse_policy_file(body, url),
}
STORE_NAMES = tuple(_FILE_PARSERS)


def _parse_policy_file(body: bytes, url: str) -> dict:
    from crawler.policy import ExtractionFailed, extract_policy

    try:
        version, warnings = extract_policy(url, url, body, None, utcnow())
    except ExtractionFailed as exc:
        raise MalformedResponse("policy", str(exc)) from exc
    return {**version.to_dict(), "warnings": list(warnings)}


def parse_file(store: str, path: str | Path, url: str | None = None) -> Any:
    """Run one parser on a saved response and return JSON-able data.

    ``store`` names the response type:

    - ``itunes``: iTunes Search/Lookup JSON → list of listing dicts
    - ``apple-page``: Apple app page HTML → ``{"privacy_url", "privacy_labels"}``
    - ``appgallery-search``: AppGallery search JSON → ``{"detail_ids", "total_pages"}``
    - ``appgallery``: AppGallery detail JSON → listing dict
    - ``xiaomi-search``: Xiaomi search HTML → ``{"detail_urls", "next_url"}``
    - ``xiaomi``: Xiaomi detail HTML → listing dict
    - ``policy``: a privacy policy page (HTML, any charset, or PDF) → policy version dict

    ``url`` is the address the file was fetched from (links are resolved against it); it
    defaults to the file's URI. Raises :class:`LayoutChanged` / :class:`MalformedResponse`,
    and ``ValueError`` for an unknown ``store``. A file larger than a crawl would download (a policy:
    FINMON_POLICY_MAX_BYTES, a store page: DOWNLOAD_MAXSIZE) is refused as :class:`MalformedResponse`.
    """
    if store not in _FILE_PARSERS:
        raise ValueError(f"unknown store {store!r}; expected one of: {', '.join(STORE_NAMES)}")
    path = Path(path)
    cap, name = ((settings.FINMON_POLICY_MAX_BYTES, "FINMON_POLICY_MAX_BYTES") if store == "policy"
                 else (settings.DOWNLOAD_MAXSIZE, "DOWNLOAD_MAXSIZE"))
    size = path.stat().st_size
    if size > cap:
        raise MalformedResponse(store, f"{path}: {size:,} bytes is over the {cap:,}-byte limit of a crawl ({name})")
    return _FILE_PARSERS[store](path.read_bytes(), url or path.resolve().as_uri())
