"""Store parsers: pure functions from one saved store response to what it says.

Each function takes the response body (and its URL where links must be resolved) and
returns listings or links; none does I/O, so ``finmon parse STORE FILE`` runs them on a
saved file. A response whose required fields are missing raises :class:`LayoutChanged`
(the store changed its pages); undecodable JSON raises :class:`MalformedResponse`.
"""
from __future__ import annotations

import dataclasses
import json
import re
from functools import cache
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urljoin, urlsplit

from parsel import Selector

from finmon import settings
from finmon.model import Listing, utcnow

DATA_DIR = Path(__file__).parent / "data"
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


class ParseError(Exception):
    """A store response that could not be turned into data."""

    kind = "parse_error"

    def __init__(self, store: str, reason: str):
        super().__init__(f"{store}: {reason}")
        self.store = store
        self.reason = reason


class LayoutChanged(ParseError):
    """Required fields are missing: the store changed its layout."""

    kind = "layout_changed"

    def __init__(self, store: str, missing: list[str] | tuple[str, ...]):
        self.missing = tuple(missing)
        super().__init__(store, "layout changed, missing " + ", ".join(self.missing))


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


def _require(store: str, record: dict, fields: tuple[str, ...]) -> None:
    missing = [f for f in fields if record.get(f) in (None, "")]
    if missing:
        raise LayoutChanged(store, missing)


def _iso_date(value: str) -> str:
    value = (value or "").strip()
    return value[:10] if _ISO_DATE.match(value) else value


def _int(value: Any) -> int | None:
    try:
        return int(str(value).replace(",", "").strip())
    except (TypeError, ValueError):
        return None


def _text(sel, query: str) -> str:
    return " ".join(" ".join(sel.css(query).xpath("string()").getall()).split())


def with_hash(listing: Listing) -> Listing:
    """The listing with ``content_hash`` set (:meth:`Listing.content_digest`)."""
    return dataclasses.replace(listing, content_hash=listing.content_digest())


# --- iTunes / Apple -----------------------------------------------------------

ITUNES_REQUIRED = ("trackId", "bundleId", "trackName", "artistName", "trackViewUrl")


def parse_itunes_search(body: bytes | str, *, fetched_at: str | None = None) -> list[Listing]:
    """iTunes Search or Lookup JSON → one Listing per iOS software result.

    The privacy policy URL and labels are not in this API: they come from the app page
    (:func:`parse_apple_page`).
    """
    data = _load_json("itunes", body)
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise LayoutChanged("itunes", ["results"])
    fetched_at = fetched_at or utcnow()
    listings = []
    for result in data["results"]:
        if not isinstance(result, dict) or result.get("kind", "software") != "software":
            continue
        _require("itunes", result, ITUNES_REQUIRED)
        listings.append(
            with_hash(
                Listing(
                    store="itunes",
                    store_id=str(result["trackId"]),
                    platform="ios",
                    package=result["bundleId"],
                    name=result["trackName"],
                    developer=result.get("artistName") or result.get("sellerName", ""),
                    category=result.get("primaryGenreName", ""),
                    source_url=result["trackViewUrl"],
                    fetched_at=fetched_at,
                    version=result.get("version", ""),
                    updated=_iso_date(result.get("currentVersionReleaseDate", "")),
                    description=result.get("description", ""),
                    rating_count=_int(result.get("userRatingCount")),
                )
            )
        )
    return listings


_PRIVACY_LINK_TEXT = re.compile(r"隐私政策|隐私协议|privacy policy", re.I)


def parse_apple_page(html: str, url: str = "") -> tuple[str | None, tuple[str, ...]]:
    """Apple app page HTML → (developer privacy policy URL or None, privacy-label categories)."""
    sel = Selector(text=html)
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
    return (urljoin(url, privacy_url.strip()) if privacy_url else None), tuple(dict.fromkeys(lab for lab in labels if lab))


# --- AppGallery -----------------------------------------------------------------


def _appgallery_layouts(body: bytes | str) -> dict[str, list]:
    data = _load_json("appgallery", body)
    if not isinstance(data, dict) or "rtnCode" not in data:
        raise LayoutChanged("appgallery", ["rtnCode"])
    if str(data["rtnCode"]) != "0":
        raise MalformedResponse("appgallery", f"rtnCode={data['rtnCode']}")
    if not isinstance(data.get("layoutData"), list):
        raise LayoutChanged("appgallery", ["layoutData"])
    layouts: dict[str, list] = {}
    for layout in data["layoutData"]:
        if isinstance(layout, dict):
            layouts.setdefault(layout.get("layoutName", ""), []).extend(layout.get("dataList") or [])
    layouts["__root__"] = [data]
    return layouts


def parse_appgallery_search(body: bytes | str) -> tuple[list[str], int]:
    """AppGallery search page JSON → (detail ids like ``app|C1000123``, totalPages)."""
    layouts = _appgallery_layouts(body)
    total = _int(layouts["__root__"][0].get("totalPages"))
    if total is None:
        raise LayoutChanged("appgallery", ["totalPages"])
    ids = []
    for entry in layouts.get("searchlist", []):
        detail_id = entry.get("detailId") or (f"app|{entry['appid']}" if entry.get("appid") else "")
        if not detail_id:
            raise LayoutChanged("appgallery", ["detailId"])
        ids.append(detail_id)
    return list(dict.fromkeys(ids)), total


APPGALLERY_REQUIRED = ("appid", "name", "package", "developer")


def parse_appgallery_detail(body: bytes | str, url: str, *, fetched_at: str | None = None) -> Listing:
    """AppGallery detail JSON → Listing (permissions and privacy URL from their cards)."""
    layouts = _appgallery_layouts(body)
    headers = layouts.get("appdetailheadercard")
    if not headers:
        raise LayoutChanged("appgallery", ["appdetailheadercard"])
    head = headers[0]
    _require("appgallery", head, APPGALLERY_REQUIRED)
    names, labels = [], []
    for card in layouts.get("appdetailpermissioncard", []):
        for perm in card.get("permissions") or []:
            if perm.get("name"):
                names.append(perm["name"])
            elif perm.get("desc"):
                labels.append(perm["desc"])
    privacy_url = next((c["privacyUrl"] for c in layouts.get("appprivacycard", []) if c.get("privacyUrl")), None)
    return with_hash(
        Listing(
            store="appgallery",
            store_id=str(head["appid"]),
            platform="android",
            package=head["package"],
            name=head["name"],
            developer=head["developer"],
            category=head.get("tagName", ""),
            source_url=url,
            fetched_at=fetched_at or utcnow(),
            version=head.get("versionName", ""),
            updated=_iso_date(head.get("releaseDate", "")),
            description=head.get("intro", ""),
            downloads=_int(head.get("downloads")),
            privacy_url=urljoin(url, privacy_url) if privacy_url else None,
            permissions=tuple(dict.fromkeys(names + list(permissions_from_labels(labels)))),
            apk_url=urljoin(url, head["downurl"]) if head.get("downurl") else None,
        )
    )


# --- Xiaomi ---------------------------------------------------------------------


def parse_xiaomi_search(html: str, url: str) -> tuple[list[str], str | None]:
    """Xiaomi search page HTML → (absolute detail URLs, next page URL or None)."""
    sel = Selector(text=html)
    applist = sel.css("ul.applist")
    if not applist:
        raise LayoutChanged("xiaomi", ["applist"])
    hrefs = applist.css("li a[href*='details']::attr(href)").getall()
    urls = list(dict.fromkeys(urljoin(url, h.strip()) for h in hrefs))
    next_href = sel.css("a.next::attr(href)").get()
    return urls, (urljoin(url, next_href.strip()) if next_href else None)


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
        pairs[label[:-1].strip()] = (value, urljoin(base_url, href.strip()) if href else None)
    return pairs


def parse_xiaomi_detail(html: str, url: str, *, fetched_at: str | None = None) -> Listing:
    """Xiaomi detail page HTML → Listing; permission labels are mapped back to names."""
    sel = Selector(text=html)
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
        privacy_url = urljoin(url, href.strip()) if href else None
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
            apk_url=urljoin(url, apk_href.strip()) if apk_href else None,
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
