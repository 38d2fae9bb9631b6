"""The store contract (index/base.py), written against the ``store`` fixture so every backend can run it."""
import csv
import dataclasses
import io
import json
import pickle

import pytest

from finmon import settings
from finmon.model import Finding, Run
from index.base import Store

T1, T2, T3 = "2024-03-04T10:00:00+00:00", "2024-03-11T10:00:00+00:00", "2024-03-18T10:00:00+00:00"


@pytest.fixture
def loan(build):
    """A lending app listed on two stores, with a Chinese policy, and its findings."""
    pol = build.policy()
    snap = build.app(build.listing(), build.listing(store="appgallery", store_id="C100123"), versions=[pol])
    return snap, [build.perm(snap.key), build.quote(snap.key)]


@pytest.fixture
def wallet(build):
    """A payment app on one store, with an English policy."""
    pol = build.policy(build.POLICY_EN, url="http://policies.test/en.html", language="en")
    snap = build.app(build.listing("com.example.pay", name="Easy Pay 支付", privacy_url=pol.url,
                                   permissions=["android.permission.ACCESS_FINE_LOCATION"]), versions=[pol])
    finding = build.perm(snap.key, "android.permission.ACCESS_FINE_LOCATION", rule="P102", severity="medium")
    return snap, [finding]


def save(store, build, *apps, at=T1):
    snaps = [snap for snap, _ in apps]
    analyses = [build.analysis(snap, *findings, finance_type="payment" if snap.package.endswith(".pay") else "lending")
                for snap, findings in apps]
    return store.save_analysis(snaps, analyses, at)


def ids(findings):
    return sorted(f.id for f in findings)


def test_store_implements_the_interface(store):
    assert isinstance(store, Store)


def test_runs_round_trip_newest_first_and_upsert_by_id(store):
    store.save_run(Run(id="crawl-1", kind="crawl", started="2024-03-04T09:00:00Z", counters={"requests": 5}))
    store.save_run(Run(id="crawl-2", kind="crawl", started="2024-03-11T09:00:00Z"))
    store.save_run(Run(id="crawl-1", kind="crawl", started="2024-03-04T09:00:00Z", ended="2024-03-04T09:30:00Z",
                       counters={"requests": 7, "errors/timeout": 1}, outcome="ok"))
    runs = store.runs()
    assert [r["id"] for r in runs] == ["crawl-2", "crawl-1"]
    assert runs[1]["counters"] == {"requests": 7, "errors/timeout": 1}
    assert runs[1]["outcome"] == "ok" and runs[1]["ended"].startswith("2024-03-04T09:30")
    assert Run.from_dict(runs[1]).counters["requests"] == 7
    assert len(store.runs(limit=1)) == 1


def test_runs_keep_job_attempt_and_error(store):
    interrupted = Run(id="crawl-appgallery-1", kind="crawl", started="2024-03-04T09:00:00+00:00",
                      ended="2024-03-04T09:10:00+00:00", outcome="interrupted", job="crawl:appgallery",
                      error="stopped by SIGTERM\nTraceback (most recent call last):\n  …\n超时")
    resumed = Run(id="crawl-appgallery-2", kind="crawl", started="2024-03-04T09:20:00+00:00",
                  ended="2024-03-04T09:40:00+00:00", counters={"listings": 3}, outcome="ok", job="crawl:appgallery",
                  attempt=2)
    analyzed = Run(id="analyze-1", kind="analyze", started="2024-03-04T10:00:00+00:00", job="analyze")
    by_hand = Run(id="demo-1", kind="demo", started="2024-03-04T11:00:00+00:00", outcome="ok")
    for run in (interrupted, resumed, analyzed, by_hand):
        store.save_run(run)
    runs = store.runs()
    assert all(set(r) == set(by_hand.to_dict()) for r in runs)
    assert [Run.from_dict(r) for r in runs] == [by_hand, analyzed, resumed, interrupted]
    assert (runs[2]["job"], runs[2]["attempt"], runs[2]["error"]) == ("crawl:appgallery", 2, "")
    assert (runs[3]["attempt"], runs[3]["error"]) == (1, interrupted.error)


def test_runs_of_one_job(store):
    for i, (job, day) in enumerate([("crawl:appgallery", 4), ("crawl:xiaomi", 5), ("crawl:appgallery", 6),
                                    ("", 7), ("analyze", 8), ("crawl:appgallery", 9)]):
        store.save_run(Run(id=f"run-{i}", kind=job.split(":")[0] or "demo", started=f"2024-03-0{day}T09:00:00Z",
                           job=job, attempt=1 + i % 2))
    assert [r["id"] for r in store.runs(job="crawl:appgallery")] == ["run-5", "run-2", "run-0"]  # newest first
    assert [r["id"] for r in store.runs(job="crawl:appgallery", limit=2)] == ["run-5", "run-2"]
    assert [r["id"] for r in store.runs(limit=2, job="crawl:xiaomi")] == ["run-1"]
    assert [r["id"] for r in store.runs(job="")] == ["run-3"]  # runs started by hand
    assert store.runs(job="crawl") == [] and store.runs(job="CRAWL:APPGALLERY") == []  # the exact job
    assert store.runs(job="nope") == []
    assert len(store.runs(job=None)) == len(store.runs()) == 6
    store.save_run(Run(id="run-0", kind="crawl", started="2024-03-04T09:00:00Z", job="crawl:xiaomi"))  # by id
    assert [r["id"] for r in store.runs(job="crawl:xiaomi")] == ["run-1", "run-0"]
    assert [r["id"] for r in store.runs(job="crawl:appgallery")] == ["run-5", "run-2"]


def test_rules_round_trip_keeps_extra_keys(store):
    table = [
        {"id": "P101", "family": "P", "severity": "high", "confidence": "high", "title": "借贷类App申请禁止权限",
         "title_en": "Lending app requests a forbidden permission", "description": "…", "regulation": "…", "extra": 1},
        {"id": "C201", "severity": "high", "confidence": "high", "title": "无隐私政策", "title_en": "No privacy policy",
         "description": "", "regulation": ""},
    ]
    store.save_rules(table)
    store.save_rules(table)
    rules = store.rules()
    assert [r["id"] for r in rules] == ["C201", "P101"]
    assert rules[0]["family"] == "C"  # derived from the id when not given
    assert rules[1]["extra"] == 1 and rules[1]["title_en"].startswith("Lending")


def test_policy_versions_are_kept_by_hash(store, build):
    v1 = build.policy()
    v2 = build.policy(build.POLICY_ZH + "我们会定期更新本政策。", fetched_at="2024-03-11T08:00:00Z")
    assert store.save_policy_versions([v1, v1]) == 1
    assert store.save_policy_versions([v1]) == 0
    assert store.save_policy_versions([v2]) == 1
    assert store.policy(v1.sha256).text == v1.text
    assert store.policy(v2.sha256).url == v1.url
    assert store.policy("0" * 64) is None
    got = store.policy(v1.sha256)
    assert (got.title, got.language, got.effective_date, got.final_url) == (v1.title, "zh", "2024-03-01", v1.url)


def test_listings_keep_the_latest_per_store_id(store, build):
    old = build.listing(version="1.0", fetched_at="2024-03-04T08:00:00Z")
    new = build.listing(version="2.0", fetched_at="2024-03-11T08:00:00Z")
    assert store.save_listings([old]) == 1
    store.save_listings([new])
    store.save_listings([old])  # an older capture replayed late does not win
    app = store.app(old.app_key)
    assert [lst["version"] for lst in app["listings"]] == ["2.0"]
    assert app["listings"][0]["permissions"] == list(new.permissions)
    assert app["first_seen"].startswith("2024-03-04") and app["last_seen"].startswith("2024-03-11")
    assert next(store.apps())["name"] == "快乐借款"
    history = app["history"]  # every distinct content, newest first, dated by when it was first seen
    assert [(h["version"], h["first_fetched_at"][:10]) for h in history] == [("2.0", "2024-03-11"), ("1.0", "2024-03-04")]
    assert history[1]["permissions"] == list(old.permissions) and history[0]["app_key"] == old.app_key
    assert "fetched_at" not in history[0] and history[0]["content_hash"] != history[1]["content_hash"]


def test_save_analysis_round_trip(store, build, loan, wallet):
    counts = save(store, build, loan, wallet)
    assert counts == {"new": 3, "open": 0, "resolved": 0}
    snap, findings = loan
    stored = store.findings(app_key=snap.key)
    assert ids(stored) == ids(findings)
    by_id = {f.id: f for f in stored}
    for original in findings:
        got = by_id[original.id]
        assert (got.rule_id, got.severity, got.confidence, got.title, got.regulation) == (
            original.rule_id, original.severity, original.confidence, original.title, original.regulation)
        assert got.evidence == original.evidence
        assert (got.first_seen, got.last_seen, got.status) == (T1, T1, "new")
    app = store.app(snap.key)
    assert app["finance_type"] == "lending" and app["finance_confidence"] == 0.9
    assert app["stores"] == ["appgallery", "xiaomi"]
    assert app["policy_status"] == "ok" and app["policy"].sha256 == snap.policy.sha256
    assert [v["sha256"] for v in app["policy_versions"]] == [snap.policy.sha256]
    assert app["counts"] == {"high": 2, "medium": 0, "low": 0}
    assert app["risk_score"] > store.app(wallet[0].key)["risk_score"] > 0
    assert {lst["store"] for lst in app["listings"]} == {"xiaomi", "appgallery"}
    assert store.app("android:nope") is None
    assert [a["key"] for a in store.apps()] == sorted([snap.key, wallet[0].key])


def test_apps_are_streamed_in_key_order_every_one_or_those_asked_for(store, build, loan, wallet, monkeypatch):
    monkeypatch.setattr(settings, "FINMON_ES_PAGE_SIZE", 1)  # a page per app
    save(store, build, loan, wallet)
    every = store.apps()
    assert not isinstance(every, list)
    every = list(every)
    assert [a["key"] for a in every] == sorted([loan[0].key, wallet[0].key])
    assert list(store.apps([wallet[0].key, "android:nope", wallet[0].key])) == [a for a in every if a["key"] == wallet[0].key]
    assert list(store.apps(reversed([a["key"] for a in every]))) == every
    assert list(store.apps([])) == []
    assert [a["counts"] for a in every] == [store.app(a["key"])["counts"] for a in every]


def test_an_opener_opens_the_same_index_again_in_another_process(store, build, loan):
    save(store, build, loan)
    again = pickle.loads(pickle.dumps(store.opener()))()  # as a worker process gets it
    try:
        assert list(again.apps()) == list(store.apps()) and again.app(loan[0].key) == store.app(loan[0].key)
    finally:
        again.close()


def test_rule_counts_count_findings_and_distinct_apps_by_status(store, build, loan, wallet, monkeypatch):
    monkeypatch.setattr(settings, "FINMON_ES_AGGREGATION_PAGE", 1)  # a page per bucket
    monkeypatch.setattr(settings, "FINMON_ES_PAGE_SIZE", 1)
    (snap, (perm, quote)), pay = loan, wallet[0]
    sms = build.perm(snap.key, "android.permission.READ_SMS")
    save(store, build, (snap, [perm, quote, sms]), (pay, [*wallet[1], build.perm(pay.key)]))
    assert store.rule_counts() == {"P101": {"count": 3, "apps": 2, "severity": {"high": 3}},
                                   "C202": {"count": 1, "apps": 1, "severity": {"high": 1}},
                                   "P102": {"count": 1, "apps": 1, "severity": {"medium": 1}}}
    store.save_analysis([snap], [build.analysis(snap, perm)], T2)  # the quote and READ_SMS are resolved
    assert store.rule_counts(status=("new", "open")) == {"P101": {"count": 2, "apps": 2, "severity": {"high": 2}},
                                                         "P102": {"count": 1, "apps": 1, "severity": {"medium": 1}}}
    assert store.rule_counts(status="resolved") == {"P101": {"count": 1, "apps": 1, "severity": {"high": 1}},
                                                    "C202": {"count": 1, "apps": 1, "severity": {"high": 1}}}


def test_resaving_the_same_analysis_is_idempotent(store, build, loan):
    save(store, build, loan, at=T1)
    first = store.findings()
    assert save(store, build, loan, at=T1) == {"new": 2, "open": 0, "resolved": 0}
    again = store.findings()
    assert again == first
    assert len(list(store.export("findings"))) == 2
    assert len(store.search("通讯录", kind="finding")) == 1  # the full-text row was not duplicated


def test_seen_again_is_open_and_keeps_first_seen(store, build, loan):
    save(store, build, loan, at=T1)
    assert save(store, build, loan, at=T2) == {"new": 0, "open": 2, "resolved": 0}
    for f in store.findings():
        assert (f.first_seen, f.last_seen, f.status) == (T1, T2, "open")


def test_lifecycle_new_open_resolved_reopened(store, build, loan):
    snap, (perm, quote) = loan
    save(store, build, loan, at=T1)
    counts = store.save_analysis([snap], [build.analysis(snap, perm)], T2)
    assert counts == {"new": 0, "open": 1, "resolved": 1}
    status = {f.id: f.status for f in store.findings()}
    assert status == {perm.id: "open", quote.id: "resolved"}
    assert store.findings(status="resolved")[0].last_seen == T1
    assert store.app(snap.key)["counts"]["high"] == 1  # resolved findings do not count
    # resolved once stays resolved (no double counting) ...
    assert store.save_analysis([snap], [build.analysis(snap, perm)], T2)["resolved"] == 0
    # ... and a finding produced again is open again, first_seen kept
    save(store, build, loan, at=T3)
    got = {f.id: f for f in store.findings()}
    assert (got[quote.id].status, got[quote.id].first_seen, got[quote.id].last_seen) == ("open", T1, T3)


def test_only_analysed_apps_get_findings_resolved(store, build, loan, wallet):
    save(store, build, loan, wallet, at=T1)
    snap, _ = loan
    counts = store.save_analysis([snap], [build.analysis(snap)], T2)  # only the loan app, now clean
    assert counts["resolved"] == 2
    assert {f.status for f in store.findings(app_key=wallet[0].key)} == {"new"}


def test_analysis_inputs_keep_the_latest_hash_per_app(store, build, loan, wallet):
    (snap, findings), other = loan, wallet[0]
    assert store.analysis_inputs() == {}
    store.save_listings([build.listing("com.example.listed")])  # an app never analysed has no input

    def save_inputs(at, inputs, *apps):
        store.save_analysis([a for a, _ in apps], [build.analysis(a, *fs) for a, fs in apps], at, inputs=inputs)

    save_inputs(T1, {snap.key: "loan-1", other.key: "wallet-1"}, loan, wallet)
    assert store.analysis_inputs() == {snap.key: "loan-1", other.key: "wallet-1"}
    save_inputs(T2, {snap.key: "loan-2", "android:not.in.batch": "x"}, loan)  # entries of other apps are ignored
    assert store.analysis_inputs() == {snap.key: "loan-2", other.key: "wallet-1"}
    save_inputs(T1, {snap.key: "loan-replayed"}, loan)  # an older analysis replayed late changes nothing
    assert store.analysis_inputs()[snap.key] == "loan-2"
    save_inputs(T2, {snap.key: "loan-2b"}, loan)  # the same analysis time: the last save wins, as for the app
    assert store.analysis_inputs()[snap.key] == "loan-2b"
    save_inputs(T3, None, loan)  # saved without an input: unknown, not the previous one
    assert store.analysis_inputs() == {other.key: "wallet-1"}
    save_inputs("2024-03-25T10:00:00+00:00", {other.key: "wallet-2"}, loan, wallet)
    assert store.analysis_inputs() == {other.key: "wallet-2"}
    assert "input_hash" not in store.app(other.key) and all("input_hash" not in a for a in store.apps())
    assert ids(store.findings(app_key=snap.key, status="open")) == ids(findings)  # findings as without inputs


def test_an_app_left_out_of_a_later_analysis_keeps_its_findings_and_input(store, build, loan, wallet):
    (snap, findings), (other, other_findings) = loan, wallet
    store.save_analysis([snap, other], [build.analysis(snap, *findings), build.analysis(other, *other_findings,
                                                                                        finance_type="payment")],
                        T1, inputs={snap.key: "loan-1", other.key: "wallet-1"})
    before = store.app(other.key)
    counts = store.save_analysis([snap], [build.analysis(snap)], T2, inputs={snap.key: "loan-2"})  # now clean
    assert counts == {"new": 0, "open": 0, "resolved": 2}
    assert store.analysis_inputs() == {snap.key: "loan-2", other.key: "wallet-1"}
    kept = store.findings(app_key=other.key)
    assert ids(kept) == ids(other_findings)
    assert [(f.status, f.first_seen, f.last_seen) for f in kept] == [("new", T1, T1)]
    assert store.app(other.key) == before  # analysed_at, counts, everything
    assert store.findings(status="resolved", app_key=other.key) == []
    assert {f.status for f in store.findings(app_key=snap.key)} == {"resolved"}


def test_findings_of_skipped_rules_are_not_resolved(store, build, loan):
    """A rule the analysis could not apply (e.g. R601 without a registry) proves nothing by its silence."""
    snap, (perm, quote) = loan
    save(store, build, loan, at=T1)
    counts = store.save_analysis([snap], [build.analysis(snap, perm)], T2, skipped_rules=[quote.rule_id])
    assert counts["resolved"] == 0
    assert {f.id: f.status for f in store.findings()} == {perm.id: "open", quote.id: "new"}
    assert store.save_analysis([snap], [build.analysis(snap, perm)], T3)["resolved"] == 1  # applied again: resolved


def test_an_older_analysis_replayed_late_changes_nothing(store, build, loan):
    snap, (perm, quote) = loan
    save(store, build, loan, at=T2)
    store.save_analysis([snap], [build.analysis(snap, perm)], T1)
    assert {f.status for f in store.findings()} == {"new"}
    assert all(f.last_seen == T2 for f in store.findings())


def test_one_finding_by_id_with_its_capture_updated_by_a_newer_analysis(store, build, loan):
    snap, (perm, quote) = loan
    first = "/data/crawls/a/xiaomi/captures.warc.gz#100;<urn:uuid:1>;sha256:" + "a" * 64
    later = "/data/crawls/b/xiaomi/captures.warc.gz#200;<urn:uuid:2>;sha256:" + "b" * 64
    cited = dataclasses.replace(perm, capture=first)
    assert cited.id == perm.id  # the capture is not part of the id
    store.save_analysis([snap], [build.analysis(snap, cited, quote)], T1)
    got = store.finding(perm.id)
    assert got == dataclasses.replace(cited, first_seen=T1, last_seen=T1, status="new")
    assert store.finding(quote.id).capture == ""  # none recorded
    assert store.finding("0" * 24) is None and store.finding("") is None
    assert store.captures() == {first}
    store.save_analysis([snap], [build.analysis(snap, dataclasses.replace(perm, capture=later))], T2)
    assert (store.finding(perm.id).capture, store.finding(perm.id).status) == (later, "open")
    assert store.finding(quote.id).status == "resolved" and store.captures() == {later}
    assert [f.capture for f in store.findings(app_key=snap.key, rule="P101")] == [later]
    exported = {row["id"]: row for row in store.export("findings")}
    assert exported[perm.id]["capture"] == later


def test_changes_in_a_window(store, build, loan, wallet):
    save(store, build, loan, at=T1)
    snap, (perm, _) = loan
    store.save_analysis([snap, wallet[0]], [build.analysis(snap, perm), build.analysis(wallet[0], *wallet[1])], T2)
    week2 = store.changes("2024-03-11T00:00:00+00:00", "2024-03-18T00:00:00+00:00")
    assert ids(week2["new"]) == ids(wallet[1])
    assert [f.rule_id for f in week2["resolved"]] == ["C202"]
    week1 = store.changes("2024-03-04T00:00:00Z", "2024-03-11T00:00:00Z")
    assert len(week1["new"]) == 2 and week1["resolved"] == []
    everything = store.changes("2024-01-01")
    assert len(everything["new"]) == 3 and everything["counts"] == {"new": 3, "resolved": 1}
    first = store.changes("2024-01-01", limit=1)
    assert [f.id for f in first["new"]] == [f.id for f in everything["new"]][:1] and first["counts"] == everything["counts"]
    assert store.changes("2024-01-01", limit=0) == {"new": [], "resolved": [], "counts": {"new": 3, "resolved": 1}}


def test_first_seen_reads_a_window_by_id_in_pages(store, build, loan, wallet):
    save(store, build, loan, at=T1)
    save(store, build, loan, wallet, at=T2)  # the loan app's findings seen again: first seen still T1
    assert ids(store.first_seen(T2)) == ids(wallet[1])
    assert ids(store.first_seen(T1, T2)) == ids(loan[1])
    assert store.first_seen(T1, T2, severity="medium") == [] and store.first_seen(T3) == []
    assert ids(store.first_seen("2024-01-01", severity="medium")) == ids(wallet[1])
    every = store.first_seen("2024-01-01")
    assert [f.id for f in every] == ids(loan[1] + wallet[1])  # by id
    pages, after = [], ""
    while page := store.first_seen("2024-01-01", after=after, limit=2):
        pages.append([f.id for f in page])
        after = page[-1].id
    assert pages == [[f.id for f in every[:2]], [every[2].id]]
    assert store.first_seen("2024-01-01", limit=0) == []
    assert every[0].first_seen.startswith("2024-03-04") and every[0].severity == "high"


def test_finding_filters(store, build, loan, wallet):
    save(store, build, loan, wallet)
    assert {f.rule_id for f in store.findings(rule="P101")} == {"P101"}
    assert {f.severity for f in store.findings(severity="medium")} == {"medium"}
    assert {f.family for f in store.findings(family="C")} == {"C"}
    assert len(store.findings(store="appgallery")) == 2  # only the loan app is on appgallery
    assert len(store.findings(store="xiaomi")) == 3
    assert store.findings(store="itunes") == []
    assert len(store.findings(finance_type="lending")) == 2
    assert [f.rule_id for f in store.findings(finance_type="payment")] == ["P102"]
    assert len(store.findings(status=["new", "open"])) == 3 and store.findings(status="resolved") == []
    everything = store.findings()
    assert [f.severity for f in everything] == ["high", "high", "medium"]  # most severe first
    assert store.findings(limit=1, offset=1) == everything[1:2]


def test_export_findings_and_apps(store, build, loan, wallet):
    save(store, build, loan, wallet)
    rows = list(store.export("findings"))
    assert len(rows) == 3 and len({r["id"] for r in rows}) == 3
    row = next(r for r in rows if r["rule_id"] == "C202")
    assert row["evidence"]["key"] == "contacts" and row["evidence"]["detail"] == "通讯录"
    assert row["app_name"] == "快乐借款" and row["family"] == "C" and row["status"] == "new"
    assert row["stores"] == ["appgallery", "xiaomi"] and row["resolved_at"] is None
    assert Finding.from_dict(row).id == row["id"]
    apps = list(store.export("apps"))
    assert {a["key"] for a in apps} == {loan[0].key, wallet[0].key}
    for table in (rows, apps):  # JSON lines, and CSV with nested values dumped as JSON (as `finmon export` does)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(table[0]))
        writer.writeheader()
        for r in table:
            json.dumps(r, ensure_ascii=False)
            writer.writerow({k: json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v
                             for k, v in r.items()})
        assert len(list(csv.DictReader(io.StringIO(out.getvalue())))) == len(table)
    with pytest.raises(ValueError):
        list(store.export("policies"))


# -- search --------------------------------------------------------------------------


def test_search_chinese_words_inside_long_sentences(store, build, loan, wallet):
    save(store, build, loan, wallet)
    hits = store.search("通讯录")  # 3 characters inside 我们会读取您的通讯录信息
    kinds = sorted(h["kind"] for h in hits)
    assert kinds == ["finding", "policy"]
    finding = next(h for h in hits if h["kind"] == "finding")
    assert finding["rule_id"] == "C202" and finding["app_name"] == "快乐借款" and finding["severity"] == "high"
    assert finding["stores"] == ["appgallery", "xiaomi"] and finding["rule_title"]
    start, end = finding["match"]
    assert finding["snippet"][start:end] == "通讯录"
    policy = next(h for h in hits if h["kind"] == "policy")
    assert policy["app_key"] == loan[0].key and policy["apps"][0]["name"] == "快乐借款"
    assert policy["url"] == "http://policies.test/p1.html" and policy["stores"] == ["appgallery", "xiaomi"]
    start, end = policy["match"]
    assert policy["snippet"][start:end] == "通讯录"
    two = store.search("姓名", kind="policy")  # 2 characters in 收集您的姓名、身份证号码
    assert [h["id"] for h in two] == [loan[0].policy.sha256]
    assert store.search("讯通") == []  # characters must be adjacent and in order
    assert store.search("银行卡号 手机号码", kind="policy")  # several words: all must occur
    assert store.search("银行卡号 存款证明") == []


def test_search_english_and_mixed(store, build, loan, wallet):
    save(store, build, loan, wallet)
    hits = store.search("precise location")
    assert [h["kind"] for h in hits] == ["policy"] and hits[0]["language"] == "en"
    assert store.search("PHONE number")[0]["app_name"] == "Easy Pay 支付"
    assert store.search("phone location") and store.search("location phone")
    assert store.search("locations") == []  # whole tokens, no stemming
    by_permission = store.search("READ_CONTACTS")
    assert [h["rule_id"] for h in by_permission] == ["P101"]
    assert store.search("android.permission.ACCESS_FINE_LOCATION")[0]["rule_id"] == "P102"
    assert store.search("支付")[0]["app_key"] == wallet[0].key  # app names are indexed with findings


def test_search_filters_and_paging(store, build, loan, wallet):
    save(store, build, loan, wallet)
    assert all(h["kind"] == "finding" for h in store.search("android", rule="P101"))
    assert [h["rule_id"] for h in store.search("permission", severity="medium")] == ["P102"]
    assert store.search("通讯录", store="itunes") == []
    assert {h["kind"] for h in store.search("通讯录", store="appgallery")} == {"finding", "policy"}
    assert store.search("location", finance_type="lending") == []
    everything = store.search("android")
    assert len(everything) == 2
    assert store.search("android", limit=1) + store.search("android", limit=1, offset=1) == everything
    assert store.search("android", limit=0) == []
    with pytest.raises(ValueError):
        store.search("android", kind="listing")



def test_search_by_developer_status_and_date(store, build, loan, wallet):
    save(store, build, loan, at=T1)
    save(store, build, wallet, at=T2)
    permission_ids = {loan[1][0].id, wallet[1][0].id}  # the findings with "android" in them
    assert {h["kind"] for h in store.search("通讯录", developer="快乐科技有限公司")} == {"finding", "policy"}
    assert store.search("通讯录", developer="快乐科技") == []  # the exact developer name
    assert store.search("android", status="resolved") == []
    assert {h["id"] for h in store.search("android", status=["new", "open"])} == permission_ids
    assert [h["kind"] for h in store.search("通讯录", status="new")] == ["finding"]  # status leaves policies out
    # [since, until) on a finding's last_seen and a policy's fetched_at (2024-03-04T08:05)
    assert [h["kind"] for h in store.search("通讯录", until=T1)] == ["policy"]
    assert [h["kind"] for h in store.search("通讯录", since="2024-03-04T09:00:00Z")] == ["finding"]
    assert store.search("android", since=T2)[0]["app_key"] == wallet[0].key
    assert len(store.search("android", since="2024-03-04", until="2024-03-05")) == 1
    snap, (perm, quote) = loan
    store.save_analysis([snap], [build.analysis(snap, quote)], T3)
    assert [h["id"] for h in store.search("android", status="resolved")] == [perm.id]
    with pytest.raises(ValueError):
        store.search("android", since="last week")


def test_apps_keep_the_sdks_found_in_their_apk(store, build, loan):
    import dataclasses

    from finmon.model import ApkInfo

    snap, findings = loan
    sdk = {"id": "getui", "name": "个推", "category": "push", "evidence": "com.igexin.sdk.PushManager"}
    with_apk = dataclasses.replace(snap, apk=ApkInfo(sha256="ab" * 32, size=10, package=snap.package, sdks=(sdk,)))
    store.save_analysis([with_apk], [build.analysis(with_apk, *findings)], T1)
    assert store.app(snap.key)["sdks"] == [sdk]
    assert [a["sdks"] for a in store.apps()] == [[sdk]]
    store.save_analysis([snap], [build.analysis(snap, *findings)], T2)  # an analysis without the APK
    assert store.app(snap.key)["sdks"] == []


def test_search_by_family_and_week_first_seen(store, build, loan, wallet):
    save(store, build, loan, at=T1)  # 2024-W10
    save(store, build, wallet, at=T2)  # 2024-W11
    assert {h["rule_id"] for h in store.search("android", family="P")} == {"P101", "P102"}
    assert [h["rule_id"] for h in store.search("通讯录", family="C")] == ["C202"]  # a family leaves policies out
    assert [h["app_key"] for h in store.search("android", week="2024-W11")] == [wallet[0].key]
    assert store.search("android", week="2024-W12") == []
    with pytest.raises(ValueError):
        store.search("android", week="2024-13")


def test_facets_count_the_matching_findings(store, build, loan, wallet):
    save(store, build, loan, at=T1)
    save(store, build, wallet, at=T2)
    facets = store.facets("android")
    assert facets["total"] == {"finding": 2, "policy": 0}
    assert facets["rule"] == [{"value": "P101", "count": 1}, {"value": "P102", "count": 1}]
    assert facets["severity"] == [{"value": "high", "count": 1}, {"value": "medium", "count": 1}]
    assert facets["family"] == [{"value": "P", "count": 2}]
    assert facets["status"] == [{"value": "new", "count": 2}]
    assert facets["store"] == [{"value": "xiaomi", "count": 2}, {"value": "appgallery", "count": 1}]  # by app
    assert facets["finance_type"] == [{"value": "lending", "count": 1}, {"value": "payment", "count": 1}]
    assert facets["developer"] == [{"value": "快乐科技有限公司", "count": 2}]
    assert facets["week"] == [{"value": "2024-W11", "count": 1}, {"value": "2024-W10", "count": 1}]  # newest first
    contacts = store.facets("通讯录")
    assert contacts["total"] == {"finding": 1, "policy": 1}
    assert contacts["rule"] == [{"value": "C202", "count": 1}]
    # the filters of search narrow the counts alike, and the totals are those of search
    narrowed = store.facets("android", week="2024-W10", store="appgallery")
    assert narrowed["total"] == {"finding": 1, "policy": 0} and narrowed["rule"] == [{"value": "P101", "count": 1}]
    assert len(store.search("android", week="2024-W10", store="appgallery")) == 1
    assert store.facets("通讯录", severity="high")["total"] == {"finding": 1, "policy": 0}
    assert store.facets("通讯录", kind="policy")["total"] == {"finding": 0, "policy": 1}
    assert store.facets("nothing-like-this")["total"] == {"finding": 0, "policy": 0}
    assert store.facets("")["rule"] == [] and store.facets("")["total"] == {"finding": 0, "policy": 0}
    with pytest.raises(ValueError):
        store.facets("android", week="W10")


def test_search_sort_orders_and_pages(store, build, loan, wallet):
    save(store, build, loan, at=T1)
    save(store, build, wallet, at=T2)
    newest = store.search("android", sort="newest")
    assert newest[0]["app_key"] == wallet[0].key and len(newest) == 2
    by_severity = store.search("permission", sort="severity")
    assert [h["severity"] for h in by_severity] == ["high", "medium"]
    assert [h["kind"] for h in store.search("通讯录", sort="severity")] == ["finding", "policy"]  # policies last
    for order in ("relevance", "newest", "severity"):
        everything = store.search("android permission", sort=order)
        pages = [store.search("android permission", sort=order, limit=1, offset=i) for i in range(len(everything) + 1)]
        assert [hit for page in pages for hit in page] == everything
    with pytest.raises(ValueError):
        store.search("android", sort="random")


def test_filters_follow_changes_of_the_app(store, build, loan):
    """Store, finance type and developer filters see an app as it is now, not as it was."""
    save(store, build, loan, at=T1)
    snap, findings = loan
    assert store.findings(store="itunes") == [] and store.search("通讯录", store="itunes") == []
    store.save_listings([build.listing(store="itunes", store_id="id1", fetched_at="2024-03-05T08:00:00Z")])
    assert ids(store.findings(store="itunes")) == ids(findings)
    assert {h["kind"] for h in store.search("通讯录", store="itunes")} == {"finding", "policy"}
    assert store.app(snap.key)["stores"] == ["appgallery", "itunes", "xiaomi"]
    store.save_analysis([snap], [build.analysis(snap, findings[0], finance_type="payment")], T2)
    assert store.findings(finance_type="lending") == []
    assert len(store.findings(finance_type="payment")) == 2  # the resolved finding too
    assert [h["kind"] for h in store.search("通讯录", finance_type="payment")] == ["finding", "policy"]
    renamed = build.app(build.listing(developer="新科技有限公司", fetched_at="2024-03-18T08:00:00Z"),
                        versions=[snap.policy])
    store.save_analysis([renamed], [build.analysis(renamed, findings[0])], T3)
    assert store.search("通讯录", developer="快乐科技有限公司") == []
    assert [h["kind"] for h in store.search("通讯录", developer="新科技有限公司")] == ["finding", "policy"]


HOSTILE = [
    "", " ", '"', '""', "'", "*", "通讯录*", "phone*", "AND", "OR", "NOT", "NEAR", "a OR b", "NEAR(a b)",
    "phone NEAR/2 number", "body:通讯录", "{body}: x", "(", ")", "((通讯录", "^phone", "-phone", "+", "\x00", "a\x00b",
    "通讯录\" OR \"", '" OR 1=1 --', "'; DROP TABLE findings; --", "\\", "\ud800", "🙂", "ｐｈｏｎｅ", "x" * 5000,
    " ".join(["通讯录"] * 200),
]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_never_raise(store, build, loan, query):
    save(store, build, loan)
    hits = store.search(query)
    assert isinstance(hits, list)
    if query in ("", " ", '"', "*", "(", ")", "\x00", "\\"):
        assert hits == []
    assert len(store.findings()) == 2  # nothing was dropped


def test_operators_are_searched_as_words(store, build, loan):
    save(store, build, loan)
    assert store.search("通讯录 OR 不存在的词") == []  # OR is a word here, not an operator
    assert store.search('"通讯录"')  # quotes are ignored, not syntax
    assert store.search("通讯录*")  # so is the prefix star
    assert store.search("ＲＥＡＤ＿ＣＯＮＴＡＣＴＳ") == store.search("READ_CONTACTS") != []  # full-width is normalised
