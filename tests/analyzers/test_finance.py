import pytest

import dataclasses

from analyzers import analyze
from analyzers.finance import (OTHER, FinanceVerdict, classify, classify_app, explain, explain_app, finance_data,
                               finance_types)
from finmon.model import POLICY_UNAVAILABLE
from analyzers.policy_text import lexicon


@pytest.mark.parametrize("name,expected", [
    ("闪电借款", "lending"), ("安心贷", "lending"), ("乐享分期", "lending"), ("好运借呗", "lending"),
    ("星河支付", "payment"), ("易付", "payment"), ("随身钱包", "payment"),
    ("稳盈理财", "investment"), ("安鑫基金", "investment"),
    ("城东银行", "banking"), ("华夏手机银行", "banking"),
    ("长城证券", "securities"), ("牛股票", "securities"),
    ("平安保险", "insurance"), ("好车险", "insurance"),
    ("QuickLoan", "lending"), ("EasyPay", "payment"), ("Paypoint", "other"), ("Harbor Bank", "banking"),
])
def test_name_cues(name, expected):
    finance_type, confidence = classify(name, "财务", "某科技有限公司", "金融服务")
    assert finance_type == expected
    assert 0.0 <= confidence <= 1.0


def test_simulator_style_listing_is_classified_confidently():
    assert classify("闪电借款", "财务", "闪电科技有限公司", "极速贷款，借钱不求人，最高额度20万。金融服务平台。") == ("lending", 1.0)
    finance_type, confidence = classify("城东银行", "金融理财", "城东银行股份有限公司", "手机银行：转账、存款、理财。金融")
    assert finance_type == "banking" and confidence >= 0.6


def test_category_developer_and_description_count():
    assert classify("小蜜蜂", "贷款", "", "")[0] == "lending"
    assert classify("小蜜蜂", "", "蜜蜂证券股份有限公司", "")[0] == "securities"
    assert classify("小蜜蜂", "", "", "投保、理赔、保单查询，一站式保险服务")[0] == "insurance"


def test_excluded_phrases_do_not_count():
    # 银行卡 is not a banking cue, 金融理财 (a store category) not an investment cue: only a general finance signal,
    # so the app stays other, with a lowered confidence
    assert classify("小蜜蜂", "金融理财", "", "绑定银行卡即可使用") == (OTHER, 0.5)
    assert classify("小蜜蜂", "", "", "绑定银行卡即可使用") == (OTHER, 1.0)
    assert classify("分期付款购买助手", "", "", "")[0] == "lending"


def test_no_cue_is_other():
    assert classify("天气预报", "工具", "某公司", "查看天气") == (OTHER, 1.0)
    assert classify("", "", "", "")[0] == OTHER


def test_mixed_cues_lower_the_confidence():
    pure = classify("稳盈理财", "", "", "理财 基金")[1]
    mixed = classify("稳盈理财", "", "", "贷款 借款 分期 还款")[1]
    assert mixed < pure


def test_classify_app_uses_snapshot_fields(make_app):
    assert classify_app(make_app("星河支付", description="扫码支付"))[0] == "payment"


def test_finance_types_and_scopes():
    types = finance_types()
    assert list(types) == ["lending", "payment", "investment", "securities", "banking", "insurance", "other"]
    assert types["payment"].necessary == types["lending"].necessary == {"phone_number", "name", "id_number", "bank_card"}
    assert {"id_photo"} <= types["investment"].necessary and types["securities"].necessary == types["investment"].necessary
    assert {"id_photo", "transaction"} <= types["banking"].necessary
    assert types["insurance"].necessary is None and types["other"].necessary is None
    known = set(lexicon().types)
    for ft in types.values():
        assert ft.necessary is None or ft.necessary <= known
        assert (ft.necessary is None) == (ft.regulation is None)
    data = finance_data()
    assert set(data["never_necessary"]) <= known and set(data["over_collection"]) <= known
    for ft in types.values():  # no finance type needs what C202 watches
        assert not (ft.necessary or set()) & set(data["over_collection"])


# --- explain: every signal, and which one decided ---------------------------------------------------------------
# The policy texts below are made up for these tests.

LENDING_POLICY = (
    "示例消费金融有限公司（以下简称“我们”）深知个人信息对您的重要性。"
    "当您申请借款时，我们需要核验您的身份以完成授信审批；放款后，我们会在还款日前提醒您按时还款。"
)
SECURITIES_POLICY = (
    "示例证券股份有限公司（以下简称“我司”）重视投资者的隐私保护。"
    "您在本应用办理开户、进行证券交易或查询资金账户时，我司需要核验您的身份。"
)
FUND_POLICY = (
    "示例基金销售有限公司（以下简称“我们”）依法持有基金销售业务资格。"
    "您在本平台进行基金申购、赎回或设置定投时，我们会记录您的交易以便确认份额。"
)
BANK_POLICY = (
    "示例银行股份有限公司（以下简称“我行”）致力于保护客户信息。"
    "您通过手机银行办理转账、存款或查询借记卡余额时，我行会验证您的身份；您也可前往我行网点办理。"
)
TRADITIONAL_POLICY = (
    "示例證券期貨有限公司（以下簡稱「我們」）重視您的私隱。"
    "當您透過本應用程式開戶並進行證券交易或期貨交易時，我們會核實您的身份。"
)
TOOL_POLICY = (
    "示例网络科技有限公司（以下简称“我们”）重视用户隐私。您开通会员时，可选择微信支付或支付宝完成支付，"
    "支付服务由第三方支付机构提供，我们不会保存您的银行卡号。"
)
GAME_POLICY = (
    "示例游戏有限公司（以下简称“我们”）运营本游戏。您在游戏内购买道具时，可通过支付宝或微信支付付款，"
    "我们仅记录订单号用于补发道具，不会获取您的银行卡信息。"
)
BOOKKEEPING_POLICY = (
    "示例信息技术有限公司（以下简称“我们”）提供记账服务。您录入的记账数据保存在您的账本中；"
    "如您选择导入银行卡账单，我们仅在您授权后读取用于记账，不提供借款或理财服务。"
)


def test_verdict_is_a_frozen_dataclass_and_classify_app_is_built_on_it(make_app):
    app = make_app("还呗")
    verdict = explain_app(app)
    assert isinstance(verdict, FinanceVerdict)
    assert classify_app(app) == (verdict.value, verdict.confidence)
    assert isinstance(verdict.evidence, tuple) and all(isinstance(e, str) for e in verdict.evidence)
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.value = OTHER  # type: ignore[misc]


@pytest.mark.parametrize("name,expected,cue", [
    ("还呗", "lending", "name: 还呗"),
    ("华融消费金融", "lending", "name: 消费金融"),
    ("華融消費金融", "lending", "name: 消费金融"),  # Traditional Chinese, read as Simplified
])
def test_finance_names_in_the_finance_category(make_app, name, expected, cue):
    verdict = explain_app(make_app(name, category="金融理财", developer=""))
    assert verdict.value == expected and verdict.confidence >= 0.6
    assert verdict.evidence[0] == cue and "category: 金融理财" in verdict.evidence


@pytest.mark.parametrize("name", ["万和e阳指", "艾德一站通"])
def test_a_name_without_a_type_cue_falls_back_to_developer_and_policy(make_app, name):
    # the finance category alone says "some finance app": other, doubtful, and saying why
    alone = explain_app(make_app(name, category="金融理财", developer=""))
    assert alone.value == OTHER and alone.confidence <= 0.5
    assert alone.evidence == ("category: 金融理财", "no type-specific cue")
    by_developer = explain_app(make_app(name, category="金融理财", developer="示例证券股份有限公司"))
    assert by_developer.value == "securities" and by_developer.evidence[0] == "developer: 证券"
    by_policy = explain_app(make_app(name, category="金融理财", developer="", text=SECURITIES_POLICY))
    assert by_policy.value == "securities" and by_policy.confidence >= 0.6
    assert by_policy.evidence[0] == "policy: 证券股份有限公司" and "category: 金融理财" in by_policy.evidence


def test_traditional_policy_is_read_as_simplified(make_app):
    verdict = explain_app(make_app("艾德一站通", category="金融理财", developer="", text=TRADITIONAL_POLICY))
    assert verdict.value == "securities"
    assert "policy: 期货有限公司" in verdict.evidence and "policy: 证券交易 ×1" in verdict.evidence


@pytest.mark.parametrize("developer,expected,cue", [
    ("示例消费金融股份有限公司", "lending", "developer: 消费金融"),
    ("示例网络小额贷款有限公司", "lending", "developer: 小额贷款"),
    ("示例融资担保有限公司", "lending", "developer: 融资担保"),
    ("示例农村商业银行股份有限公司", "banking", "developer: 银行股份有限公司"),
    ("示例证券投资咨询有限公司", "securities", "developer: 证券"),
    ("示例期货有限公司", "securities", "developer: 期货"),
    ("示例人寿保险股份有限公司", "insurance", "developer: 保险"),
    ("示例支付科技有限公司", "payment", "developer: 支付"),
    ("示例基金销售有限公司", "investment", "developer: 基金销售"),
    ("Example Securities and Futures Limited", "securities", "developer: securities"),
])
def test_developer_entity_decides(developer, expected, cue):
    verdict = explain("小蜜蜂", "金融理财", developer)
    assert verdict.value == expected and cue in verdict.evidence


def test_developer_without_a_licence_word_does_not_decide():
    assert explain("小蜜蜂", "", "示例网络科技有限公司").value == OTHER
    assert explain("小蜜蜂", "", "示例支付宝服务商有限公司").value == OTHER  # 支付宝 is not 支付


def test_description_licence_words():
    assert explain("小蜜蜂", "", "", "持有中国人民银行颁发的支付业务许可证").value == "payment"
    assert explain("小蜜蜂", "", "", "本平台的基金销售服务由持牌机构提供").value == "investment"
    # paying for a membership is not a payment app
    assert explain("小蜜蜂", "", "", "开通会员可用微信支付或支付宝支付").value == OTHER
    assert explain("小蜜蜂", "", "", "会员支持支付宝付款").value == OTHER


@pytest.mark.parametrize("text,expected,cue", [
    (LENDING_POLICY, "lending", "policy: 消费金融有限公司"),
    (SECURITIES_POLICY, "securities", "policy: 证券股份有限公司"),
    (FUND_POLICY, "investment", "policy: 基金销售有限公司"),
    (BANK_POLICY, "banking", "policy: 银行股份有限公司"),
])
def test_policy_operator_and_services_decide_in_the_finance_category(make_app, text, expected, cue):
    verdict = explain_app(make_app("小蜜蜂", category="金融理财", developer="", text=text))
    assert verdict.value == expected and verdict.confidence >= 0.6
    assert verdict.evidence[0] == cue and "category: 金融理财" in verdict.evidence


def test_policy_services_decide(make_app):
    many = ("示例科技有限公司（以下简称“我们”）为您提供信息服务。您申请借款时需完成授信审批，"
            "借款到账后请按时还款，逾期将影响您的信用。借款合同由出借机构与您签订，还款计划可在首页查看。")
    verdict = explain_app(make_app("小蜜蜂", category="", developer="", text=many))
    assert verdict.value == "lending"
    assert "policy: 借款 ×3" in verdict.evidence and "policy: 还款 ×2" in verdict.evidence
    # a few services decide only with the finance category's help
    few = "示例科技有限公司（以下简称“我们”）为您提供信息服务。您申请借款时需完成授信审批，请按时还款。"
    assert explain_app(make_app("小蜜蜂", category="金融理财", developer="", text=few)).value == "lending"
    assert explain_app(make_app("小蜜蜂", category="", developer="", text=few)).value == OTHER


def test_a_partner_named_in_the_policy_is_not_its_operator():
    # a licensed entity named after another company, or with another short name, is a partner: a fraction counts
    text = ("本应用由示例科技有限公司运营。我们与示例消费金融有限公司（以下简称“合作机构”）合作，"
            "在您自愿申请时向其推荐。")
    verdict = explain("小蜜蜂", "", "", "", text)
    assert verdict.value == OTHER
    assert "policy: 消费金融有限公司 (not as operator)" in verdict.evidence
    # the same entity naming itself is the operator
    assert explain("小蜜蜂", "", "", "", LENDING_POLICY).evidence[0] == "policy: 消费金融有限公司"


def test_policy_counts_only_when_fetched(make_app):
    app = make_app("小蜜蜂", category="金融理财", developer="", text=LENDING_POLICY)
    assert classify_app(app)[0] == "lending"
    unavailable = dataclasses.replace(app, policy_status=POLICY_UNAVAILABLE)  # the text object is stale
    assert explain_app(unavailable).value == OTHER


def test_bookkeeping_app_is_not_finance(make_app):
    app = make_app("小鹿记账", category="金融理财", developer="示例信息技术有限公司",
                   description="记账本：日常收支一目了然，可导入银行卡账单", text=BOOKKEEPING_POLICY)
    verdict = explain_app(app)
    assert verdict.value == OTHER and verdict.confidence == 1.0
    assert "name: 记账 (not finance)" in verdict.evidence
    # its policy alone, in the finance category, is not enough either
    assert explain("", "金融理财", "", "", BOOKKEEPING_POLICY).value == OTHER


def test_game_paying_with_alipay_is_not_finance(make_app):
    app = make_app("星际消除大作战", category="休闲益智", developer="示例游戏有限公司",
                   description="上千关卡等你挑战，道具可用支付宝或微信支付购买", text=GAME_POLICY)
    verdict = explain_app(app)
    assert verdict.value == OTHER and verdict.confidence == 1.0
    assert "category: 休闲益智 (not finance)" in verdict.evidence


def test_tool_that_mentions_payment_and_bank_cards_is_not_finance(make_app):
    app = make_app("超级扫描王", category="实用工具", developer="示例网络科技有限公司",
                   description="开通会员可使用微信支付或支付宝支付，绑定银行卡自动续费", text=TOOL_POLICY)
    assert classify_app(app) == (OTHER, 1.0)
    assert explain("", "", "", "", TOOL_POLICY) == FinanceVerdict(OTHER, 1.0, ("no finance cue",))


def test_alipay_by_name_is_a_payment_app():
    assert explain("支付宝", "金融理财", "示例网络技术有限公司").value == "payment"


def test_other_evidence_says_why():
    assert explain("天气预报", "", "", "查看天气").evidence == ("no finance cue",)
    weak = explain("小蜜蜂", "金融理财", "", "", "您可以在我们的平台查看股票行情。")
    assert weak.value == OTHER and 0.0 < weak.confidence < 0.5
    assert weak.evidence[-1].startswith("securities scores ")


def test_listing_outweighs_a_policy_that_disagrees(make_app):
    # the policy's score is capped: a name and a developer that agree outweigh it
    app = make_app("示例证券", category="金融理财", developer="示例证券股份有限公司", text=LENDING_POLICY)
    verdict = explain_app(app)
    assert verdict.value == "securities" and verdict.confidence < 1.0
    assert verdict.evidence[:2] == ("name: 证券", "developer: 证券")


def test_finance_type_found_in_the_policy_lets_c202_run(make_app):
    text = SECURITIES_POLICY + "为向您推荐附近的营业部，我们会收集您的位置信息。"
    result = analyze(make_app("万和e阳指", category="金融理财", developer="", text=text))
    assert result.finance_type == "securities"
    assert ("C202", "location") in [(f.rule_id, f.evidence.key) for f in result.findings]


def test_an_english_banks_policy_reads_as_banking(make_app):
    text = ("Our online banking and mobile banking services let you view your accounts. Use online banking to pay bills. "
            "Deposits are insured by the FDIC. Online banking sessions time out after ten minutes.")
    verdict = explain_app(make_app("Example", category="", developer="", text=text, language="en"))
    assert verdict.value == "banking" and "policy: FDIC ×1" in verdict.evidence
    assert explain_app(make_app("Example", category="", developer="", text="We sell books online.",
                                language="en")).value == OTHER
