import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzers.policy_text import Lexicon, declared_types, lexicon, load_json, reading, scan, sentence_spans

# The shared vocabulary (simulator ground truth): every phrase must map to its type.
VOCABULARY = {
    "phone_number": (["手机号码", "手机号", "电话号码"], ["mobile phone number", "phone number"]),
    "name": (["姓名", "真实姓名"], ["name", "full name"]),
    "id_number": (["身份证号码", "证件号码"], ["ID card number", "identity document number"]),
    "id_photo": (["身份证照片", "证件照片"], ["photo of your ID card", "ID document images"]),
    "bank_card": (["银行卡号", "银行卡信息"], ["bank card number", "bank account number"]),
    "face": (["人脸信息", "面部识别特征"], ["facial images", "face recognition data"]),
    "contacts": (["通讯录", "联系人信息"], ["contacts", "address book"]),
    "call_log": (["通话记录"], ["call logs", "call history"]),
    "sms": (["短信内容", "短信记录"], ["SMS messages", "text messages"]),
    "location": (["位置信息", "地理位置", "精确位置"], ["location", "precise location", "GPS location"]),
    "app_list": (["已安装应用列表", "应用安装列表"], ["list of installed apps"]),
    "device_id": (["设备标识符", "IMEI", "设备识别码"], ["device identifiers", "IMEI"]),
    "camera": (["摄像头", "相机"], ["camera"]),
    "microphone": (["麦克风", "语音信息"], ["microphone", "voice recordings"]),
    "calendar": (["日历"], ["calendar"]),
    "storage": (["存储空间", "相册", "照片"], ["storage", "photos"]),
    "transaction": (["交易记录"], ["transaction records"]),
    "income": (["收入信息", "职业信息"], ["income", "occupation"]),
}
ZH_CASES = [(t, p) for t, (zh, _) in VOCABULARY.items() for p in zh]
EN_CASES = [(t, p) for t, (_, en) in VOCABULARY.items() for p in en]


def types(text, negated=None):
    return [m.type for m in scan(text) if negated is None or m.negated == negated]


@pytest.mark.parametrize("type_id,phrase", ZH_CASES)
def test_chinese_vocabulary_affirmative_and_negated(type_id, phrase):
    assert types(f"我们会收集您的{phrase}。") == [type_id]
    assert declared_types(scan(f"我们会收集您的{phrase}，用于提供服务。")) == {type_id}
    for negated in (f"我们不会收集您的{phrase}。", f"我们不收集{phrase}。", f"本应用不会读取您的{phrase}。"):
        mentions = scan(negated)
        assert [m.type for m in mentions] == [type_id] and all(m.negated for m in mentions), negated


@pytest.mark.parametrize("type_id,phrase", EN_CASES)
def test_english_vocabulary_affirmative_and_negated(type_id, phrase):
    assert declared_types(scan(f"We collect your {phrase} to provide the service.")) == {type_id}
    for negated in (f"We do not collect your {phrase}.", f"We will never access your {phrase}.",
                    f"We don't read your {phrase}."):
        mentions = scan(negated)
        assert [m.type for m in mentions] == [type_id] and all(m.negated for m in mentions), negated


def test_english_is_case_insensitive_and_needs_word_boundaries():
    assert types("WE COLLECT YOUR PRECISE LOCATION.") == ["location"]
    assert types("Relocation of our office; allocation of funds; dislocation.") == []
    assert types("We read Contacts and Calendars.") == ["contacts", "calendar"]
    assert types("VIP地址 and GPSX are not terms.") == []
    assert types("我们收集GPS定位信息") == ["location", "location"]


def test_latin_chinese_seams_match_with_or_without_a_space():
    assert types("IP地址；IP 地址；SIM卡信息；SIM 卡信息") == ["ip_address", "ip_address", "network_info", "network_info"]


def test_sms_verification_code_is_not_sms():
    text = ("我们会向您的手机号码发送短信验证码。验证码短信仅用于登录。"
            "We send an SMS verification code to your phone number. We may send you text messages about your loan.")
    assert "sms" not in types(text)
    assert types("我们会读取您的短信内容以识别验证码短信。")[0] == "sms"


def test_traps_hide_contained_terms():
    text = ("如您有任何问题，请联系我们或通过联系方式与我们联系。日志帮助我们定位问题。"
            "Please contact us within 15 calendar days. Data storage of your information follows the law.")
    assert types(text) == []


def test_longest_match_wins():
    assert types("请上传身份证照片。") == ["id_photo"]
    assert types("请填写紧急联系人信息。") == ["emergency_contact"]
    assert types("We need a photo of your ID card.") == ["id_photo"]
    assert types("您的银行预留手机号码") == ["phone_number"]


def test_negation_scope_is_the_sentence_and_resets_at_contrast():
    text = "我们不会收集您的通讯录，但会收集您的地理位置。我们会收集您的通话记录。"
    assert [(m.type, m.negated) for m in scan(text)] == [
        ("contacts", True), ("location", False), ("call_log", False)]
    text = "We do not collect your contacts, call logs or SMS messages. However, we collect your location."
    assert [(m.type, m.negated) for m in scan(text)] == [
        ("contacts", True), ("call_log", True), ("sms", True), ("location", False)]
    # a cue after the term does not negate it; 包括但不限于 is not a contrast
    assert [m.negated for m in scan("我们收集通讯录，不会出售。")] == [False]
    assert [m.negated for m in scan("我们不会收集敏感信息，包括但不限于通讯录、短信记录。")] == [True, True]


@pytest.mark.parametrize("text", [
    "我们无需获取您的位置信息。",
    "本应用不会访问您的位置信息。",
    "我们不会向任何第三方提供您的位置信息。",
    "我们不会使用您的位置信息。",
    "我们不获取您的位置信息。",
    "We won't collect your location.",
    "We will not access your location.",
    "We never collect your location.",
])
def test_negation_cues(text):
    assert [(m.type, m.negated) for m in scan(text)] == [("location", True)]


def test_user_side_conditions_are_not_negations():
    assert [m.negated for m in scan("如您未开启位置权限，我们将无法为您推荐附近网点。")] == [False]
    assert [m.negated for m in scan("If you do not use location services, some features stop.")] == [False]


def test_mention_and_sentence_offsets():
    text = "  隐私政策\n\n一、我们收集的信息。\n  为风控需要，我们会收集您的通讯录；We collect your call logs. Thanks!  "
    for m in scan(text):
        sentence = text[m.sent_start:m.sent_end]
        assert sentence == sentence.strip() and m.sent_start <= m.start < m.end <= m.sent_end
        assert text[m.start:m.end] in sentence
    quotes = {m.type: text[m.sent_start:m.sent_end] for m in scan(text)}
    assert quotes == {"contacts": "为风控需要，我们会收集您的通讯录；", "call_log": "We collect your call logs."}


def test_sentence_spans_split_chinese_and_english():
    text = "第一句。第二句；第三句！Fourth one. Fifth, e.g. with an abbreviation? Sixth\nSeventh"
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "第一句。", "第二句；", "第三句！", "Fourth one.", "Fifth, e.g. with an abbreviation?", "Sixth", "Seventh"]
    assert sentence_spans("") == [] and sentence_spans(" \n ") == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(
    ["我们会收集", "您的", "通讯录", "位置信息", "不会", "。", "；", "\n", " ", "We collect ", "contacts", ". ",
     "短信验证码", "GPS", "但", "x"]), max_size=40))
def test_offsets_are_consistent_on_any_text(parts):
    text = "".join(parts)
    spans = sentence_spans(text)
    for m in scan(text):
        assert 0 <= m.sent_start <= m.start < m.end <= m.sent_end <= len(text)
        assert (m.sent_start, m.sent_end) in spans


def test_lexicon_is_well_formed():
    lx = lexicon()
    assert len(lx.types) >= 30
    groups = {"CAL", "CAM", "CON", "LOC", "MIC", "PHO", "SEN", "SMS", "STO", None}
    for dt in lx.types.values():
        assert re.fullmatch(r"[a-z_]+", dt.id)
        assert dt.name_zh and dt.name_en and dt.terms_zh and dt.terms_en
        assert dt.group in groups and dt.jrt in {"C1", "C2", "C3", None}
        assert all(p.startswith("android.permission.") for p in dt.permissions)


def test_permissions_map_to_the_shared_data_types():
    expected = {
        "READ_CONTACTS": "contacts", "READ_CALL_LOG": "call_log", "READ_SMS": "sms", "RECEIVE_SMS": "sms",
        "ACCESS_FINE_LOCATION": "location", "ACCESS_COARSE_LOCATION": "location", "CAMERA": "camera",
        "RECORD_AUDIO": "microphone", "READ_CALENDAR": "calendar", "READ_PHONE_STATE": "device_id",
        "READ_EXTERNAL_STORAGE": "storage", "WRITE_EXTERNAL_STORAGE": "storage", "QUERY_ALL_PACKAGES": "app_list",
    }
    by_permission = lexicon().by_permission
    assert {p: by_permission[f"android.permission.{p}"] for p in expected} == expected
    assert "android.permission.INTERNET" not in by_permission


def test_permission_groups_of_types():
    assert lexicon().groups(["contacts", "location", "sms", "app_list"]) == {"CON", "LOC", "SMS"}


def test_enumeration_only_terms():
    # the account itself, a switch, a company: not data; the same words inside an enumeration are
    assert types("您可以通过手机号创建账号。请开启定位功能。基础电信运营商提供服务。") == ["phone_number"]
    assert types("我们会收集您的账号、密码、运营商/网络类型。") == ["account_id", "password", "network_info", "network_info"]


def test_generic_personal_information_has_no_group_and_no_level():
    lx = lexicon()
    assert types("我们会收集您的个人信息。") == ["personal_info"]
    assert lx.types["personal_info"].group is None and lx.types["personal_info"].jrt is None
    assert types("我们重视个人信息保护。") == []


def test_motion_sensors_are_not_the_body_sensors_group():
    lx = lexicon()
    assert lx.groups(declared_types(scan("我们会收集GPS信息、WLAN接入点、蓝牙和基站等传感器信息。"))) == {"LOC"}
    assert lx.groups(declared_types(scan("我们会读取陀螺仪、加速度传感器数据。"))) == set()
    assert lx.groups(declared_types(scan("我们会读取您的步数信息。"))) == {"SEN"}


def test_sending_notices_by_sms_is_not_the_sms_permission():
    assert "sms" not in types("我们将以邮件、推送通知、短消息的方式告知您。我们可能向您发送商业性短信息。")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab .。；;！!？?\n\t\u3000e.g", max_size=60))
def test_sentence_ends_match_the_reference_split(text):
    lx = lexicon()
    ref = [m.end() for m in re.finditer(r"[。；;！!？?\n]|\.(?=\s)", text)]
    ref = [e for e in ref if text[e - 1] != "." or not lx._is_abbreviation(text, e - 1)]
    if not ref or ref[-1] != len(text):
        ref.append(len(text))
    assert lx.sentence_ends(text) == ref


# --- markers: more phrases found in the same pass ----------------------------------------------------------------

def marked_lexicon(markers):
    return Lexicon(load_json("data_types.json"), load_json("negation.json"), load_json("sentences.json"),
                   markers=markers)


def test_markers_report_every_start_overlaps_included():
    lx = marked_lexicon({"a": ["第三方", "方sdk"], "b": ["联系我们", "sdk"]})
    text = "我们接入的第三方SDK；请联系我们。第三方"
    read = lx.read(text)
    assert read.markers == {"a": [5, 7, 18], "b": [8, 13]}
    # markers change no mention (联系我们 is also a trap of the lexicon) and no sentence
    plain = marked_lexicon(None)
    assert read.mentions == plain.scan(text) and read.sentence_ends == plain.sentence_ends(text)


def test_markers_are_lower_case_and_match_any_case():
    assert marked_lexicon({"m": ["share"]}).read("We SHARE and Share.").markers == {"m": [3, 13]}
    with pytest.raises(ValueError, match="lower-case"):
        marked_lexicon({"m": ["Share"]})


def test_no_marker_offsets_when_lowercasing_does_not_fold_as_regular_expressions_do():
    lx = marked_lexicon({"m": ["share"]})
    for odd in ("\u0130", "\u0131", "\u017f"):  # İ ı ſ
        assert lx.read(f"We share{odd}.").markers is None


def test_reading_is_cached_and_agrees_with_scan():
    text = "我们会收集您的通讯录。"
    assert reading(text) is reading(text)
    assert reading(text).mentions == scan(text) == lexicon().scan(text)
    assert reading(text).sentence_ends == lexicon().sentence_ends(text)


def test_traditional_chinese_is_read_as_simplified_with_offsets_into_the_text_as_given():
    from analyzers.policy_text import simplified

    text = "我們會收集您的通訊錄和身份證號碼。我們不會讀取您的簡訊內容。"
    assert simplified(text) == "我们会收集您的通讯录和身份证号码。我们不会读取您的简讯内容。"
    assert len(simplified(text)) == len(text)
    found = [(m.type, text[m.start:m.end], m.negated) for m in scan(text)]
    assert ("contacts", "通訊錄", False) in found and ("id_number", "身份證號碼", False) in found
    assert simplified("privacy 隐私政策") == "privacy 隐私政策"
