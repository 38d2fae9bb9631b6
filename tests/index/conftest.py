"""Fixtures for the store tests: a fresh store of each backend and builders for hand-made data."""
import uuid
from types import SimpleNamespace

import pytest

from finmon.model import Analysis, Evidence, Finding, Listing, PolicyVersion, merge_listings, sha256_hex
from index.sqlite import SQLiteStore

POLICY_ZH = (
    "某某借款隐私政策\n生效日期：2024年3月1日\n"
    "为向您提供借款服务，我们会收集您的姓名、身份证号码、银行卡号和手机号码。"
    "在您使用紧急联系人功能时，我们会读取您的通讯录信息，用于贷后联系和风险控制。"
    "我们不会收集您的短信内容。您可以随时撤回授权。"
)
POLICY_EN = (
    "Privacy Policy\nWe collect your mobile phone number and your precise location to prevent fraud. "
    "We do not collect your call logs."
)


def listing(package="com.example.loan", store="xiaomi", name="快乐借款", platform="android", fetched_at="2024-03-04T08:00:00Z",
            permissions=("android.permission.READ_CONTACTS", "android.permission.INTERNET"), privacy_url="http://policies.test/p1.html",
            developer="快乐科技有限公司", **extra):
    return Listing(
        store=store, store_id=extra.pop("store_id", package), platform=platform, package=package, name=name,
        developer=developer, category="金融", source_url=f"http://{store}.test/details?id={package}", fetched_at=fetched_at,
        permissions=tuple(permissions), privacy_url=privacy_url, **extra,
    )


def policy(text=POLICY_ZH, url="http://policies.test/p1.html", language="zh", fetched_at="2024-03-04T08:05:00Z"):
    return PolicyVersion(url=url, final_url=url, fetched_at=fetched_at, sha256=sha256_hex(text), text=text,
                         language=language, title=text.split("\n")[0], effective_date="2024-03-01")


def app(*listings, versions=(), failures=None):
    return merge_listings(listings, {v.url: v for v in versions}, failures or {})[0]


def perm_finding(app_key, permission="android.permission.READ_CONTACTS", rule="P101", severity="high"):
    return Finding(rule_id=rule, severity=severity, confidence="high", app_key=app_key,
                   title="借贷类App申请应用商店禁止的权限", regulation="应用商店个人贷款类App审核规范",
                   evidence=Evidence(kind="permission", key=permission, text=permission))


def quote_finding(app_key, text=POLICY_ZH, term="通讯录", key="contacts", rule="C202", severity="high"):
    sentence = next(s + "。" for s in text.split("。") if term in s)
    start = text.index(sentence)
    return Finding(rule_id=rule, severity=severity, confidence="medium", app_key=app_key,
                   title="隐私政策声明收集超出必要范围的个人信息", regulation="常见类型移动互联网应用程序必要个人信息范围规定",
                   evidence=Evidence(kind="quote", key=key, text=sentence, start=start, end=start + len(sentence), detail=term))


def analysis(snapshot, *findings, finance_type="lending"):
    return Analysis(app_key=snapshot.key, finance_type=finance_type, finance_confidence=0.9, findings=tuple(findings))


@pytest.fixture
def build():
    return SimpleNamespace(listing=listing, policy=policy, app=app, perm=perm_finding, quote=quote_finding,
                           analysis=analysis, POLICY_ZH=POLICY_ZH, POLICY_EN=POLICY_EN)


@pytest.fixture
def es_store(es_url, drop_es_prefix):
    """A fresh ElasticStore under a prefix of its own, dropped afterwards."""
    from index.elastic import ElasticStore

    s = ElasticStore(es_url, prefix=f"finmon-test-{uuid.uuid4().hex[:12]}")
    yield s
    drop_es_prefix(s.es, s.prefix)
    s.close()


@pytest.fixture(params=["sqlite", pytest.param("elastic", marks=pytest.mark.elasticsearch)])
def store(request, tmp_path):
    """Each backend in turn: the contract tests run against both."""
    if request.param == "elastic":
        yield request.getfixturevalue("es_store")
        return
    s = SQLiteStore(tmp_path / "index.db")
    yield s
    s.close()
