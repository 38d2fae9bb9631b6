"""R601 and the registry it reads: matching by package, by name + developer, and the misses."""
import pytest

from analyzers import Registry, RegistryError, analyze
from analyzers.registry import normalise_developer, normalise_name
from finmon.model import Listing

BLANK = {"app_name": "", "package": "", "developer": "", "licence_no": "", "licence_type": "", "registered_on": ""}


def row(**given):
    return {**BLANK, **given}


REGISTRY = Registry.from_rows([
    row(app_name="星河支付", package="com.xinghe.pay", developer="星河支付科技有限公司", licence_no="Z2000133000011",
        licence_type="支付业务许可证", registered_on="2020-06-01"),
    row(app_name="闪电借款", developer="闪电（中国）科技股份有限公司", registered_on="2020-07-01"),
    row(app_name="Harbor Bank", package="com.harbor.bank", developer="Harbor Bank Co., Ltd."),
    row(developer="城东金融信息服务有限公司", licence_no="B0001", licence_type="网络小额贷款"),
], source="registry.csv")


def r601(app, registry=REGISTRY):
    return [f for f in analyze(app, registry=registry).findings if f.rule_id == "R601"]


def test_package_match_registers_the_app_whatever_its_listed_name(make_app):
    assert r601(make_app("星河支付Pro", package="com.xinghe.pay", developer="别的公司")) == []
    assert r601(make_app("Harbor Bank", package="COM.HARBOR.BANK", developer="x")) == []


def test_name_and_developer_match_after_normalisation(make_app):
    # full-width, spaces and the legal form differ; "(中国)" is dropped
    app = make_app("闪电 借款", package="com.other.loan", developer="闪电科技有限公司")
    assert REGISTRY.lookup(app).by == "name_developer"
    assert r601(app) == []
    assert r601(make_app("ＨＡＲＢＯＲ bank", package="x.y", developer="HARBOR BANK LIMITED")) == []


def test_name_alone_or_developer_alone_is_not_a_registration(make_app):
    assert len(r601(make_app("闪电借款", package="com.fake.loan", developer="另一家科技有限公司"))) == 1
    # "科技" is part of the name, not a legal form: a different company
    assert len(r601(make_app("闪电借款", package="com.fake.loan", developer="闪电金融信息服务有限公司"))) == 1
    # a licensed institution's rows do not register its apps
    assert len(r601(make_app("城东贷", package="com.chengdong.loan", developer="城东金融信息服务有限公司"))) == 1


def test_missing_app_is_flagged_with_what_was_looked_up(make_app):
    listing = Listing(store="xiaomi", store_id="1", platform="android", package="com.unknown.loan", name="快快借款",
                      developer="城东金融信息服务有限公司", category="金融", source_url="http://store.test/app/1",
                      fetched_at="2026-01-01T00:00:00+00:00")
    app = make_app("快快借款", package="com.unknown.loan", developer="城东金融信息服务有限公司")
    app = type(app)(**{**app.__dict__, "listings": (listing,)})
    [f] = r601(app)
    ev = f.evidence
    assert (ev.kind, ev.key, ev.url) == ("absence", "registry", "http://store.test/app/1")
    assert "com.unknown.loan" in ev.detail and "快快借款" in ev.detail and "registry.csv" in ev.detail
    assert "developer licensed: 网络小额贷款 B0001" in ev.detail
    assert (f.severity, f.confidence) == ("high", "medium")
    assert "中国互联网金融协会" in f.regulation


def test_severity_is_high_for_lending_payment_investment_and_medium_otherwise(make_app):
    assert r601(make_app("闪电借款", package="a.b"))[0].severity == "high"
    assert r601(make_app("星河支付", package="a.b"))[0].severity == "high"
    assert r601(make_app("稳健基金理财", package="a.b"))[0].severity == "high"
    assert r601(make_app("城东银行", package="a.b"))[0].severity == "medium"
    [f] = r601(make_app("天气助手", package="a.b"))
    assert f.severity == "medium" and "developer not in the licence list" in f.evidence.detail


def test_without_a_registry_r601_is_not_applied(make_app):
    assert r601(make_app("闪电借款", package="a.b"), registry=None) == []


def test_registry_rows_are_checked():
    with pytest.raises(RegistryError, match="columns missing: licence_no"):
        Registry.from_rows([{"app_name": "a", "package": "b", "developer": "c"}])
    with pytest.raises(RegistryError, match=":3: a row needs a developer"):
        Registry.from_rows([row(app_name="a", developer="d"), row(app_name="b")])
    comments = Registry.from_rows([row(app_name="# a comment", developer="x"), BLANK, row(package="p", developer="d")])
    assert len(comments) == 1 and comments.app_count == 1


def test_normalisation():
    assert normalise_developer("某某（中国）科技股份有限公司") == normalise_developer("某某科技有限公司") == "某某科技"
    assert normalise_developer("Zinc Pay Co., Ltd.") == "zincpay"
    assert normalise_developer("ACME Inc.") == normalise_developer("acme") == "acme"
    assert normalise_name("ＳＴＡＲ－Pay ·Pro") == "starpaypro"
