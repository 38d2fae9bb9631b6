"""Bad arguments, bad files and a bad environment give one clear error line and a non-zero exit, never a traceback."""
import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from finmon.cli import main

LABELS = Path(__file__).resolve().parents[1] / "analyzers" / "data" / "real_policy_labels.jsonl"
DEEP = "[" * 100_000 + "]" * 100_000


def invoke(args, env=None):
    result = CliRunner().invoke(main, args, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{args}: {result.exception!r}\n{result.output}")
    assert "Traceback" not in result.output
    return result


def one_line_error(args, match: str, code: int = 1, env=None):
    result = invoke(args, env)
    assert result.exit_code == code, (args, result.output)
    assert match in result.output.strip().splitlines()[-1], result.output
    return result


def write_lines(path: Path, *rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


GOOD_ROW = {"id": "a", "text": "我们收集您的手机号码。", "annotations": [{"label": "data", "short_label": "PHO",
                                                                  "start": 6, "end": 10}]}


@pytest.mark.parametrize("corpus", ["ca4p", "appch"])
@pytest.mark.parametrize("bad", [{**GOOD_ROW, "id": [1]}, {**GOOD_ROW, "id": {"a": 1}}, DEEP, [1, 2],
                                 {**GOOD_ROW, "annotations": [{**GOOD_ROW["annotations"][0], "label": ["data"]}]},
                                 {**GOOD_ROW, "annotations": [{**GOOD_ROW["annotations"][0], "short_label": ["PHO"]}]}])
def test_eval_skips_and_counts_malformed_corpus_lines(tmp_path, corpus, bad):
    path = write_lines(tmp_path / "c.jsonl", GOOD_ROW, bad)
    result = invoke(["eval", corpus, str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["bad_lines"] == 1


def test_eval_of_a_file_with_no_usable_line_is_one_error(tmp_path):
    one_line_error(["eval", "ca4p", str(write_lines(tmp_path / "c.jsonl", DEEP, [1]))], "no usable line (2 bad)")


def labelled_policy(tmp_path) -> tuple[dict, Path]:
    """One real label line and a data folder holding a stand-in text under its corpus file name and id."""
    label = json.loads(LABELS.read_text(encoding="utf-8").splitlines()[0])
    data = tmp_path / "data"
    data.mkdir()
    write_lines(data / label["corpus"], {**GOOD_ROW, "id": label["id"]})
    return label, data


def test_eval_clauses_skips_malformed_labels_and_refuses_a_file_of_them(tmp_path):
    label, data = labelled_policy(tmp_path)
    bad = [{**label, "id": [1]}, {**label, "withdrawal": [True]}, {**label, "collects": "sms"}, DEEP, [label]]
    one_line_error(["eval", "clauses", str(write_lines(tmp_path / "l.jsonl", *bad)), "--data", str(data)],
                   "no usable label line (5 bad)")
    result = invoke(["eval", "clauses", str(write_lines(tmp_path / "m.jsonl", label, *bad)), "--data", str(data)])
    assert result.exit_code == 0 and "5 bad line(s)" in result.output, result.output


def test_eval_predictions_into_a_missing_folder_is_one_error(tmp_path):
    missing = str(tmp_path / "no" / "such" / "p.jsonl")
    one_line_error(["eval", "ca4p", str(write_lines(tmp_path / "c.jsonl", GOOD_ROW)), "--predictions", missing],
                   "cannot write predictions to")
    label, data = labelled_policy(tmp_path)
    one_line_error(["eval", "clauses", str(write_lines(tmp_path / "l.jsonl", label)), "--data", str(data),
                    "--predictions", missing], "cannot write predictions to")


@pytest.mark.parametrize("args", [["demo", "--apps", "-5"], ["market", "truth", "--apps", "-1"],
                                  ["market", "serve", "--apps", "0"], ["market", "serve", "--port", "70000"]])
def test_out_of_range_numbers_are_usage_errors(args):
    one_line_error(args, "Invalid value", code=2)


def test_market_serve_on_a_busy_port_is_one_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        one_line_error(["market", "serve", "--apps", "10", "--port", str(port)], f"cannot serve on 127.0.0.1:{port}")


@pytest.mark.parametrize("name, value, match", [
    ("CRAWLS", '{"itunes": {"cron": "61 * * * *"}}', "FINMON_SCHEDULE_CRAWLS[itunes]: bad trigger"),
    ("CRAWLS", '{"itunes": {"cron": 5}}', "FINMON_SCHEDULE_CRAWLS[itunes]: bad trigger"),
    ("CRAWLS", '{"itunes": {"interval": -5}}', "FINMON_SCHEDULE_CRAWLS[itunes]: bad trigger"),
    ("CRAWLS", '{"cron": "0 2 * * *"}', "FINMON_SCHEDULE_CRAWLS must map each store to a trigger"),
    ("CRAWLS", "0 2 * * *", "FINMON_SCHEDULE_CRAWLS is not JSON"),
    ("REPORT", '{"every": "monday"}', "FINMON_SCHEDULE_REPORT: bad trigger"),
    ("TIMEZONE", '"Mars/Base"', "FINMON_SCHEDULE_TIMEZONE: unknown time zone"),
    ("CRAWL_RETRIES", '"three"', "FINMON_SCHEDULE_CRAWL_RETRIES must be a number"),
])
def test_a_bad_schedule_setting_is_one_error_naming_it(tmp_path, name, value, match):
    one_line_error(["schedule", "list", "--data-dir", str(tmp_path)], match, env={f"FINMON_SCHEDULE_{name}": value})


@pytest.mark.parametrize("args, match", [
    (["search", "x", "--limit", "-1"], "Invalid value for '--limit'"),
    (["search", "x", "--offset", "-5"], "Invalid value for '--offset'"),
    (["es", "start", "--port", "99999"], "Invalid value for '--port'"),
    (["crawl", "--out", "x", "--store", "itunes=notaurl"], "the store URL must be an http(s) URL"),
    (["crawl", "--out", "x", "--store", "itunes=file:///etc/hostname"], "the store URL must be an http(s) URL"),
])
def test_bad_option_values_are_usage_errors(args, match):
    one_line_error(args, match, code=2)


def test_check_of_a_malformed_url_is_one_error():
    one_line_error(["check", "http://[::1"], "not a URL: http://[::1")


def test_a_folder_the_system_refuses_is_one_error(tmp_path):
    index = str(tmp_path / "finmon.db")
    assert invoke(["analyze", str(tmp_path), "--db", index]).exit_code == 0  # an empty index
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    one_line_error(["report", "--db", index, "--out", str(blocker / "report")], "Not a directory")
    one_line_error(["crawl", "--out", str(blocker / "crawl"), "--store", "itunes=http://127.0.0.1:1/itunes"],
                   "Not a directory")


STORES = ["itunes", "apple-page", "appgallery-search", "appgallery", "xiaomi-search", "xiaomi", "googleplay-search",
          "googleplay", "googleplay-datasafety", "googleplay-permissions", "myapp-search", "myapp-category", "myapp",
          "policy"]
BAD_FILES = {
    "empty": b"",
    "invalid-utf8": b"\xff\xfe\x00\xc3(" * 100,
    "deep-json": DEEP.encode(),
    "deep-object": ('{"a":' * 50_000 + "1" + "}" * 50_000).encode(),
    "list-of-scalars": b'{"resultCount": 2, "results": [1, "x"], "rtnCode": 0, "layoutData": [1], "app": "x"}',
    "wrong-types": json.dumps({"resultCount": "2", "results": [{"trackId": [], "bundleId": 5, "trackName": None,
                                                                  "trackViewUrl": 5, "sellerUrl": [1]}]}).encode(),
    "html-garbage": b"<html><body><div class='details'><<<>>>\x00</body>" * 50,
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_no_traceback_from_any_file_reading_command_on_malformed_files(tmp_path, kind):
    """Each command that reads a file answers a malformed one with a result or one error line (exit 0, 1 or 2)."""
    path = tmp_path / f"{kind}.bin"
    path.write_bytes(BAD_FILES[kind])
    commands = [["parse", store, str(path)] for store in STORES] + [
        ["apk", str(path)], ["check", str(path)], ["eval", "ca4p", str(path)], ["eval", "appch", str(path)],
        ["eval", "clauses", str(path)], ["search", "x", "--db", str(path)], ["report", "--db", str(path), "--out",
                                                                            str(tmp_path / "r")]]
    for args in commands:
        assert invoke(args).exit_code in (0, 1, 2), args


def test_a_long_error_stays_one_line(tmp_path):
    big = tmp_path / ("a-policy-file-with-a-long-name-" * 3 + ".txt")
    big.write_bytes(b"x" * (50 * 1024 * 1024 + 1))
    result = invoke(["parse", "policy", str(big)])
    assert result.exit_code != 0 and len(result.output.strip().splitlines()) == 1, result.output


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("args, match, code", [
    (["--frontier", "http://redis.example"], "expected a redis:// URL", 2),
    (["--processes", "2"], "give --frontier too", 2),
    (["--crawl-id", "week-49"], "give --frontier too", 2),
])
def test_crawl_frontier_options_are_checked(tmp_path, args, match, code):
    one_line_error(["crawl", "--out", str(tmp_path / "c"), "--store", "xiaomi=http://127.0.0.1:9/xiaomi", *args],
                   match, code)


def test_a_frontier_that_does_not_answer_is_one_error_without_its_password(tmp_path):
    result = one_line_error(["crawl", "--out", str(tmp_path / "c"), "--store", "xiaomi=http://127.0.0.1:9/xiaomi",
                             "--frontier", f"redis://:s3cret@127.0.0.1:{_closed_port()}/0"], "does not answer")
    assert "s3cret" not in result.output
    assert not (tmp_path / "c" / "xiaomi").exists()  # no process started
