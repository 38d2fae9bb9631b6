"""The simulator's Tencent MyApp (应用宝) answers, in the shapes of the real ones (crawler/spiders/myapp.py says which
are confirmed): the older site's ``searchAjax.htm`` search JSON, and the current site's app page, a Next.js page
whose ``__NEXT_DATA__`` script holds the card envelope (``{"ret": 0, "data": {"components": [...]}, "msg"}``) with
the app's record in the GameDetail card. Field names are the real ones (tests/crawler/fixtures/SOURCES.md); the
values are the simulated app's.

Pure functions from an :class:`~market.population.App` to a body; market.server serves them.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import html
import json
from datetime import date, datetime, time, timezone
from typing import Any

from market.population import LABELS, PREFIX, App

APP_ID_BASE = 50_000_000  # the store's number for an app (app_id, appId): this plus its index
SEARCH_PAGE_SIZE = 10  # results per search page (the real pns values step by 10: "MTA=" is "10", "MjA=" "20")
CATEGORY_IDS = {"工具": 115}  # categoryId of a category name in the older site's table; else 114 (理财)
CARD_LIST = ["YYB_HOME_GAME_DETAIL_CONTAINER", "yybn_game_basic_info", "YYB_HOME_GAME_DETAIL_MORE_DETAIL"]
_LABELS: dict[str, str] = {k: v for k, v in LABELS["permissions_myapp"].items() if not k.startswith("_")}


def app_id(app: App) -> str:
    return str(APP_ID_BASE + app.index)


def pns(offset: int) -> str:
    """The ``pns`` (pageNumberStack) of a result offset: its decimal digits in base64."""
    return base64.b64encode(str(offset).encode("ascii")).decode("ascii")


def offset_of(value: str) -> int:
    """The result offset a ``pns`` stands for; 0 for the first page ("") or anything unreadable."""
    try:
        return max(0, int(base64.b64decode(value.encode("ascii"), validate=True).decode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        return 0


def permission_label(permission: str) -> str:
    """The Chinese label MyApp shows for a permission: the Android system's (labels.json permissions_myapp), else the
    label the other Android stores show."""
    short = permission.removeprefix(PREFIX)
    return _LABELS.get(short) or LABELS["permissions"][short]


def _seconds(day: str) -> int:
    return int(datetime.combine(date.fromisoformat(day), time(8), timezone.utc).timestamp())


def _md5(app: App) -> str:
    return hashlib.md5(f"{app.package}:{app.version}".encode()).hexdigest().upper()


def search_item(app: App, origin: str, apk_url: str | None) -> dict[str, Any]:
    """One result of ``obj.appDetails`` with the real field names."""
    category = app.category("myapp")
    high = round(app.rating_count * max(0.0, app.rating - 1) / 4)
    return {
        "description": app.description,
        "flag": 0,
        "fileSize": app.size_bytes,
        "authorId": app.artist_id,
        "categoryId": category_id(category),
        "pkgName": app.package,
        "appId": APP_ID_BASE + app.index,
        "appName": app.name,
        "apkUrl": apk_url or "",
        "versionCode": _version_code(app.version),
        "iconUrl": f"{origin}/static/icon/{app_id(app)}/96",
        "versionName": app.version,
        "appDownCount": app.downloads,
        "averageRating": app.rating,
        "editorIntro": app.description.split("。", 1)[0][:40],
        "categoryName": category,
        "images": [],
        "apkMd5": _md5(app),
        "authorName": app.legal_entity("myapp"),
        "apkPublishTime": _seconds(app.updated),
        "appRatingInfo": {"averageRating": app.rating, "ratingCount": app.rating_count,
                          "ratingDistribution": {"1": app.rating_count - high, "2": 0, "3": 0, "4": 0, "5": high}},
    }


def category_id(category: str) -> int:
    """The older site's categoryId of a category name."""
    return CATEGORY_IDS.get(category, 114)


def category_answer(items: list[dict[str, Any]], offset: int) -> str:
    """A cate/appList.htm answer: the page's apps in ``obj`` (empty past the end), as public scrapers read it."""
    return json.dumps({"success": True, "obj": items, "pageContext": offset + len(items)}, ensure_ascii=False)


def search_answer(items: list[dict[str, Any]], next_offset: int | None) -> str:
    """A searchAjax.htm answer: the page's results, and the next page's pns while there is one."""
    obj = {"appDetails": items, "hasNext": int(next_offset is not None),
           "pageNumberStack": pns(next_offset) if next_offset is not None else ""}
    return json.dumps({"success": True, "obj": obj, "pageContext": 0}, ensure_ascii=False)


def record(app: App, origin: str, policy_url: str | None, apk_url: str | None) -> dict[str, Any]:
    """The GameDetail card's app record (itemData[0]), in the real page's field order."""
    legal = app.legal_entity("myapp")
    ident = app_id(app)
    category = app.category("myapp")
    return {
        "pkg_name": app.package, "app_id": ident, "name": app.name, "icon": f"{origin}/static/icon/{ident}/256",
        "md_5": _md5(app), "download_url": apk_url or "", "is_game": "0", "is_cloud_game": "0", "channel_info": "",
        "apk_size": str(app.size_bytes), "ios_url": "", "developer": legal, "update_time": str(_seconds(app.updated)),
        "privacy_agreement": policy_url or "", "version_name": app.version, "operator": legal, "game_type": "0",
        "is_pc_yyb_available": "0", "is_booking": "0",
        "report_info": {"appid": ident, "pkgname": app.package, "appname": app.name, "is_game": "0",
                        "cardid": "yybn_game_basic_info", "rel_exp_ids": ""},
        "restrict_level": "0", "cp_id": "", "tags": "", "tag_alias": "", "tags_st": "[]",
        "average_rating": f"{app.rating:.2f}", "editor_intro": app.description.split("。", 1)[0][:40],
        "show_text": "", "cate_name_new": category, "apk_url": "", "button_info": "", "description": app.description,
        "video": "", "snap_shots": "",
        "permissions_list": [{"title": (label := permission_label(p)), "description": f"允许该应用{label}。"}
                             for p in app.permissions],
        "download_num": str(app.downloads), "public_time": "", "booking_url": "", "app_update_time": "",
        "cate_name": category, "icp_number": f"京ICP备{20_000_000 + app.index}号-1", "icp_entity": legal,
    }


def _card(card_id: str, name: str, position: int, **data: Any) -> dict[str, Any]:
    return {"cardId": card_id, "data": {"name": name, **data}, "errors": [], "sourceErrors": [],
            "report_info": {"rel_exp_ids": "", "pos": position}}


def detail_page(app: App, origin: str, policy_url: str | None, apk_url: str | None,
                wrong_typed: dict[str, Any] | None = None) -> str:
    """The app page: Next.js markup whose ``__NEXT_DATA__`` holds the card envelope (three of the real page's nine
    cards: the container, GameDetail with the record and an empty first page of reviews, MoreContent); ``wrong_typed``
    replaces fields of the record (the ``myapp_wrong_type`` fault)."""
    trace = hashlib.blake2b(f"myapp:{app.package}:{app.version}".encode(), digest_size=16).hexdigest()
    components = [
        _card("YYB_HOME_GAME_DETAIL_CONTAINER", "GameDetailContainer", 1),
        _card("yybn_game_basic_info", "GameDetail", 2, parentId="YYB_HOME_GAME_DETAIL_CONTAINER",
              itemData=[{**record(app, origin, policy_url, apk_url), **(wrong_typed or {})},
                        {"comments": [], "hasNext": False, "total": 0}],
              cardid="yybn_game_basic_info"),
        _card("YYB_HOME_GAME_DETAIL_MORE_DETAIL", "MoreContent", 3, parentId="yybn_game_related_game",
              title="更多内容", itemData=[], cardid="YYB_HOME_GAME_DETAIL_MORE_DETAIL"),
    ]
    response = {"ret": 0, "requestId": f"{trace[:8]}-{trace[8:12]}-{trace[12:16]}-{trace[16:20]}-{trace[20:]}",
                "galileoTraceId": trace, "data": {"components": components, "size": 10, "offset": 0,
                                                  "total": len(components), "exp_ids": "", "all_exp_ids": "",
                                                  "errors": [], "version": "20260927210300", "degrade_source": [],
                                                  "report_info": {"layout_scene": 166, "rel_exp_ids": ""}},
                "msg": "sucess"}  # sic, as the real site spells it
    title = f"{app.name}app-官方正版软件{app.updated[:4]}最新版本免费下载-应用宝官网"
    page_props = {
        "dynamicCardParams": {"body": {"layout": "", "listS": {"pkgname": {"repStr": [app.package]}}, "listI": {}},
                              "head": {"expSceneIds": "", "deviceInfo": {"platformType": 1, "platform": 3},
                                       "hostAppInfo": {"scene": "game_detail"}}},
        "cardList": CARD_LIST,
        "dynamicCardResponse": response,
        "scene": "game_detail",
        "seoMeta": {"keywords": "", "title": title.replace(app.updated[:4], "ReplaceCurrentYear", 1),
                    "description": app.description},
        "breadcrumbItems": [{"href": "/"}, {"href": "/app"}, {"name": app.name}],
    }
    data = {"props": {"pageProps": page_props, "__N_SSP": True}, "page": "/appdetail/[pkgname]",
            "query": {"pkgname": app.package}, "buildId": "market-simulator", "assetPrefix": origin,
            "isFallback": False, "gssp": True, "locale": "zh", "locales": ["zh"], "defaultLocale": "zh",
            "scriptLoader": []}
    script = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")  # as Next.js escapes it
    url = html.escape(f"{origin}/myapp/appdetail/{app.package}")
    return ('<!DOCTYPE html><html lang="zh"><head><meta charSet="utf-8"/>'
            f'<title data-next-head="">{html.escape(title)}</title>'
            '<meta property="og:site_name" content="腾讯应用宝" data-next-head=""/>'
            f'<meta property="og:url" content="{url}" data-next-head=""/>'
            f'<link rel="canonical" href="{url}" data-next-head=""/></head>'
            '<body><div id="__next"></div>'
            f'<script id="__NEXT_DATA__" type="application/json">{script}</script></body></html>')


def _version_code(version: str) -> int:
    """The versionCode of a "major.minor.patch" version (as the APK's manifest has it)."""
    major, minor, patch = (int(x) for x in version.split("."))
    return major * 10_000 + minor * 100 + patch
