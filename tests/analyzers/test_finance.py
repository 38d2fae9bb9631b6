import pytest

from analyzers.finance import OTHER, classify, classify_app, finance_data, finance_types
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
    # 银行卡 is not a banking cue, 金融理财 (a store category) not an investment cue
    assert classify("小蜜蜂", "金融理财", "", "绑定银行卡即可使用") == (OTHER, 1.0)
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
