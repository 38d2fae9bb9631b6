"""scripts/opp115_corpus.py: an OPP-115 folder → the corpus file `finmon eval clauses` reads (run as a script)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "opp115_corpus.py"


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_each_sanitized_policy_becomes_a_line_with_its_segments_on_lines(tmp_path):
    policies = tmp_path / "OPP-115" / "sanitized_policies"
    policies.mkdir(parents=True)
    (policies / "7_example.com.html").write_text(
        "Privacy Policy <br> <br>|||We share your information with our partners.<br>|||"
        "<strong>Contact us</strong> at privacy@example.com.", encoding="utf-8")
    (policies / "12_shop.example.html").write_bytes("We do not sell your data.|||You may opt out.".encode())
    (policies / "30_empty.example.html").write_bytes(b"<br>|||<br>")  # no text: left out, the rest written
    done = run(tmp_path / "OPP-115", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert "skipped 30_empty.example.html" in done.stderr and "2 policies" in done.stdout
    rows = [json.loads(line) for line in (tmp_path / "out" / "opp115.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["id"], r["app"], r["name"], r["annotations"]) for r in rows] == [
        ("12", "shop.example", "shop", []), ("7", "example.com", "example", [])]
    assert "|||" not in rows[1]["text"]
    assert "We share your information with our partners." in rows[1]["text"].splitlines()
    assert "privacy@example.com" in rows[1]["text"]


def test_a_folder_without_sanitized_policies_is_a_one_line_error(tmp_path):
    done = run(tmp_path, tmp_path / "out")
    assert done.returncode == 1 and "sanitized_policies" in done.stderr and not (tmp_path / "out").exists()
    assert run().returncode == 1
