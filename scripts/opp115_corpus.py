"""The corpus file the English hand labels are scored on, from a local copy of the OPP-115 corpus.

OPP-115 (Wilson et al., ACL 2016; Usable Privacy Policy Project, Carnegie Mellon University; for research,
teaching and scholarship only, so it is not kept in this project) holds 115 US website privacy policies.
``tests/analyzers/data/real_policy_labels_en.jsonl`` labels 30 of them by the ids of their file names. This
writes ``OUT_DIR/opp115.jsonl``: one line per sanitized policy, ``{"id", "app" (the site), "name" (the
site's name: its domain without ``www.`` and the top-level domain, which stands for the name a store listing would
give), "text", "annotations": []}``, the text extracted from the policy's HTML as ``finmon check`` extracts a page (the
corpus's ``|||`` segment separators read as line breaks). Then::

    finmon eval clauses tests/analyzers/data/real_policy_labels_en.jsonl --data OUT_DIR

Usage: python scripts/opp115_corpus.py OPP115_DIR OUT_DIR
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from crawler.policy import ExtractionFailed, extract_policy
from finmon.jobs import utcnow

CORPUS = "opp115.jsonl"


def site_name(site: str) -> str:
    """The name a site goes by, from its domain: www.bankofamerica.com → bankofamerica."""
    return site.removeprefix("www.").rsplit(".", 1)[0]


def build(opp_dir: Path, out_dir: Path) -> tuple[int, list[str]]:
    """Writes OUT_DIR/opp115.jsonl from OPP115_DIR/sanitized_policies; returns the number of policies written and
    a line for each one that could not be read (it is left out; the others are written)."""
    sources = sorted((opp_dir / "sanitized_policies").glob("*_*.html"))
    if not sources:
        raise SystemExit(f"{opp_dir}: no sanitized_policies/<id>_<site>.html here; give the OPP-115 folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    written, failed = 0, []
    with open(out_dir / CORPUS, "w", encoding="utf-8") as out:
        for path in sources:
            policy_id, site = path.stem.split("_", 1)
            body = b"<html><body>" + path.read_bytes().replace(b"|||", b"\n") + b"</body></html>"
            url = f"https://{site}/privacy"
            try:
                policy, _ = extract_policy(url, url, body, "text/html; charset=utf-8", utcnow())
            except ExtractionFailed as exc:
                failed.append(f"{path.name}: {exc}")
                continue
            out.write(json.dumps({"id": policy_id, "app": site, "name": site_name(site), "text": policy.text,
                                  "annotations": []}, ensure_ascii=False) + "\n")
            written += 1
    return written, failed


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__.strip().splitlines()[-1])
    count, failures = build(Path(sys.argv[1]), Path(sys.argv[2]))
    for line in failures:
        print(f"skipped {line}", file=sys.stderr)
    print(f"{count} policies → {Path(sys.argv[2]) / CORPUS}")
