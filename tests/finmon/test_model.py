import dataclasses

import pytest

from finmon.model import (
    POLICY_NONE,
    POLICY_NOT_FOUND,
    POLICY_OK,
    POLICY_UNAVAILABLE,
    ApkInfo,
    Evidence,
    Finding,
    Listing,
    PolicyVersion,
    Run,
    detect_language,
    merge_listings,
    normalise_text,
)


def listing(store, package="com.example.loan", **kw):
    base = dict(store=store, store_id=f"{store}-1", platform="android", package=package, name="示例借款",
                developer="示例科技", category="金融理财", source_url=f"http://s/{store}", fetched_at="2026-01-01T00:00:00+00:00")
    base.update(kw)
    return Listing(**base)


def policy(url):
    return PolicyVersion(url=url, final_url=url, fetched_at="t", sha256="h", text="我们会收集您的手机号码。")


def test_finding_id_is_stable_and_ignores_volatile_fields():
    ev = Evidence(kind="permission", key="android.permission.READ_CONTACTS")
    a = Finding("P101", "high", "high", "android:x", "t", ev, "reg", first_seen="1", status="new")
    b = Finding("P101", "high", "high", "android:x", "other title", ev, "reg", first_seen="2", status="open")
    assert a.id == b.id
    assert a.id != Finding("P101", "high", "high", "android:y", "t", ev, "reg").id


def test_finding_round_trips_through_dict():
    ev = Evidence(kind="quote", key="contacts", text="我们会收集您的通讯录。", start=3, end=14)
    f = Finding("C202", "high", "medium", "android:x", "t", ev, "reg")
    back = Finding.from_dict(f.to_dict())
    assert back == f and back.id == f.id


def test_records_give_what_dataclasses_asdict_gives_as_copies_and_read_back_only_values_of_their_types():
    records = [
        listing("googleplay", permissions=("android.permission.CAMERA",), downloads=5, rating_count=None,
                data_safety={"collected": [{"category": "位置", "optional": False}], "practices": ["加密传输"]}),
        ApkInfo(sha256="h", size=1, package="com.a", version_code=3, uses_cleartext_traffic=None,
                exported_unprotected=({"kind": "activity", "name": ".Main"},), sdks=({"id": "umeng"},)),
        Finding("C202", "high", "medium", "android:x", "t", Evidence(kind="quote", key="k", start=0, end=3), "reg"),
        Run(id="r", kind="crawl", started="t", counters={"listings": 2}),
    ]
    for record in records:
        data = record.to_dict()
        assert data == {**dataclasses.asdict(record), **({"id": record.id} if isinstance(record, Finding) else {})}
        assert type(record).from_dict(data) == record
        for name, value in data.items():  # containers are the record's copies, not its own
            if isinstance(value, (dict, list)):
                assert value is not getattr(record, name)
    good = records[0].to_dict()
    for field, bad in (("downloads", True), ("downloads", "5"), ("privacy_url", 3), ("permissions", ["ok", 1]),
                       ("permissions", "android.permission.CAMERA"), ("data_safety", []), ("name", None)):
        with pytest.raises(TypeError, match=f"Listing.{field}: expected"):
            Listing.from_dict({**good, field: bad})
    assert Listing.from_dict({**good, "privacy_url": None, "permissions": []}).permissions == ()


def test_merge_unions_permissions_across_stores_and_attaches_policy():
    a = listing("appgallery", permissions=("p1",), privacy_url="http://p/1")
    b = listing("xiaomi", permissions=("p2",), privacy_url="http://p/1")
    (app,) = merge_listings([b, a], {"http://p/1": policy("http://p/1")}, {})
    assert app.key == "android:com.example.loan"
    assert app.permissions == {"p1", "p2"}
    assert app.policy_status == POLICY_OK
    assert [lst.store for lst in app.listings] == ["appgallery", "xiaomi"]


def test_merge_policy_status_distinguishes_missing_from_unavailable():
    none = listing("xiaomi", package="a")
    missing = listing("xiaomi", package="b", privacy_url="http://p/404")
    down = listing("xiaomi", package="c", privacy_url="http://p/500")
    apps = merge_listings([none, missing, down], {}, {"http://p/404": POLICY_NOT_FOUND, "http://p/500": POLICY_UNAVAILABLE})
    assert [a.policy_status for a in apps] == [POLICY_NONE, POLICY_NOT_FOUND, POLICY_UNAVAILABLE]


def test_merge_attaches_the_apk_of_the_same_package_only():
    ours = ApkInfo(sha256="a" * 64, size=10, package="com.example.loan", sdks=({"id": "jpush"},))
    other = ApkInfo(sha256="b" * 64, size=10, package="com.other.app")
    a = listing("appgallery", apk_url="http://s/1.apk")
    b = listing("xiaomi", package="com.example.two", apk_url="http://s/2.apk")
    c = listing("xiaomi", package="com.example.three", apk_url="http://s/missing.apk")
    apps = merge_listings([a, b, c], {}, {}, {"http://s/1.apk": ours, "http://s/2.apk": other})
    assert [app.apk for app in apps] == [ours, None, None]
    assert ApkInfo.from_dict(ours.to_dict()) == ours


def test_normalise_text_collapses_whitespace_and_width():
    assert normalise_text("  我们\u3000收集\r\n\r\n\tＡＢＣ  ") == "我们 收集\nABC"


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("我们会收集您的手机号码", "zh"),
        ("我们会通过 SDK（Software Development Kit）收集您的设备信息", "zh"),
        ("We collect your phone number, name and ID card number when you open an account with Alipay (支付宝).", "en"),
        ("", ""),
    ],
)
def test_detect_language(text, lang):
    assert detect_language(text) == lang
