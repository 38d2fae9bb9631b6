"""Store parsers: pure functions from one saved store response to what it says.

Each function takes the response body (and its URL where links must be resolved) and
returns listings or links; none does I/O, so ``finmon parse STORE FILE`` runs them on a
saved file. A response whose required fields are missing raises :class:`LayoutChanged`
(the store changed its pages); undecodable JSON raises :class:`MalformedResponse`; a required field
of the wrong type raises :class:`FieldMalformed`; a page saying the store has no such app raises
:class:`AppNotFound`. Where one response holds several items, or an item
has optional fields, the problem costs only that item or that field: it is appended to the
``problems`` list the caller passes (logged as a warning when none is passed), and the rest is parsed.
No other exception escapes a parser (tests/crawler/test_parsers_fuzz.py).
"""
from __future__ import annotations

import dataclasses
import html as html_lib
import json
import re
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any, Callable, NamedTuple
from urllib.parse import parse_qs, urljoin, urlsplit

import logging

from parsel import Selector

from finmon import settings
from finmon.model import Listing, utcnow

log = logging.getLogger(__name__)
DATA_DIR = Path(__file__).parent / "data"
_ISO_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)")


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
    """The stores' permission labels → Android permission names (crawler/data): the Chinese labels as shown, the
    English ones lower-cased without a final full stop."""
    with open(DATA_DIR / "permission_labels.json", encoding="utf-8") as fh:
        data = json.load(fh)
    return {**data["labels_en"], **data["labels"]}


UNMAPPED_LABEL = "unmapped-label:"


def permissions_from_labels(labels: list[str]) -> tuple[str, ...]:
    """Map permission labels back to permission names.

    A label missing from the table is kept as ``unmapped-label:<label>`` rather than lost,
    so an operator sees it and the table can grow.
    """
    table = permission_labels()
    cleaned = (label.strip("▪•·- \t\u3000") for label in labels)
    names = (table.get(label) or table.get(" ".join(label.split()).rstrip(".").casefold(), UNMAPPED_LABEL + label)
             for label in cleaned if label)
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
    return _optional_text(store, record.get(name), item, name, problems)


def _optional_text(store: str, value: Any, item: str, field: str, problems: list | None) -> str:
    """An optional text value: "" when absent; a value of another type costs the field (a problem)."""
    if value is None or isinstance(value, str):
        return value or ""
    _report(problems, FieldMalformed(store, item, field, value, "a string"))
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


def _at(value: Any, *path: int | str) -> Any:
    """``value[p0][p1]…`` through arrays (int steps) and objects (any step, as a string key); None off the data."""
    for step in path:
        if isinstance(value, list) and isinstance(step, int) and -len(value) <= step < len(value):
            value = value[step]
        elif isinstance(value, dict):
            value = value.get(str(step))
        else:
            return None
    return value


def _ident(value: Any) -> str:
    """A store id from an int or a non-empty string; "" for anything else."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int) or (isinstance(value, str) and value.strip()):
        return str(value).strip()
    return ""


def _iso_date(value: str) -> str:
    """``YYYY-MM-DD`` of a date that starts a value ("2024-05-01", "2024/5/1", "2024-05-01 10:00", ISO times);
    anything else as given."""
    value = (value or "").strip()
    match = _ISO_DATE.match(value)
    return f"{match[1]}-{int(match[2]):02d}-{int(match[3]):02d}" if match else value


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
            legal_entity=_optional_str("itunes", result, "sellerName", item, problems),
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
    if isinstance(code, (int, str)) and not isinstance(code, bool) and str(code).strip() == "1002":
        raise MalformedResponse("appgallery", "rtnCode=1002: the store refused the request's Interface-Code "
                                              "(the current web API wants a short-lived access code)")
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


class AppGallerySearch(NamedTuple):
    """An AppGallery search page: detail ids (``app|C…``), their categories (the items' ``tagName``, which the
    detail page does not give) and whether a next page exists."""

    detail_ids: list[str]
    categories: dict[str, str]
    has_next_page: bool


def parse_appgallery_search(body: bytes | str, problems: list[ParseError] | None = None, *,
                            page: int = 1) -> AppGallerySearch:
    """AppGallery search page JSON (``uri=searchApp|KW``, page number ``page``) → :class:`AppGallerySearch`.

    As public scrapers do, the items of every layout are read whatever its ``layoutName``, and one level deeper
    (an item's ``list``); those carrying ``detailId`` or ``appid`` are apps, the rest is skipped. A next page exists
    while ``hasNextPage`` is 1 (without it: while ``page`` < ``totalPages``). An app entry without a usable id
    costs that entry (a problem); a page none of whose entries has one fails.
    """
    layouts = _appgallery_layouts(body, problems)
    root = layouts.pop("__root__")[0]
    more = _appgallery_more(root, page)
    ids, categories, failed = [], {}, []
    for name, cards in layouts.items():
        for place, card in enumerate(cards):
            nested = card.get("list")
            entries = [(f"{name}[{place}]", card)] + [
                (f"{name}[{place}].list[{i}]", e) for i, e in enumerate(nested if isinstance(nested, list) else [])
                if isinstance(e, dict)]
            for where, entry in entries:
                if "detailId" not in entry and "appid" not in entry:
                    continue
                detail_id, appid = entry.get("detailId"), _ident(entry.get("appid"))
                item = appid or where
                if isinstance(detail_id, str) and detail_id.strip().startswith("app|"):
                    found = detail_id.strip()
                elif detail_id not in (None, "") and not isinstance(detail_id, str):
                    failed.append(FieldMalformed("appgallery", item, "detailId", detail_id, "a string"))
                    continue
                elif appid:
                    found = f"app|{appid}"
                elif entry.get("appid") not in (None, ""):
                    failed.append(FieldMalformed("appgallery", item, "appid", entry["appid"], "an id"))
                    continue
                elif detail_id:  # another kind of entry (a topic, a web page), not an app
                    continue
                else:
                    failed.append(LayoutChanged("appgallery", ["detailId"], item=where))
                    continue
                ids.append(found)
                category = _optional_str("appgallery", entry, "tagName", item, problems)
                if category:
                    categories.setdefault(found, category)
    if failed and not ids:
        raise failed[0]
    if not ids and any(layouts.values()) and (_int(root.get("count")) or 0) > 0:
        raise LayoutChanged("appgallery", ["dataList.appid"])  # results announced, but no entry is an app
    for problem in failed:
        _report(problems, problem)
    return AppGallerySearch(list(dict.fromkeys(ids)), categories, more)


def _appgallery_more(root: dict, page: int) -> bool:
    """Whether a search page has a next one: ``hasNextPage`` (0/1), else ``page`` < ``totalPages``."""
    for name in ("hasNextPage", "totalPages"):
        value = root.get(name)
        if value is None or value == "":
            continue
        number = None if isinstance(value, (bool, float, list, dict)) else _int(value)
        if number is None:
            raise FieldMalformed("appgallery", "", name, value, "a whole number")
        return number > 0 if name == "hasNextPage" else page < number
    raise LayoutChanged("appgallery", ["hasNextPage"])


APPGALLERY_CARDS = ("detailheadcard", "detailhiddencard", "detailappinfocard", "detailappintrocard")


def parse_appgallery_detail(body: bytes | str, url: str, *, category: str = "", fetched_at: str | None = None,
                            problems: list[ParseError] | None = None) -> Listing:
    """AppGallery detail JSON (``uri=app|C…``) → Listing; ``category`` is the search item's ``tagName`` (the
    detail page has none).

    The cards public scrapers read: ``detailheadcard`` (name; ``intro`` is the install-count text),
    ``detailhiddencard`` (appid, package, name, versionName, downurl), ``detailappinfocard`` (developer: the
    company's registered name, also the legal entity; releaseDate, version) and ``detailappintrocard`` (appIntro:
    the description). Required: appid and package, a name (head or hidden card), developer; a missing card or
    required field raises LayoutChanged naming ``card.field``. The privacy URL (``appprivacycard.privacyUrl``) and
    the permissions (``appdetailpermissioncard.permissions``) are read from card names that are unconfirmed: no
    public source shows where the real API carries them. Permissions may be objects (``name``, ``desc``) or plain
    strings (a permission name, or a label mapped back to one); anything else, an unreadable install count and
    optional fields of the wrong type cost that entry or field (problems).
    """
    layouts = _appgallery_layouts(body, problems)
    head, hidden, info, intro = ((layouts.get(name) or [{}])[0] for name in APPGALLERY_CARDS)
    named = hidden if head.get("name") in (None, "") and hidden.get("name") not in (None, "") else head
    required = (("detailhiddencard", hidden, "appid"), ("detailhiddencard", hidden, "package"),
                ("detailheadcard" if named is head else "detailhiddencard", named, "name"),
                ("detailappinfocard", info, "developer"))
    item = _ident(hidden.get("appid")) or url
    missing = [f"{card}.{field}" for card, record, field in required if record.get(field) in (None, "")]
    if missing:
        raise LayoutChanged("appgallery", missing, item=item)
    for _, record, field in required:
        _require("appgallery", record, (field,), item)
    names, labels = _appgallery_permissions(layouts.get("appdetailpermissioncard", []), item, problems)
    privacy_url = None
    for card in layouts.get("appprivacycard", []):
        privacy_url = privacy_url or _optional_str("appgallery", card, "privacyUrl", item, problems)
    download = _optional_str("appgallery", hidden, "downurl", item, problems)
    version = _optional_str("appgallery", hidden, "versionName", item, problems)
    return with_hash(
        Listing(
            store="appgallery",
            store_id=_ident(hidden["appid"]),
            platform="android",
            package=hidden["package"],
            name=named["name"],
            developer=info["developer"],
            legal_entity=info["developer"],
            category=category,
            source_url=url,
            fetched_at=fetched_at or utcnow(),
            version=version or _optional_str("appgallery", info, "version", item, problems),
            updated=_iso_date(_optional_str("appgallery", info, "releaseDate", item, problems)),
            description=_optional_str("appgallery", intro, "appIntro", item, problems),
            downloads=_appgallery_installs(head, item, problems),
            rating_count=_optional_int("appgallery", head, "gradeCount", item, problems),
            privacy_url=_join(url, privacy_url),
            permissions=tuple(dict.fromkeys(names + list(permissions_from_labels(labels)))),
            apk_url=_join(url, download),
        )
    )


_INSTALLS = re.compile(r"^\s*(\d[\d,]{0,20}(?:\.\d{1,6})?)(?![\d.,])\s*(万|亿)?")
_INSTALL_UNITS = {None: 1, "万": 10_000, "亿": 100_000_000}


def install_count(value: Any) -> int | None:
    """An install count from a number or a store's text ("152万次安装", "1.2亿次安装", "3,400 installs", "5000");
    None when unreadable."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    match = _INSTALLS.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    return round(float(match[1].replace(",", "")) * _INSTALL_UNITS[match[2]])


def _appgallery_installs(head: dict, item: str, problems: list | None) -> int | None:
    """The head card's install count (its ``intro`` text); an unreadable one costs the field (a problem)."""
    value = head.get("intro")
    if value is None or value == "":
        return None
    count = install_count(value)
    if count is None:
        _report(problems, FieldMalformed("appgallery", item, "intro", value, "an install count"))
    return count


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
    costs that entry (a problem). The next page is ``a.next`` or, in ``div.pages``, the link reading 下一页 (what
    real pages have)."""
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
    next_href = sel.css("a.next::attr(href)").get() or next(
        (a.attrib["href"] for a in sel.css("div.pages a[href]") if "下一页" in a.xpath("string()").get("")), None)
    if next_href and next_href.strip().lower().startswith(("javascript:", "#")):
        next_href = None  # a disabled link
    return list(dict.fromkeys(urls)), _join(url, next_href)


def _xiaomi_pairs(sel: Selector, base_url: str) -> dict[str, tuple[str, str | None]]:
    """The label → (value text, value link) pairs of the detail box: the classic ``div.details ul.cf`` label and
    value ``li`` pairs (labels end in "：" or ":"), then the newer ``<div><div>label</div><div>value</div></div>``
    blocks (labels without colons; seen in one hand-made source only, unconfirmed)."""
    pairs: dict[str, tuple[str, str | None]] = {}
    items = sel.css("div.details ul.cf > li")
    for label_li, value_li in zip(items, items[1:]):
        label = " ".join(label_li.xpath("string()").get("").split())
        if not label.endswith(("：", ":")) or label[:-1] in pairs:
            continue
        href = value_li.css("a::attr(href)").get()
        value = " ".join(value_li.xpath("string()").get("").split())
        pairs[label[:-1].strip()] = (value, _join(base_url, href))
    for block in sel.xpath("//div[count(*) = 2 and count(div) = 2][not(div[1]/*)]"):
        label_div, value_div = block.xpath("./div")
        label = " ".join(label_div.xpath("string()").get("").split()).rstrip("：:").strip()
        if label and len(label) <= 12 and label not in pairs:
            value = " ".join(value_div.xpath("string()").get("").split())
            pairs[label] = (value, _join(base_url, value_div.css("a::attr(href)").get()))
    return pairs


def parse_xiaomi_detail(html: str, url: str, *, fetched_at: str | None = None,
                        problems: list[ParseError] | None = None) -> Listing:
    """Xiaomi detail page HTML → Listing; permission labels are mapped back to names. A policy or APK link that is
    not a URL costs that field (a problem). The developer is the company named in ``div.intro-titles`` (its first
    ``p``, the legal name on classic pages), else the 开发者 value; the legal entity is the 开发者 value, else that
    company."""
    sel = Selector(text=html, type="html")
    titles = sel.css("div.intro-titles")
    name = _text(titles, "h3")
    company = " ".join(titles.xpath("./p[not(contains(@class, 'special-font'))][1]").xpath("string()").get("").split())
    pairs = _xiaomi_pairs(sel, url)
    legal_entity = pairs.get("开发者", ("", None))[0] or company
    developer = company or legal_entity
    package = pairs.get("包名", ("", None))[0] or parse_qs(urlsplit(url).query).get("id", [""])[0]
    missing = [f for f, v in (("name", name), ("developer", developer), ("package", package)) if not v]
    if not sel.css("div.details") and not {"包名", "版本号"} & set(pairs):
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
            legal_entity=legal_entity,
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


# --- Google Play ------------------------------------------------------------------------
#
# Google Play pages carry their data as JSON in AF_initDataCallback script blocks. An app's record is an array in
# which field n sits at index n - 1, or an object keyed by field number (the Data safety page; some details pages
# send the tail of the array that way): :func:`_play_field` reads both. The ds:N keys move between page versions,
# so blocks are recognised by their shape, never by key. Paths and shapes: docs/stores.md.

_PLAY_BLOCK = re.compile(r"AF_initDataCallback\(\s*\{\s*key:\s*'ds:\d+'.*?data:\s*(.*?),"
                         r"\s*sideChannel:\s*\{\}\s*\}\s*\)\s*;?\s*</script", re.S)
_PLAY_PACKAGE = re.compile(r"details\?id(?:=|\\u003d)([A-Za-z][\w.]*)")
_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"<br\s*/?>", re.I)


def _play_blocks(html: str) -> list[Any]:
    """The decoded data of every AF_initDataCallback block of a Google Play page (undecodable blocks left out)."""
    blocks = []
    for match in _PLAY_BLOCK.finditer(html):
        try:
            blocks.append(json.loads(match.group(1)))
        except (ValueError, RecursionError):
            continue
    return blocks


def _play_field(record: Any, number: int) -> Any:
    """Field ``number`` of a Google Play record: index number - 1 of an array (or the key of a trailing object that
    holds the array's tail), or the key "number" of an object."""
    if isinstance(record, dict):
        return record.get(str(number))
    if not isinstance(record, list):
        return None
    value = record[number - 1] if number - 1 < len(record) else None
    if value is None and record and isinstance(record[-1], dict):
        value = record[-1].get(str(number))
    return value


def _html_text(fragment: str) -> str:
    """The text of an HTML fragment (a store description): line breaks kept, tags dropped, entities decoded."""
    return html_lib.unescape(_TAG.sub("", _BREAK.sub("\n", fragment))).strip()


def _unix_date(value: Any) -> str:
    """An ISO date (UTC) from unix seconds; "" for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return ""
    try:
        return datetime.fromtimestamp(int(value), timezone.utc).date().isoformat()
    except (ValueError, OverflowError, OSError):
        return ""


# name, installs, developer, contact, description, genre, policy, updated
_APP_FIELDS = (1, 14, 69, 70, 73, 80, 100, 146)


def _app_fields(record: Any) -> int:
    """How many of the fields an app's details record has (the page's other blocks have few or none)."""
    return sum(_play_field(record, number) is not None for number in _APP_FIELDS)


def parse_googleplay_details(html: str, url: str, *, fetched_at: str | None = None,
                             problems: list[ParseError] | None = None) -> Listing:
    """Google Play app details page → Listing: name, developer, the legal entity with its address (the page's
    "About the developer" block), the contact e-mail, genre, installs, update date, version, description and policy
    link. The app's permissions and Data safety declarations are on other pages (:func:`parse_googleplay_permissions`,
    :func:`parse_googleplay_datasafety`). A page without an app record, or whose record lacks the name or the
    developer, raises LayoutChanged."""
    records = [r for block in _play_blocks(html) if isinstance(r := _at(block, 1, 2), (list, dict))]
    record = max(records, key=_app_fields, default=None)
    if record is None or not _app_fields(record):
        raise LayoutChanged("googleplay", ["app record (AF_initDataCallback [1][2])"])
    name, developer = _at(_play_field(record, 1), 0), _at(_play_field(record, 69), 0)
    missing = [field for field, value in (("name", name), ("developer", developer)) if not value]
    if missing:
        raise LayoutChanged("googleplay", missing)
    if not isinstance(name, str) or not isinstance(developer, str):
        bad = "name" if not isinstance(name, str) else "developer"
        raise FieldMalformed("googleplay", url, bad, name if bad == "name" else developer, "a string")
    package = parse_qs(urlsplit(url).query).get("id", [""])[0]
    if not package:
        link = Selector(text=html, type="html").css("link[rel=canonical]::attr(href)").get("")
        canonical = _PLAY_PACKAGE.search(link)
        package = canonical.group(1) if canonical else ""
    if not package:
        raise LayoutChanged("googleplay", ["package (the page URL's id=, or its canonical link)"])
    item = package

    def text(field: str, value: Any) -> str:
        return _optional_text("googleplay", value, item, field, problems)

    contact, installs = _play_field(record, 70), _play_field(record, 14)
    exact = _at(installs, 2)
    downloads = exact if isinstance(exact, int) and not isinstance(exact, bool) else _at(installs, 1)
    if downloads is not None and (isinstance(downloads, bool) or not isinstance(downloads, int)):
        _report(problems, FieldMalformed("googleplay", item, "installs", downloads, "a whole number"))
        downloads = None
    # the developer's own description first: [13] is Google's translation into the page's language
    description = text("description", _at(_play_field(record, 73), 0, 1) or _at(_play_field(record, 13), 0, 0, 1))
    privacy = text("privacy_url", _at(_play_field(record, 100), 0, 5, 2))
    return with_hash(
        Listing(
            store="googleplay",
            store_id=package,
            platform="android",
            package=package,
            name=name,
            developer=developer,
            legal_entity=text("legal_entity", _at(contact, 4, 0)),
            legal_address=text("legal_address", _at(contact, 4, 2, 0)),
            developer_email=text("developer_email", _at(contact, 1, 0)),
            category=text("category", _at(_play_field(record, 80), 0, 0, 0)),
            source_url=url,
            fetched_at=fetched_at or utcnow(),
            version=text("version", _at(_play_field(record, 141), 0, 0, 0)),
            updated=_unix_date(_at(_play_field(record, 146), 0, 1, 0)),
            description=_html_text(description),
            downloads=downloads,
            privacy_url=_link("googleplay", url, privacy, item, "privacy_url", problems),
        )
    )


def parse_googleplay_datasafety(html: str, problems: list[ParseError] | None = None) -> dict | None:
    """Google Play Data safety page → ``{"collected": [entry], "shared": [entry], "practices": [label]}``, an entry
    ``{"category", "type", "optional", "purpose"}`` as the page words them (the purpose text is kept whole: one
    purpose reads "Fraud prevention, security, and compliance"). None when the developer provided no Data safety
    information (the record has no section). A page without the app's record raises LayoutChanged; an entry that
    cannot be read costs that entry (a problem)."""
    record = next((r for block in _play_blocks(html) if isinstance(r := _at(block, 1, 2, 1), dict)
                   and ("138" in r or "100" in r)), None)
    if record is None:
        raise LayoutChanged("googleplay", ["Data safety record (AF_initDataCallback [1][2][1])"])
    section = _play_field(record, 138)
    if section is None:
        return None
    if not isinstance(_at(section, 4), list):
        raise LayoutChanged("googleplay", ["Data safety sections ([1][2][1][138][4])"])
    declared: dict[str, list] = {"collected": [], "shared": []}
    for kind, place in (("shared", 0), ("collected", 1)):
        for number, entry in enumerate(_at(section, 4, place, 0) or []):
            category, rows = _at(entry, 0, 1), _at(entry, 4)
            if not isinstance(category, str) or not isinstance(rows, list):
                _report(problems, FieldMalformed("googleplay", f"{kind}[{number}]", "data safety entry", entry,
                                                 "a category with its data types"))
                continue
            for row in rows:
                data_type, optional, purpose = (_at(row, 0), _at(row, 1), _at(row, 2))
                if not isinstance(data_type, str):
                    _report(problems, FieldMalformed("googleplay", f"{kind}[{number}]", "data type", row,
                                                     "[type, optional, purpose]"))
                    continue
                declared[kind].append({"category": category, "type": data_type, "optional": optional == 1,
                                       "purpose": purpose if isinstance(purpose, str) else ""})
    practices = [label for practice in _at(section, 9, 2) or [] if isinstance(label := _at(practice, 1), str)]
    return {**declared, "practices": practices}


def _batch_payload(store: str, body: bytes | str, rpc: str) -> Any:
    """The decoded payload of the ``rpc`` frame of a batchexecute answer (``)]}'`` first, then JSON lines, each
    chunk possibly preceded by its length); None when the answer's payload is null."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if not text.startswith(")]}'"):
        raise MalformedResponse(store, "not a batchexecute answer (no )]}' prefix)")
    for line in text[4:].splitlines():
        if not line.startswith("["):
            continue
        try:
            frames = json.loads(line)
        except (ValueError, RecursionError):
            continue
        for frame in frames if isinstance(frames, list) else ():
            if isinstance(frame, list) and frame[:2] == ["wrb.fr", rpc]:
                payload = _at(frame, 2)
                if payload is None:
                    return None
                try:
                    return json.loads(payload) if isinstance(payload, str) else payload
                except (ValueError, RecursionError) as exc:
                    raise MalformedResponse(store, f"undecodable {rpc} payload: {exc}") from exc
    raise LayoutChanged(store, [f"{rpc} frame"])


def parse_googleplay_permissions(body: bytes | str, problems: list[ParseError] | None = None) -> tuple[str, ...]:
    """Google Play's permission list (the batchexecute ``xdSrCf`` answer) → Android permission names. Google Play
    gives only the permissions' English labels (grouped, then ungrouped); they are mapped back to names, a label
    the table does not know kept as ``unmapped-label:<label>``. A null payload is an app with no permissions."""
    payload = _batch_payload("googleplay", body, "xdSrCf")
    if payload is None:
        return ()
    if not isinstance(payload, list):
        raise LayoutChanged("googleplay", ["xdSrCf permission sections"])
    labels = []
    for section in payload[:2]:
        for group in section if isinstance(section, list) else ():
            labels += [label for entry in _at(group, 2) or [] if isinstance(label := _at(entry, 1), str)]
    labels += [label for entry in _at(payload, 2) or [] if isinstance(label := _at(entry, 1), str)]
    return permissions_from_labels(labels)


def parse_googleplay_search(html: str, problems: list[ParseError] | None = None) -> tuple[list[str], str | None]:
    """Google Play search page → (packages found, the continuation token or None). The results are the app entries
    of the result sections (``[0][1][i][22][0]``) and the packages linked from the top "exact match" card
    (``[0][1][i][23]``); the token, when the page has one, says Google Play holds more results than the page."""
    sections = next((s for block in _play_blocks(html) if isinstance(s := _at(block, 0, 1), list)
                     and any(_at(x, 22) is not None or _at(x, 23) is not None for x in s)), None)
    if sections is None:
        raise LayoutChanged("googleplay", ["search result sections ([0][1][i][22])"])
    packages, token = [], None
    for section in sections:
        for place, entry in enumerate(_at(section, 22, 0) or []):
            package = _at(entry, 0, 0, 0)
            if isinstance(package, str) and package:
                packages.append(package)
            else:
                _report(problems, LayoutChanged("googleplay", ["package"], item=f"results[{place}]"))
        exact = _at(section, 23)
        if exact is not None:
            packages += _PLAY_PACKAGE.findall(json.dumps(exact))
        found = _at(section, 22, 1, 3, 1)
        token = token or (found if isinstance(found, str) and found else None)
    return list(dict.fromkeys(packages)), token


# --- Tencent MyApp (应用宝) ---------------------------------------------------------------
#
# The current site (sj.qq.com, a Next.js application) renders an app's page on the server: its
# <script id="__NEXT_DATA__"> holds props.pageProps.dynamicCardResponse, the envelope the site's card API answers with
# ({"ret": 0, "data": {"components": [{"cardId", "data": {"name", "itemData"}}]}, "msg"}). The app's record is
# itemData[0] of the card named GameDetail (cardId yybn_game_basic_info); its field names are those of a real page of
# 2026 (tests/crawler/fixtures/myapp_detail_real.html). Search reads the older site's searchAjax.htm JSON, known from
# real answers of 2015 and 2020 only (crawler/spiders/myapp.py says what is confirmed).

MYAPP_REQUIRED = ("pkg_name", "name", "developer")
MYAPP_DETAIL_CARD = ("GameDetail", "yybn_game_basic_info")  # the app card's data.name and cardId
_NEXT_DATA = re.compile(r"<script\b[^>]*?\bid\s*=\s*[\"']?__NEXT_DATA__\b[^>]*>(.*?)</script\s*>", re.S | re.I)
_SCRIPT_BLOCK = re.compile(r"<script\b.*?</script\s*>", re.S | re.I)
_MYAPP_GONE = ("找不到", "不存在", "已下架")  # what the site writes on the page of an app it does not have
_PACKAGE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)+$")


class AppNotFound(ParseError):
    """The store's page says it has no such app (an unknown or removed package): not a layout change."""

    kind = "not_found"

    def __init__(self, store: str, item: str = ""):
        super().__init__(store, "the store has no such app", item=item)


def _myapp_gone(html: str, data: Any) -> bool:
    """Whether a page without the app's card is the site saying it has no such app: Next.js's error page, or a
    找不到-style text outside the page's scripts (what scripts that read the site test)."""
    if _at(data, "page") in ("/404", "/_error"):
        return True
    visible = _SCRIPT_BLOCK.sub(" ", html)
    return any(marker in visible for marker in _MYAPP_GONE)


def _myapp_record(html: str, url: str) -> dict:
    """The app record of an app page: itemData[0] of its GameDetail card. A page that says the app does not exist
    raises AppNotFound; a missing __NEXT_DATA__, envelope or card LayoutChanged; ``ret`` != 0 MalformedResponse."""
    match = _NEXT_DATA.search(html)
    if match is None:
        if _myapp_gone(html, None):
            raise AppNotFound("myapp", item=url)
        raise LayoutChanged("myapp", ["__NEXT_DATA__"], item=url)
    data = _load_json("myapp", match.group(1))
    envelope = _at(data, "props", "pageProps", "dynamicCardResponse")
    if not isinstance(envelope, dict):
        if _myapp_gone(html, data):
            raise AppNotFound("myapp", item=url)
        raise LayoutChanged("myapp", ["dynamicCardResponse"], item=url)
    if envelope.get("ret") in (None, ""):
        raise LayoutChanged("myapp", ["dynamicCardResponse.ret"], item=url)
    if _int(envelope["ret"]) != 0:
        raise MalformedResponse("myapp", f"ret={_preview(envelope['ret'])}, msg={_preview(envelope.get('msg'))}")
    components = _at(envelope, "data", "components")
    if not isinstance(components, list):
        raise LayoutChanged("myapp", ["dynamicCardResponse.data.components"], item=url)
    cards = [c["data"] for c in components if isinstance(c, dict) and isinstance(c.get("data"), dict)
             and (c["data"].get("name") == MYAPP_DETAIL_CARD[0] or c.get("cardId") == MYAPP_DETAIL_CARD[1])]
    for card in cards:
        items = card.get("itemData")
        if isinstance(items, list) and items and isinstance(items[0], dict):
            return items[0]
    if _myapp_gone(html, data):
        raise AppNotFound("myapp", item=url)
    raise LayoutChanged("myapp", ["GameDetail.itemData" if cards else "GameDetail"], item=url)


def _myapp_date(record: dict, item: str, problems: list | None) -> str:
    """The ISO date (UTC) of the record's ``update_time`` (unix seconds, a numeric string on the real page), else
    of ``app_update_time``; "" when neither is given, and a value that is no time costs the field (a problem)."""
    for name in ("update_time", "app_update_time"):
        value = record.get(name)
        if value is None or value == "":
            continue
        seconds = None if isinstance(value, (bool, float, list, dict)) else _int(value)
        day = _unix_date(seconds) if seconds is not None and seconds > 0 else ""
        if not day:
            _report(problems, FieldMalformed("myapp", item, name, value, "unix seconds"))
        return day
    return ""


def _myapp_permissions(record: dict, item: str, problems: list | None) -> tuple[str, ...]:
    """Permission names from ``permissions_list`` ({title, description} entries whose titles are the Android
    system's Chinese permission labels); an entry without a title costs that entry (a problem)."""
    entries = record.get("permissions_list")
    if entries is None or entries == "":
        return ()
    if not isinstance(entries, list):
        _report(problems, FieldMalformed("myapp", item, "permissions_list", entries, "a list"))
        return ()
    names, labels = [], []
    for place, entry in enumerate(entries):
        title = entry.get("title") if isinstance(entry, dict) else entry
        if isinstance(title, str) and title.strip():
            (names if _PERMISSION_NAME.match(title.strip()) else labels).append(title.strip())
        else:
            _report(problems, FieldMalformed("myapp", item, f"permissions_list[{place}].title", entry,
                                             "a permission label"))
    return tuple(dict.fromkeys(names + list(permissions_from_labels(labels))))


def parse_myapp_detail(html: str, url: str, *, fetched_at: str | None = None,
                       problems: list[ParseError] | None = None) -> Listing:
    """Tencent MyApp app page HTML (``https://sj.qq.com/appdetail/<package>``) → Listing.

    The record is itemData[0] of the page's GameDetail card (see the section comment). Required: ``pkg_name``,
    ``name`` and ``developer`` (the company's registered name, also the legal entity); a missing one raises
    LayoutChanged naming it, as does a page without ``__NEXT_DATA__`` or without the card. A page saying the app does
    not exist raises :class:`AppNotFound`, an envelope whose ``ret`` is not 0 MalformedResponse. The store id is the
    package (the page's address; the record's ``app_id`` is the store's number for it). Category ``cate_name`` (else
    ``cate_name_new``), downloads ``download_num``, version ``version_name``, update date ``update_time`` (unix
    seconds, UTC), description ``description`` (else ``editor_intro``), policy ``privacy_agreement``, permissions the
    ``permissions_list`` titles mapped back to names, APK ``download_url`` or ``apk_url`` (both empty on the real
    page: then there is none). Optional fields of the wrong type cost that field (problems).
    """
    record = _myapp_record(html, url)
    package = record.get("pkg_name")
    item = package.strip() if isinstance(package, str) and package.strip() else url
    _require("myapp", record, MYAPP_REQUIRED, item)
    if not _PACKAGE.match(package.strip()):
        raise FieldMalformed("myapp", item, "pkg_name", package, "a package name")

    def text(name: str) -> str:
        return _optional_str("myapp", record, name, item, problems)

    download = text("download_url") or text("apk_url")
    return with_hash(
        Listing(
            store="myapp",
            store_id=package.strip(),
            platform="android",
            package=package.strip(),
            name=record["name"],
            developer=record["developer"],
            legal_entity=record["developer"],
            category=text("cate_name") or text("cate_name_new"),
            source_url=url,
            fetched_at=fetched_at or utcnow(),
            version=text("version_name"),
            updated=_myapp_date(record, item, problems),
            description=text("description") or text("editor_intro"),
            downloads=_optional_int("myapp", record, "download_num", item, problems),
            privacy_url=_link("myapp", url, text("privacy_agreement"), item, "privacy_agreement", problems),
            permissions=_myapp_permissions(record, item, problems),
            apk_url=_link("myapp", url, download, item, "download_url", problems),
        )
    )


def parse_myapp_search(body: bytes | str, problems: list[ParseError] | None = None) -> tuple[list[str], str | None]:
    """Tencent MyApp search JSON (``/myapp/searchAjax.htm?kw=KW&pns=PNS&sid=0``) → (packages, the next page's ``pns``
    or None).

    Results are ``obj.appDetails[]`` (or ``obj.items[].appDetail``), each with ``pkgName``, ``appId``, ``appName``,
    ``authorName``…; an entry without a package name costs that entry (a problem), a page none of whose entries has
    one fails. A next page exists while ``obj.hasNext`` is 1; its ``pns`` is ``obj.pageNumberStack`` (base64 of the
    next offset). A missing or malformed ``hasNext``, or ``hasNext`` without a ``pageNumberStack``, ends the search
    there and is a problem. ``success: false`` is a MalformedResponse.
    """
    data = _load_json("myapp", body)
    if isinstance(data, dict) and data.get("success") is False:
        raise MalformedResponse("myapp", f"success=false, msg={_preview(data.get('msg'))}")
    if not isinstance(data, dict) or not isinstance(data.get("obj"), dict):
        raise LayoutChanged("myapp", ["obj"])
    obj = data["obj"]
    where = "appDetails" if "appDetails" in obj or "items" not in obj else "items"
    if where not in obj:
        raise LayoutChanged("myapp", ["obj.appDetails"])
    entries = obj[where] if obj[where] is not None else []
    if not isinstance(entries, list):
        raise FieldMalformed("myapp", "", f"obj.{where}", entries, "a list")
    return _myapp_packages(entries, where, problems), _myapp_next_page(obj, problems)


def parse_myapp_category(body: bytes | str, problems: list[ParseError] | None = None) -> list[str]:
    """Tencent MyApp category list JSON (``/myapp/cate/appList.htm?orgame=1&categoryId=N&pageSize=S&pageContext=
    OFFSET``, the older site's, known from public scrapers' code only) → the packages of the page's ``obj[]`` items
    (the same fields as search results). An empty ``obj`` is the end of the list; an entry without a package costs
    that entry (a problem)."""
    data = _load_json("myapp", body)
    if isinstance(data, dict) and data.get("success") is False:
        raise MalformedResponse("myapp", f"success=false, msg={_preview(data.get('msg'))}")
    if not isinstance(data, dict) or "obj" not in data:
        raise LayoutChanged("myapp", ["obj"])
    entries = data["obj"] if data["obj"] is not None else []
    if not isinstance(entries, list):
        raise FieldMalformed("myapp", "", "obj", entries, "a list")
    return _myapp_packages(entries, "obj", problems)


def _myapp_packages(entries: list, where: str, problems: list | None) -> list[str]:
    """The packages of search or category entries (``pkgName``; under ``appDetail`` for ``items``); an entry without a
    usable one costs that entry (a problem), and a page none of whose entries has one fails."""
    packages, failed = [], []
    for place, entry in enumerate(entries):
        spot = f"{where}[{place}]"
        if where == "items" and isinstance(entry, dict):
            entry = entry.get("appDetail")
        if not isinstance(entry, dict):
            failed.append(FieldMalformed("myapp", spot, "appDetail" if where == "items" else where, entry, "an object"))
            continue
        ident = _ident(entry.get("appId")) or spot
        package = entry.get("pkgName")
        if package is None or package == "":
            failed.append(LayoutChanged("myapp", ["pkgName"], item=ident))
        elif not isinstance(package, str) or not _PACKAGE.match(package.strip()):
            failed.append(FieldMalformed("myapp", ident, "pkgName", package, "a package name"))
        else:
            packages.append(package.strip())
    if failed and not packages:
        raise failed[0]
    for problem in failed:
        _report(problems, problem)
    return list(dict.fromkeys(packages))


def _myapp_next_page(obj: dict, problems: list | None) -> str | None:
    """The ``pns`` of the next search page: ``pageNumberStack`` while ``hasNext`` is 1, else None."""
    more = obj.get("hasNext")
    if more is None or more == "":
        _report(problems, LayoutChanged("myapp", ["obj.hasNext"]))
        return None
    number = int(more) if isinstance(more, bool) else None if isinstance(more, (float, list, dict)) else _int(more)
    if number is None:
        _report(problems, FieldMalformed("myapp", "", "obj.hasNext", more, "0 or 1"))
        return None
    if number <= 0:
        return None
    token = obj.get("pageNumberStack")
    if isinstance(token, str) and token.strip():
        return token.strip()
    if token is None or token == "":
        _report(problems, LayoutChanged("myapp", ["obj.pageNumberStack"]))
    else:
        _report(problems, FieldMalformed("myapp", "", "obj.pageNumberStack", token, "a string"))
    return None


# --- saved files (``finmon parse``) -------------------------------------------------


def _decode(body: bytes) -> str:
    from crawler.policy import decode_body

    return decode_body(body, None)[0]


_FILE_PARSERS: dict[str, Callable[[bytes, str], Any]] = {
    "itunes": lambda body, url: [lst.to_dict() for lst in parse_itunes_search(body)],
    "apple-page": lambda body, url: dict(
        zip(("privacy_url", "privacy_labels"), parse_apple_page(_decode(body), url))
    ),
    "appgallery-search": lambda body, url: parse_appgallery_search(body)._asdict(),
    "appgallery": lambda body, url: parse_appgallery_detail(body, url).to_dict(),
    "xiaomi-search": lambda body, url: dict(zip(("detail_urls", "next_url"), parse_xiaomi_search(_decode(body), url))),
    "xiaomi": lambda body, url: parse_xiaomi_detail(_decode(body), url).to_dict(),
    "googleplay-search": lambda body, url: dict(zip(("packages", "more_token"),
                                                    parse_googleplay_search(_decode(body)))),
    "googleplay": lambda body, url: parse_googleplay_details(_decode(body), url).to_dict(),
    "googleplay-datasafety": lambda body, url: {"data_safety": parse_googleplay_datasafety(_decode(body))},
    "googleplay-permissions": lambda body, url: {"permissions": list(parse_googleplay_permissions(body))},
    "myapp-search": lambda body, url: dict(zip(("packages", "next_pns"), parse_myapp_search(body))),
    "myapp-category": lambda body, url: {"packages": parse_myapp_category(body)},
    "myapp": lambda body, url: parse_myapp_detail(_decode(body), url).to_dict(),
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
    - ``appgallery-search``: AppGallery search JSON (as page 1) → ``{"detail_ids", "categories", "has_next_page"}``
    - ``appgallery``: AppGallery detail JSON → listing dict
    - ``xiaomi-search``: Xiaomi search HTML → ``{"detail_urls", "next_url"}``
    - ``xiaomi``: Xiaomi detail HTML → listing dict
    - ``googleplay-search``: Google Play search page → ``{"packages", "more_token"}``
    - ``googleplay``: Google Play details page → listing dict (without permissions and Data safety)
    - ``googleplay-datasafety``: Google Play Data safety page → ``{"data_safety"}``
    - ``googleplay-permissions``: Google Play permission list (batchexecute answer) → ``{"permissions"}``
    - ``myapp-search``: Tencent MyApp search JSON (searchAjax.htm) → ``{"packages", "next_pns"}``
    - ``myapp-category``: Tencent MyApp category list JSON → ``{"packages"}``
    - ``myapp``: Tencent MyApp app page HTML (sj.qq.com/appdetail/…) → listing dict
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
