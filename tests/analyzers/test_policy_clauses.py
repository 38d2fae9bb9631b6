"""C203–C205 and D302: policy-text clauses of the 2019 identification method, zh and en."""
import pytest

from analyzers import analyze
from analyzers.clauses import clause_cues, has_clause, has_contact_channel, sharing_sentences
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


@pytest.mark.parametrize("rule_id", ["C203", "C204", "C205", "D302"])
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
                                          "third_party_sharing"}
