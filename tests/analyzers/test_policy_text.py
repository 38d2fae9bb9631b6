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


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
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


def test_named_device_sensors_are_the_sensors_group_and_unnamed_sensor_data_is_not():
    lx = lexicon()
    assert lx.groups(declared_types(scan("我们会收集GPS信息、WLAN接入点、蓝牙和基站等传感器信息。"))) == {"LOC"}
    # the device's own sensors, named by kind or as such: APPCH counts them as SENSORS
    assert types("我们会读取陀螺仪、加速度传感器数据。") == ["motion_sensors", "motion_sensors"]
    assert lx.groups(declared_types(scan("我们会读取陀螺仪、加速度传感器数据。"))) == {"SEN"}
    assert lx.groups(declared_types(scan("我们会收集设备传感器数据。"))) == {"SEN"}
    assert lx.groups(declared_types(scan("我们会读取您的步数信息。"))) == {"SEN"}
    # sensor data of no named kind (policies also call GPS or Bluetooth a sensor): no group
    assert types("为保障账号安全，我们会收集传感器信息。") == ["device_sensors"]
    assert lx.groups(declared_types(scan("为保障账号安全，我们会收集传感器信息。"))) == set()
    # a named sensor declares sensor data too (an SDK that collects sensor data is declared), not body sensors
    assert declared_types(scan("我们会读取陀螺仪数据。")) == {"motion_sensors", "device_sensors"}
    assert declared_types(scan("我们不会读取陀螺仪数据。")) == set()
    assert lx.by_permission["android.permission.BODY_SENSORS"] == "sensors"
    assert not {"motion_sensors", "device_sensors"} & set(lx.by_permission.values())


def test_body_sensor_and_device_sensor_vocabulary():
    text = ("开启计步功能后，我们会读取计步传感器、心率传感器的数据；您也可以授权运动与健身权限、物理活动识别权限，"
            "或把数据同步到HealthKit。我们还会收集重力感应等设备传感器数据。")
    assert {"sensors", "motion_sensors"} <= set(types(text))
    assert lexicon().groups(declared_types(scan(text))) == {"SEN"}
    assert types("We read your step counts from the pedometer and heart rate sensor.") == ["sensors"] * 3
    # 同步数据 (synchronising data) holds 步数 (steps) and is not a step count
    assert types("登录后我们会同步数据到云端。") == []


def test_device_identifiers_and_device_fingerprints():
    text = "我们会收集您的AAID、VAID、UUID、安卓ID、设备号，以及设备指纹信息。"
    assert types(text) == ["device_id"] * 6
    assert types("风控服务商会生成设备指纹。") == ["device_id"]  # not a biometric fingerprint
    assert types("We compute a device fingerprint from your Android ID.") == ["device_id", "device_id"]
    assert types("您可以录入指纹用于登录。") == ["fingerprint"]


def test_finance_vocabulary_credit_assets_income_tax():
    text = ("借款审核时，我们会查询您的芝麻信用分、微信支付分，了解您的负债情况，并请您上传银行流水、行驶证和车牌号，"
            "以及社保缴纳记录、个人所得税信息和税收居民身份声明。")
    assert types(text) == ["credit", "credit", "assets", "assets", "assets", "assets", "income", "tax", "tax"]
    # the same words where they name no data of the user
    clean = ("芝麻信用服务由第三方提供。您可以选择信用分期或支付分期。我们依据《中华人民共和国个人所得税法》代扣税款。"
             "社保机构不会向我们提供信息。We accept no liabilities beyond the law.")
    assert types(clean) == []
    assert types("请提供身份证、芝麻信用、银行流水等材料。") == ["id_number", "credit", "assets"]
    # income tax names data as an item of a list or with its record; paying or withholding it does not
    assert types("我们会查询您的个人所得税、社保信息。") == ["tax", "income"]
    assert types("平台将依法代扣代缴个人所得税。") == []
    assert types("第三方提供地图服务、芝麻信用服务、设备指纹服务。") == []


def test_investor_suitability_vocabulary():
    text = "购买基金前请完成风险测评，我们会记录您的风险承受能力、投资经验、投资目标及持仓信息。"
    assert types(text) == ["investment_profile"] * 5
    assert types("We ask about your risk tolerance and investment experience.") == ["investment_profile"] * 2
    assert types("本基金为中风险产品。") == []


def test_identity_documents_business_licence_marital_status_orders():
    text = "您可以使用护照、港澳通行证、台湾通行证、居住证或驾驶证完成认证，并填写婚姻状况。"
    assert types(text) == ["id_number"] * 5 + ["personal_profile"]
    assert types("We need your passport and your driving licence.") == ["id_number", "id_number"]
    assert types("个体工商户需上传营业执照及统一社会信用代码。") == ["business", "business"]
    assert types("您可以在官网查看我们的营业执照。") == []
    assert types("我们会保存您的订单号、支付方式、交易金额。") == ["transaction"] * 3
    # 支付方式 names data only as an item of a list
    assert types("本平台支持多种支付方式。") == []


def test_hong_kong_and_taiwan_vocabulary_after_simplification():
    text = "我們會收集閣下的姓名、流動電話、手提電話、電郵地址及個人資料，並存取您的相簿、定位資訊及聯絡人。"
    found = types(text)
    assert found == ["name", "phone_number", "phone_number", "email", "personal_info", "storage", "location",
                     "contacts"]
    assert types("我們可能讀取您的簡訊內容。") == ["sms"]
    assert types("我們不蒐集你的簡訊內容，也不存取你的通訊錄。", negated=True) == ["sms", "contacts"]
    # a mobile phone as a thing, and 简讯 as news, name no data
    assert types("請以流動電話登入。訂閱我們的每週簡訊。") == []


def test_bare_sms_and_sending_sms_as_a_permission():
    assert types("本应用会申请通讯录、短信、通话记录的读取权限。") == ["contacts", "sms", "call_log"]
    assert types("您可以授权拨打电话、发送短信，以便直接联系客户。") == ["sms"]
    assert types("我们需要获取发送短信权限与读取短信权限。") == ["sms", "sms"]
    assert lexicon().groups(declared_types(scan("本应用需要读取和发送短信。"))) == {"SMS"}
    # a sentence that only says an SMS is sent to the user names no SMS data
    assert types("我们会向您的手机发送短信。") == []
    assert types("我们会向您的手机号码发送短信。") == ["phone_number"]


@pytest.mark.parametrize("text", [
    "我们可能通过短信向您推荐理财产品。",
    "还款日前我们会以短信通知您。",
    "如不想再收到营销信息，您可以回复短信退订。",
    "我们将通过推送通知、邮件、信函、短信等形式告知您。",
    "我们会通过电话、短信、站内信的方式联系您。",
    "我们可能向您发送电子邮件、短信或推送通知。",
    "我們可能透過簡訊、電郵或推送通知聯絡您。",
    "We may send you text messages about new offers.",
    "We may contact you by email, text messages or phone.",
    "You will get SMS notifications when a payment is due.",
])
def test_sms_as_a_channel_to_the_user_is_not_sms_data(text):
    assert "sms" not in types(text)


def test_sms_next_to_data_items_is_sms_data():
    # the items next to 短信 are data (or a longer term that holds a channel word): SMS data
    assert types("我们会读取您的联系电话、短信。") == ["phone_number", "sms"]
    assert types("SDK可能收集设备MAC地址、通讯录、短信、应用安装列表。") == ["device_id", "contacts", "sms", "app_list"]
    assert types("We read your text messages, contacts and call logs.") == ["sms", "contacts", "call_log"]


def test_address_list_is_contacts_not_a_postal_address():
    assert types("We never upload your address list.") == ["contacts"]
    assert types("We collect your home address.") == ["address"]
    assert types("Type our web address into the address bar; our office address is below.") == []


def test_back_references_are_not_mentions_of_their_own():
    for text in ("若您拒绝提供上述个人信息，将无法开户。", "我们会妥善保存您的前述个人信息。", "以上的个人信息仅用于风控。",
                 "这些个人信息不会出售。", "We keep such personal information for five years."):
        assert types(text) == [], text
    assert types("我们会收集您的个人信息。") == ["personal_info"]
    assert types("We collect personal information.") == ["personal_info"]
    # a back-reference to a specific type still names that type
    assert types("我们会使用上述位置信息。") == ["location"]


def test_more_negation_verbs():
    assert types("我们不调取您的通讯录。", negated=True) == ["contacts"]
    assert types("我們不儲存您的相簿。", negated=True) == ["storage"]


def test_channel_words_contain_no_term():
    lx = lexicon()
    terms = [k for k, e in lx._entries.items() if e.kind == 0]
    for word in lx._channel_words:
        assert not any(t in word for t in terms), word


def test_sending_notices_by_sms_is_not_the_sms_permission():
    assert "sms" not in types("我们将以邮件、推送通知、短消息的方式告知您。我们可能向您发送商业性短信息。")


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
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


def test_the_order_keys_enter_the_automaton_changes_no_reading(monkeypatch):
    # keys whose first character is frequent in policies are added first (a faster scan); any order reads the same
    import analyzers.policy_text as pt

    texts = ["我们会收集您的通讯录、短信、位置信息；我们不会读取您的上述个人信息。",
             "We may contact you by email or text messages. We read your call logs and device identifiers.",
             "為開戶，我們會收集您的護照、流動電話及風險承受能力。"]
    expected = [marked_lexicon({"m": ["我们", "we"]}).read(t) for t in texts]
    monkeypatch.setattr(pt, "_first_rank", lambda key: -ord(key[0]))
    assert [marked_lexicon({"m": ["我们", "we"]}).read(t) for t in texts] == expected


@pytest.mark.parametrize("text, negated", [
    ("您可以拨打客服电话，但这并不意味着我们会收集您的通话记录。", True),  # denies what the act implies
    ("Calling us does not mean that we collect your call logs.", True),
    ("拨打客服电话时，我们会收集您的通话记录。", False),
    ("When you call us, we collect your call logs.", False),
])
def test_a_denial_of_what_an_act_implies_negates(text, negated):
    assert [m.negated for m in scan(text) if m.type == "call_log"] == [negated]


@pytest.mark.parametrize("text, call_log", [
    ("我们会保存您与客服的沟通信息（文字、语音或通话记录形式）。", False),  # the form of a talk with us
    ("我们会读取您手机的通话记录。", True),
])
def test_call_records_as_the_form_of_a_talk_with_us_are_no_call_log(text, call_log):
    assert ("call_log" in declared_types(scan(text))) is call_log
