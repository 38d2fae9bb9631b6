"""R602: illegal fund-raising language in listings, with negation and the yield threshold."""
import pytest

from analyzers import analyze
from analyzers.fundraising import scan_listing_text
from finmon.model import Listing


def r602(app):
    return {f.evidence.key: f for f in analyze(app).findings if f.rule_id == "R602"}


def categories(text):
    return {h.category for h in scan_listing_text(text)}


def test_one_finding_per_category_quoting_the_sentence(make_app):
    desc = "新手专享！本平台保本保息，年化收益高达18%。邀请好友返现50元，多邀多得。稳赚不赔。"
    got = r602(make_app("鑫鑫理财", description=desc))
    assert set(got) == {"guaranteed_return", "unrealistic_yield", "referral_rebate"}
    ev = got["guaranteed_return"].evidence
    assert ev.kind == "quote" and ev.text == "本平台保本保息，年化收益高达18%。"
    assert desc[ev.start:ev.end] == ev.text and ev.detail.startswith("description: 保本保息")
    assert got["unrealistic_yield"].evidence.detail.startswith("description: 年化收益高达18% (annualised 18%)")
    assert desc[got["referral_rebate"].evidence.start:got["referral_rebate"].evidence.end] == "邀请好友返现50元，多邀多得。"
    f = got["guaranteed_return"]
    assert (f.severity, f.confidence) == ("high", "medium")
    assert "防范和处置非法集资条例" in f.regulation and "第十九条" in f.regulation
    assert "资管新规" in f.regulation and "刚性兑付" in f.regulation  # each category cites its own references
    assert "禁止传销条例" in got["referral_rebate"].regulation and "禁止传销条例" not in f.regulation
    assert "广告法" in got["unrealistic_yield"].regulation


def test_the_name_is_checked_and_the_listing_url_is_the_evidence_url(make_app):
    app = make_app("稳赚不赔宝", description="一款理财工具。")
    listing = Listing(store="xiaomi", store_id="9", platform="android", package=app.package, name=app.name,
                      developer=app.developer, category="金融", source_url="http://store.test/app/9",
                      fetched_at="2026-01-01T00:00:00+00:00", description=app.description)
    app = type(app)(**{**app.__dict__, "listings": (listing,)})
    ev = r602(app)["guaranteed_return"].evidence
    assert (ev.text, ev.start, ev.end, ev.url) == ("稳赚不赔宝", 0, 5, "http://store.test/app/9")
    assert ev.detail.startswith("name: 稳赚不赔")


@pytest.mark.parametrize("text,expected", [
    ("保证本息，随存随取。", {"guaranteed_return"}),
    ("本息保障，零风险。", {"guaranteed_return"}),
    ("无风险投资，放心赚。", {"guaranteed_return"}),
    ("Guaranteed returns every month.", {"guaranteed_return"}),
    ("A risk-free way to grow your money.", {"guaranteed_return"}),
    ("不仅保本保息，还送红包。", {"guaranteed_return"}),
    ("推荐返利，拉人头有奖。", {"referral_rebate"}),
    ("Earn a referral bonus for every friend.", {"referral_rebate"}),
    ("邀请好友注册即返佣金。", {"referral_rebate"}),
])
def test_flagged_phrases(text, expected):
    assert categories(text) == expected


@pytest.mark.parametrize("text", [
    "我们不承诺保本保息。",
    "理财有风险，投资需谨慎。",
    "本产品不保证本息，过往业绩不代表未来表现。",
    "谨防“保本保息”“零风险”等非法集资骗局。",
    "投资并非无风险。",
    "We do not offer guaranteed returns.",
    "Beware of risk-free investment scams.",
    "参考无风险利率计算。",
    "保障资金安全，新用户注册即享专属福利。",
])
def test_negated_warning_and_harmless_text_is_clean(text):
    assert categories(text) == set()


@pytest.mark.parametrize("text,annual", [
    ("年化收益高达18%", 18.0),
    ("日息0.1%", 36.5),
    ("月息1%", 12.0),
    ("年化收益率８%-１２％", 12.0),
    ("出借人年化收益12%，资金安全", 12.0),
    ("daily returns of 0.05%", 18.25),
    ("年化10%", 10.0),
])
def test_yields_are_annualised_and_flagged_from_the_threshold(text, annual):
    [hit] = {h.annual_percent: h for h in scan_listing_text(text) if h.category == "unrealistic_yield"}.values()
    assert hit.annual_percent == pytest.approx(annual)


@pytest.mark.parametrize("text", [
    "年化9.99%",  # just below the threshold
    "日息0.02%",  # 7.3% a year
    "年化收益4.5%，稳健理财",
    "借款年化利率低至7.2%",
    "借款日息低至0.05%，额度高",  # a loan's price, not a promised return
    "年化收益不承诺12%",
    "该基金近一年年化收益率15.3%，过往业绩不代表未来表现。",  # past performance, as fund pages must show it
    "Past performance: annualised return of 12% since inception.",
])
def test_yields_below_the_threshold_or_loan_prices_are_clean(text):
    assert "unrealistic_yield" not in categories(text)


def test_simulator_descriptions_are_clean():
    """The market simulator's descriptions (market/data/population.json) must not trip R602."""
    import json
    from pathlib import Path

    data = json.loads((Path(__file__).resolve().parents[2] / "market" / "data" / "population.json")
                      .read_text(encoding="utf-8"))
    texts = [d.format(name="示例") for ds in data["descriptions"].values() for d in ds] + data["description_extras"]
    assert [t for t in texts if scan_listing_text(t)] == []
