"""Policy-text analysis speed, one core, on the dev corpora: the lexicon alone, and whole apps.

Reads the policy texts of ``../shared/data`` (CA4P and APPCH, relative to the repository root, or the files
given), then times, side by side, (1) ``Lexicon.scan`` + ``declared_types`` and (2) ``analyzers.analyze`` of
an Android lending app carrying each policy (every rule: lexicon, clause checks, permissions), each repeated
until ``--seconds`` have passed, with every per-text cache cleared between rounds. The fastest round counts, in
CPU time of this process, so that other work on the machine counts as little as it can. Prints policies/s and
chars/s, and the rate scaled to an 8,000-character policy.

    python bench/analyzer_speed.py [--seconds 5] [FILE.jsonl ...]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import analyzers
from analyzers import clauses, policy_text
from analyzers.policy_text import declared_types, lexicon
from finmon.model import POLICY_OK, AppSnapshot, PolicyVersion

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
    apps = [app_with(text, i) for i, text in enumerate(corpus)]
    analyzers.analyze(apps[0])  # warm up: data files, automaton, compiled cues
    chars = sum(map(len, corpus))
    print(f"{len(corpus)} policies, {chars / len(corpus):,.0f} chars on average")
    report("lexicon (scan + declared types)", timed(lambda t: declared_types(lex.scan(t)), corpus, args.seconds),
           len(corpus), chars)
    report("whole app analysis (every rule)", timed(analyzers.analyze, apps, args.seconds), len(corpus), chars)
    return 0


def app_with(text: str, i: int) -> AppSnapshot:
    policy = PolicyVersion(url=f"http://policy.test/{i}", final_url=f"http://policy.test/{i}", fetched_at="",
                           sha256=str(i), text=text)
    return AppSnapshot(key=f"android:bench.app{i}", platform="android", package=f"bench.app{i}", name="示例借款",
                       developer="示例科技有限公司", category="金融理财", description="示例借款提供借款服务。",
                       permissions=frozenset({"android.permission.READ_CONTACTS", "android.permission.CAMERA",
                                              "android.permission.ACCESS_FINE_LOCATION"}),
                       policy=policy, policy_status=POLICY_OK, policy_url=policy.url)


def timed(step, items: list, seconds: float) -> float:
    """CPU seconds of the fastest round of ``step`` over every item (per-text caches cleared first), rounds run
    until ``seconds`` passed. CPU time of this process, not wall time: time the process waits while other work
    runs on the machine does not count (garbage collection and clearing the caches do)."""
    best, start = float("inf"), time.perf_counter()
    while best == float("inf") or time.perf_counter() - start < seconds:
        began = time.process_time()
        policy_text.reading.cache_clear()
        clauses.cache_clear()
        for item in items:
            step(item)
        best = min(best, time.process_time() - began)
    return best


def report(label: str, elapsed: float, policies: int, chars: int) -> None:
    print(f"{label:34s}: {policies / elapsed:6,.0f} policies/s, {chars / elapsed / 1e6:5.2f} M chars/s, "
          f"{chars / elapsed / 8000:6,.0f} policies/s at 8,000 chars")


if __name__ == "__main__":
    sys.exit(main())
