"""C203–C206 and D302: policy-text clauses of the 2019 identification method, zh and en; purpose statements; the
prefix search that makes the clause cues fast gives what a plain regular-expression search gives."""
import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzers import analyze
from analyzers import clauses
from analyzers.clauses import (clause_cues, clause_sentences, declarations, has_clause, has_contact_channel,
                               names_recipient, names_sdk, purpose_sentences, sharing_sentences, without_purpose)
from analyzers.policy_text import _UNFOLDED, lexicon, load_json, reading, scan, sentence_spans
from finmon.model import POLICY_UNAVAILABLE

BASE_ZH = "我们会收集您的手机号码、姓名、身份证号码和银行卡号，用于实名认证。"
SCOPE_ONLY = "我们会收集您的手机号码、姓名、身份证号码和银行卡号，用于实名认证。"  # a lending app's necessary data
BASE_EN = "We collect your phone number and name to verify your identity. "
WITHDRAW_ZH = "您可以通过设置页面撤回您的授权同意。"
DELETE_ZH = "您可以申请注销账号。"
CONTACT_ZH = "如需投诉或举报，请联系我们：客服电话 400-123-4567。"
WITHDRAW_EN = "You may withdraw your consent at any time in the settings. "
DELETE_EN = "You can delete your account or correct your personal information. "
CONTACT_EN = "If you have a complaint, contact us at privacy@example.com. "
ALL_ZH = BASE_ZH + WITHDRAW_ZH + DELETE_ZH + CONTACT_ZH
ALL_EN = BASE_EN + WITHDRAW_EN + DELETE_EN + CONTACT_EN


def rule_findings(app, rule_id):
    return [f for f in analyze(app).findings if f.rule_id == rule_id]


def en_app(make_app, text):
    return make_app("Star Pay", text=text, language="en")


@pytest.mark.parametrize("rule_id,clause,missing", [
    ("C203", "consent_withdrawal", WITHDRAW_ZH),
    ("C204", "deletion_correction", DELETE_ZH),
    ("C205", "complaint_channel", CONTACT_ZH),
])
def test_absent_clause_zh(make_app, rule_id, clause, missing):
    app = make_app("星河支付", text=ALL_ZH.replace(missing, ""))
    [f] = rule_findings(app, rule_id)
    assert (f.evidence.kind, f.evidence.key, f.evidence.url) == ("absence", clause, app.policy.url)
    assert f.severity == "medium" and f.regulation
    assert rule_findings(make_app("星河支付", text=ALL_ZH), rule_id) == []


@pytest.mark.parametrize("rule_id,clause,missing", [
    ("C203", "consent_withdrawal", WITHDRAW_EN),
    ("C204", "deletion_correction", DELETE_EN),
    ("C205", "complaint_channel", CONTACT_EN),
])
def test_absent_clause_en(make_app, rule_id, clause, missing):
    [f] = rule_findings(en_app(make_app, ALL_EN.replace(missing, "")), rule_id)
    assert (f.evidence.kind, f.evidence.key) == ("absence", clause)
    assert rule_findings(en_app(make_app, ALL_EN), rule_id) == []


@pytest.mark.parametrize("rule_id", ["C203", "C204", "C205", "C206", "D302"])
def test_clause_rules_need_a_fetched_policy(make_app, rule_id):
    assert rule_findings(make_app("星河支付"), rule_id) == []  # no policy: C201's business
    unavailable = make_app("星河支付", status=POLICY_UNAVAILABLE, url="http://127.0.0.1:8000/p.html")
    assert rule_findings(unavailable, rule_id) == []


def test_each_clause_variant():
    for text in ("您可以撤回授权。", "您可以取消授权。", "您可以关闭相应权限。", "You can revoke your consent."):
        assert has_clause(text, "consent_withdrawal"), text
    for text in ("您可以注销账户。", "您可以删除个人信息。", "您可以更正信息。", "您可以更改个人信息。",
                 "You may correct inaccurate data."):
        assert has_clause(text, "deletion_correction"), text
    assert not has_clause("我们会收集您的手机号码。We collect your name.", "deletion_correction")
    assert has_contact_channel("对本政策有疑问请联系我们：北京市海淀区中关村大街1号。")
    assert has_contact_channel("Privacy questions? Contact us: support@example.com")
    assert not has_contact_channel("如有问题，请联系我们。")  # a cue without any contact detail
    assert has_contact_channel("个人信息问题请发往客服邮箱 help@example.com。")  # 客服 + an e-mail is a channel
    assert not has_contact_channel("联系我们\n地址：北京市海淀区中关村大街1号")  # a page footer: for no privacy matter
    assert not has_contact_channel("Contact us: sales@example.com")


def test_d302_quotes_the_first_affirmative_sharing_sentence(make_app):
    text = ALL_ZH + "我们不会与第三方共享您的通讯录。\n为了风控，我们会与第三方合作伙伴共享您的设备信息。我们也会向合作方提供您的交易记录。"
    app = make_app("星河支付", text=text)
    [f] = rule_findings(app, "D302")
    ev = f.evidence
    assert (ev.kind, ev.key, ev.url) == ("quote", "third_party_sharing", app.policy.url)
    assert ev.text == "为了风控，我们会与第三方合作伙伴共享您的设备信息。" == text[ev.start:ev.end]
    assert f.severity == "medium" and "第二十三条" in f.regulation


def test_d302_english(make_app):
    text = ALL_EN + "We do not sell your data. We may share your personal information with third parties for marketing."
    [f] = rule_findings(en_app(make_app, text), "D302")
    assert f.evidence.text == "We may share your personal information with third parties for marketing."
    assert text[f.evidence.start:f.evidence.end] == f.evidence.text


@pytest.mark.parametrize("extra", [
    "我们不会与第三方共享您的个人信息。",  # negated
    "未经您的同意，我们不会向任何第三方提供您的个人信息。",
    "我们会与第三方共享您的个人信息，接收方为北京星河数据科技有限公司。",  # a named company
    "我们会与第三方共享您的个人信息，详见本政策附件《第三方信息共享清单》。",  # a list of the policy's own
    "我们会与第三方共享您的个人信息，共享清单如下：",
    "我们接入了第三方SDK（友盟统计），用于统计分析。",  # an SDK name
])
def test_d302_clean_zh(make_app, extra):
    assert rule_findings(make_app("星河支付", text=ALL_ZH + extra), "D302") == []


@pytest.mark.parametrize("extra", [
    "We do not share your personal information with third parties.",
    "We never share your data with advertisers.",
    "We share your personal information with Acme Analytics Inc. for fraud checks.",
    "We share your data with the partners in our list of third-party SDKs.",
])
def test_d302_clean_en(make_app, extra):
    assert rule_findings(en_app(make_app, ALL_EN + extra), "D302") == []


def test_sharing_sentences_are_negation_aware():
    assert sharing_sentences("我们不会与第三方共享您的个人信息。") == ()
    assert sharing_sentences("我们会与第三方共享您的个人信息。") == ((0, 16),)
    assert sharing_sentences("您向第三方提供的信息不适用本政策。") == ()  # the user, not us, provides


def test_cues_are_compiled_once():
    assert clause_cues() is clause_cues()
    assert set(clause_cues().clauses) == {"consent_withdrawal", "deletion_correction", "complaint_channel",
                                          "third_party_sharing", "implied_consent"}


# --- purpose statements and C206 -------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "为了向您提供借款服务，我们需要收集您的身份证号。",
    "您的身份证号用于身份验证。",
    "我们会收集您的位置信息，以便为您推荐附近的网点。",
    "我们仅会出于本政策所述的目的收集您的个人信息。",
    "为保障您的账户安全，我们会收集您的设备信息。",
    "We collect your ID number for the purpose of fraud prevention.",
    "We use your location in order to show nearby branches.",
    "We collect your device identifiers to prevent fraud.",
])
def test_purpose_statements(text):
    assert purpose_sentences(text) == ((0, len(text)),)


@pytest.mark.parametrize("text", [
    "我们会收集您的身份证号码。",
    "我们仅在达到本政策所述目的所必需的期限内保存您的个人信息。",  # a purpose that only bounds the retention
    "您可以提供身份证号码。",  # 可以提供 is not 以提供
    "We collect your ID number.",
    "You can turn off location services in the settings.",
])
def test_not_purpose_statements(text):
    assert purpose_sentences(text) == ()


def test_purpose_sentences_are_sentences():
    text = "我们会收集您的通讯录。\n收集通讯录是为了风险控制；We collect your location. We use it to prevent fraud."
    assert [text[s:e] for s, e in purpose_sentences(text)] == ["收集通讯录是为了风险控制；", "We use it to prevent fraud."]


def c206(app):
    return [(f.evidence.key, f.evidence.text) for f in rule_findings(app, "C206")]


def test_c206_flags_sensitive_data_collected_without_a_purpose_zh(make_app):
    declared = "我们会收集您的通讯录和短信内容。"
    text = ALL_ZH + "\n" + declared + "您也可以随时联系客服。"  # ALL_ZH gives the purpose of the bank card number
    app = make_app("星河支付", text=text)
    found = rule_findings(app, "C206")
    assert [(f.evidence.key, f.evidence.text) for f in found] == [("contacts", declared), ("sms", declared)]
    f = found[0]
    assert (f.evidence.kind, f.evidence.url, f.severity) == ("quote", app.policy.url, "medium")
    assert text[f.evidence.start:f.evidence.end] == declared and f.evidence.detail == "通讯录"
    assert "未明示收集使用个人信息的目的" in f.regulation and "第十七条" in f.regulation


@pytest.mark.parametrize("extra", [
    "为了风险控制，我们会收集您的通讯录。",  # a purpose in the sentence
    "我们会收集您的通讯录。该信息用于风险控制。",  # in the next sentence
    "为了向您提供借款服务，您需要提供：\n通讯录",  # in a lead-in line
    "我们会收集您的通讯录。\n我们会读取您的通讯录，以便您快速填写紧急联系人。",  # another mention has one
    "我们不会收集您的通讯录。",  # negated
    "个人敏感信息是指一旦泄露可能危害人身和财产安全的个人信息，包括通讯录、银行账号等。",  # a definition
    "您可以在设置中关闭通讯录权限。",  # no collection cue
])
def test_c206_clean_zh(make_app, extra):
    assert c206(make_app("星河支付", text=ALL_ZH + "\n" + extra)) == []


def test_c206_english(make_app):
    text = ALL_EN + "We collect your precise location and your contacts. "
    assert [key for key, _ in c206(en_app(make_app, text))] == ["contacts", "location"]
    for extra in ("We collect your precise location in order to show nearby branches.",
                  "We collect your precise location. We use it to prevent fraud.",
                  "We do not collect your precise location.",
                  "Sensitive personal information means data such as your precise location."):
        assert c206(en_app(make_app, ALL_EN + extra)) == [], extra


def test_without_purpose_takes_the_first_declaring_mention_in_type_order():
    text = "您的通讯录很重要。我们会获取您的通讯录。我们还会获取您的短信。"
    found = without_purpose(text, scan(text), ["sms", "contacts"])
    assert [(m.type, text[m.sent_start:m.sent_end]) for m in found] == [("sms", "我们还会获取您的短信。"),
                                                                       ("contacts", "我们会获取您的通讯录。")]


def test_sensitive_types_are_lexicon_types():
    types = clause_cues().sensitive_types
    assert types and set(types) <= set(lexicon().types) and len(set(types)) == len(types)
    assert {"contacts", "call_log", "sms", "location", "app_list"} <= set(types)  # the over-collection types


# --- the prefix search gives what re gives -------------------------------------------------------------------

def reference_sharing(text):
    """Sharing sentences by a plain search: a sentence, not a heading, with a match that counts."""
    cues = clause_cues()
    sharing = cues.clauses["third_party_sharing"].pattern
    out = []
    for s, e in sentence_spans(text):
        m = sharing.search(text, s, e)
        # a negation counts outside quotation marks and titles only (clauses._negated), whatever the search
        if m is None or clauses._negated(text, s, m.start()) or clauses._bare_heading(text, s, e):
            continue
        if any(clauses.counts("third_party_sharing", text, s, n) for n in sharing.finditer(text, s, e)):
            out.append((s, e))
    return tuple(out)


def reference_names_recipient(text, sentences):
    cues = clause_cues()
    if cues.listed.pattern.search(text):
        return True
    for m in cues.lists.pattern.finditer(text):
        before = text[max(0, m.start() - clauses._REFERENCE_REACH):m.start()]
        if not cues.linked_away.match(text, m.end()) and (not cues.referred_to.search(before)
                                                           or cues.in_the_document.search(before)):
            return True
    return any(clauses.names_company(m.group(0)) for s, e in sentences for m in cues.company.finditer(text, s, e))


FRAGMENTS = ["我们", "不会", "与", "和", "第三方", "合作伙伴", "共享", "提供", "委托", "处理", "撤回", "您的", "授权", "同意",
             "注销账号", "删除", "更正", "投诉", "联系我们", "客服", "SDK", "清单", "友盟", "科技有限公司", "公司",
             "地址：", "北京市", "海淀区", "路", "400-123-4567", "13912345678", "a@b.cn", "为了", "用于", "以便", "目的",
             "所必需", "可以提供", "收集", "通讯录", "身份证号", "是指", "，", "。", "；", "\n", " ", "We ", "do not ",
             "share ", "SHARE ", "your data ", "with ", "third parties", "Third-party SDK", "withdraw consent",
             "Contact us", "in order to ", "prevent fraud", "purpose", ". ", "\u017fhare ", "\u0130", "\u0131", "K",
             "您通过", "如何", "对", "其他方", "（四）", "披露", "您的", "SDK详情", "微信", "提供方：", "请见《", "》", "附件",
             "点击查看", "第三方SDK目录", "https://a.cn"]


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join))
def test_prefix_search_equals_the_plain_search(text):
    check_prefix_search(text)


@pytest.mark.parametrize("text", ["我们请见《不会Third-party SDK"])  # an unclosed title: its 不会 negates nothing
def test_prefix_search_equals_the_plain_search_on_found_examples(text):
    check_prefix_search(text)


def check_prefix_search(text):
    cues = clause_cues()
    for cid, cue in cues.clauses.items():
        assert has_clause(text, cid) == (cue.pattern.search(text) is not None), cid
    assert has_contact_channel(text) == bool(cues.clauses["complaint_channel"].pattern.search(text)
                                             and cues.contact.pattern.search(text)
                                             and cues.complaint_subject.search(text)
                                             or cues.service_line.pattern.search(text) and cues.contact.pattern.search(text)
                                             and not cues.page_footer.search(text))
    sharing = sharing_sentences(text)
    assert sharing == reference_sharing(text)
    assert names_recipient(text, sharing) == reference_names_recipient(text, sharing)
    assert purpose_sentences(text) == tuple((s, e) for s, e in sentence_spans(text)
                                            if cues.purpose.pattern.search(text, s, e))


def test_every_cue_searched_across_a_text_has_literal_prefixes():
    """Without them a cue is searched by re over the whole text again (correct, but a millisecond per policy)."""
    cues = clause_cues()
    across = [*cues.clauses.values(), cues.contact, cues.service_line, cues.listed, cues.lists, cues.purpose]
    assert [c.name for c in across if not c.prefixes] == []
    assert set(clauses.cue_prefixes()) == {c.name for c in across}
    assert cues.negation.prefixes is cues.collection.prefixes is cues.definition.prefixes is None  # in a sentence
    # an alternative with too many literal prefixes is cut to its first characters (与, 和), which are everywhere
    assert all(len(p) > 1 for p in clauses.cue_prefixes()["clause:third_party_sharing"])


@pytest.mark.parametrize("patterns,prefixes", [
    (["撤回(?:您的|对)?(?:[^，。；]{0,12})?同意"], {"撤回"}),
    (["(?<!您)(?:与|和)(?:任何)?第三方[^。]{0,20}共享"], {"与第三方", "与任何第三方", "和第三方", "和任何第三方"}),
    (["\\bshar(?:e|ing)\\s+with", "SDK\\s*清单"], {"share", "sharing", "sdk"}),
    (["(?:第三方)?SDK", "1[3-5]\\d{9}"], {"sdk", "第三方sdk", "13", "14", "15"}),
    (["ab", "abc", "(?:x|y\\d+)z"], {"ab", "x", "y"}),
    (["[\\u4e00-\\u9fff]{2,12}公司"], None),  # starts with a large class
    (["a|\\d"], None),
    (["(?:foo)?"], None),  # may match the empty string
])
def test_literal_prefixes(patterns, prefixes):
    assert clauses._cue_prefixes(patterns) == (None if prefixes is None else frozenset(prefixes))


def test_markers_are_none_when_lowercasing_does_not_fold_like_re():
    assert reading("We \u017fhare your data with third parties.").markers is None
    assert has_clause("We \u017fhare your data with third parties.", "third_party_sharing")
    assert reading("We share your data with third parties.").markers["clause:third_party_sharing"] == [3, 24]


def test_unfolded_characters_are_all_that_lowercasing_misses():
    """Every character re.IGNORECASE equates with an ASCII letter lower-cases to it, or is in _UNFOLDED."""
    letters = re.compile("[a-z]", re.IGNORECASE)
    missed = {c for c in map(chr, range(0x110000)) if letters.fullmatch(c) and c.lower() not in string.ascii_lowercase}
    assert missed == set(_UNFOLDED)


def test_cue_data_is_loaded_from_the_data_file():
    data = load_json("policy_clauses.json")
    assert set(data["purpose"]) == {"zh", "en"} and data["purpose"]["zh"] and data["purpose"]["en"]


@pytest.mark.parametrize("text, flagged", [
    ("若您在本政策更新后继续使用我们的服务，即表示您已充分阅读、理解并接受更新后的政策。", True),
    ("一旦您开始使用本应用，即视为您同意本隐私政策。", True),
    ("注册页面默认勾选同意隐私政策。", True),
    ("By continuing to use the app, you agree to this Privacy Policy.", True),
    ("Your continued use of the service constitutes acceptance of the updated policy.", True),
    ("我们不会以默认勾选的方式让您同意隐私政策。", False),
    ("政策更新后，我们会以弹窗方式再次征求您的明示同意。", False),
    ("We will ask for your explicit consent again; we never treat continued use as consent.", False),
])
def test_c207_implied_consent(make_app, text, flagged):
    findings = [f for f in analyze(make_app("星河支付", text=text, language="en" if text.isascii() else "zh")).findings
                if f.rule_id == "C207"]
    assert bool(findings) is flagged
    if flagged:
        (f,) = findings
        assert f.evidence.text == text and (f.evidence.start, f.evidence.end) == (0, len(text))


def test_traditional_chinese_clauses():
    from analyzers.clauses import has_clause, has_contact_channel

    text = "您可以隨時撤回同意。如需註銷帳號，請聯繫我們：電郵 privacy@example.hk。"
    assert has_clause(text, "consent_withdrawal") and has_clause(text, "deletion_correction")
    assert has_contact_channel(text)


# --- C206: a purpose stated as the feature being used --------------------------------------------------------------

@pytest.mark.parametrize("extra", [
    "当您使用预约开户服务时，我们需要收集您的身份证照片和银行卡号。",
    "在您申请借款时，我们会收集您的银行卡号和征信报告。",
    "为开通快捷支付，您需要提供银行卡号。",
    "一、开户服务\n我们会收集您的身份证照片和人脸信息。",  # a heading names the feature
    "**（二）借款申请**\n\n我们会收集您的银行卡号。",
    "当您申请贷款时，您需要提供以下信息：\n1. 身份证照片；\n2. 银行卡号；\n3. 通讯录。",  # the lead-in of a list
    "如您拒绝提供银行卡号，将无法使用提现功能。",
    "根据反洗钱法律法规的要求，您需要提供身份证照片。",
])
def test_c206_clean_when_the_feature_is_the_purpose_zh(make_app, extra):
    assert c206(make_app("星河支付", text=ALL_ZH + "\n" + extra)) == []


@pytest.mark.parametrize("extra", [
    "To open an account, we need your bank card number. ",
    "When you apply for a loan, we collect your bank card number and your credit report. ",
    "If you choose to link a bank card, you must provide your bank card number. ",
    "\nAccount opening\nWe collect a photo of your ID card and your bank card number.\n",
])
def test_c206_clean_when_the_feature_is_the_purpose_en(make_app, extra):
    assert c206(en_app(make_app, ALL_EN + extra)) == []


def test_c206_still_flags_sensitive_data_with_no_purpose_nor_feature(make_app):
    zh = make_app("星河支付", text=ALL_ZH + "\n二、其他说明\n我们会收集您的身份证照片和征信报告。")
    assert [key for key, _ in c206(zh)] == ["credit", "id_photo"]
    en = en_app(make_app, ALL_EN + "We collect a photo of your ID card and your credit report. ")
    assert [key for key, _ in c206(en)] == ["credit", "id_photo"]


@pytest.mark.parametrize("text", [
    "我们向您提供征信报告查询服务。",  # we provide something to the user: no collection
    "我们会为您提供与银行卡号绑定的快捷支付。",
    "We provide you with a credit report service.",
    "Our partners provide bank card services to you.",
])
def test_providing_to_the_user_is_no_collection(text):
    assert without_purpose(text, scan(text)) == []


@pytest.mark.parametrize("text, key", [
    ("您需要向我们提供银行卡号。", "bank_card"),
    ("如您拒绝提供征信报告，我们将无法审核。", "credit"),
    ("请提供您的身份证照片。", "id_photo"),
    ("You must provide your bank card number.", "bank_card"),
    ("Bank card numbers provided by you are stored encrypted.", "bank_card"),
])
def test_the_user_providing_to_us_is_collection(text, key):
    assert [m.type for m in without_purpose(text, scan(text))] == [key]


@pytest.mark.parametrize("text", [
    "我们会通过手机短信向您发送还款提醒。",
    "我们将以手机短信、电子邮件等方式通知您。",
    "We will notify you by SMS messages when a repayment is due.",
    "We may send you text messages about new products.",
])
def test_sms_as_a_channel_is_not_collecting_sms(make_app, text):
    app = make_app("闪电借款", text=SCOPE_ONLY + text, language="en" if text.isascii() else "zh")
    assert c206(app) == [] and [f for f in rule_findings(app, "C202") if f.evidence.key == "sms"] == []


@pytest.mark.parametrize("text", ["我们会读取您的短信内容。", "我们会获取您的短信权限。", "We access your SMS messages."])
def test_reading_sms_is_collecting_sms(make_app, text):
    # not next to SCOPE_ONLY, whose purpose would count for its neighbour
    app = make_app("闪电借款", text=SCOPE_ONLY + "\n我们重视您的隐私。\n" + text, language="en" if text.isascii() else "zh")
    assert [key for key, _ in c206(app)] == ["sms"]
    assert [f.evidence.text for f in rule_findings(app, "C202")] == [text]


def test_user_rights_and_third_parties_do_not_declare():
    for text in ("您可以在“我的”页面访问、更正您的银行卡号。",
                 "第三方支付机构可能需要收集您的银行卡号。",
                 "You can access, correct or delete your bank card number in the app.",
                 "我们依据《电话用户真实身份信息登记规定》保护您提供的信息。"):
        assert without_purpose(text, scan(text)) == [], text


def test_a_sibling_list_item_with_data_of_its_own_lends_no_purpose():
    lead, item = "您使用服务时我们可能收集如下信息：\n", "有关您曾使用的移动应用（APP）和其他软件的信息；\n"
    sibling = "位置信息，指您开启设备定位功能并使用我们基于位置提供的相关服务时收集的位置信息；\n"
    text = lead + item + sibling  # the lead-in names the service at large: no feature, no purpose
    assert [m.type for m in without_purpose(text, scan(text), ["app_list"])] == ["app_list"]
    text = lead + item + "使用目的：用于向您推荐可能感兴趣的内容；\n"  # the item's own purpose line is no sibling
    assert without_purpose(text, scan(text), ["app_list"]) == []


@pytest.mark.parametrize("text, key", [
    ("我们会收集您的通讯录信息。例如您使用的网页搜索词语、访问的页面。", "contacts"),  # 例如您使用: an example, no feature
    ("您使用《快乐借款》的服务时，我们会收集您的通讯录信息。", "contacts"),  # the named app's service at large
    ("我们会收集您的生物特征信息。\n我们重视您的隐私。\n我们会获取您的设备型号。", "biometric"),
])
def test_no_purpose_in_examples_the_service_at_large_or_other_data(text, key):
    assert [m.type for m in without_purpose(text, scan(text))] == [key]


@pytest.mark.parametrize("text", [
    "如您使用借款服务，我们会收集您的通讯录信息。",
    "您使用借款服务时，我们会收集您的通讯录信息。",
    "其他根据我们具体产品及服务的需要而收集的您的个人信息，包括您曾经使用或经常使用的移动应用软件。",
    # a general type has the purpose of its kind (面部信息 is the face the policy means)
    "我们会收集您的生物特征信息（面部信息）。\n我们重视您的隐私。\n在借款审批环节，我们将获取您的人脸图像。",
])
def test_a_feature_a_stated_need_or_a_kinds_purpose_is_a_purpose(text):
    assert without_purpose(text, scan(text)) == [], text


# --- declarations (C202's evidence) ---------------------------------------------------------------------------------

def declared(text, types=("contacts", "location", "sms", "call_log", "app_list")):
    return {t: text[m.sent_start:m.sent_end] for t, m in declarations(text, scan(text), types).items()}


def test_declarations_skip_definitions_and_take_list_items_and_headings():
    text = ("个人信息包括姓名、身份证件号码、财产状况、行踪轨迹等。\n敏感个人信息是指一旦泄露可能危害人身安全的信息，如通讯录。\n"
            "我们会收集以下信息：\n（1）通讯录；\n（2）精确位置信息。\n")
    assert declared(text) == {"contacts": "（1）通讯录；", "location": "（2）精确位置信息。"}
    heading = "2.2 位置信息\n当您使用网点查询功能时，我们会收集您的位置信息。"
    assert declared(heading) == {"location": "当您使用网点查询功能时，我们会收集您的位置信息。"}
    table = "(8)通讯录权限\n对应的业务功能：紧急联系人\n调用权限的目的：填写紧急联系人"
    assert declared(table) == {"contacts": "(8)通讯录权限"}  # a permission table: the lines under it declare
    assert declared("Personal information includes your name and location.\nWe collect your precise location.") == {
        "location": "We collect your precise location."}


@pytest.mark.parametrize("text", [
    "通讯录权限\n本应用不会使用该权限。",
    "读取通讯录\n我们暂未使用此权限。",
    "【位置权限】：暂不使用",
    "Contacts permission\nWe do not use this permission.",
])
def test_a_permission_heading_marked_unused_is_no_declaration(text):
    assert declared(text) == {}


# --- C207: explicit consent is not implied ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, flagged", [
    ("您勾选同意本政策后，即视为您已同意本隐私政策的全部内容。", False),
    ("点击“同意”即表示您已阅读并同意本政策。", False),
    ("您點擊「同意」即表示您已同意本政策。", False),
    ("By ticking the box, you will be deemed to have agreed to this Privacy Policy.", False),
    ("点击同意或继续使用本应用，即视为您同意本隐私政策。", True),  # continued use offered as consent too
    ("若您在本政策更新生效后继续使用我们提供的任何一项产品、服务、网站或客户端及其附带的各项功能，则视为您已充分阅读并接受更新后的政策。",
     True),  # the use and the consent 30-60 characters apart
    ("若您繼續使用我們的服務，即視為您同意更新後的政策。", True),
    ("If you continue to use our services after the revised policy takes effect, you agree to be bound by the revised "
     "policy.", True),
    ("By clicking \"Agree\" or continuing to use the app, you are deemed to have accepted this policy.", True),
    ("若您在本政策更新后继续使用我们的服务，我们会在弹窗中再次征求您对更新后政策的明示同意。", False),
    ("If you continue to use our services after an update, we will ask for your consent to the new policy again.", False),
    ("您在同意本应用的用户服务协议之时，即视为您已同意本政策。", False),  # agreeing to another document is an act
    ("如您不同意本协议的条款时仍注册使用本应用，即视为您同意本政策。", True),  # not agreeing is no act
    ("By agreeing to our Terms of Service you are deemed to have accepted this policy.", False),
    ("您使用本应用，即表明您同意本政策。", True),  # 表明 is a consequence like 表示
    ("如您继续使用本应用，表示您已充分阅读和理解本政策。", True),  # read and understood, not the word agree
    ("Your continued use of the app means you have read and understood this policy.", True),
])
def test_c207_explicit_and_far_apart_implied_consent(make_app, text, flagged):
    findings = [f for f in analyze(make_app("星河支付", text=text, language="en" if text.isascii() else "zh")).findings
                if f.rule_id == "C207"]
    assert bool(findings) is flagged
    assert bool(clause_sentences(text, "implied_consent")) is flagged


# --- D302: login and payment brands are no named recipients ---------------------------------------------------------

SHARING_ZH = "我们会与合作伙伴共享您的设备信息。"
SHARING_EN = "We share your device information with our partners. "


@pytest.mark.parametrize("extra", [
    "您可以使用微信、QQ账号登录，并可使用支付宝、微信支付或银联付款。",
    "欢迎使用支付宝助手。",  # the app's own name
    "你也可以通过新浪微博分享内容。",
])
def test_d302_login_and_payment_brands_name_no_recipient_zh(make_app, extra):
    [f] = rule_findings(make_app("星河支付", text=ALL_ZH + extra + SHARING_ZH), "D302")
    assert f.evidence.text == SHARING_ZH


@pytest.mark.parametrize("extra", [
    "SDK名称：微信开放平台SDK\n提供方：深圳市腾讯计算机系统有限公司\n使用目的：微信登录",
    "第三方名称：支付宝\n提供方：支付宝（中国）网络技术有限公司\n共享信息：设备标识符",
    "我们接入了微信SDK，用于微信支付。",
    "详见本政策附件《第三方SDK使用场景列表》。",
    "服务提供商北京星河数据科技有限公司向我们提供设备验证服务。",
])
def test_d302_an_sdk_listed_with_its_provider_names_a_recipient_zh(make_app, extra):
    assert rule_findings(make_app("星河支付", text=ALL_ZH + SHARING_ZH + "\n" + extra), "D302") == []


def test_d302_brands_en(make_app):
    login = "You can sign in with WeChat or pay with Alipay. "
    [f] = rule_findings(en_app(make_app, ALL_EN + login + SHARING_EN), "D302")
    assert f.evidence.text == SHARING_EN.strip()
    listed = "SDK name: WeChat SDK, provider: Shenzhen Tencent Computer Systems Co., Ltd. "
    assert rule_findings(en_app(make_app, ALL_EN + SHARING_EN + listed), "D302") == []


def test_names_sdk():
    assert names_sdk("我们使用极光推送。") == "极光"  # an SDK-only name counts anywhere
    assert names_sdk("支持微信登录。") is None
    assert names_sdk("微信SDK：用于微信登录") == "微信"


def test_sharing_statements_exclude_headings_and_what_the_user_shares():
    assert sharing_sentences("（四）委托处理") == ()
    assert sharing_sentences("三、我们如何共享、转让、公开披露您的个人信息") == ()
    assert sharing_sentences("您通过本服务向其他方提供的信息不适用本政策。") == ()
    assert sharing_sentences("我们对任何第三方不当使用或披露您提供的信息不承担责任。") == ()
    text = "经您同意，我们会向第三方提供您的个人信息。"
    assert sharing_sentences(text) == ((0, len(text)),)
    assert sharing_sentences("We share your data with third parties") == ((0, 37),)  # a statement, not a heading


# --- C203-C205 in English and in Traditional Chinese -----------------------------------------------------------------

@pytest.mark.parametrize("clause, text", [
    ("consent_withdrawal", "You can withdraw the access at any time in Settings."),
    ("consent_withdrawal", "You can withdraw your authorization by turning off the location permission."),
    ("consent_withdrawal", "You can withdraw your permission in the system settings."),
    ("deletion_correction", "You can view, modify and delete your information in the app."),
    ("deletion_correction", "You may update or correct your personal data."),
    ("consent_withdrawal", "您可隨時撤回同意。"),
    ("consent_withdrawal", "您可以撤回您對處理個人資料的同意。"),
    ("deletion_correction", "如需刪除您的個人資料，請聯絡我們。"),
    ("deletion_correction", "您可以查閱及更正您的個人資料。"),
])
def test_clause_cues_en_and_traditional(clause, text):
    assert has_clause(text, clause)


@pytest.mark.parametrize("text", [
    "If you have any questions, email us at privacy@example.com.",
    "Please contact us at privacy@example.com.",
    "About this policy, you may write to us at the following address: 1 Harbour Road, Hong Kong.",
    "如有投訴，請聯絡我們：電話 +852 2123 4567。",
    "您可以透過以下方式提出申訴：(02)2345-6789。",
    "個人資料查詢請致電客戶服務熱線：2123 4567",
])
def test_contact_channels_en_and_traditional(text):
    assert has_contact_channel(text)


@pytest.mark.parametrize("rule_id, text", [
    ("C203", "You may withdraw the access at any time. "),
    ("C204", "You can view, modify and delete your information. "),
    ("C205", "If you have a question, email us at help@example.com. "),
])
def test_absent_clause_en_other_wordings(make_app, rule_id, text):
    clause = {"C203": WITHDRAW_EN, "C204": DELETE_EN, "C205": CONTACT_EN}[rule_id]
    assert rule_findings(en_app(make_app, ALL_EN.replace(clause, "")), rule_id)
    assert rule_findings(en_app(make_app, ALL_EN.replace(clause, text)), rule_id) == []


def test_traditional_chinese_rules(make_app):
    base = "我們會蒐集您的身份證號碼和銀行卡號。"
    assert [key for key, _ in c206(make_app("星河支付", text=base))] == ["bank_card", "id_number"]
    assert c206(make_app("星河支付", text="當您申請借款時，" + base)) == []
    assert rule_findings(make_app("星河支付", text="我們會與合作夥伴共用您的個人資料。"), "D302")
    rights = make_app("星河支付", text="您可隨時撤回同意。如需刪除您的個人資料或投訴，請聯絡我們：電郵 privacy@example.hk。")
    assert [f.rule_id for f in analyze(rights).findings if f.rule_id in ("C203", "C204", "C205")] == []


@pytest.mark.parametrize("text,flagged", [
    ("根据法律法规的规定或司法机关的要求，我们可能向第三方披露您的个人信息。", False),
    ("As required by law, we may disclose your data to third parties.", False),
    ("我们会向合作伙伴提供您的个人信息，用于营销推广。", True),
])
def test_d302_disclosure_compelled_by_law_is_not_sharing(text, flagged):
    from analyzers.clauses import sharing_sentences

    assert bool(sharing_sentences(text)) is flagged


@pytest.mark.parametrize("text,present", [
    ("您可以在设备的设置功能中随时选择关闭部分或者全部权限。", True),
    ("您也可以通过设备设置，关闭相关授权。", True),
    ("您可以关闭相应设备的定位功能，停止对您位置的收集。", True),
    ("如您不同意，可致电客服取消或变更授权。", True),
    ("我们会关闭违规账号。", False),
])
def test_withdrawal_by_turning_off_a_permission_or_authorisation(text, present):
    from analyzers.clauses import has_clause

    assert has_clause(text, "consent_withdrawal") is present


@pytest.mark.parametrize("text,present", [
    ("在我的页面可完成注销流程。", True),
    ("需要修改所提供的个人身份资料信息的，我们将及时处理。", True),
    ("一般情况下，用户可随时浏览、修改自己提交的信息。", True),
    ("You can add or update certain information, such as your e-mail address, in your account settings.", True),
    ("Any other data updates or removal requests can be sent to our marketing department.", True),
    ("Your address can be updated or corrected simply by calling customer service.", True),
    ("You may clear your search history in the preferences page.", True),
    ("We will be happy to review, update, or change your record status as appropriate.", True),
    ("我们可能修改本政策。", False),
    ("本公司有权但无义务，改善或更正本服务任何部分之任何疏漏、错误。", False),  # the operator's, no route of the user's
    ("This privacy policy was last updated in March 2015.", False),
    ("If your account information is incomplete, inaccurate or not current, please use the Contact Us option.", True),
    ("You can also disable or delete the stored data used by technology similar to cookies, such as Flash cookies.",
     False),  # the browser's cookies, not the operator's records
])
def test_deletion_or_correction_phrasings(text, present):
    from analyzers.clauses import has_clause

    assert has_clause(text, "deletion_correction") is present


def test_c205_needs_the_contact_detail_with_the_contact_passage_not_in_a_far_footer():
    from analyzers.clauses import has_contact_channel

    body = "我们会保护您的个人信息。" * 40
    assert has_contact_channel("如您有任何投诉，请联系我们：privacy@example.com。" + body)
    assert not has_contact_channel("如您有任何投诉，请通过应用内意见反馈联系我们。" + body + "版权所有 电话 010-12345678")


@pytest.mark.parametrize("text,shared", [
    ("为实现“我们如何使用信息”所述目的，我们可能会与第三方服务供应商分享您的信息。", True),
    ("您的个人信息可能会与我们的关联公司共享。", True),
    ("我们不会与第三方共享您的个人信息。", False),
])
def test_negation_inside_a_quoted_title_negates_nothing(text, shared):
    from analyzers.clauses import sharing_sentences

    assert bool(sharing_sentences(text)) is shared


# --- C205: a contact detail given as data is no channel; public hotlines are ----------------------------------------

@pytest.mark.parametrize("text, channel", [
    ("如需投诉，您可以拨打12345热线。", True),  # a public service hotline
    ("十一、联系方式\n对本政策有疑问请拨打客服电话：95011", True),  # a numbered heading
    ("个人信息问题请您通过以下联络方式联系本站：邮箱 help@example.cn", True),
    ("侵权通知应写明您的姓名、联系方式和地址，并发送至 ip@example.cn。", False),  # data the user gives
    ("我们会保存您的联系方式，邮箱 ip@example.cn 仅用于接收版权通知。", False),
    ("如需投诉，请见我们在12345名用户中做过的调查。", False),  # a number, not a hotline
])
def test_complaint_channel_needs_a_channel_not_data(text, channel):
    assert has_contact_channel(text) is channel


# --- C204: the operator closing an account is a sanction, and a guardian's route for a child's data is none -------
# of the user's

@pytest.mark.parametrize("text, present", [
    ("用户违反本协议的，本公司有权直接停用或注销用户账号。", False),
    ("We reserve the right to suspend or delete your account if you break these terms.", False),
    ("本公司有权暂停服务；您可以随时申请注销账号。", True),  # the user's own route after the sanction
    ("You can delete your account in Settings.", True),
    ("监护人有权审阅或要求我们删除该青少年的个人信息。", False),  # a guardian's route for a child's data
    ("Parents may ask us to delete their child's personal information.", False),
    ("您有权要求我们删除您的个人信息。", True),
    ("如您是未成年人的监护人，您也可以要求我们删除您的个人信息。", True),  # the user's own data
])
def test_deletion_route_is_the_users_for_their_own_data(make_app, text, present):
    assert has_clause(text, "deletion_correction") is present
    language = "en" if text.isascii() else "zh"
    base = (ALL_EN.replace(DELETE_EN, "") if language == "en" else ALL_ZH.replace(DELETE_ZH, "")) + text
    assert bool(rule_findings(make_app("星河支付", text=base, language=language), "C204")) is not present


@pytest.mark.parametrize("text, channel", [
    ("附二：相关产品客户服务热线电话\n\n星河支付：4001555300；\n星河理财：4001000601。", True),  # an annex of the policy
    ("本声明自更新之日起生效。\n所属公司：星河科技有限公司\n负责人：刘经理\n联系电话：010-58203336", True),
    ("Customer service line: (408) 555-0100", True),
    ("服务热线:4000-700-555邮箱：public@example.cn\nCopyright©2016 版权所有：星河期货有限公司 京ICP备06003364号",
     False),  # the web page's footer
    ("应用名称：--\n信息保护负责人联系电话：--\n注册地址：--\n生效日期：2021年4月19日", False),  # a blank template
    ("我们会收集您的姓名、联系电话、地址：北京市海淀区中关村大街1号。", False),  # the user's data, not a line
])
def test_c205_a_customer_service_line_is_a_channel_unless_in_the_page_footer(make_app, text, channel):
    assert has_contact_channel(text) is channel
    language = "en" if text.isascii() else "zh"
    base = (ALL_EN.replace(CONTACT_EN, "") if language == "en" else ALL_ZH.replace(CONTACT_ZH, "")) + "\n" + text
    assert bool(rule_findings(make_app("星河支付", text=base, language=language), "C205")) is not channel


# --- D302: sharing that waits for the user's explicit consent is no sharing practice ---------------------------------

@pytest.mark.parametrize("text, sharing", [
    ("获得您的明确同意后，我们会与其他方共享您的个人信息。", False),
    ("With your explicit consent, we will share your information with other parties.", False),
    ("经您同意，我们会与合作伙伴共享您的设备信息。", True),  # plain consent: the policy's own practice
    ("We share your device data with our partners after you sign up.", True),
])
def test_sharing_on_explicit_consent_is_a_promise_not_a_practice(make_app, text, sharing):
    assert bool(sharing_sentences(text)) is sharing
    language = "en" if text.isascii() else "zh"
    base = (ALL_EN if language == "en" else ALL_ZH) + text
    assert bool(rule_findings(make_app("星河支付", text=base, language=language), "D302")) is sharing


@pytest.mark.parametrize("text, flagged", [
    ("为推送消息，我们会与手机厂商共享您的设备型号。", True),  # device makers, none named
    ("为推送消息，我们会与终端设备制造商（华为、小米等）共享您的设备型号。", False),  # named in brackets
])
def test_d302_device_makers_and_recipients_named_in_brackets(make_app, text, flagged):
    assert sharing_sentences(text) == ((0, len(text)),)
    assert bool(rule_findings(make_app("星河支付", text=ALL_ZH + text), "D302")) is flagged


@pytest.mark.parametrize("extra, flagged", [
    ("详情请见《第三方SDK清单》（https://example.com/sdk）。", True),  # a link out of the text names no one
    ("详情请查阅[《第三方SDK目录》](https://example.com/sdk)。", True),
    ("详情请见本政策附件《第三方SDK清单》。", False),  # a list of the document itself
])
def test_d302_a_list_behind_a_link_names_no_recipient(make_app, extra, flagged):
    findings = rule_findings(make_app("星河支付", text=ALL_ZH + SHARING_ZH + extra), "D302")
    assert bool(findings) is flagged


# --- C206: warnings declare nothing; the feature used, ended by a comma, is a purpose ---------------------------------

@pytest.mark.parametrize("extra, flagged", [
    ("您发布的内容（例如您的健康信息）可能会泄露您的敏感个人信息。", False),  # a warning, not a collection
    ("Posts that we collect may reveal sensitive details such as your medical records.", False),
    ("We collect your medical records.", True),
    ("在您使用健身打卡服务，本应用会收集您的健康数据。", False),  # the feature being used, no 时
    ("本应用会收集您的健康数据。", True),
])
def test_c206_warnings_and_the_feature_used(make_app, extra, flagged):
    language = "en" if extra.isascii() else "zh"
    text = (ALL_EN if language == "en" else ALL_ZH) + "\n" + extra
    assert bool(c206(make_app("星河支付", text=text, language=language))) is flagged


@pytest.mark.parametrize("extra, flagged", [
    ("1、您申请借款时，我们会收集您的身份证号码；\n2、我们会向征信机构采集您的征信报告；", True),  # a sibling's purpose
    ("1.1.1您申请借款时，我们会收集您的身份证号码；\n1.1.2我们会向征信机构采集您的征信报告；", True),  # 1.1.2 too
    ("我们会向征信机构采集您的征信报告。\n该报告用于评估您的借款额度。", False),  # the next sentence's
    ("使用本平台借款服务时可能要求提供您的征信报告。", False),  # using the feature, with no 您 before it
    ("使用一键登录功能，SDK会收集您的征信报告。", False),
    ("我们会读取您的征信报告，进行交易风险评估。", False),  # a security or risk check is a purpose
])
def test_c206_a_list_items_purpose_is_its_own(make_app, extra, flagged):
    assert bool(c206(make_app("星河支付", text=ALL_ZH + "\n" + extra))) is flagged


@pytest.mark.parametrize("text", ["我们会收集您的手机号码，并通过其他方式（手机短信等）向您推送促销信息。", "我们会读取您的短信内容。"])
def test_sms_in_brackets_after_a_way_is_a_channel(make_app, text):
    assert bool(declared(text, ("sms",))) is ("读取" in text)


@pytest.mark.parametrize("text, declares", [
    ("我们无法保证第三方SDK是否会收集您的已安装应用列表。", False),  # a hedge about others
    ("We cannot guarantee whether a partner SDK will collect your installed apps list.", False),
    ("我们会收集您的已安装应用列表。", True),
    ("We collect your installed apps list.", True),
])
def test_a_hedge_about_what_others_may_collect_declares_nothing(text, declares):
    assert bool(declared(text, ("app_list",))) is declares


# --- round 2 of the real policies: lists only referred to, far-apart implied consent, verification codes -----------

@pytest.mark.parametrize("extra, flagged", [
    ("第三方信息共享具体情况请见《第三方信息共享清单》。", True),  # the list is another document
    ("我们对合作方获取信息的软件工具开发包（点击查看SDK详情）进行严格的安全监测。", True),
    ("您可以通过平台上的“第三方服务商与SDK服务列表”进行查阅。", True),
    ("\n第三方SDK目录\n高德地图SDK\n使用目的：定位\n", False),  # a list given in the text
    ("\n第三方SDK名称\n使用目的\n收集的个人信息\n", False),  # a list's own table header
    ("我们使用环信作为第三方客服工具。", False),  # a messaging SDK named
])
def test_d302_a_list_only_referred_to_names_no_recipient(make_app, extra, flagged):
    text = ALL_ZH + SHARING_ZH + extra
    assert names_recipient(text, sharing_sentences(text)) is not flagged or names_sdk(text) is not None
    assert bool(rule_findings(make_app("星河支付", text=text), "D302")) is flagged


@pytest.mark.parametrize("text, flagged", [
    ("如果用户访问、预订或使用本平台的产品或服务（以上统称为“服务”），便视为用户接受了以下隐私政策。", True),
    ("当您浏览、访问本平台及/或使用本平台中的任一产品或服务（包括本平台自营信息服务及合作服务提供商提供的信息服务）时，"
     "即表示您已经同意我们按照本政策来收集、使用、共享和保护您的个人信息。", True),  # use and consent 50 characters apart
    ("在您使用该功能时，我们将收集您的照片，如您开启相机权限，视为您同意授权我们收集照片。", False),  # granting is an act
])
def test_c207_implied_consent_far_apart_and_granting_a_permission(make_app, text, flagged):
    assert bool(clause_sentences(text, "implied_consent")) is flagged
    assert bool(rule_findings(make_app("星河支付", text=ALL_ZH + text), "C207")) is flagged


@pytest.mark.parametrize("text, present", [
    ("用户不同意条款变更的，可以主动取消注册用户号。", True),  # cancelling the registration closes the account
    ("用户注册账户时，须对所提供信息的真实性负责，并及时维护和更新您的个人信息。", False),  # a duty, not a route
    ("您可以在“我的-设置”中更新您的个人信息。", True),
    ("如用户停止使用本服务，星河跑步可以从服务器上永久地删除用户的数据。", False),  # the operator's discretion
    ("如有违反前述规定，且本平台可能会注销您的账户。", False),
    ("我们可以根据您的要求删除您的个人信息。", True),  # the user's request
    ("注销后，监护人可以删除您的个人信息。", True),  # not the operator (a child's data: see below)
])
def test_c204_cancelling_registration_is_a_route_and_a_duty_is_not(make_app, text, present):
    assert has_clause(text, "deletion_correction") is present
    base = ALL_ZH.replace(DELETE_ZH, "") + text
    assert bool(rule_findings(make_app("星河支付", text=base), "C204")) is not present


@pytest.mark.parametrize("text, declares", [
    ("（7）手机短信，在需要短信验证码的环节需要读取验证码短信内容协助您进行验证码填写。", False),
    ("为了方便您免去手动输入验证码，我们会从您的剪切板里读取短信的内容。", False),
    ("We read your SMS messages only to auto-fill the verification code.", False),
    ("我们会读取您的短信内容，用于评估您的还款能力。", True),
])
def test_sms_read_only_for_a_verification_code_is_not_collecting_sms(text, declares):
    assert bool(declared(text, ("sms",))) is declares


@pytest.mark.parametrize("text, flagged", [
    ("您在此同意，商户和第三方配送公司、售后服务等可以使用您的订单信息以为您提供商品或服务。", True),  # kinds, no name
    ("您在此同意，第三方北京星河配送有限公司可以使用您的订单信息以为您提供配送服务。", False),  # a named company
])
def test_d302_a_third_party_using_your_data_is_sharing_and_a_kind_of_company_no_name(make_app, text, flagged):
    assert sharing_sentences(text) == ((0, len(text)),)
    assert bool(rule_findings(make_app("星河支付", text=ALL_ZH + text), "D302")) is flagged


# --- round 3 of the real policies -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, present", [
    ("如您不希望我们将您的个人信息用作前述用途，您可以要求我们停止为上述用途使用您的个人信息。", True),
    ("任何时候如果您希望停止同第三方共享私人信息，您可以联系我们。", True),
    ("如果您希望停止使用我们的服务，可以卸载本应用。", False),  # the user stops using the app, not us the data
    ("如您不希望收到这些邮件，可以点击邮件中的退订链接。", False),  # refusing marketing is not withdrawing consent
])
def test_withdrawal_by_asking_us_to_stop_using_or_sharing_personal_information(text, present):
    assert has_clause(text, "consent_withdrawal") is present


@pytest.mark.parametrize("text, present", [
    ("如您不希望我们与使用服务的其他用户分享您的地理位置信息，可随时自行设置为“隐身”状态。", True),
    ("如果您不再希望我们共享这些信息，请发送电子邮件联系我们。", True),
    ("如果您不同意本政策的任何内容，请立即停止使用我们的服务。", False),  # refusing the policy, no consent withdrawn
    ("如果您不希望收到我们的推送，可以在设置中关闭通知提醒。", False),  # no use of the user's data by us
])
def test_withdrawal_when_the_user_does_not_wish_us_to_use_or_share_the_data(make_app, text, present):
    assert has_clause(text, "consent_withdrawal") is present
    base = ALL_ZH.replace(WITHDRAW_ZH, "") + text
    assert bool(rule_findings(make_app("星河支付", text=base), "C203")) is not present


@pytest.mark.parametrize("text, flagged", [
    ("我们会将您订单中与交易有关的必要信息共享给相关商品或服务的提供者。", True),  # a kind of provider
    ("为了更好地提供服务，我们可能会向关联机构提供用户个人信息。", True),
    ("我们会将您的订单信息共享给北京星河配送有限公司。", False),  # a named company
    ("我们会将您的交易信息共享给上述服务提供者：北京云帆数据有限公司。", False),
    ("我们会将处理结果共享给您。", False),  # the user is no third party
])
def test_d302_sharing_with_a_provider_or_an_affiliated_body(make_app, text, flagged):
    assert bool(rule_findings(make_app("星河支付", text=ALL_ZH + text), "D302")) is flagged


@pytest.mark.parametrize("text", [
    "我们会与第三方（如物流公司）共享您的交易信息。",
    "我们会向合作伙伴提供您的收货信息，包括快递公司和配送公司。",
])
def test_d302_a_kind_of_company_is_no_name(make_app, text):
    assert rule_findings(make_app("星河支付", text=ALL_ZH + text), "D302")


@pytest.mark.parametrize("text, channel", [
    ("如有投诉，请联系我们，通信地址为北京市海淀区中关村大街1号。", True),
    ("本协议的通知寄往您指定的地址，变更时请与我们联系。您指定的邮寄地址为您的法定联系地址。", False),  # yours
])
def test_c205_an_address_that_is_the_users_is_no_channel(text, channel):
    assert has_contact_channel(text) is channel


# --- round 4 of the real policies -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, flagged", [
    ("星河以及星河的关联公司，可能将您的信息与星河的关联公司、合作伙伴及第三方服务供应商（包括提供技术服务、系统服务、电信服务、"
     "客户服务、风控服务、审计服务、法律服务的机构）、承包商及代理分享。", True),  # a long bracket before the verb
    ("我们可能向合作伙伴及其他第三方分享您的信息。", True),
    ("我们可以将您的用户信息提交给关联公司。", True),
    ("我们会将您的位置信息提供给前述提供商。", True),
    ("我们可能将您的信息与北京星河数据科技有限公司分享。", False),  # a named company
    ("我们可能将通过Cookies收集的非个人身份信息，经统计加工后提供给广告商或其他合作伙伴。", False),  # no personal data
    ("您可以将您的作品与好友分享。", False),
])
def test_d302_more_ways_of_sharing(make_app, text, flagged):
    assert bool(rule_findings(make_app("星河支付", text=ALL_ZH + text), "D302")) is flagged


@pytest.mark.parametrize("text, channel", [
    ("有关本政策的问题，可以通过电子邮件 help@example.cn 或者电话 400-960-6728 联系本应用。", True),
    ("有关隐私政策的任何问题，请联系： help@example.cn", True),
    ("有关作品版权事宜请联系：ip@example.cn，本网站内容不构成投资建议。", False),  # not about personal information
])
def test_c205_contacting_the_app_or_a_colon_after_a_privacy_question(text, channel):
    assert has_contact_channel(text) is channel


@pytest.mark.parametrize("extra, flagged", [
    ("当您使用我们的服务时，我们会收集您的位置信息。", True),  # the service at large is no purpose
    ("在我们向您提供服务的过程中，可能需要您开通手机通讯录权限。", True),
    ("当您使用附近网点查询服务时，我们会收集您的位置信息。", False),  # a feature is
    ("我们可能会获取您的地理位置信息。如您关闭授权，可能无法为您匹配附近的网点服务。", False),  # what it is for
    ("您可以授权我们访问您的通话记录，使您在使用我们的产品时可以通过验证码登录。", False),
])
def test_c206_the_service_at_large_is_no_purpose_a_feature_is(make_app, extra, flagged):
    assert bool(c206(make_app("星河支付", text=ALL_ZH + "\n" + extra))) is flagged


def test_c206_data_a_stated_use_runs_on_have_that_use_for_purpose_and_what_it_yields_has_none(make_app):
    text = "您同意我们根据您提供的姓名、人脸信息等向第三方征信机构查询您的相关信用信息，包括您的信用报告。"
    assert [key for key, _ in c206(make_app("星河支付", text=ALL_ZH + "\n" + text))] == ["credit"]


def test_sms_in_a_list_of_wireless_services_is_a_channel(make_app):
    text = ("我们会接收用户上传的视频等信息，并向用户的移动通讯终端提供下载、数据传输、移动视频业务（包括但不限于SMS、MMS、"
            "WAP、IVR等无线服务）等服务的权利。")
    assert c206(make_app("星河支付", text=ALL_ZH + "\n" + text)) == []


def test_the_apps_one_has_used_are_the_installed_app_list():
    text = "日志信息，指您使用我们的服务时，系统可能自动采集的技术信息，包括：\n有关您曾使用的移动应用（APP）和其他软件的信息；\n"
    assert list(declared(text)) == ["app_list"]


# --- English policies (hand labels of 30 OPP-115 policies, README) -------------------------------------------------

@pytest.mark.parametrize("text, channel", [
    ("If you have a question about this Privacy Statement, please contact:\nCompliance Officer\n100 Main Street\n"
     "Dallas, Texas 75254", True),  # a US address: a state (spelled out or not) and a ZIP code
    ("Questions about our privacy policy may be directed to webmaster@example.org.", True),
    ("If you need help with your personal information, write to us at Example Inc., 837 N. 34th Street, Seattle WA 98103.",
     True),
    ("Privacy questions? You can also contact our privacy office at (408) 555-0100.", True),
    ("Data removal requests can be sent to Example Outlets, PO Box 10889, Greensboro, NC 27408. We protect your privacy.",
     True),
    ("Our stores are open daily. Visit us at 100 Main Street, Dallas, Texas 75254.", False),  # no contact cue
    # what the passage is about, in words other than "personal information" or "privacy"
    ("If you need help changing the information we have collected, write to us at Example Inc., 837 N. 34th Street, "
     "Seattle WA 98103.", True),
    ("Any other data updates or removal requests can be sent to Example Outlets, PO Box 10889, Greensboro, NC 27408.",
     True),
    ("For store hours and gift cards, write to us at Example Inc., 837 N. 34th Street, Seattle WA 98103.", False),
])
def test_c205_english_contact_passages_and_us_addresses(text, channel):
    assert has_contact_channel(text) is channel


@pytest.mark.parametrize("text, flagged", [
    ("By visiting Example.com, you are accepting the practices described in this Privacy Notice.", True),
    ("By use of our websites and games, you signify your assent to our privacy policy.", True),
    ("You will be added to the marketing list if you do not uncheck the offer box during registration.", True),
    ("When you visit or use a co-branded website, you are consenting to provide your personal information to us.", True),
    ("When you visit or use a part of any website, landing page or mobile application that is co-branded or that is a "
     "part of a joint promotion involving Example Motors and one or more third parties (each a Co-Branded Party), you "
     "are providing and consenting to provide your personal information to Example Motors.", True),  # 230 characters
    ("When you visit our website, you are providing information through cookies.", False),
    ("By clicking \"I agree\" you consent to this Privacy Policy.", False),  # an explicit act
])
def test_c207_english_use_as_consent(make_app, text, flagged):
    assert bool(rule_findings(en_app(make_app, ALL_EN + text), "C207")) is flagged


@pytest.mark.parametrize("text, present", [
    ("You may opt out of interest-based advertising at any time.", True),
    ("To opt-out of sharing with our partners, visit the choices page.", True),
    ("For example, you can turn off the GPS locator on your phone.", True),  # the location permission
    ("You may opt out of our promotional e-mails by clicking unsubscribe.", False),  # marketing only (GB/T 35273 §8.4)
    ("If you opt out from a Example.com Opt-In Marketing List, we stop sending you offers.", False),
    ("Note that you may not opt out of Service-related e-mails.", False),
    ("Choice/Opt-out\nExample gives users the option to receive promotional email.", False),  # a heading
])
def test_c203_english_opting_out_of_marketing_is_no_withdrawal(text, present):
    assert has_clause(text, "consent_withdrawal") is present


def test_c203_english_asking_us_not_to_use_your_information():
    assert has_clause("If you do not want us to use your personal information for interest-based ads, adjust your "
                      "advertising preferences.", "consent_withdrawal")
    assert not has_clause("If you do not want to receive newsletters, change your settings.", "consent_withdrawal")


@pytest.mark.parametrize("text, flagged", [
    ("We may also share certain information such as cookie data with third-party advertising partners.", True),
    ("We provide the information to trusted partners who work on our behalf.", True),
    ("We may allow third parties performing services under contract to access and use personal information.", True),
    ("We may share your information with third parties, including, but not limited to, service providers.", True),
    ("None of the information collected is sold or shared with any third party.", False),  # negated
    ("If you connect your account, we may share information with Facebook.", False),  # a named recipient
    ("We share information with advertising partners. Ads on our site are served by DoubleClick.", False),  # a tracker
    ("We share information with advertising partners. Visit our Branch locations in Smart Batch.", True),  # words
    # forwarding the user's data to someone is sharing it: with advertising partners, and with Sony by name
    ("We share information with advertising partners. We will forward your registration number to Sony along with "
     "your purchases.", False),
    ("We share information with advertising partners. After you pay, we forward you to the order page.", True),
])
def test_d302_english_sharing_and_names(make_app, text, flagged):
    assert bool(rule_findings(en_app(make_app, ALL_EN + text), "D302")) is flagged


def test_forwarding_your_data_to_someone_is_sharing():
    assert sharing_sentences("We will forward your registration number to Sony.")
    assert not sharing_sentences("We forward you to the order page.")


def test_english_words_that_are_not_the_users_data():
    text = ("If we sell our assets to another organization, your information may be transferred. "
            "Links to other websites, stores or locations are for your convenience.")
    assert {m.type for m in scan(text)} & {"assets", "location"} == set()


@pytest.mark.parametrize("developer, text, flagged", [
    ("Google LLC", "We share personal information with companies outside of Google to process it for us.", True),
    ("Google LLC", "We share your data with Acme Analytics Inc. for fraud checks.", False),
    ("北京星河科技有限公司", "我们会将您的个人信息与北京星河科技有限公司及其合作伙伴共享。", True),  # the operator is none
    ("北京星河科技有限公司", "我们会将您的个人信息与北京云帆数据有限公司共享。", False),
])
def test_d302_the_operators_own_name_names_no_recipient(make_app, developer, text, flagged):
    app = make_app("Star Pay", text=(ALL_EN if text.isascii() else ALL_ZH) + text, developer=developer,
                   language="en" if text.isascii() else "zh")
    assert bool(rule_findings(app, "D302")) is flagged


# --- D302: passive sharing, and the short names a policy gives to companies -----------------------------------------

GROUP_SHARING = "由于星河集团是一家跨国公司，您的个人信息可能会在星河集团内被共享。"
LICENSOR_SHARING = "您向我们提供的信息将由我们和我们的关联公司、许可方（包括但不限于星河娱乐）共享。"


@pytest.mark.parametrize("extra, flagged", [
    (GROUP_SHARING, True),  # "a multinational company" names no one
    ("星河集团：指Xinghe Holding B.V.及其控制实体。\n" + GROUP_SHARING, False),  # a defined term
    (LICENSOR_SHARING, True),
    ("北京星河娱乐有限公司（Xinghe Entertainment, Inc.）及其关联公司（统称为“星河娱乐”）是本游戏的许可方。\n"
     + LICENSOR_SHARING, False),  # a short name given in brackets
    ("杭州星河信息技术有限公司（以下简称“星河”或“我们”）。星河可以将您的用户信息提交给关联公司。", True),  # the operator's
    ("杭州星河信息技术有限公司（以下简称“星河”）。为向您提供星河游戏服务，星河可以将您的用户信息提交给关联公司。", True),
])
def test_d302_reads_passive_sharing_and_names_defined_by_the_policy(make_app, extra, flagged):
    assert bool(rule_findings(make_app("星河支付", text=ALL_ZH + extra), "D302")) is flagged


def test_passive_sharing_is_sharing_unless_negated():
    assert sharing_sentences("您的个人信息可能会在我们的关联公司之间共享。")
    assert not sharing_sentences("您的个人信息不会在我们的关联公司之间共享。")
    assert not sharing_sentences("您向我们提供的信息不会由我们的关联公司共享。")


@pytest.mark.parametrize("developer, flagged", [
    ("Google LLC", True),  # its own products name no third party
    ("Example LLC", False),  # Google, its analytics and its ad server are third parties here
])
def test_d302_the_operators_own_sdks_and_trackers_name_no_recipient(make_app, developer, flagged):
    text = (ALL_EN + "We will share personal information with companies outside of Google when you consent. "
            "We use Google Analytics, and ads are served by DoubleClick.")
    app = make_app("Search", text=text, language="en", developer=developer)
    assert bool(rule_findings(app, "D302")) is flagged
    assert names_sdk(text, ("Google LLC",)) is None and names_sdk(text) is not None
