"""finmon check: one policy (file or URL) without a crawl."""
import json

from click.testing import CliRunner

from finmon.cli import main
from tests.support import loopback_page

POLICY_TW = ("<html><head><meta charset='big5'></head><body><h1>私隱政策</h1>"
             "<p>我們會收集您的通訊錄和位置資訊。</p><p>繼續使用即視為您同意本政策。</p>"
             "<p>我們會與合作夥伴共享您的個人資料。</p></body></html>")


def check(*args):
    return CliRunner().invoke(main, ["check", *map(str, args)])


def test_a_traditional_chinese_big5_page_is_checked_with_offsets_into_its_text(tmp_path):
    page = tmp_path / "policy.html"
    page.write_bytes(POLICY_TW.encode("big5"))
    result = check(page, "--name", "还呗", "--category", "金融理财", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["finance_type"]["value"] == "lending" and any("还呗" in e for e in out["finance_type"]["evidence"])
    assert out["lang"] == "zh"
    declared = {d["type"]: d for d in out["declared"]}
    assert set(declared) >= {"contacts", "location"} and declared["contacts"]["text"] == "通訊錄"
    assert {k: v["present"] for k, v in out["clauses"].items()} == {
        "withdrawal": False, "deletion": False, "complaint": False}
    rules = [f["rule_id"] for f in out["findings"]]
    assert {"C202", "C203", "C204", "C205", "C207", "D302"} <= set(rules) and "P101" not in rules
    quote = next(f["evidence"] for f in out["findings"] if f["rule_id"] == "C207")
    assert quote["text"].startswith("繼續使用") and quote["end"] > quote["start"]


def test_clean_english_policy_given_type_and_permissions(tmp_path):
    text = ("Privacy Policy. We collect your name and phone number to open your account. You can withdraw your "
            "consent in Settings at any time. You can delete your account or correct your information. "
            "For complaints, contact us at privacy@example.com.")
    path = tmp_path / "policy.txt"
    path.write_text(text, encoding="utf-8")
    out = json.loads(check(path, "--finance-type", "lending", "--permissions", "READ_CONTACTS", "--json").output)
    assert out["finance_type"] == {"value": "lending", "confidence": 1.0, "evidence": ["given: --finance-type"]}
    assert all(c["present"] and c["evidence"] for c in out["clauses"].values()), out["clauses"]
    assert [f["rule_id"] for f in out["findings"]] == ["P101", "D301"]
    human = check(path, "--lang", "en")
    assert human.exit_code == 0 and "withdrawal present" in human.output


def test_unreadable_inputs_are_one_line_errors(tmp_path):
    binary = tmp_path / "x.bin"
    binary.write_bytes(bytes(range(256)) * 8)
    for args in ([binary], [tmp_path / "missing.html"], ["ftp://example.com/p"]):
        result = check(*args)
        assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output


def test_a_url_goes_through_the_private_address_guard():
    with loopback_page("<p>我们会收集您的通讯录。</p>") as host_port:
        url = f"http://{host_port}/policy"
        refused = check(url)
        assert refused.exit_code == 1 and "private address" in refused.output
        allowed = check(url, "--allow-host", "127.0.0.1", "--json")
        assert allowed.exit_code == 0, allowed.output
        assert [d["type"] for d in json.loads(allowed.output)["declared"]] == ["contacts"]


def test_a_malformed_allow_host_is_a_usage_error():
    result = check("http://127.0.0.1:1/policy", "--allow-host", "127.0.0.1:port")
    assert result.exit_code == 2 and "not a host or host:port" in result.output


def test_a_clauses_evidence_is_the_sentence_that_decided_it_not_the_first_cue(tmp_path):
    text = ("如用户停止使用，本平台可以从服务器上永久删除用户的数据。您可以在“我的-设置”中注销账号。\n"
            "如有问题，请联系客服。\n联系电话：010-58203336")
    path = tmp_path / "policy.txt"
    path.write_text(text, encoding="utf-8")
    clauses = json.loads(check(path, "--json").output)["clauses"]
    deletion, complaint = clauses["deletion"], clauses["complaint"]
    assert deletion["present"] and deletion["evidence"]["text"] == "您可以在“我的-设置”中注销账号。"  # not the sanction
    assert complaint["present"] and complaint["evidence"]["text"].startswith("联系电话")  # not "请联系客服": no detail
