"""Every CLI command is documented in the README and answers --help."""
import json
from pathlib import Path

import click
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
    families = {_json.loads(line)["rule_id"][0] for line in runner.invoke(main, ["export", "findings", *db]).output.splitlines()}
    assert {"P", "C", "D"} <= families
    csv_out = runner.invoke(main, ["export", "apps", "--format", "csv", *db]).output.splitlines()
    assert csv_out[0].startswith("key,") and len(csv_out) > 30
    hits = runner.invoke(main, ["search", "通讯录", "--json", "--rule", "C202", *db]).output.splitlines()
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
    finally:
        store = ElasticStore(es_url, prefix=prefix)
        drop_es_prefix(store.es, prefix)
        store.close()
