"""The rules that read an app's APK: S401, S402, D303, V501-V505, and APK permissions in the P rules."""
import dataclasses

from analyzers import analyze, analyze_apk
from finmon.model import POLICY_UNAVAILABLE
from finmon.settings import FINMON_MIN_TARGET_SDK
from tests.analyzers.test_rules import SCOPE_ONLY_ZH, with_apk

JPUSH = "cn.jpush.android.api.JPushInterface"
FACEBOOK_ADS = "com.facebook.ads.AdView"


def by_rule(app, rule_id):
    return [f for f in analyze(app).findings if f.rule_id == rule_id]


def test_s401_one_finding_per_unnamed_sdk_with_the_class_as_evidence(make_app):
    app = with_apk(make_app("星河支付", text=SCOPE_ONLY_ZH + "我们使用 jpush 推送消息。"),
                   classes=(JPUSH, "com.umeng.analytics.MobclickAgent", FACEBOOK_ADS))
    found = {f.evidence.key: f.evidence for f in by_rule(app, "S401")}
    assert set(found) == {"umeng", next(k for k in found if k.startswith("exodus:"))}  # JPush is named (any case)
    assert found["umeng"].kind == "sdk" and found["umeng"].text == "友盟统计"
    assert found["umeng"].detail == "analytics: com.umeng.analytics.MobclickAgent"


def test_s401_and_d303_need_the_policy_text(make_app):
    app = with_apk(make_app("星河支付", status=POLICY_UNAVAILABLE, url="http://p/x"), classes=(JPUSH,))
    assert not by_rule(app, "S401") and not by_rule(app, "D303")


def test_d303_lists_the_sdks_collecting_each_undeclared_type(make_app):
    text = SCOPE_ONLY_ZH + "我们会收集设备标识符和设备型号。我们接入了极光推送和个推。"
    app = with_apk(make_app("星河支付", text=text), classes=(JPUSH, "com.igexin.sdk.PushManager"))
    found = {f.evidence.key: f.evidence.text for f in by_rule(app, "D303")}
    assert found == {t: "个推推送、极光推送" for t in ("app_list", "location", "network_info")}


def test_s402_flags_advertising_sdks_of_both_tables(make_app):
    app = with_apk(make_app("星河支付"), classes=(FACEBOOK_ADS, "com.qq.e.comm.managers.GDTAdSdk", JPUSH))
    assert sorted(f.evidence.text for f in by_rule(app, "S402")) == ["Facebook Ads", "腾讯优量汇（广点通）"]


def test_v505_uses_the_configured_floor(make_app):
    assert by_rule(with_apk(make_app("星河支付"), target_sdk=FINMON_MIN_TARGET_SDK - 1), "V505")
    assert not by_rule(with_apk(make_app("星河支付"), target_sdk=FINMON_MIN_TARGET_SDK), "V505")


def test_v503_is_silent_when_a_network_security_config_decides(make_app):
    assert not by_rule(with_apk(make_app("星河支付"), uses_cleartext_traffic=None), "V503")


def test_v504_one_finding_per_component(make_app):
    comps = ({"kind": "receiver", "name": "a.b.R"}, {"kind": "provider", "name": "a.b.P"})
    found = by_rule(with_apk(make_app("星河支付"), exported_unprotected=comps), "V504")
    assert sorted(f.evidence.key for f in found) == ["provider:a.b.P", "receiver:a.b.R"]


def test_apk_permissions_count_in_the_permission_rules(make_app):
    app = with_apk(make_app("闪电借款"), classes=())
    app = dataclasses.replace(app, apk=dataclasses.replace(app.apk, permissions=("android.permission.READ_CONTACTS",)))
    assert [f.evidence.key for f in by_rule(app, "P101")] == ["android.permission.READ_CONTACTS"]
    ios = dataclasses.replace(app, platform="ios", key="ios:" + app.package)
    assert not by_rule(ios, "P101") and not by_rule(ios, "V501")


def test_analyze_apk_uses_only_what_the_apk_shows(make_app):
    apk = with_apk(make_app("闪电借款"), classes=(JPUSH,), debuggable=True).apk
    apk = dataclasses.replace(apk, label="闪电借款", permissions=("android.permission.READ_CALL_LOG",))
    analysis = analyze_apk(apk)
    assert analysis.finance_type == "lending"
    assert {f.rule_id for f in analysis.findings} == {"P101", "V501"}  # no policy: C201, S401 and D303 stay silent


def test_d302_counts_an_sdk_the_policy_names_as_a_named_recipient(make_app):
    text = "我们的产品中接入了以下第三方SDK：同盾科技。"
    assert not by_rule(make_app("星河支付", text=text), "D302")
    assert by_rule(make_app("星河支付", text="我们的产品中接入了第三方SDK。"), "D302")
