import json
import re
from pathlib import Path

import pytest

import analyzers
from analyzers.policy_text import lexicon, load_json
from analyzers.sdks import EXODUS_CATEGORIES, MIN_SIGNATURE, detect_sdks, sdk_catalog
from tests.support import SHARED_DATA, required


def ids(classes):
    return [s["id"] for s in detect_sdks(classes)]


def test_a_chinese_sdk_is_found_by_its_package_with_the_class_as_evidence():
    found = detect_sdks(["com.example.pay.Main", "cn.jpush.android.api.JPushInterface", "cn.jpush.android.api.B"])
    assert found == [{"id": "jpush", "name": "极光推送", "category": "push",
                      "evidence": "cn.jpush.android.api.B"}]


def test_a_package_prefix_matches_whole_segments_only():
    assert ids(["com.igexinx.Foo", "com.umengx.analytics.Bar"]) == []
    assert ids(["com.igexin.sdk.PushManager"]) == ["getui"]


def test_messaging_sdks_are_known_by_package_and_by_name():
    assert ids(["com.hyphenate.chat.EMClient", "io.agora.rtc.RtcEngine"]) == ["agora", "easemob"]
    catalog = sdk_catalog()
    assert catalog.named_in("easemob", "猿辅导客户端使用环信作为第三方客服工具。") == "环信"
    assert catalog.named_in("agora", "声网SDK用于直播连麦。") == "声网"


def test_an_exodus_tracker_outside_the_table_is_reported_with_its_category():
    found = detect_sdks(["com.facebook.ads.AdView"])
    assert [(s["name"], s["category"]) for s in found] == [("Facebook Ads", "ads")]
    assert found[0]["id"].startswith("exodus:")


def test_an_exodus_tracker_that_is_a_table_sdk_is_reported_once_under_the_table_entry():
    assert ids(["com.umeng.analytics.MobclickAgent"]) == ["umeng"]
    assert ids(["com.tencent.bugly.crashreport.CrashReport"]) == ["bugly"]


def test_no_classes_no_sdks():
    assert detect_sdks([]) == []
    assert detect_sdks(["com.example.pay.MainActivity", "androidx.core.app.ActivityCompat"]) == []


def _naive_exodus(classes):
    """εxodus's own matching, written plainly: every signature of over three characters searched in every class."""
    found = set()
    for row in load_json("trackers_exodus.json"):
        signature = row["code_signature"]
        if len(signature) > 3 and any(re.search(signature, c) for c in classes):
            found.add(f"exodus:{row['id']}")
    return found


def test_every_tracker_the_exodus_signatures_match_is_reported():
    """One class per signature alternative of the whole shared table: each match appears (itself or merged)."""
    rows = load_json("trackers_exodus.json")
    classes = sorted({alt.replace("\\", "").rstrip(".") + ".Probe" for row in rows
                      for alt in row["code_signature"].split("|") if len(row["code_signature"]) >= MIN_SIGNATURE})
    expected = _naive_exodus(classes)
    assert len(expected) >= 420
    catalog = sdk_catalog()
    reported = set(ids(classes))
    missing = {e for e in expected if e not in reported and catalog.merged.get(e) not in reported}
    assert not missing
    assert {i for i in reported if i.startswith("exodus:")} <= expected


def test_the_bundled_tracker_table_is_the_shared_one_with_its_licence_notice():
    shared = SHARED_DATA / "trackers_exodus.json"
    if not shared.is_file():
        required("../shared/data", f"{shared} is absent")
    assert load_json("trackers_exodus.json") == json.loads(shared.read_text(encoding="utf-8"))
    notice = (Path(analyzers.__file__).parent / "data" / "TRACKERS-LICENSE.md").read_text(encoding="utf-8")
    assert "ODbL" in notice and "exodus-privacy.eu.org" in notice


def test_the_sdk_table_is_consistent():
    catalog = sdk_catalog()
    table = [s for s in catalog.sdks.values() if not s.id.startswith("exodus:")]
    categories = {"push", "analytics", "ads", "location", "payment", "social_login", "risk_control"}
    assert categories <= {s.category for s in table}
    known_types = set(lexicon().types)
    for sdk in table:
        assert sdk.category in catalog.categories and sdk.names_in_policy and sdk.vendor
        assert set(sdk.collects) <= known_types, sdk.id
    assert set(catalog.merged) <= set(catalog.sdks)
    assert set(EXODUS_CATEGORIES.values()) <= set(catalog.categories)


@pytest.mark.parametrize("text, sdk_id, name", [
    ("我们接入了极光推送SDK。", "jpush", "极光"),
    ("We use jpush to deliver notifications.", "jpush", "JPush"),
    ("本应用使用 Facebook Audience Network 与 facebook ads。", None, "Facebook Ads"),
])
def test_named_in_finds_the_sdk_name_in_policy_text(text, sdk_id, name):
    catalog = sdk_catalog()
    sdk_id = sdk_id or detect_sdks(["com.facebook.ads.AdView"])[0]["id"]
    assert catalog.named_in(sdk_id, text) == name
    assert catalog.named_in(sdk_id, "我们不接入任何推送服务。") is None
