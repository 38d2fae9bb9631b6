"""C203–C206 and D302: policy-text clauses of the 2019 identification method, zh and en; purpose statements; the
prefix search that makes the clause cues fast gives what a plain regular-expression search gives."""
import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzers import analyze
from analyzers import clauses
from analyzers.clauses import (clause_cues, has_clause, has_contact_channel, names_recipient, purpose_sentences,
                               sharing_sentences, without_purpose)
from analyzers.policy_text import _UNFOLDED, lexicon, load_json, reading, scan, sentence_spans
from finmon.model import POLICY_UNAVAILABLE

BASE_ZH = "我们会收集您的手机号码、姓名、身份证号码和银行卡号，用于实名认证。"
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
    assert has_contact_channel("联系我们：北京市海淀区中关村大街1号。")
    assert has_contact_channel("Contact us: support@example.com")
    assert not has_contact_channel("如有问题，请联系我们。")  # a cue without any contact detail
    assert has_contact_channel("客服邮箱 help@example.com。")  # 客服 + an e-mail is a channel


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
    "我们会与第三方共享您的个人信息，详见《第三方信息共享清单》。",  # a list
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
    cues = clause_cues()
    sharing, negation = cues.clauses["third_party_sharing"].pattern, cues.negation.pattern
    out = []
    for s, e in sentence_spans(text):
        m = sharing.search(text, s, e)
        if m is not None and negation.search(text, s, m.start()) is None:
            out.append((s, e))
    return tuple(out)


def reference_names_recipient(text, sentences):
    cues = clause_cues()
    if cues.listed.pattern.search(text):
        return True
    return any(not any(m.group(0).endswith(g) for g in cues.generic_company)
               for s, e in sentences for m in cues.company.finditer(text, s, e))


FRAGMENTS = ["我们", "不会", "与", "和", "第三方", "合作伙伴", "共享", "提供", "委托", "处理", "撤回", "您的", "授权", "同意",
             "注销账号", "删除", "更正", "投诉", "联系我们", "客服", "SDK", "清单", "友盟", "科技有限公司", "公司",
             "地址：", "北京市", "海淀区", "路", "400-123-4567", "13912345678", "a@b.cn", "为了", "用于", "以便", "目的",
             "所必需", "可以提供", "收集", "通讯录", "身份证号", "是指", "，", "。", "；", "\n", " ", "We ", "do not ",
             "share ", "SHARE ", "your data ", "with ", "third parties", "Third-party SDK", "withdraw consent",
             "Contact us", "in order to ", "prevent fraud", "purpose", ". ", "\u017fhare ", "\u0130", "\u0131", "K"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join))
def test_prefix_search_equals_the_plain_search(text):
    cues = clause_cues()
    for cid, cue in cues.clauses.items():
        assert has_clause(text, cid) == (cue.pattern.search(text) is not None), cid
    assert has_contact_channel(text) == bool(cues.clauses["complaint_channel"].pattern.search(text)
                                             and cues.contact.pattern.search(text))
    sharing = sharing_sentences(text)
    assert sharing == reference_sharing(text)
    assert names_recipient(text, sharing) == reference_names_recipient(text, sharing)
    assert purpose_sentences(text) == tuple((s, e) for s, e in sentence_spans(text)
                                            if cues.purpose.pattern.search(text, s, e))


def test_every_cue_searched_across_a_text_has_literal_prefixes():
    """Without them a cue is searched by re over the whole text again (correct, but a millisecond per policy)."""
    cues = clause_cues()
    across = [*cues.clauses.values(), cues.contact, cues.listed, cues.purpose]
    assert [c.name for c in across if not c.prefixes] == []
    assert set(clauses.cue_prefixes()) == {c.name for c in across}
    assert cues.negation.prefixes is cues.collection.prefixes is cues.definition.prefixes is None  # in a sentence


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
