import dataclasses

import pytest

from analyzers import RULES, Registry, analyze, not_applied, rules_table
from analyzers.sdks import detect_sdks
from finmon.model import POLICY_NOT_FOUND, POLICY_UNAVAILABLE, SEVERITIES, CONFIDENCES, ApkInfo, Listing

P = "android.permission."
FULL_ZH = ("我们会收集您的手机号码、姓名、身份证号码和银行卡号，用于实名认证。"
           "我们会收集您的通讯录、通话记录、短信内容、位置信息和已安装应用列表，用于风险控制。"
           "我们会使用您的摄像头、麦克风、日历和存储空间。我们会收集设备标识符。")
SCOPE_ONLY_ZH = "我们会收集您的手机号码、姓名、身份证号码和银行卡号，用于实名认证。"
# the clauses C203-C205 look for (withdrawal, deletion/correction, a complaint channel)
RIGHTS_ZH = ("您可以在设置中撤回同意。您可以申请注销账号，或更正您的个人信息。"
             "如需投诉或举报，请联系我们：privacy@example.com。")


# an APK with nothing to flag: Android's defaults overridden where they are unsafe, one SDK the clean policy names
SAFE_APK = dict(debuggable=False, allow_backup=False, uses_cleartext_traffic=False, target_sdk=34, min_sdk=23)
SDK_DATA_ZH = "我们会收集设备型号和网络类型，用于保障交易安全。我们接入了支付宝SDK，用于完成支付。"


def with_apk(app, classes=("com.alipay.sdk.app.PayTask",), **flags):
    """``app`` with an inspected APK: safe flags unless overridden, SDKs detected from ``classes``."""
    info = ApkInfo(sha256="0" * 64, size=1, package=app.package, url="http://127.0.0.1/apk/x.apk",
                   sdks=tuple(detect_sdks(classes)), **{**SAFE_APK, **flags})
    return dataclasses.replace(app, apk=info)


def findings(app, rule_id=None):
    return [f for f in analyze(app).findings if rule_id is None or f.rule_id == rule_id]


def keys(app, rule_id):
    return [f.evidence.key for f in findings(app, rule_id)]


# --- P101 -------------------------------------------------------------------------

def test_p101_flags_each_forbidden_permission_of_a_lending_app(make_app):
    app = make_app("闪电借款", permissions=["READ_CONTACTS", "ACCESS_FINE_LOCATION", "CAMERA", "INTERNET",
                                           "ACCESS_COARSE_LOCATION", "READ_EXTERNAL_STORAGE"], text=FULL_ZH)
    got = findings(app, "P101")
    assert [f.evidence.key for f in got] == [P + "ACCESS_FINE_LOCATION", P + "READ_CONTACTS",
                                             P + "READ_EXTERNAL_STORAGE"]
    f = got[0]
    assert (f.severity, f.confidence, f.app_key) == ("high", "high", app.key)
    assert f.evidence.kind == "permission" and f.evidence.text == P + "ACCESS_FINE_LOCATION"
    assert "Google Play" in f.regulation


def test_p101_clean(make_app):
    assert keys(make_app("闪电借款", permissions=["CAMERA", "INTERNET", "ACCESS_COARSE_LOCATION"]), "P101") == []
    # the same permission in a payment app is P102's business, not P101's
    assert keys(make_app("星河支付", permissions=["READ_CONTACTS"]), "P101") == []


# --- P102 -------------------------------------------------------------------------

def test_p102_flags_unneeded_dangerous_permissions_not_already_p101(make_app):
    perms = ["READ_CONTACTS", "READ_CALENDAR", "RECORD_AUDIO", "ACCESS_COARSE_LOCATION", "CAMERA", "READ_PHONE_STATE"]
    assert keys(make_app("星河支付", permissions=perms), "P102") == [
        P + "ACCESS_COARSE_LOCATION", P + "READ_CALENDAR", P + "READ_CONTACTS", P + "RECORD_AUDIO"]
    lending = make_app("闪电借款", permissions=perms)
    assert keys(lending, "P101") == [P + "READ_CONTACTS"]
    assert keys(lending, "P102") == [P + "ACCESS_COARSE_LOCATION", P + "READ_CALENDAR", P + "RECORD_AUDIO"]
    f = findings(lending, "P102")[0]
    assert (f.severity, f.evidence.kind, f.evidence.detail) == ("medium", "permission", "location")


def test_p102_clean(make_app):
    app = make_app("城东银行", permissions=["CAMERA", "READ_PHONE_STATE", "INTERNET", "READ_EXTERNAL_STORAGE",
                                          "QUERY_ALL_PACKAGES", "ACCESS_WIFI_STATE"])
    assert keys(app, "P102") == []


def test_ios_apps_have_no_permission_findings(make_app):
    app = make_app("闪电借款", platform="ios", permissions=["READ_CONTACTS", "READ_SMS"],
                   text=SCOPE_ONLY_ZH + RIGHTS_ZH)
    assert [f.rule_id for f in findings(app)] == []


# --- C201 -------------------------------------------------------------------------

def test_c201_no_policy_url(make_app):
    [f] = findings(make_app("星河支付"), "C201")
    assert (f.evidence.kind, f.evidence.key, f.evidence.url, f.evidence.detail) == ("absence", "policy", None, "none")
    assert f.severity == "high"


def test_c201_policy_not_found(make_app):
    url = "http://127.0.0.1:8000/policies/acme/gone.html"
    [f] = findings(make_app("星河支付", status=POLICY_NOT_FOUND, url=url), "C201")
    assert (f.evidence.key, f.evidence.url, f.evidence.detail) == ("policy", url, "not_found")


def test_c201_clean(make_app):
    assert keys(make_app("星河支付", text=SCOPE_ONLY_ZH), "C201") == []
    unavailable = make_app("星河支付", status=POLICY_UNAVAILABLE, url="http://127.0.0.1:8000/p.html")
    assert findings(unavailable) == []  # 5xx/timeout: we do not know, so nothing fires


# --- C202 -------------------------------------------------------------------------

def test_c202_quotes_the_first_affirmative_sentence(make_app):
    text = ("隐私政策\n我们不会收集您的通讯录。\n为了风控，我们会读取您的通讯录；我们还会收集您的短信记录。\n"
            "我们会收集您的通讯录用于其他目的。")
    app = make_app("闪电借款", text=text)
    got = {f.evidence.key: f for f in findings(app, "C202")}
    assert set(got) == {"contacts", "sms"}
    ev = got["contacts"].evidence
    assert ev.kind == "quote" and ev.text == "为了风控，我们会读取您的通讯录；"
    assert text[ev.start:ev.end] == ev.text and ev.url == app.policy.url and ev.detail == "通讯录"
    assert text[got["sms"].evidence.start:got["sms"].evidence.end] == "我们还会收集您的短信记录。"
    assert "网络借贷类" in got["contacts"].regulation


def test_c202_every_watched_type_in_english(make_app):
    text = ("We collect your phone number and name. We also collect your contacts, call history, text messages, "
            "GPS location and the list of installed apps for risk control.")
    app = make_app("Harbor Bank", text=text, language="en")
    assert analyze(app).finance_type == "banking"
    assert keys(app, "C202") == ["app_list", "call_log", "contacts", "location", "sms"]
    for f in findings(app, "C202"):
        assert text[f.evidence.start:f.evidence.end] == f.evidence.text
        assert f.evidence.text.startswith("We also collect")


def test_c202_clean(make_app):
    negated = "我们不会收集您的通讯录、通话记录、短信内容。我们不收集位置信息。我们会向您发送短信验证码。" + SCOPE_ONLY_ZH
    assert keys(make_app("闪电借款", text=negated), "C202") == []
    # insurance and other have no necessary scope
    assert keys(make_app("平安保险", text=FULL_ZH), "C202") == []
    assert keys(make_app("天气助手", text=FULL_ZH), "C202") == []


def test_c202_quotes_a_declaration_never_a_definition(make_app):
    definition = "个人信息包括姓名、身份证件号码、财产状况、行踪轨迹等。"
    declaration = "我们会收集您的位置信息，用于风险控制。"
    [f] = findings(make_app("闪电借款", text=definition + "\n" + declaration), "C202")
    assert (f.evidence.key, f.evidence.text) == ("location", declaration)
    en = "Personal information includes your name and whereabouts.\nWe collect your precise location to prevent fraud."
    [f] = findings(make_app("Harbor Bank", text=en, language="en"), "C202")
    assert f.evidence.text == "We collect your precise location to prevent fraud."


def test_c202_list_items_under_a_declaring_lead_in(make_app):
    text = SCOPE_ONLY_ZH + "\n我们会收集以下信息：\n（1）通讯录；\n（2）位置信息。"
    got = {f.evidence.key: f.evidence.text for f in findings(make_app("闪电借款", text=text), "C202")}
    assert got == {"contacts": "（1）通讯录；", "location": "（2）位置信息。"}


@pytest.mark.parametrize("text", [
    "个人信息包括姓名、身份证件号码、财产状况、行踪轨迹等。",  # a definition, and nothing that declares
    "敏感个人信息是指一旦泄露可能危害人身安全的个人信息，包括通讯录、行踪轨迹等。",
    "通讯录权限\n本应用不会使用该权限。",  # a permission heading the next line marks unused
    "读取通讯录\n我们暂未使用此权限。",
    "我们会通过手机短信向您发送还款提醒。",  # SMS as a channel
    "您可以在设置中关闭定位权限。",  # no collection cue
    "Personal information includes your name and your location.",
    "We will notify you by SMS messages.",
])
def test_c202_no_declaration_no_finding(make_app, text):
    assert keys(make_app("闪电借款", text=SCOPE_ONLY_ZH + "\n" + text), "C202") == []


# --- D301 -------------------------------------------------------------------------

def test_d301_permission_whose_type_the_policy_never_declares(make_app):
    text = "我们会收集您的手机号码。我们不会收集您的通讯录。我们会向您发送短信验证码。We collect your camera photos."
    app = make_app("星河支付", text=text, permissions=["READ_CONTACTS", "WRITE_CONTACTS", "READ_SMS", "RECEIVE_SMS",
                                                        "CAMERA", "INTERNET", "QUERY_ALL_PACKAGES"])
    got = findings(app, "D301")
    assert [f.evidence.key for f in got] == ["contacts", "sms"]
    assert got[0].evidence.text == P + "READ_CONTACTS, " + P + "WRITE_CONTACTS"
    assert got[1].evidence.text == P + "READ_SMS, " + P + "RECEIVE_SMS"
    assert got[0].evidence.kind == "permission" and got[0].evidence.url == app.policy.url
    assert got[0].severity == "medium"


def test_d301_clean(make_app):
    perms = ["READ_CONTACTS", "CAMERA", "RECORD_AUDIO", "READ_CALENDAR", "READ_EXTERNAL_STORAGE", "READ_PHONE_STATE",
             "ACCESS_FINE_LOCATION", "READ_CALL_LOG", "READ_SMS"]
    assert keys(make_app("星河支付", text=FULL_ZH, permissions=perms), "D301") == []
    # no fetched policy: D301 cannot tell
    assert keys(make_app("星河支付", permissions=perms), "D301") == []
    assert keys(make_app("星河支付", permissions=perms, status=POLICY_UNAVAILABLE, url="http://x/p"), "D301") == []


# --- the whole analysis -------------------------------------------------------------

def test_analyze_sorts_findings_and_is_deterministic(make_app):
    app = make_app("闪电借款", text="我们会收集您的通讯录和位置信息。" + RIGHTS_ZH,
                   permissions=["READ_CONTACTS", "RECORD_AUDIO", "READ_SMS", "CAMERA"])
    result = analyze(app)
    assert result.app_key == app.key and result.finance_type == "lending" and result.finance_confidence > 0.6
    assert [(f.rule_id, f.evidence.key) for f in result.findings] == [
        ("C202", "contacts"), ("C202", "location"), ("C206", "contacts"), ("C206", "location"),
        ("D301", "camera"), ("D301", "microphone"), ("D301", "sms"),
        ("P101", P + "READ_CONTACTS"), ("P101", P + "READ_SMS"),
        ("P102", P + "RECORD_AUDIO"),
    ]
    again = analyze(app)
    assert [f.id for f in again.findings] == [f.id for f in result.findings]
    assert len({f.id for f in result.findings}) == len(result.findings)


def test_doubtful_finance_type_lowers_confidence_of_type_dependent_rules(make_app):
    app = make_app("闪电借款", description="支付 付款 收款 钱包 银行 存款", permissions=["READ_CONTACTS"])
    result = analyze(app)
    assert result.finance_type == "lending" and result.finance_confidence < 0.6
    assert [(f.rule_id, f.confidence) for f in result.findings if f.rule_id.startswith("P")] == [("P101", "medium")]


def test_rule_table_is_complete():
    table = rules_table()
    ids = [r["id"] for r in table]
    assert ids == ["P101", "P102", "C201", "C202", "C203", "C204", "C205", "C206", "C207", "D301", "D302", "D303", "D304",
                   "D305", "S401", "S402", "V501", "V502", "V503", "V504", "V505", "R601", "R602", "R603"]
    assert len(set(ids)) == len(ids)
    fields = {"id", "family", "severity", "confidence", "title", "title_en", "description", "regulation"}
    for row in table:
        assert fields <= set(row)
        assert all(isinstance(row[k], str) and row[k].strip() for k in fields), row["id"]
        assert row["family"] == row["id"][0] and row["severity"] in SEVERITIES and row["confidence"] in CONFIDENCES
    for r in RULES:
        assert r.check.__doc__.strip() and r.description and r.description_en
        assert r.description != r.description_en


@pytest.mark.parametrize("rule_id", [r.id for r in RULES])
def test_every_rule_has_a_flagged_and_a_clean_example(make_app, rule_id):
    flagged = {
        "P101": make_app("闪电借款", permissions=["READ_CALL_LOG"]),
        "P102": make_app("星河支付", permissions=["READ_CALENDAR"]),
        "C201": make_app("星河支付"),
        "C202": make_app("星河支付", text="我们会收集您的已安装应用列表。"),
        "C203": make_app("星河支付", text=SCOPE_ONLY_ZH),
        "C204": make_app("星河支付", text=SCOPE_ONLY_ZH),
        "C205": make_app("星河支付", text=SCOPE_ONLY_ZH),
        "D301": make_app("星河支付", text=SCOPE_ONLY_ZH, permissions=["CAMERA"]),
        "C206": make_app("星河支付", text="我们会收集您的身份证号码。"),
        "C207": make_app("星河支付", text=SCOPE_ONLY_ZH + "您使用本应用即视为您同意本政策。"),
        "D302": make_app("星河支付", text="我们会与第三方合作伙伴共享您的个人信息。"),
        "D303": with_apk(make_app("星河支付", text=SCOPE_ONLY_ZH + "我们接入了极光推送。"),
                         classes=("cn.jpush.android.api.JPushInterface",)),
        "S401": with_apk(make_app("星河支付", text=SCOPE_ONLY_ZH)),
        "S402": with_apk(make_app("星河支付"), classes=("com.bytedance.sdk.openadsdk.TTAdSdk",)),
        "V501": with_apk(make_app("星河支付"), debuggable=True),
        "V502": with_apk(make_app("星河支付"), allow_backup=True),
        "V503": with_apk(make_app("星河支付"), uses_cleartext_traffic=True),
        "V504": with_apk(make_app("星河支付"), exported_unprotected=({"kind": "receiver", "name": "a.b.R"},)),
        "V505": with_apk(make_app("星河支付"), target_sdk=28),
        "R601": make_app("星河支付", text=SCOPE_ONLY_ZH, package="com.unregistered.pay"),
        "R602": make_app("星河支付", text=SCOPE_ONLY_ZH, description="保本保息，稳赚不赔。"),
        "R603": with_listings(make_app("星河支付", text=SCOPE_ONLY_ZH), listing("appgallery", "杭州星河支付科技有限公司"),
                              listing("xiaomi", "深圳星河网络科技有限公司")),
        "D304": with_listings(make_app("星河支付", text=SCOPE_ONLY_ZH, permissions=["ACCESS_FINE_LOCATION"]),
                              listing("googleplay", data_safety=declaring())),
        "D305": with_listings(make_app("星河支付", text=SCOPE_ONLY_ZH + "我们会收集您的位置信息。"),
                              listing("googleplay", data_safety=declaring(("Personal info", "Name")))),
    }[rule_id]
    clean = with_apk(make_app(
        "星河支付", text=FULL_ZH.replace("通讯录、通话记录、短信内容、位置信息和已安装应用列表", "交易记录") + SDK_DATA_ZH
        + RIGHTS_ZH, permissions=["CAMERA", "INTERNET"], description="理财有风险，投资需谨慎。我们不承诺保本保息。"))
    registry = Registry.from_rows([{"app_name": "", "package": clean.package, "developer": clean.developer,
                                    "licence_no": "", "licence_type": "", "registered_on": ""}])
    assert rule_id in {f.rule_id for f in analyze(flagged, registry=registry).findings}
    assert analyze(clean, registry=registry).findings == ()
    assert analyze(clean).findings == ()


def listing(store: str, legal_entity: str = "", data_safety: dict | None = None, permissions=()) -> Listing:
    return Listing(store=store, store_id="1", platform="android", package="com.example.app", name="星河支付",
                   developer="星河支付", category="", source_url=f"https://{store}.example/app/1",
                   fetched_at="2026-01-01T00:00:00+00:00", legal_entity=legal_entity, data_safety=data_safety,
                   permissions=tuple(permissions))


def with_listings(app, *listings):
    return dataclasses.replace(app, listings=listings, legal_entity=next((l.legal_entity for l in listings
                                                                          if l.legal_entity), ""))


def declaring(*pairs: tuple[str, str]) -> dict:
    """A Data safety form declaring these (category, data type) pairs collected."""
    return {"collected": [{"category": c, "type": t, "optional": False, "purpose": "App functionality"}
                          for c, t in pairs], "shared": [], "practices": []}


def test_r603_flags_different_legal_owners_of_one_package(make_app):
    app = with_listings(make_app("星河支付"), listing("appgallery", "杭州星河支付科技有限公司"),
                        listing("xiaomi", "深圳星河网络科技有限公司"), listing("myapp", "杭州星河支付科技有限公司"))
    [finding] = findings(app, "R603")
    assert finding.evidence.key == "legal_entity" and finding.severity == "high"
    assert finding.evidence.text == ("appgallery: 杭州星河支付科技有限公司；myapp: 杭州星河支付科技有限公司；"
                                     "xiaomi: 深圳星河网络科技有限公司")
    assert finding.evidence.url == "https://appgallery.example/app/1"


def test_r603_clean_same_owner_in_other_words_another_script_or_no_legal_name(make_app):
    same = with_listings(make_app("星河支付"), listing("appgallery", "杭州星河支付科技有限公司"),
                         listing("xiaomi", "杭州星河支付科技（中国）有限公司"), listing("myapp", "杭州星河支付科技有限公司 "),
                         listing("googleplay", "Hangzhou Xinghe Payment Technology Co., Ltd."),
                         listing("itunes", ""))
    assert findings(same, "R603") == []
    latin = with_listings(make_app("星河支付"), listing("googleplay", "Xinghe Pay Co., Ltd."),
                          listing("appgallery", "Xinghe Pay Limited"))
    assert findings(latin, "R603") == []  # legal forms are not owners
    other = with_listings(make_app("星河支付"), listing("googleplay", "Xinghe Pay Co., Ltd."),
                          listing("appgallery", "Moon Finance Ltd."))
    assert [f.evidence.key for f in findings(other, "R603")] == ["legal_entity_latin"]


def test_d304_flags_permission_types_the_data_safety_form_leaves_out(make_app):
    app = with_listings(make_app("星河支付", permissions=["ACCESS_FINE_LOCATION", "READ_CONTACTS", "CAMERA",
                                                          "READ_CALL_LOG", "INTERNET"]),
                        listing("googleplay", data_safety=declaring(("Photos and videos", "Photos"))))
    got = {f.evidence.key: f.evidence for f in findings(app, "D304")}
    assert set(got) == {"contacts", "location"}  # camera declared; call logs have no Data safety type
    assert got["location"].text == "android.permission.ACCESS_FINE_LOCATION"
    assert got["location"].detail == "Data safety: collects Photos and videos"
    nothing = with_listings(make_app("星河支付", permissions=["ACCESS_COARSE_LOCATION"]),
                            listing("googleplay", data_safety=declaring()))
    assert [f.evidence.detail for f in findings(nothing, "D304")] == ["Data safety: no data collected"]


def test_d304_clean_when_declared_or_when_no_form_was_obtained(make_app):
    declared = with_listings(make_app("星河支付", permissions=["ACCESS_FINE_LOCATION", "RECORD_AUDIO"]),
                             listing("googleplay", data_safety=declaring(("Location", "Approximate location"),
                                                                         ("Audio", "Voice or sound recordings"))))
    assert findings(declared, "D304") == []
    no_form = with_listings(make_app("星河支付", permissions=["ACCESS_FINE_LOCATION"]), listing("googleplay"))
    assert findings(no_form, "D304") == []


def test_d305_quotes_the_policy_sentence_of_each_type_the_form_leaves_out(make_app):
    text = "我们会收集您的身份证号码和手机号码。为了推荐附近网点，我们会获取您的位置信息。我们不会收集您的通讯录。"
    app = with_listings(make_app("星河支付", text=text),
                        listing("googleplay", data_safety=declaring(("Personal info", "Phone number"))))
    got = {f.evidence.key: f.evidence for f in findings(app, "D305")}
    assert set(got) == {"id_number", "location"}  # the phone number is declared; contacts are denied, not collected
    assert got["location"].text == "为了推荐附近网点，我们会获取您的位置信息。"
    assert text[got["location"].start:got["location"].end] == got["location"].text


def test_d305_clean(make_app):
    text = "我们会收集您的手机号码和位置信息。"
    app = with_listings(make_app("星河支付", text=text),
                        listing("googleplay", data_safety=declaring(("Personal info", "Phone number"),
                                                                    ("Location", "Precise location"))))
    assert findings(app, "D305") == []
    assert findings(with_listings(make_app("星河支付", text=text)), "D305") == []  # no form: nothing to compare


def test_r601_looks_the_developer_up_by_its_legal_entity(make_app):
    app = with_listings(make_app("星河支付", developer="星河"), listing("itunes", "杭州星河支付科技有限公司"))
    registry = Registry.from_rows([{"app_name": "星河支付", "package": "", "developer": "杭州星河支付科技有限公司",
                                    "licence_no": "Z123", "licence_type": "支付业务许可证", "registered_on": ""}])
    assert "R601" not in {f.rule_id for f in analyze(app, registry=registry).findings}
    stranger = with_listings(make_app("星河借款", developer="星河", package="com.other"),
                             listing("itunes", "杭州星河支付科技有限公司"))
    [finding] = [f for f in analyze(stranger, registry=registry).findings if f.rule_id == "R601"]
    assert "杭州星河支付科技有限公司" in finding.evidence.text and "支付业务许可证 Z123" in finding.evidence.detail


def test_rules_needing_an_input_say_they_were_not_applied():
    assert set(not_applied(None)) == {"R601"}
    assert not_applied(Registry([])) == {}
