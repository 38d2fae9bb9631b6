"""A small hand-made index for the report tests: two weeks of analyses, hostile names and URLs."""
import pytest

from finmon.model import Analysis, Evidence, Finding, Listing, PolicyVersion, Run, merge_listings, sha256_hex
from index.sqlite import SQLiteStore

HOSTILE_NAME = "<script>alert(1)</script>"
HOSTILE_QUOTE = '我们会收集您的通讯录<img src=x onerror=alert(2)>信息。'
WEEK1, WEEK2 = "2024-03-04T10:00:00+00:00", "2024-03-11T10:00:00+00:00"
POLICY_ZH = (
    "快乐借款隐私政策\n生效日期：2024年3月1日\n为向您提供借款服务，我们会收集您的姓名、身份证号码和银行卡号。"
    "在您使用紧急联系人功能时，我们会读取您的通讯录信息，用于贷后联系。我们会获取您的精确位置信息用于反欺诈。"
)
RULES = [
    {"id": "P101", "family": "P", "severity": "high", "confidence": "high",
     "title": "借贷类App申请应用商店禁止的权限", "title_en": "Lending app requests a permission app stores forbid",
     "description": "应用商店个人贷款类应用规范禁止借贷类App读取通讯录、通话记录、短信、精确位置和外部存储。",
     "regulation": "应用商店个人贷款类App审核规范",
     "description_en": "App stores' personal-loan policies forbid lending apps contacts, call logs, SMS and location.",
     "regulation_en": "App-store personal-loan policies"},
    {"id": "P102", "family": "P", "severity": "medium", "confidence": "medium",
     "title": "申请金融业务不需要的敏感权限", "title_en": "Dangerous permission no finance type needs",
     "description": "…", "regulation": "《App违法违规收集使用个人信息行为认定方法》"},
    {"id": "C201", "family": "C", "severity": "high", "confidence": "high",
     "title": "未公开隐私政策", "title_en": "No privacy policy",
     "description": "无隐私政策或隐私政策链接失效（404/410）。", "regulation": "认定方法 一（1）"},
    {"id": "C202", "family": "C", "severity": "high", "confidence": "medium",
     "title": "声明收集超出必要范围的个人信息", "title_en": "Policy declares collection beyond the necessary scope",
     "description": "隐私政策声明收集通讯录、通话记录、短信、位置或应用列表，超出该金融业务类型的必要个人信息范围。",
     "regulation": "常见类型移动互联网应用程序必要个人信息范围规定（2021）"},
    {"id": "D301", "family": "D", "severity": "medium", "confidence": "medium",
     "title": "申请的权限未在隐私政策中说明", "title_en": "Permission not disclosed by the policy",
     "description": "…", "regulation": "认定方法 二"},
]


def _listing(package, name, store="xiaomi", platform="android", permissions=(), privacy_url=None, **kw):
    return Listing(store=store, store_id=kw.pop("store_id", package), platform=platform, package=package, name=name,
                   developer=kw.pop("developer", "某某科技有限公司"), category="金融",
                   source_url=kw.pop("source_url", f"http://{store}.test/details?id={package}"),
                   fetched_at=kw.pop("fetched_at", "2024-03-04T08:00:00Z"), permissions=tuple(permissions),
                   privacy_url=privacy_url, version="1.2.3", updated="2024-02-01", downloads=1523000, **kw)


def _finding(app_key, rule, severity, evidence):
    rule_row = next(r for r in RULES if r["id"] == rule)
    return Finding(rule_id=rule, severity=severity, confidence=rule_row["confidence"], app_key=app_key,
                   title=rule_row["title"], evidence=evidence, regulation=rule_row["regulation"])


def _perm(app_key, rule, severity, permission):
    return _finding(app_key, rule, severity, Evidence(kind="permission", key=permission, text=permission))


def _quote(app_key, text, term, key):
    sentence = next(s + "。" for s in text.split("。") if term in s)
    start = text.index(sentence)
    return _finding(app_key, "C202", "high", Evidence(kind="quote", key=key, text=sentence, start=start,
                                                    end=start + len(sentence), detail=term))


def populate(store):
    """Two weekly analyses of five apps; returns the snapshots of week 2 by short name."""
    policy = PolicyVersion(url="http://policies.test/kuaile.html", final_url="http://policies.test/kuaile.html",
                           fetched_at="2024-03-04T08:05:00Z", sha256=sha256_hex(POLICY_ZH), text=POLICY_ZH, language="zh",
                           title="快乐借款隐私政策", effective_date="2024-03-01")
    loan_perms = ["android.permission.READ_CONTACTS", "android.permission.ACCESS_FINE_LOCATION", "android.permission.INTERNET"]
    listings = [
        _listing("com.kuaile.loan", "快乐借款", permissions=loan_perms, privacy_url=policy.url),
        _listing("com.kuaile.loan", "快乐借款", store="appgallery", store_id="C100123", permissions=loan_perms,
                 privacy_url=policy.url, source_url="http://appgallery.test/app/C100123"),
        _listing("com.evil.pay", HOSTILE_NAME, permissions=["android.permission.READ_SMS"],
                 privacy_url="javascript:alert(3)", source_url="javascript:alert(4)", developer=HOSTILE_NAME),
        _listing("com.safe.bank", "安心银行", store="itunes", platform="ios", store_id="1234567",
                 source_url="http://itunes.test/apple/cn/app/id1234567", privacy_labels=("联系信息",)),
        _listing("com.clean.fund", "稳健基金理财", privacy_url=policy.url),
        _listing("com.quiet.ins", "Quiet Insurance 保险", store="appgallery", privacy_url="http://policies.test/gone.html"),
    ]
    apps = {a.package: a for a in merge_listings(listings, {policy.url: policy},
                                                 {"http://policies.test/gone.html": "not_found",
                                                  "javascript:alert(3)": "unavailable"})}
    loan, evil, bank = apps["com.kuaile.loan"], apps["com.evil.pay"], apps["com.safe.bank"]
    ins = apps["com.quiet.ins"]
    week1 = {
        loan.key: ("lending", [
            _perm(loan.key, "P101", "high", "android.permission.READ_CONTACTS"),
            _perm(loan.key, "P101", "high", "android.permission.ACCESS_FINE_LOCATION"),
            _quote(loan.key, POLICY_ZH, "通讯录", "contacts"),
            _quote(loan.key, POLICY_ZH, "精确位置", "location"),
        ]),
        evil.key: ("payment", [
            _perm(evil.key, "P102", "medium", "android.permission.READ_SMS"),
            _finding(evil.key, "C202", "high", Evidence(kind="quote", key="contacts", text=HOSTILE_QUOTE, detail="通讯录",
                                                        url="javascript:alert(5)")),
        ]),
        bank.key: ("banking", [_finding(bank.key, "C201", "high", Evidence(kind="absence", key="policy", text="无隐私政策链接"))]),
        apps["com.clean.fund"].key: ("investment", []),
        ins.key: ("insurance", []),
    }
    store.save_rules(RULES)
    analyses = [Analysis(key, ft, 0.8, tuple(fs)) for key, (ft, fs) in week1.items()]
    store.save_analysis(apps.values(), analyses, WEEK1)
    # Week 2: the loan app dropped the location permission; the insurer's policy link is dead.
    week1[loan.key] = ("lending", [f for f in week1[loan.key][1] if f.evidence.key != "android.permission.ACCESS_FINE_LOCATION"])
    week1[ins.key] = ("insurance", [_finding(ins.key, "C201", "high", Evidence(kind="url", key="policy", text="404",
                                                                            url="http://policies.test/gone.html"))])
    analyses = [Analysis(key, ft, 0.8, tuple(fs)) for key, (ft, fs) in week1.items()]
    store.save_analysis(apps.values(), analyses, WEEK2)
    store.save_run(Run(id="crawl-20240311-xiaomi", kind="crawl", started="2024-03-11T08:00:00Z", ended="2024-03-11T08:20:00Z",
                       counters={"requests": 120, "listings": 4, "errors/http_5xx": 2}, outcome="ok", job="crawl:xiaomi"))
    store.save_run(Run(id="crawl-20240311-itunes", kind="crawl", started="2024-03-11T08:00:01Z", ended="2024-03-11T08:01:00Z",
                       counters={"exit_code": 1}, outcome="failed", job="crawl:itunes", attempt=2,
                       error="RuntimeError: the store answered <img src=x onerror=alert(1)> " + "退出 " * 80))
    store.save_run(Run(id="analyze-20240311", kind="analyze", started=WEEK2, ended=WEEK2, counters={"apps": 5, "findings": 7},
                       outcome="ok", job="analyze"))
    return apps


@pytest.fixture(scope="session")
def report_store(tmp_path_factory):
    store = SQLiteStore(tmp_path_factory.mktemp("report-db") / "finmon.db")
    apps = populate(store)
    yield store, apps
    store.close()
