import json

import pytest

from crawler import parsers
from crawler.parsers import (
    LayoutChanged,
    MalformedResponse,
    parse_appgallery_detail,
    parse_appgallery_search,
    parse_apple_page,
    parse_file,
    parse_itunes_search,
    parse_xiaomi_detail,
    parse_xiaomi_search,
)

XIAOMI_SEARCH_URL = "https://app.example/xiaomi/search?keywords=%E8%B4%B7%E6%AC%BE&page=2"
XIAOMI_DETAIL_URL = "https://app.example/xiaomi/details?id=com.anxin.loan"
AG_DETAIL_URL = "https://ag.example/appgallery/uowap/index?method=internal.getTabDetail&uri=app%7CC10132067"


def test_itunes_search_parses_every_real_field(fx):
    alipay, cmb = parse_itunes_search(fx.bytes("itunes_search.json"), fetched_at="2024-06-01T00:00:00+00:00")
    assert alipay.store == "itunes" and alipay.platform == "ios"
    assert alipay.store_id == "333206289"
    assert alipay.package == "com.alipay.iphoneclient"
    assert alipay.app_key == "ios:com.alipay.iphoneclient"
    assert alipay.name == "支付宝 - 便捷生活 一点就好"
    assert alipay.developer == "Alipay.com Co., Ltd"
    assert alipay.category == "Finance"
    assert alipay.version == "10.5.96"
    assert alipay.updated == "2024-05-20"
    assert alipay.rating_count == 2637187
    assert alipay.description.startswith("支付宝")
    assert alipay.source_url.startswith("https://apps.apple.com/cn/app/") and alipay.source_url.endswith("id333206289?uo=4")
    assert alipay.privacy_url is None and alipay.permissions == ()
    assert len(alipay.content_hash) == 64
    assert cmb.package == "cmb.pb" and cmb.developer == "China Merchants Bank"


def test_itunes_content_hash_ignores_capture_time(fx):
    a = parse_itunes_search(fx.bytes("itunes_search.json"), fetched_at="2024-01-01T00:00:00+00:00")[0]
    b = parse_itunes_search(fx.bytes("itunes_search.json"), fetched_at="2024-02-01T00:00:00+00:00")[0]
    assert a.content_hash == b.content_hash


def test_itunes_lookup_shape_and_non_software_results(fx):
    body = json.dumps({"resultCount": 2, "results": [
        {"wrapperType": "artist", "kind": "artist", "artistName": "x"},
        json.loads(fx.bytes("itunes_search.json"))["results"][0],
    ]})
    assert [lst.store_id for lst in parse_itunes_search(body)] == ["333206289"]
    assert parse_itunes_search('{"resultCount":0,"results":[]}') == []


def test_itunes_truncated_json_is_malformed(fx):
    with pytest.raises(MalformedResponse) as info:
        parse_itunes_search(fx.bytes("itunes_truncated.json"))
    assert info.value.store == "itunes" and info.value.kind == "malformed_json"


def test_itunes_layout_changed(fx):
    with pytest.raises(LayoutChanged) as info:
        parse_itunes_search(fx.bytes("itunes_layout_changed.json"))
    assert info.value.missing == ("results",) and info.value.kind == "layout_changed"
    result = json.loads(fx.bytes("itunes_search.json"))["results"][0]
    del result["bundleId"]
    with pytest.raises(LayoutChanged) as info:
        parse_itunes_search(json.dumps({"results": [result]}))
    assert info.value.missing == ("bundleId",)


def test_apple_page_privacy_url_and_labels(fx):
    url, labels = parse_apple_page(fx.text("apple_app_page.html"), "https://apps.apple.com/cn/app/x/id333206289")
    assert url == "https://render.alipay.com/p/yuyan/180020010001196791/preview.html?agreementId=AG00000132"
    assert labels == ("标识符", "财务信息", "位置", "联系信息", "通讯录")


def test_apple_page_without_policy(fx):
    assert parse_apple_page(fx.text("apple_app_page_no_policy.html")) == (None, ())


def test_apple_page_layout_changed(fx):
    with pytest.raises(LayoutChanged) as info:
        parse_apple_page(fx.text("apple_app_page_layout_changed.html"))
    assert info.value.missing == ("product-header__title", "app-privacy")


def test_appgallery_search(fx):
    ids, categories, has_next = parse_appgallery_search(fx.bytes("appgallery_search.json"))
    # every layout is read whatever its name, and one level deeper (an item's list); duplicates dropped, order kept
    assert ids == ["app|C10132067", "app|C10245511", "app|C10377789"]  # the last one by its appid only
    assert categories == {"app|C10132067": "金融理财", "app|C10245511": "投资理财", "app|C10377789": "便捷生活"}
    assert has_next is True


def _ag_search(root: dict, items: list, name: str = "anylayoutname") -> str:
    return json.dumps({"rtnCode": 0, **root, "layoutData": [{"layoutId": 7, "layoutName": name, "dataList": items}]})


def test_appgallery_search_pages_while_has_next_page_else_by_total_pages():
    item = {"appid": "C1", "detailId": "app|C1"}
    assert parse_appgallery_search(_ag_search({"hasNextPage": 0, "totalPages": 5}, [item])).has_next_page is False
    assert parse_appgallery_search(_ag_search({"hasNextPage": 1}, [item]), page=9).has_next_page is True
    assert parse_appgallery_search(_ag_search({"totalPages": 3}, [item]), page=2).has_next_page is True
    assert parse_appgallery_search(_ag_search({"totalPages": 3}, [item]), page=3).has_next_page is False


def test_appgallery_search_skips_entries_that_are_not_apps():
    items = [{"name": "banner", "detailId": "html|https://x.example/"}, {"name": "words", "list": [{"name": "借钱"}]},
             {"appid": 1000123}]
    assert parse_appgallery_search(_ag_search({"hasNextPage": 0}, items)).detail_ids == ["app|1000123"]
    with pytest.raises(LayoutChanged):  # results announced, but no entry carries an id: a layout change
        parse_appgallery_search(_ag_search({"hasNextPage": 0, "count": 3}, [{"appId": "C1", "name": "x"}]))


def test_appgallery_search_layout_and_errors():
    with pytest.raises(LayoutChanged):
        parse_appgallery_search('{"rtnCode":0,"layoutData":[]}')  # neither hasNextPage nor totalPages
    with pytest.raises(LayoutChanged):
        parse_appgallery_search('{"code":0}')
    with pytest.raises(MalformedResponse, match="rtnCode=1"):
        parse_appgallery_search('{"rtnCode":1,"layoutData":[]}')
    assert parse_appgallery_search('{"rtnCode":0,"totalPages":0,"layoutData":[]}') == ([], {}, False)


def test_appgallery_rtncode_1002_is_a_refused_interface_code():
    for body in ('{"rtnCode":1002,"layoutData":[]}', '{"rtnCode":"1002"}'):
        with pytest.raises(MalformedResponse, match="refused the request's Interface-Code") as info:
            parse_appgallery_detail(body, AG_DETAIL_URL)
        assert "short-lived access code" in str(info.value)
    with pytest.raises(MalformedResponse) as info:
        parse_appgallery_search('{"rtnCode":1001,"layoutData":[]}')
    assert "Interface-Code" not in str(info.value)


def test_appgallery_detail(fx):
    listing = parse_appgallery_detail(fx.bytes("appgallery_detail.json"), AG_DETAIL_URL, category="金融理财")
    assert listing.app_key == "android:com.anxin.loan"
    assert (listing.store, listing.store_id, listing.name) == ("appgallery", "C10132067", "安心借款")
    assert listing.developer == listing.legal_entity == "安心金融科技（深圳）有限公司"
    assert listing.category == "金融理财"  # from the search item: the detail page has none
    assert (listing.version, listing.updated, listing.downloads) == ("3.2.1", "2024-05-01", 1520000)
    assert listing.description == "安心借款是一款贷款服务平台，借钱借款就上安心借款。\n最高可借20万元。"
    assert listing.rating_count == 5210
    assert listing.apk_url.endswith("/com.anxin.loan.2405011000.apk")
    assert listing.privacy_url == "https://www.anxin.example/policies/anxin/privacy.html"
    assert listing.source_url == AG_DETAIL_URL
    assert listing.permissions == (
        "android.permission.INTERNET",
        "android.permission.READ_CONTACTS",
        "android.permission.ACCESS_FINE_LOCATION",
        "android.permission.CAMERA",
        "android.permission.READ_SMS",  # given by its label only
    )


def test_appgallery_detail_without_policy_card(fx):
    listing = parse_appgallery_detail(fx.bytes("appgallery_detail_no_policy.json"), AG_DETAIL_URL)
    assert listing.privacy_url is None and listing.permissions


def test_appgallery_detail_truncated_json(fx):
    with pytest.raises(MalformedResponse):
        parse_appgallery_detail(fx.bytes("appgallery_detail_truncated.json"), AG_DETAIL_URL)


def test_appgallery_detail_layout_changed(fx):
    with pytest.raises(LayoutChanged) as info:
        parse_appgallery_detail(fx.bytes("appgallery_detail_layout_changed.json"), AG_DETAIL_URL)
    assert info.value.store == "appgallery" and info.value.missing == ("detailappinfocard.developer",)
    assert info.value.item == "C10132067"


def _without(doc: dict, card: str, field: str | None = None) -> str:
    """The detail fixture without a card, or without one field of it."""
    layouts = []
    for layout in doc["layoutData"]:
        if layout["layoutName"] == card and field is None:
            continue
        if layout["layoutName"] == card:
            layout = {**layout, "dataList": [{k: v for k, v in c.items() if k != field} for c in layout["dataList"]]}
        layouts.append(layout)
    return json.dumps({**doc, "layoutData": layouts})


def test_appgallery_detail_names_each_missing_card_field(fx):
    doc = json.loads(fx.bytes("appgallery_detail.json"))
    with pytest.raises(LayoutChanged) as info:
        parse_appgallery_detail(_without(doc, "detailhiddencard"), AG_DETAIL_URL)
    assert info.value.missing == ("detailhiddencard.appid", "detailhiddencard.package")
    with pytest.raises(LayoutChanged) as info:
        parse_appgallery_detail(_without(json.loads(_without(doc, "detailheadcard")), "detailhiddencard", "name"),
                                AG_DETAIL_URL)
    assert info.value.missing == ("detailheadcard.name",)
    listing = parse_appgallery_detail(_without(doc, "detailheadcard"), AG_DETAIL_URL)  # the hidden card's name
    assert listing.name == "安心借款" and listing.downloads is None
    listing = parse_appgallery_detail(_without(doc, "detailappintrocard"), AG_DETAIL_URL)
    assert listing.description == "" and listing.developer


@pytest.mark.parametrize(("text", "count"), [("152万次安装", 1_520_000), ("1.2亿次安装", 120_000_000),
                                             ("3,400 installs", 3400), ("5000", 5000), (5000, 5000),
                                             ("10万+", 100_000), ("未知", None), ("", None), (["152"], None)])
def test_install_counts(text, count):
    assert parsers.install_count(text) == count


def test_appgallery_unreadable_install_count_and_release_dates(fx):
    doc = json.loads(fx.bytes("appgallery_detail.json"))
    for layout in doc["layoutData"]:
        for card in layout["dataList"]:
            if layout["layoutName"] == "detailheadcard":
                card["intro"] = "很多次安装"
            if layout["layoutName"] == "detailappinfocard":
                card["releaseDate"] = "2024-05-01 10:00"
    problems = []
    listing = parse_appgallery_detail(json.dumps(doc), AG_DETAIL_URL, problems=problems)
    assert listing.downloads is None and listing.updated == "2024-05-01"
    assert [(p.kind, p.item, p.field) for p in problems] == [("malformed_field", "C10132067", "intro")]


def test_xiaomi_search_links_and_next_page(fx):
    urls, next_url = parse_xiaomi_search(fx.text("xiaomi_search.html"), XIAOMI_SEARCH_URL)
    assert urls == [
        "https://app.example/xiaomi/details?id=com.anxin.loan",
        "https://app.example/xiaomi/details?id=com.wenying.invest",
        "https://app.example/xiaomi/details?id=com.kuaihua.pay",
    ]
    assert next_url == "https://app.example/xiaomi/search?keywords=%E8%B4%B7%E6%AC%BE&page=3"
    urls, next_url = parse_xiaomi_search(fx.text("xiaomi_search_last.html"), XIAOMI_SEARCH_URL)
    assert len(urls) == 1 and next_url is None


def test_xiaomi_next_page_is_the_下一页_link_in_div_pages_or_a_next():
    applist = '<ul class="applist"><li><a href="/details?id=com.a&amp;ref=search">a</a></li></ul>'
    pages = ('<div class="pages"><a href="?page=1">1</a><span class="current">2</span><a href="?page=3">3</a>'
             '<a href="?page=3">下一页</a></div>')
    assert parse_xiaomi_search(applist + pages, XIAOMI_SEARCH_URL)[1].endswith("/xiaomi/search?page=3")
    assert parse_xiaomi_search(applist + '<a class="next" href="?page=7">»</a>', XIAOMI_SEARCH_URL)[1].endswith("?page=7")
    elsewhere = '<div class="hot"><a href="?page=9">下一页</a></div>'  # only the pager's link counts
    assert parse_xiaomi_search(applist + elsewhere, XIAOMI_SEARCH_URL)[1] is None
    disabled = '<div class="pages"><a href="javascript:void(0);">下一页</a></div>'
    assert parse_xiaomi_search(applist + disabled, XIAOMI_SEARCH_URL)[1] is None


def test_xiaomi_search_layout_changed():
    with pytest.raises(LayoutChanged):
        parse_xiaomi_search("<html><body><div class='apps'></div></body></html>", XIAOMI_SEARCH_URL)


def test_xiaomi_detail_maps_permission_labels(fx):
    listing = parse_xiaomi_detail(fx.text("xiaomi_detail.html"), XIAOMI_DETAIL_URL)
    assert listing.app_key == "android:com.anxin.loan"
    assert (listing.store, listing.store_id, listing.name) == ("xiaomi", "com.anxin.loan", "安心借款")
    assert listing.developer == listing.legal_entity == "安心金融科技（深圳）有限公司"  # the classic page's company
    assert listing.category == "金融理财"
    assert (listing.version, listing.updated) == ("3.2.1", "2024-05-01")
    assert listing.description == "安心借款是一款贷款服务平台，借钱借款就上安心借款。\n最高可借20万元。"
    assert listing.privacy_url == "https://www.anxin.example/policies/anxin/privacy.html"
    assert listing.permissions == (  # the unknown label is kept, marked
        "android.permission.INTERNET",
        "android.permission.READ_CONTACTS",
        "android.permission.ACCESS_FINE_LOCATION",
        "android.permission.CAMERA",
        "android.permission.READ_SMS",
        "unmapped-label:某个未知的新权限",
    )


def test_xiaomi_legal_entity_is_the_开发者_pair_when_the_page_has_one(fx):
    html = fx.text("xiaomi_detail.html").replace(
        '<li class="weight-font">版本号：</li>', '<li class="weight-font">开发者：</li><li>安心数科（上海）有限公司</li>'
                                             '<li class="weight-font">版本号：</li>')
    listing = parse_xiaomi_detail(html, XIAOMI_DETAIL_URL)
    assert (listing.developer, listing.legal_entity) == ("安心金融科技（深圳）有限公司", "安心数科（上海）有限公司")


XIAOMI_DIV_LAYOUT = """<div class="intro-titles"><h3 style="margin-top: 18px">安心借款</h3>
<p class="special-font action"><b>分类：</b>金融理财<span>|</span></p></div>
<div><div>软件大小</div><div>45.3M</div></div>
<div><div>appID</div><div>123456</div></div>
<div><div>版本号</div><div>3.2.1</div></div>
<div><div>开发者</div><div>安心金融科技（深圳）有限公司</div></div>
<div><div>更新时间</div><div>2024-05-01</div></div>
<div><div>包名</div><div><div class="line-break">com.anxin.loan</div></div></div>"""


def test_xiaomi_detail_newer_div_layout():
    """The div-based details block (labels without colons) of one unconfirmed source."""
    listing = parse_xiaomi_detail(XIAOMI_DIV_LAYOUT, "https://app.example/details?id=com.other")
    assert (listing.name, listing.package, listing.category) == ("安心借款", "com.anxin.loan", "金融理财")
    assert listing.developer == listing.legal_entity == "安心金融科技（深圳）有限公司"
    assert (listing.version, listing.updated) == ("3.2.1", "2024-05-01")


def test_xiaomi_detail_without_policy(fx):
    assert parse_xiaomi_detail(fx.text("xiaomi_detail_no_policy.html"), XIAOMI_DETAIL_URL).privacy_url is None


def test_xiaomi_detail_layout_changed(fx):
    with pytest.raises(LayoutChanged) as info:
        parse_xiaomi_detail(fx.text("xiaomi_detail_layout_changed.html"), XIAOMI_DETAIL_URL)
    assert info.value.store == "xiaomi"
    assert {"name", "developer", "details"} <= set(info.value.missing)


def test_permission_label_table_covers_the_shared_vocabulary():
    table = parsers.permission_labels()
    assert table["读取联系人"] == "android.permission.READ_CONTACTS"
    assert table["获取已安装应用列表"] == "android.permission.QUERY_ALL_PACKAGES"
    from market.population import LABELS

    shared = LABELS["permissions"]  # the labels the simulated Android stores show, one per permission
    assert {label: table[label] for label in shared.values()} == {
        label: "android.permission." + name for name, label in shared.items()}
    assert len(set(shared.values())) == len(shared) == 17  # the table also holds the system's wordings (MyApp)


@pytest.mark.parametrize(
    ("store", "name", "check"),
    [
        ("itunes", "itunes_search.json", lambda r: r[0]["package"] == "com.alipay.iphoneclient"),
        ("apple-page", "apple_app_page.html", lambda r: r["privacy_labels"][0] == "标识符"),
        ("appgallery-search", "appgallery_search.json",
         lambda r: r["has_next_page"] and r["categories"][r["detail_ids"][0]] == "金融理财"),
        ("appgallery", "appgallery_detail.json", lambda r: r["store_id"] == "C10132067"),
        ("xiaomi-search", "xiaomi_search.html", lambda r: r["detail_urls"][0].endswith("details?id=com.anxin.loan")),
        ("xiaomi", "xiaomi_detail.html", lambda r: r["permissions"][1] == "android.permission.READ_CONTACTS"),
        ("policy", "policy_zh_gbk.htm", lambda r: r["effective_date"] == "2024-03-01" and r["warnings"] == ["charset_guessed"]),
    ],
)
def test_parse_file_returns_json_able_data(store, name, check, fx):
    result = parse_file(store, fx / name)
    json.dumps(result)
    assert check(result)


def test_parse_file_errors(fx):
    with pytest.raises(ValueError, match="unknown store"):
        parse_file("playstore", fx / "itunes_search.json")
    with pytest.raises(LayoutChanged):
        parse_file("xiaomi", fx / "xiaomi_detail_layout_changed.html")
    with pytest.raises(MalformedResponse):
        parse_file("appgallery", fx / "appgallery_detail_truncated.json")


def test_parse_file_policy(fx, tmp_path):
    version = parse_file("policy", fx / "policy_zh.pdf")
    assert version["content_type"] == "pdf" and version["warnings"] == []
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 truncated")
    with pytest.raises(MalformedResponse):
        parse_file("policy", broken)


def test_unknown_permission_label_is_kept_not_lost():
    from crawler.parsers import permissions_from_labels

    assert permissions_from_labels(["▪ 读取联系人", "▪ 读取心率传感器"]) == (
        "android.permission.READ_CONTACTS",
        "unmapped-label:读取心率传感器",
    )


def test_parse_file_refuses_what_a_crawl_would_not_download(tmp_path):
    """A 50 MB policy file is refused before it is read (a crawl caps policies at FINMON_POLICY_MAX_BYTES)."""
    big = tmp_path / "big.html"
    with big.open("wb") as fh:
        fh.truncate(50 * 1024 * 1024)
    with pytest.raises(MalformedResponse, match=r"52,428,800 bytes is over the 5,242,880-byte limit .*FINMON_POLICY_MAX_BYTES"):
        parse_file("policy", big)
    with pytest.raises(MalformedResponse, match="DOWNLOAD_MAXSIZE"):
        parse_file("itunes", big)


# --- Tencent MyApp ---------------------------------------------------------------------------------

MYAPP_DETAIL_URL = "https://sj.qq.com/appdetail/com.larus.nova"


def _myapp_page(fx, edit=None) -> str:
    """The real page's HTML with its __NEXT_DATA__ edited by ``edit(data)``."""
    html = fx.text("myapp_detail_real.html")
    start = html.index('type="application/json">') + len('type="application/json">')
    end = html.index("</script>", start)
    data = json.loads(html[start:end])
    if edit:
        edit(data)
    return html[:start] + json.dumps(data, ensure_ascii=False) + html[end:]


def _myapp_record(data) -> dict:
    components = data["props"]["pageProps"]["dynamicCardResponse"]["data"]["components"]
    return next(c for c in components if c["data"]["name"] == "GameDetail")["data"]["itemData"][0]


def test_myapp_real_page_parses_completely(fx):
    problems = []
    listing = parsers.parse_myapp_detail(fx.text("myapp_detail_real.html"), MYAPP_DETAIL_URL,
                                         fetched_at="2026-09-27T00:00:00+00:00", problems=problems)
    assert problems == []
    assert (listing.store, listing.platform, listing.store_id) == ("myapp", "android", "com.larus.nova")
    assert (listing.name, listing.package, listing.app_key) == ("豆包", "com.larus.nova", "android:com.larus.nova")
    assert listing.developer == listing.legal_entity == "北京春田知韵科技有限公司"
    assert (listing.category, listing.version, listing.updated) == ("工具", "15.2.0", "2026-09-22")
    assert listing.downloads == 29756596 and listing.rating_count is None
    assert listing.privacy_url == "https://www.doubao.com/legal/privacy"
    assert listing.description == "豆包是随时帮忙的 AI 助手。"
    assert listing.permissions == ("android.permission.INTERNET", "android.permission.ACCESS_NETWORK_STATE",
                                   "android.permission.RECORD_AUDIO")  # the real page's Chinese labels, mapped back
    assert listing.apk_url is None  # download_url and apk_url are empty on the real page
    assert listing.source_url == MYAPP_DETAIL_URL and len(listing.content_hash) == 64


def test_myapp_layout_changed_names_the_missing_fields(fx):
    with pytest.raises(LayoutChanged) as info:
        parsers.parse_myapp_detail(fx.text("myapp_detail_layout_changed.html"), MYAPP_DETAIL_URL)
    assert (info.value.store, info.value.missing, info.value.item) == ("myapp", ("developer",), "com.larus.nova")

    def strip(data):
        record = _myapp_record(data)
        del record["name"], record["pkg_name"]

    with pytest.raises(LayoutChanged) as info:
        parsers.parse_myapp_detail(_myapp_page(fx, strip), MYAPP_DETAIL_URL)
    assert info.value.missing == ("pkg_name", "name")


def test_myapp_page_without_its_data_or_card_is_a_layout_change(fx):
    html = fx.text("myapp_detail_real.html")
    without_script = html[:html.index("<script")] + "</body></html>"
    with pytest.raises(LayoutChanged) as info:
        parsers.parse_myapp_detail(without_script, MYAPP_DETAIL_URL)
    assert info.value.missing == ("__NEXT_DATA__",)

    def rename(data):
        for component in data["props"]["pageProps"]["dynamicCardResponse"]["data"]["components"]:
            component["cardId"] += "_v2"
            component["data"]["name"] += "V2"

    with pytest.raises(LayoutChanged) as info:
        parsers.parse_myapp_detail(_myapp_page(fx, rename), MYAPP_DETAIL_URL)
    assert info.value.missing == ("GameDetail",)
    with pytest.raises(LayoutChanged) as info:
        parsers.parse_myapp_detail(_myapp_page(fx, lambda d: d["props"].pop("pageProps")), MYAPP_DETAIL_URL)
    assert info.value.missing == ("dynamicCardResponse",)


def test_myapp_envelope_errors_are_malformed_responses(fx):
    def fail(data):
        data["props"]["pageProps"]["dynamicCardResponse"].update(ret=-1, msg="fail")

    with pytest.raises(MalformedResponse, match="ret=-1"):
        parsers.parse_myapp_detail(_myapp_page(fx, fail), MYAPP_DETAIL_URL)
    html = fx.text("myapp_detail_real.html")
    truncated = html[:html.index('"permissions_list"')] + "</script></body></html>"
    with pytest.raises(MalformedResponse, match="undecodable JSON"):
        parsers.parse_myapp_detail(truncated, MYAPP_DETAIL_URL)


def test_myapp_page_of_an_app_the_store_does_not_have_is_not_a_layout_change(fx):
    """A page without the app card that says 找不到 (or Next.js's 404 page) is the store saying there is no such app."""
    def gone(data):
        components = data["props"]["pageProps"]["dynamicCardResponse"]["data"]["components"]
        components[:] = [c for c in components if c["data"]["name"] != "GameDetail"]

    page = _myapp_page(fx, gone).replace('<div id="__next"></div>', '<div id="__next"><p>抱歉，找不到该应用</p></div>')
    with pytest.raises(parsers.AppNotFound) as info:
        parsers.parse_myapp_detail(page, MYAPP_DETAIL_URL)
    assert info.value.kind == "not_found" and not isinstance(info.value, LayoutChanged)
    error_page = '<script id="__NEXT_DATA__" type="application/json">{"props":{"pageProps":{"statusCode":404}},' \
                 '"page":"/_error","query":{}}</script>'
    with pytest.raises(parsers.AppNotFound):
        parsers.parse_myapp_detail(error_page, MYAPP_DETAIL_URL)
    with pytest.raises(parsers.AppNotFound):
        parsers.parse_myapp_detail("<html><body>应用不存在或已下架</body></html>", MYAPP_DETAIL_URL)
    with pytest.raises(LayoutChanged):  # the same page without the text: the card moved
        parsers.parse_myapp_detail(_myapp_page(fx, gone), MYAPP_DETAIL_URL)


def test_myapp_optional_fields_of_the_wrong_type_cost_the_field(fx):
    def spoil(data):
        record = _myapp_record(data)
        record.update(update_time="soon", download_num=[1], privacy_agreement="http://[::1", cate_name=7,
                      download_url="https://dd.example/16891/apk/B9BA.apk?fsname=com.larus.nova_15.2.0.apk")
        record["permissions_list"].append({"title": None})

    problems = []
    listing = parsers.parse_myapp_detail(_myapp_page(fx, spoil), MYAPP_DETAIL_URL, problems=problems)
    assert {(p.kind, p.field) for p in problems} == {
        ("malformed_field", "update_time"), ("malformed_field", "download_num"),
        ("malformed_field", "privacy_agreement"), ("malformed_field", "cate_name"),
        ("malformed_field", "permissions_list[3].title")}
    assert all(p.item == "com.larus.nova" for p in problems)
    assert (listing.updated, listing.downloads, listing.privacy_url) == ("", None, None)
    assert listing.category == "工具"  # cate_name_new
    assert listing.apk_url == "https://dd.example/16891/apk/B9BA.apk?fsname=com.larus.nova_15.2.0.apk"
    assert len(listing.permissions) == 3


def test_myapp_search_real_answer(fx):
    assert parsers.parse_myapp_search(fx.bytes("myapp_search_real.json")) == (["cmb.pb"], None)


def _myapp_search(obj: dict) -> str:
    return json.dumps({"success": True, "obj": obj, "pageContext": 0})


def test_myapp_search_pages_while_has_next_with_its_page_number_stack():
    items = [{"appId": 1, "pkgName": "com.a.b"}, {"appId": 2, "pkgName": "com.c.d"}, {"appId": 3, "pkgName": "com.a.b"}]
    assert parsers.parse_myapp_search(_myapp_search({"appDetails": items, "hasNext": 1, "pageNumberStack": "MTA="})) \
        == (["com.a.b", "com.c.d"], "MTA=")
    assert parsers.parse_myapp_search(_myapp_search({"appDetails": items, "hasNext": 0, "pageNumberStack": "MTA="}))[1] \
        is None
    wrapped = [{"appDetail": item} for item in items]  # the other shape seen: obj.items[].appDetail
    assert parsers.parse_myapp_search(_myapp_search({"items": wrapped, "hasNext": 1, "pageNumberStack": "MjA="})) \
        == (["com.a.b", "com.c.d"], "MjA=")
    assert parsers.parse_myapp_search(_myapp_search({"appDetails": [], "hasNext": 0, "pageNumberStack": ""})) \
        == ([], None)
    for obj, field in (({"hasNext": 1, "pageNumberStack": ""}, "obj.pageNumberStack"), ({}, "obj.hasNext"),
                       ({"hasNext": "maybe"}, "obj.hasNext")):
        problems = []
        found = parsers.parse_myapp_search(_myapp_search({"appDetails": items[:1], **obj}), problems=problems)
        assert found == (["com.a.b"], None) and [p.field for p in problems] == [field]


def test_myapp_search_entry_without_a_package_costs_that_entry(fx):
    items = [{"appId": 1, "appName": "甲"}, {"appId": 2, "pkgName": "com.c.d"}, {"appId": 3, "pkgName": "a/../b"}, 7]
    problems = []
    found = parsers.parse_myapp_search(_myapp_search({"appDetails": items, "hasNext": 0}), problems=problems)
    assert found == (["com.c.d"], None)
    assert [(p.kind, p.item, p.field) for p in problems] == [
        ("layout_changed", "1", "pkgName"), ("malformed_field", "3", "pkgName"),
        ("malformed_field", "appDetails[3]", "appDetails")]
    with pytest.raises(LayoutChanged) as info:  # no entry of the page has one
        parsers.parse_myapp_search(fx.bytes("myapp_search_layout_changed.json"))
    assert (info.value.missing, info.value.item) == (("pkgName",), "6504")


def test_myapp_search_answer_errors():
    with pytest.raises(MalformedResponse, match="success=false"):
        parsers.parse_myapp_search('{"success": false, "msg": "busy", "obj": null}')
    with pytest.raises(LayoutChanged) as info:
        parsers.parse_myapp_search('{"success": true, "data": {}}')
    assert info.value.missing == ("obj",)
    with pytest.raises(LayoutChanged) as info:
        parsers.parse_myapp_search('{"success": true, "obj": {"list": [], "hasNext": 0}}')
    assert info.value.missing == ("obj.appDetails",)
    with pytest.raises(MalformedResponse):
        parsers.parse_myapp_search('{"success": true, "obj": {"appDetails": [')


@pytest.mark.parametrize(("store", "name", "missing"), [("myapp", "myapp_detail_layout_changed.html", ("developer",)),
                                                         ("myapp-search", "myapp_search_layout_changed.json", ("pkgName",))])
def test_parse_file_reports_the_myapp_layout_change(store, name, missing, fx):
    from click.testing import CliRunner

    from finmon.cli import main

    with pytest.raises(LayoutChanged) as info:
        parse_file(store, fx / name)
    assert info.value.missing == missing
    result = CliRunner().invoke(main, ["parse", store, str(fx / name)])
    assert result.exit_code == 2 and "layout changed" in result.output and missing[0] in result.output


def test_parse_file_reads_the_real_myapp_fixtures(fx):
    listing = parse_file("myapp", fx / "myapp_detail_real.html", url=MYAPP_DETAIL_URL)
    assert (listing["name"], listing["updated"], listing["permissions"][0]) == (
        "豆包", "2026-09-22", "android.permission.INTERNET")
    assert json.loads(json.dumps(listing))["package"] == "com.larus.nova"  # JSON-able, as `finmon parse` prints it
    assert parse_file("myapp-search", fx / "myapp_search_real.json") == {"packages": ["cmb.pb"], "next_pns": None}


def test_the_aosp_labels_myapp_shows_map_back():
    from crawler.parsers import permissions_from_labels

    assert permissions_from_labels(["拥有完全的网络访问权限", "读取您的通讯录", "访问确切位置信息（使用 GPS 和网络进行定位）",
                                    "访问大致位置信息（以网络为依据）", "读取您的讯息（短信或彩信）"]) == (
        "android.permission.INTERNET", "android.permission.READ_CONTACTS", "android.permission.ACCESS_FINE_LOCATION",
        "android.permission.ACCESS_COARSE_LOCATION", "android.permission.READ_SMS")
