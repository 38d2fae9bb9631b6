"""Policy-text analysis speed (text → mentions → declared types), one core, on the dev corpora.

Reads the policy texts of ``../shared/data`` (CA4P and APPCH, relative to the repository root, or the files
given), then times ``Lexicon.scan`` + ``declared_types`` over all of them, repeated until ``--seconds`` have
passed. The ``scan`` cache is bypassed (each text is analysed every time). Prints policies/s and chars/s, and
the rate scaled to an 8,000-character policy.

    python bench/analyzer_speed.py [--seconds 5] [FILE.jsonl ...]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from analyzers.policy_text import declared_types, lexicon

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT = ("ca4p_dev.jsonl", "appch_dev.jsonl", "appch_dict_dev.jsonl")


def texts(paths: list[Path]) -> list[str]:
    out = []
    for path in paths:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    text = json.loads(line).get("text")
                except (ValueError, AttributeError):
                    continue
                if isinstance(text, str) and text:
                    out.append(text)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    paths = args.files or [DATA / name for name in DEFAULT if (DATA / name).is_file()]
    if not paths:
        print(f"no corpus files (looked in {DATA})", file=sys.stderr)
        return 1
    corpus = texts(paths)
    lex = lexicon()
    lex.scan("warm up 我们会收集您的手机号码。")
    chars = sum(map(len, corpus))
    done = done_chars = 0
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        for text in corpus:
            declared_types(lex.scan(text))
        done += len(corpus)
        done_chars += chars
    elapsed = time.perf_counter() - start
    rate = done / elapsed
    print(f"{len(corpus)} policies, {chars / len(corpus):,.0f} chars on average, {done} analysed in {elapsed:.1f}s")
    print(f"{rate:,.0f} policies/s, {done_chars / elapsed / 1e6:.2f} M chars/s, "
          f"{done_chars / elapsed / 8000:,.0f} policies/s at 8,000 chars")
    return 0


if __name__ == "__main__":
    sys.exit(main())
