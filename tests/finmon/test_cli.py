"""Every CLI command is documented in the README and answers --help."""
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from finmon.cli import main

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def command_paths(group: click.Group, prefix: str = "finmon"):
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            yield from command_paths(command, path)
        else:
            yield path, command


def test_every_command_is_documented_in_the_readme():
    paths = list(command_paths(main))
    assert len(paths) >= 10
    for path, command in paths:
        assert f"`{path}" in README, f"{path} is not documented in README.md"
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert any(opt in README for opt in param.opts if opt.startswith("--")) or param.name == "help", (
                    f"{path}: option {param.opts} missing from README"
                )


def test_every_command_answers_help():
    runner = CliRunner()
    for path, _ in command_paths(main):
        result = runner.invoke(main, path.split()[1:] + ["--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output


def test_readme_opens_with_the_two_commands():
    block = README.split("```")[1]
    assert "make demo" in block and "make test" in block
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert "make test" in ci


def test_unknown_store_in_crawl_is_a_clear_error():
    result = CliRunner().invoke(main, ["crawl", "--out", "x", "--store", "nosuch=http://127.0.0.1:1"])
    assert result.exit_code == 2
    assert "expected NAME=URL" in result.output


def test_search_without_index_is_a_clear_error(tmp_path):
    result = CliRunner(env={"FINMON_ES_URL": ""}).invoke(main, ["search", "通讯录", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 1
    assert "no index at" in result.output


def test_demo_twice_into_one_directory_gives_the_same_findings(tmp_path):
    """The README's main job, run twice: same finding ids, no duplicates, the report path last."""
    import json as _json
    import subprocess
    import sys

    def demo():
        done = subprocess.run(
            [sys.executable, "-m", "finmon.cli", "demo", "--apps", "40", "--seed", "3", "--out", str(tmp_path)],
            capture_output=True, text=True, timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        report = Path(done.stdout.strip().splitlines()[-1])
        assert report.name == "index.html" and report.exists()
        exported = subprocess.run(
            [sys.executable, "-m", "finmon.cli", "export", "findings", "--db", str(tmp_path / "finmon.db")],
            capture_output=True, text=True, timeout=60, check=True,
        )
        return [_json.loads(line)["id"] for line in exported.stdout.splitlines()]

    first, second = demo(), demo()
    assert first and sorted(first) == sorted(second)
    assert len(second) == len(set(second))

    runner = CliRunner()
    db = ["--db", str(tmp_path / "finmon.db")]
    exported = [_json.loads(line) for line in runner.invoke(main, ["export", "findings", *db]).output.splitlines()]
    assert {"P", "C", "D", "S", "V"} <= {f["rule_id"][0] for f in exported}
    csv_out = runner.invoke(main, ["export", "apps", "--format", "csv", *db]).output.splitlines()
    assert csv_out[0].startswith("key,") and len(csv_out) > 30
    term = next(f["evidence"]["detail"] for f in exported if f["rule_id"] == "C202")  # the quoted data term
    hits = runner.invoke(main, ["search", term, "--json", "--rule", "C202", *db]).output.splitlines()
    assert hits and all(_json.loads(h)["rule_id"] == "C202" for h in hits)
    for hostile in ['"', "通讯录 OR (", "NEAR(a b)", "*"]:
        assert runner.invoke(main, ["search", hostile, *db]).exit_code == 0



def test_search_filters_sorts_and_pages(tmp_path):
    from index.sqlite import SQLiteStore
    from tests.reports.conftest import populate

    with SQLiteStore(tmp_path / "finmon.db") as store:
        populate(store)
    runner, db = CliRunner(env={"FINMON_ES_URL": ""}), ["--db", str(tmp_path / "finmon.db"), "--json"]

    def search(*args):
        result = runner.invoke(main, ["search", *args, *db])
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in result.output.splitlines()]

    everything = search("通讯录", "--sort", "severity")
    assert [h["kind"] for h in everything] == ["finding", "finding", "policy"]
    assert search("通讯录", "--sort", "severity", "--limit", "1", "--offset", "2") == everything[2:]
    assert [h["kind"] for h in search("通讯录", "--kind", "policy", "--store", "appgallery")] == ["policy"]
    mine = search("通讯录", "--developer", "某某科技有限公司", "--finance-type", "lending", "--sort", "severity")
    assert [(h["kind"], h["app_name"]) for h in mine] == [("finding", "快乐借款"), ("policy", "稳健基金理财")]  # shared policy
    assert search("android", "--status", "resolved", "--since", "2024-03-01", "--until", "2024-03-08")
    assert search("android", "--status", "resolved", "--since", "2024-03-11") == []
    assert runner.invoke(main, ["search", "x", "--since", "last week", *db]).exit_code == 2

def test_rules_lists_the_table():
    result = CliRunner().invoke(main, ["rules", "--json"])
    table = json.loads(result.output)
    assert {"P101", "P102", "C201", "C202", "D301"} <= {r["id"] for r in table}
    assert all(r["title"] and r["regulation"] and r["severity"] for r in table)


FIXTURES = Path(__file__).resolve().parents[1] / "crawler" / "fixtures"


def test_parse_prints_a_real_itunes_search_response_completely():
    result = CliRunner().invoke(main, ["parse", "itunes", str(FIXTURES / "itunes_search.json"), "--json"])
    assert result.exit_code == 0, result.output
    listings = json.loads(result.output)
    raw = json.loads((FIXTURES / "itunes_search.json").read_text(encoding="utf-8"))
    assert len(listings) == raw["resultCount"]
    assert [x["store_id"] for x in listings] == [str(r["trackId"]) for r in raw["results"]]
    assert all(x["package"] and x["developer"] and x["version"] for x in listings)


def test_parse_reports_layout_changed():
    result = CliRunner().invoke(main, ["parse", "appgallery", str(FIXTURES / "appgallery_detail_layout_changed.json")])
    assert result.exit_code == 2
    assert "layout changed" in result.output


def _drop_af_field(html: str, path: tuple) -> str:
    """A Google Play page with one value of its first AF_initDataCallback block's data set to null."""
    start = html.index("data:", html.index("AF_initDataCallback")) + len("data:")
    end = html.index(", sideChannel: {}});</script>", start)
    data = json.loads(html[start:end])
    target = data
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = None
    return html[:start] + json.dumps(data, ensure_ascii=False) + html[end:]


def _without_key(text: str, key: str) -> str:
    """A JSON document with every ``key`` removed, wherever it is."""
    def drop(node):
        if isinstance(node, dict):
            return {k: drop(v) for k, v in node.items() if k != key}
        return [drop(v) for v in node] if isinstance(node, list) else node
    return json.dumps(drop(json.loads(text)), ensure_ascii=False)


# (page type, fixture, how a required field is taken away, what the message names). The Google Play and MyApp
# fixtures are real responses (fixtures/SOURCES.md); the others are hand-made in the stores' formats.
LAYOUT_CHANGES = [
    ("itunes", "itunes_search.json", lambda t: _without_key(t, "bundleId"), "bundleId"),
    ("apple-page", "apple_app_page.html", lambda t: t.replace("app-privacy", "app-data"), "app-privacy"),
    ("appgallery-search", "appgallery_search.json", lambda t: _without_key(_without_key(t, "detailId"), "appid"),
     "appid"),
    ("appgallery", "appgallery_detail.json", lambda t: _without_key(t, "developer"), "detailappinfocard.developer"),
    ("xiaomi-search", "xiaomi_search.html", lambda t: t.replace('class="applist"', 'class="apps"'), "applist"),
    ("xiaomi", "xiaomi_detail.html", lambda t: t.replace("<h3>", "<h4>").replace("</h3>", "</h4>"), "name"),
    ("googleplay-search", "googleplay_search_panda.html", lambda t: t.replace("AF_initDataCallback", "AF_other"),
     "search result sections"),
    ("googleplay", "googleplay_details_minecraft.html", lambda t: _drop_af_field(t, (1, 2, 68)), "developer"),
    ("googleplay-datasafety", "googleplay_datasafety_translate.html", lambda t: _drop_af_field(t, (1, 2, 1)),
     "Data safety record"),
    ("googleplay-permissions", "googleplay_permissions_translate.txt", lambda t: t.replace("xdSrCf", "other"),
     "xdSrCf frame"),
    ("myapp-search", "myapp_search_real.json", lambda t: _without_key(t, "pkgName"), "pkgName"),
    ("myapp-category", "myapp_category.json", lambda t: _without_key(t, "pkgName"), "pkgName"),
    ("myapp", "myapp_detail_real.html", lambda t: t.replace('"pkg_name":"com.larus.nova",', ""), "pkg_name"),
]


@pytest.mark.parametrize(("page_type", "fixture", "break_it", "missing"), LAYOUT_CHANGES,
                         ids=[case[0] for case in LAYOUT_CHANGES])
def test_parse_names_what_is_missing_when_a_required_field_is_taken_away(tmp_path, page_type, fixture, break_it,
                                                                         missing):
    whole = CliRunner().invoke(main, ["parse", page_type, str(FIXTURES / fixture), "--json"])
    assert whole.exit_code == 0, whole.output  # the saved response parses
    broken = tmp_path / fixture
    changed = break_it((FIXTURES / fixture).read_text(encoding="utf-8"))
    assert changed != (FIXTURES / fixture).read_text(encoding="utf-8")
    broken.write_text(changed, encoding="utf-8")
    result = CliRunner().invoke(main, ["parse", page_type, str(broken)])
    assert result.exit_code == 2, result.output
    assert "layout changed" in result.output and missing in result.output, result.output


def test_market_truth_prints_expected_rules():
    truth = json.loads(CliRunner().invoke(main, ["market", "truth", "--apps", "20", "--seed", "1"]).output)
    assert len(truth["app_list"]) == 20
    assert any(app["expected"] for app in truth["app_list"])


def test_demo_with_finmon_es_url_indexes_everything_into_elasticsearch(tmp_path, es_url, drop_es_prefix):
    import os
    import subprocess
    import sys
    import uuid

    from index.elastic import ElasticStore

    prefix = f"finmon-demo-{uuid.uuid4().hex[:8]}"

    def run(*args, es: bool):
        env = {**os.environ, "FINMON_ES_URL": es_url if es else "", "FINMON_ES_PREFIX": prefix}
        done = subprocess.run([sys.executable, "-m", "finmon.cli", *args], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    demo = ["demo", "--apps", "30", "--seed", "5"]
    try:
        assert run(*demo, "--out", str(tmp_path / "es"), es=True).strip().endswith("index.html")
        assert not (tmp_path / "es" / "finmon.db").exists()
        run(*demo, "--out", str(tmp_path / "lite"), es=False)
        for kind in ("findings", "apps"):
            from_es = run("export", kind, es=True).splitlines()
            from_lite = run("export", kind, "--db", str(tmp_path / "lite" / "finmon.db"), es=False).splitlines()
            key = "id" if kind == "findings" else "key"
            assert from_es and sorted(json.loads(x)[key] for x in from_es) == sorted(json.loads(x)[key] for x in from_lite)
        lite_db = ["--db", str(tmp_path / "lite" / "finmon.db")]
        app_key = next(a["key"] for a in map(json.loads, run("export", "apps", *lite_db, es=False).splitlines())
                       if a["counts"]["high"])
        explained = [json.loads(run("explain", app_key, "--json", *db, es=es)) for db, es in (([], True), (lite_db, False))]
        # two demo runs: same findings, apart from capture times and the simulator's port in URLs
        same = [[(f["id"], f["rule_id"], f["severity"], f["status"], f["evidence"]["text"], f["rule"]["title"])
                 for f in doc["findings"]] for doc in explained]
        assert same[0] and same[0] == same[1]
        assert set(explained[0]["not_applied"]) == set(explained[1]["not_applied"]) == {"R601"}
    finally:
        store = ElasticStore(es_url, prefix=prefix)
        drop_es_prefix(store.es, prefix)
        store.close()


# -- R6xx, the registry and `finmon explain` ---------------------------------------------------

EXPLAIN_DESC = "本平台保本保息，年化收益高达18%。理财有风险，投资需谨慎。"


def _indexed_apps(db, registry=None):
    """Two hand-made apps analysed (the R602 one with a listing URL) and indexed into ``db``."""
    import analyzers
    from finmon import jobs
    from finmon.model import Listing, merge_listings
    from index.sqlite import SQLiteStore

    def listing(package, name, description="", permissions=()):
        return Listing(store="xiaomi", store_id=package, platform="android", package=package, name=name,
                       developer="鑫鑫科技有限公司", category="金融理财", source_url=f"http://store.test/{package}",
                       fetched_at="2026-01-05T00:00:00+00:00", description=description, permissions=permissions)

    apps = merge_listings([listing("com.xinxin.licai", "鑫鑫理财", EXPLAIN_DESC),
                           listing("com.xinxin.loan", "鑫鑫借款", permissions=("android.permission.READ_CONTACTS",))],
                          {}, {})
    with SQLiteStore(db) as store:
        store.save_rules(jobs.rules_with_status(registry))
        store.save_analysis(apps, [analyzers.analyze(a, registry=registry) for a in apps], "2026-01-05T01:00:00+00:00")


def test_explain_prints_every_finding_with_its_evidence(tmp_path):
    db = tmp_path / "finmon.db"
    _indexed_apps(db)
    runner = CliRunner(env={"FINMON_ES_URL": ""})
    by_key = runner.invoke(main, ["explain", "android:com.xinxin.licai", "--db", str(db)])
    assert by_key.exit_code == 0, by_key.output
    out = by_key.output
    assert "鑫鑫理财 (android:com.xinxin.licai)" in out
    start = EXPLAIN_DESC.index("本平台")
    assert f"evidence (quote guaranteed_return, offsets [{start}:{EXPLAIN_DESC.index('。') + 1}]): 本平台保本保息，年化收益高达18%。" in out
    assert "R602 应用商店页面含非法集资宣传用语" in out and "severity high, confidence medium, status new" in out
    assert "detail: description: 保本保息" in out and "url: http://store.test/com.xinxin.licai" in out
    assert "first seen 2026-01-05" in out and "《防范和处置非法集资条例》" in out
    assert "C201" in out  # no policy
    assert "R601 not applied in the last analysis: no registry configured" in out

    by_name = runner.invoke(main, ["explain", "鑫鑫借款", "--db", str(db), "--json"])
    assert by_name.exit_code == 0, by_name.output
    doc = json.loads(by_name.output)
    assert doc["app"]["key"] == "android:com.xinxin.loan" and doc["app"]["name"] == "鑫鑫借款"
    perm = [f for f in doc["findings"] if f["rule_id"] == "P101"]
    assert perm and perm[0]["evidence"]["text"] == "android.permission.READ_CONTACTS"
    assert perm[0]["rule"]["title"] and perm[0]["regulation"] and perm[0]["status"] == "new"
    assert set(doc["not_applied"]) == {"R601"}


def test_explain_unknown_app_is_a_clear_error_with_suggestions(tmp_path):
    db = tmp_path / "finmon.db"
    _indexed_apps(db)
    runner = CliRunner(env={"FINMON_ES_URL": ""})
    result = runner.invoke(main, ["explain", "鑫鑫理才", "--db", str(db)])
    assert result.exit_code == 1
    assert "no app '鑫鑫理才' in the index" in result.output and "did you mean: 鑫鑫理财" in result.output
    result = runner.invoke(main, ["explain", "android:com.nope", "--db", str(db)])
    assert result.exit_code == 1 and "no app 'android:com.nope'" in result.output
    assert runner.invoke(main, ["explain", "x", "--db", str(tmp_path / "none.db")]).exit_code == 1


def test_explain_with_a_registry_shows_r601(tmp_path):
    from analyzers import Registry

    registry = Registry.from_rows([{"app_name": "鑫鑫理财", "package": "", "developer": "鑫鑫科技",
                                    "licence_no": "", "licence_type": "", "registered_on": ""}], source="reg.csv")
    db = tmp_path / "finmon.db"
    _indexed_apps(db, registry)
    runner = CliRunner(env={"FINMON_ES_URL": ""})
    registered = runner.invoke(main, ["explain", "鑫鑫理财", "--db", str(db)]).output
    assert "R601" not in registered
    missing = runner.invoke(main, ["explain", "鑫鑫借款", "--db", str(db)]).output
    assert "R601 应用或开发者不在登记名单中" in missing and "evidence (absence registry): 未在登记名单中找到" in missing
    assert "looked up in reg.csv" in missing


def test_rules_lists_r6xx_and_whether_they_apply(tmp_path):
    runner = CliRunner(env={"FINMON_REGISTRY": ""})
    table = {r["id"]: r for r in json.loads(runner.invoke(main, ["rules", "--json"]).output)}
    assert (table["R601"]["family"], table["R602"]["family"]) == ("R", "R")
    assert table["R601"]["family_name"] == "registration and marketing"
    assert table["R601"]["applied"] is False and table["R602"]["applied"] is True
    text = runner.invoke(main, ["rules"])
    assert "R601 not applied" in text.output and "R602" in text.output

    reg = tmp_path / "registry.csv"
    reg.write_text("\ufeffapp_name,package,developer,licence_no,licence_type,registered_on\n"
                   "星河支付,com.xinghe.pay,星河支付科技有限公司,Z1,支付业务许可证,2020-06-01\n", encoding="utf-8")
    applied = json.loads(CliRunner(env={"FINMON_REGISTRY": str(reg)}).invoke(main, ["rules", "--json"]).output)
    assert all(r["applied"] for r in applied)


def test_a_bad_registry_is_a_clear_error(tmp_path):
    crawl = tmp_path / "crawl"
    crawl.mkdir()
    missing = CliRunner(env={"FINMON_REGISTRY": str(tmp_path / "nope.csv"), "FINMON_ES_URL": ""}).invoke(
        main, ["analyze", str(crawl), "--db", str(tmp_path / "f.db")])
    assert missing.exit_code == 1 and "FINMON_REGISTRY: registry" in missing.output
    bad = tmp_path / "bad.csv"
    bad.write_text("name,package\na,b\n", encoding="utf-8")
    result = CliRunner(env={"FINMON_REGISTRY": str(bad)}).invoke(main, ["rules"])
    assert result.exit_code == 1 and "columns missing" in result.output


def test_apk_prints_the_design_json_and_refuses_a_broken_file(tmp_path):
    from market.apk import ApkSpec, Component, build_apk

    spec = ApkSpec(package="com.example.loan", version_name="2.0.1", target_sdk=27, label="闪电借款",
                   permissions=("android.permission.READ_CALL_LOG",), debuggable=True,
                   components=(Component("receiver", ".Push", exported=True),),
                   classes=("cn.jpush.android.api.JPushInterface", "com.example.loan.Main"))
    path = tmp_path / "loan.apk"
    path.write_bytes(build_apk(spec))
    result = CliRunner().invoke(main, ["apk", str(path), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert {"package", "version", "permissions", "sdks", "manifest", "findings"} <= set(doc)
    assert (doc["package"], doc["version"], doc["permissions"]) == ("com.example.loan", "2.0.1",
                                                                   ["android.permission.READ_CALL_LOG"])
    assert doc["sdks"] == [{"name": "极光推送", "category": "push", "evidence": "cn.jpush.android.api.JPushInterface",
                            "id": "jpush"}]
    assert doc["manifest"] == {"debuggable": True, "allowBackup": True, "usesCleartextTraffic": True,
                               "exported_unprotected": [{"kind": "receiver", "name": "com.example.loan.Push"}]}
    rules = sorted({f["rule_id"] for f in doc["findings"]})
    assert rules == ["P101", "V501", "V502", "V503", "V504", "V505"]
    text = CliRunner().invoke(main, ["apk", str(path)])
    assert text.exit_code == 0 and "极光推送 [push]" in text.output and "V501 high" in text.output
    broken = tmp_path / "broken.apk"
    broken.write_bytes(b"PK not really")
    bad = CliRunner().invoke(main, ["apk", str(broken)])
    assert bad.exit_code == 1 and bad.output.count("\n") == 1 and "not a readable APK" in bad.output


def test_policy_diff_shows_declared_types_and_sentences_that_changed(tmp_path):
    import hashlib

    from analyzers import analyze
    from finmon.model import POLICY_OK, AppSnapshot, PolicyVersion
    from index.sqlite import SQLiteStore

    def version(text, at):
        return PolicyVersion(url="http://p/1", final_url="http://p/1", fetched_at=at,
                             sha256=hashlib.sha256(text.encode()).hexdigest(), text=text, language="zh",
                             effective_date=at[:10])

    old = version("我们会收集您的手机号码，用于登录。我们不会出售您的信息。", "2026-11-02T00:00:00+00:00")
    new = version("我们会收集您的手机号码，用于登录。我们会读取您的通讯录，用于风控。我们不会出售您的信息。",
                  "2026-11-09T00:00:00+00:00")
    store = SQLiteStore(tmp_path / "finmon.db")
    for v in (old, new):
        app = AppSnapshot(key="android:com.x.loan", platform="android", package="com.x.loan", name="闪电借款",
                          developer="x", category="", policy=v, policy_status=POLICY_OK, policy_url=v.url)
        store.save_analysis([app], [analyze(app)], v.fetched_at)
    store.close()
    db = ["--db", str(tmp_path / "finmon.db")]
    result = CliRunner(env={"FINMON_ES_URL": ""}).invoke(main, ["policy", "diff", "闪电借款", "--json", *db])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert (doc["from"]["sha256"], doc["to"]["sha256"]) == (old.sha256, new.sha256)
    assert doc["declared_added"] == ["contacts"] and doc["declared_removed"] == []
    assert "+我们会读取您的通讯录，用于风控。" in doc["diff"] and not any(line.startswith("-我们") for line in doc["diff"])
    text = CliRunner(env={"FINMON_ES_URL": ""}).invoke(main, ["policy", "diff", "android:com.x.loan", *db])
    assert "declared data types added: contacts; removed: -" in text.output
    bad = CliRunner(env={"FINMON_ES_URL": ""}).invoke(main, ["policy", "diff", "android:com.x.loan", "--to", "zz", *db])
    assert bad.exit_code == 1 and "0 versions of android:com.x.loan start with 'zz'" in bad.output


def test_schedule_list_trigger_and_status_without_a_running_scheduler(tmp_path):
    env = {"FINMON_DATA_DIR": str(tmp_path / "data"), "FINMON_ES_URL": "", "FINMON_DB": "",
           "FINMON_STORE_ITUNES": "", "FINMON_STORE_APPGALLERY": "http://127.0.0.1:9/appgallery",
           "FINMON_STORE_XIAOMI": ""}
    runner = CliRunner(env=env)
    listed = runner.invoke(main, ["schedule", "list"])
    assert listed.exit_code == 0 and [line.split()[0] for line in listed.output.splitlines()] == [
        "crawl:appgallery", "report:weekly", "retention"]
    triggered = runner.invoke(main, ["schedule", "trigger", "crawl:appgallery"])
    assert triggered.exit_code == 0 and "it runs when the scheduler starts" in triggered.output
    unknown = runner.invoke(main, ["schedule", "trigger", "crawl:nosuch"])
    assert unknown.exit_code == 1 and "unknown job 'crawl:nosuch'" in unknown.output
    status = json.loads(runner.invoke(main, ["schedule", "status", "--json"]).output)
    assert status["scheduler_pid"] is None
    assert [(j["id"], j["last_run"]) for j in status["jobs"]][:1] == [("crawl:appgallery", None)]
    text = runner.invoke(main, ["schedule", "status"])
    assert "scheduler: not running" in text.output and "never run" in text.output


def test_market_serve_passes_the_hostile_share_and_fault_rate(monkeypatch):
    import market.server

    served = {}
    monkeypatch.setattr(market.server, "serve", lambda **kwargs: served.update(kwargs))
    result = CliRunner().invoke(main, ["market", "serve", "--apps", "10", "--port", "0", "--hostile", "0.2",
                                       "--fault-rate", "0.3"])
    assert result.exit_code == 0, result.output
    assert served["hostile"] == 0.2 and served["apps"] == 10 and served["fault_rate"] == 0.3
    assert CliRunner().invoke(main, ["market", "serve", "--hostile", "1.5"]).exit_code == 2
    assert CliRunner().invoke(main, ["market", "serve", "--fault-rate", "-1"]).exit_code == 2


def test_market_truth_names_the_data_faults_of_the_fault_rate():
    def faulted(*args):
        result = CliRunner().invoke(main, ["market", "truth", "--apps", "60", *args])
        assert result.exit_code == 0, result.output
        return sum(1 for app in json.loads(result.output)["app_list"] if app["faults"])

    assert faulted("--fault-rate", "0.5") > faulted() + 10


def test_report_into_the_archive_prints_the_weeks_report(tmp_path):
    from index.sqlite import SQLiteStore
    from tests.reports.conftest import populate

    db, root = tmp_path / "finmon.db", tmp_path / "reports"
    with SQLiteStore(db) as store:
        populate(store)  # its latest analysis is in 2024-W11
    runner = CliRunner(env={"FINMON_ES_URL": ""})
    result = runner.invoke(main, ["report", "--db", str(db), "--archive", str(root), "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == str(root / "2024-W11" / "index.html")
    assert 'id="week-2024-W11"' in (root / "index.html").read_text(encoding="utf-8")
    both = runner.invoke(main, ["report", "--db", str(db), "--archive", str(root), "--out", str(tmp_path / "r")])
    assert both.exit_code == 2 and "give --out or --archive, not both" in both.output
    assert runner.invoke(main, ["report", "--db", str(db), "--out", str(tmp_path / "r"), "--workers", "0"]).exit_code == 0
    refused = runner.invoke(main, ["report", "--db", str(db), "--archive", str(tmp_path / "r")])
    assert refused.exit_code == 1 and "is not a weekly report archive's index" in refused.output.splitlines()[-1]
