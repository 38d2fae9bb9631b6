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
    ids, total = parse_appgallery_search(fx.bytes("appgallery_search.json"))
    assert ids == ["app|C10132067", "app|C10245511"]  # duplicates dropped, order kept
    assert total == 2


def test_appgallery_search_layout_and_errors():
    with pytest.raises(LayoutChanged):
        parse_appgallery_search('{"rtnCode":0,"layoutData":[]}')  # no totalPages
    with pytest.raises(LayoutChanged):
        parse_appgallery_search('{"code":0}')
    with pytest.raises(MalformedResponse):
        parse_appgallery_search('{"rtnCode":1,"layoutData":[]}')
    assert parse_appgallery_search('{"rtnCode":0,"totalPages":0,"layoutData":[]}') == ([], 0)


def test_appgallery_detail(fx):
    listing = parse_appgallery_detail(fx.bytes("appgallery_detail.json"), AG_DETAIL_URL)
    assert listing.app_key == "android:com.anxin.loan"
    assert (listing.store, listing.store_id, listing.name) == ("appgallery", "C10132067", "安心借款")
    assert listing.developer == "安心金融科技（深圳）有限公司"
    assert listing.category == "金融理财"
    assert (listing.version, listing.updated, listing.downloads) == ("3.2.1", "2024-05-01", 1523000)
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
    assert info.value.store == "appgallery" and info.value.missing == ("appdetailheadercard",)


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


def test_xiaomi_search_layout_changed():
    with pytest.raises(LayoutChanged):
        parse_xiaomi_search("<html><body><div class='apps'></div></body></html>", XIAOMI_SEARCH_URL)


def test_xiaomi_detail_maps_permission_labels(fx):
    listing = parse_xiaomi_detail(fx.text("xiaomi_detail.html"), XIAOMI_DETAIL_URL)
    assert listing.app_key == "android:com.anxin.loan"
    assert (listing.store, listing.store_id, listing.name) == ("xiaomi", "com.anxin.loan", "安心借款")
    assert listing.developer == "安心金融科技（深圳）有限公司"
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
    assert len(set(table.values())) == len(table) == 17


@pytest.mark.parametrize(
    ("store", "name", "check"),
    [
        ("itunes", "itunes_search.json", lambda r: r[0]["package"] == "com.alipay.iphoneclient"),
        ("apple-page", "apple_app_page.html", lambda r: r["privacy_labels"][0] == "标识符"),
        ("appgallery-search", "appgallery_search.json", lambda r: r["total_pages"] == 2),
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
