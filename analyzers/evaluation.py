"""Accuracy of the policy-text analyzer on the CA4P and APPCH corpora (DESIGN.md, "Measuring analyzer accuracy").

CA4P: annotators labelled personal-data mentions (``data`` spans) only in data-access sentences, so scoring
happens inside the sentences that carry a ``collect`` or ``share`` annotation (split on 。；;！!？? and newlines).
Precision = our mentions there that overlap a gold ``data`` span / all our mentions there; recall = gold ``data``
spans there overlapped by one of our mentions / all gold ``data`` spans there. Every mention counts, negated or
not: a mention names data whatever the sentence does with it. Per data type: precision per detected type; a gold
span is attributed to the type of the first mention overlapping it, and unmatched gold spans go under "missed".

CA4P purpose statements (section ``purpose``), at sentence level in the same data-access sentences: our sentences
that state a purpose (:func:`analyzers.clauses.purpose_sentences`) are scored when they start inside a data-access
sentence, and so are the gold ``purpose`` spans. Precision = our purpose sentences there that overlap a gold
purpose span / all our purpose sentences there; recall = gold purpose spans there that overlap one of our purpose
sentences / all gold purpose spans there.

APPCH: per policy, the Android permission groups the policy declares (affirmative mentions mapped to groups) vs
the groups of its gold spans; precision/recall/F1 per group and micro over (policy, group) pairs.

Predictions (``--predictions``) hold one line per policy, ``{"id", "detections": [{"start", "end", "type",
"negated"}], "groups": [...], "purpose": [[start, end], ...]}``; :func:`score_ca4p` and :func:`score_appch`
recompute the figures from them.
Input lines that are not JSON objects with a text and a list of annotations are counted in ``bad_lines`` and
skipped.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .clauses import purpose_sentences
from .policy_text import declared_types, lexicon, scan

__all__ = [
    "GROUPS",
    "EvaluationError",
    "Report",
    "access_sentences",
    "evaluate",
    "load_corpus",
    "predict",
    "read_predictions",
    "score_appch",
    "score_ca4p",
    "write_predictions",
]

GROUPS = ("CAL", "CAM", "CON", "LOC", "MIC", "PHO", "SEN", "SMS", "STO")
ACCESS_LABELS = frozenset({"collect", "share"})
PURPOSE_LABEL = "purpose"
MISSED = "missed"
_SENTENCE_END = re.compile(r"[。；;！!？?\n]")


class EvaluationError(Exception):
    """The corpus cannot be read at all (missing file, not a file)."""


@dataclass
class Report:
    """Figures of one evaluation, as printed by ``finmon eval … --json``."""

    corpus: str
    micro: dict
    per_label: dict
    policies: int
    bad_lines: int = 0
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        out = {"micro": self.micro, "per_label": self.per_label, "policies": self.policies,
               "bad_lines": self.bad_lines}
        out.update(self.extra)
        return out


# -- input -----------------------------------------------------------------------------------------------------
def _valid(row) -> bool:
    if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not isinstance(row.get("id", ""), str):
        return False
    anns = row.get("annotations")
    if not isinstance(anns, list):
        return False
    n = len(row["text"])
    for a in anns:
        if not isinstance(a, dict) or not all(isinstance(a.get(k, ""), str) for k in ("label", "short_label")):
            return False
        s, e = a.get("start"), a.get("end")
        if not (isinstance(s, int) and isinstance(e, int) and 0 <= s <= e <= n):
            return False
    return True


def load_corpus(path: Path | str) -> tuple[list[dict], int]:
    """The valid rows of a JSONL corpus file and the number of bad (skipped) lines."""
    path = Path(path)
    if not path.exists():
        raise EvaluationError(f"corpus file not found: {path}")
    if not path.is_file():
        raise EvaluationError(f"not a file: {path}")
    rows, bad = _valid_lines(path, _valid)
    for number, row in enumerate(rows):
        row.setdefault("id", str(number))
    return rows, bad


def _valid_lines(path: Path, valid: Callable[[Any], bool]) -> tuple[list[dict], int]:
    """The JSON lines of ``path`` that ``valid`` accepts, and how many non-blank lines it did not (or that are
    not JSON, or nest too deep)."""
    rows, bad = [], 0
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):
                row = None
            if row is not None and valid(row):
                rows.append(row)
            else:
                bad += 1
    return rows, bad


# -- predictions -----------------------------------------------------------------------------------------------
def predict(row: dict) -> dict:
    """Our analyzer's output for one corpus row, in the predictions-file format."""
    mentions = scan(row["text"])
    groups = sorted(lexicon().groups(declared_types(mentions)))
    return {
        "id": row.get("id"),
        "detections": [{"start": m.start, "end": m.end, "type": m.type, "negated": m.negated} for m in mentions],
        "groups": groups,
        "purpose": [list(span) for span in purpose_sentences(row["text"])],
    }


def write_predictions(path: Path | str, predictions: Iterable[dict]) -> None:
    try:
        with Path(path).open("w", encoding="utf-8") as fh:
            for p in predictions:
                fh.write(json.dumps(p, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise EvaluationError(f"cannot write predictions to {path}: {exc.strerror or exc}") from None


def read_predictions(path: Path | str) -> list[dict]:
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# -- CA4P --------------------------------------------------------------------------------------------------------
def access_sentences(text: str, annotations: Iterable[dict]) -> list[tuple[int, int]]:
    """(start, end) of the sentences that overlap a ``collect`` or ``share`` annotation."""
    acts = sorted((a["start"], a["end"]) for a in annotations if a.get("label") in ACCESS_LABELS)
    if not acts:
        return []
    out, prev = [], 0
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    if not ends or ends[-1] != len(text):
        ends.append(len(text))
    for end in ends:
        if any(s < end and e > prev or s == e and prev <= s < end for s, e in acts):
            out.append((prev, end))
        prev = end
    return out


def _inside(start: int, spans: list[tuple[int, int]]) -> bool:
    return any(s <= start < e for s, e in spans)


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _prf(tp_p: int, fp: int, tp_r: int, fn: int) -> dict:
    p = tp_p / (tp_p + fp) if tp_p + fp else 0.0
    r = tp_r / (tp_r + fn) if tp_r + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)}


def score_ca4p(rows: list[dict], predictions: Iterable[dict], bad_lines: int = 0) -> Report:
    """CA4P figures from gold rows and predictions (matched by ``id``; a policy without predictions has none)."""
    by_id = {p["id"]: p for p in predictions}
    det_tp = det_fp = gold_tp = gold_fn = 0
    per: dict[str, dict] = {}

    def label(t: str) -> dict:
        return per.setdefault(t, {"tp": 0, "fp": 0, "gold": 0})

    for row in rows:
        sents = access_sentences(row["text"], row["annotations"])
        if not sents:
            continue
        gold = [(a["start"], a["end"]) for a in row["annotations"]
                if a.get("label") == "data" and _inside(a["start"], sents)]
        dets = [d for d in by_id.get(row.get("id"), {}).get("detections", ()) if _inside(d["start"], sents)]
        for d in dets:
            span = (d["start"], d["end"])
            if any(_overlaps(span, g) for g in gold):
                det_tp += 1
                label(d["type"])["tp"] += 1
            else:
                det_fp += 1
                label(d["type"])["fp"] += 1
        for g in gold:
            hit = next((d for d in dets if _overlaps((d["start"], d["end"]), g)), None)
            if hit is None:
                gold_fn += 1
                label(MISSED)["gold"] += 1
            else:
                gold_tp += 1
                label(hit["type"])["gold"] += 1
    micro = _prf(det_tp, det_fp, gold_tp, gold_fn)
    micro.update(tp=gold_tp, fp=det_fp, fn=gold_fn, tp_detections=det_tp)
    per_label = {}
    for t, c in sorted(per.items()):
        if t == MISSED:
            per_label[t] = {"gold": c["gold"]}
            continue
        dp = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
        per_label[t] = {"precision": round(dp, 4), "tp": c["tp"], "fp": c["fp"], "gold": c["gold"]}
    return Report("ca4p", micro, per_label, len(rows), bad_lines,
                  {"gold_spans": gold_tp + gold_fn, "detections": det_tp + det_fp,
                   "purpose": _score_purpose(rows, by_id)})


def _score_purpose(rows: list[dict], by_id: dict[str, dict]) -> dict:
    """Purpose statements at sentence level, in the data-access sentences (see the module docstring)."""
    sent_tp = sent_fp = gold_tp = gold_fn = 0
    for row in rows:
        sents = access_sentences(row["text"], row["annotations"])
        if not sents:
            continue
        gold = [(a["start"], a["end"]) for a in row["annotations"]
                if a.get("label") == PURPOSE_LABEL and _inside(a["start"], sents)]
        predicted = [tuple(p) for p in by_id.get(row.get("id"), {}).get("purpose", ())]
        for span in predicted:
            if not _inside(span[0], sents):
                continue
            if any(_overlaps(span, g) for g in gold):
                sent_tp += 1
            else:
                sent_fp += 1
        for g in gold:
            if any(_overlaps(span, g) for span in predicted):
                gold_tp += 1
            else:
                gold_fn += 1
    return _prf(sent_tp, sent_fp, gold_tp, gold_fn) | {
        "tp": gold_tp, "fp": sent_fp, "fn": gold_fn, "tp_sentences": sent_tp, "sentences": sent_tp + sent_fp,
        "gold_spans": gold_tp + gold_fn}


# -- APPCH -------------------------------------------------------------------------------------------------------
def gold_groups(row: dict) -> set[str]:
    return {a["short_label"] for a in row["annotations"] if a.get("short_label") in GROUPS}


def score_appch(rows: list[dict], predictions: Iterable[dict], bad_lines: int = 0) -> Report:
    """APPCH figures: declared groups vs gold groups per policy, per group and micro over (policy, group)."""
    by_id = {p["id"]: p for p in predictions}
    counts = {g: {"tp": 0, "fp": 0, "fn": 0} for g in GROUPS}
    for row in rows:
        gold = gold_groups(row)
        pred = set(by_id.get(row.get("id"), {}).get("groups", ())) & set(GROUPS)
        for g in pred & gold:
            counts[g]["tp"] += 1
        for g in pred - gold:
            counts[g]["fp"] += 1
        for g in gold - pred:
            counts[g]["fn"] += 1
    per_label = {}
    for g, c in counts.items():
        per_label[g] = _prf(c["tp"], c["fp"], c["tp"], c["fn"]) | c
    tp, fp, fn = (sum(c[k] for c in counts.values()) for k in ("tp", "fp", "fn"))
    micro = _prf(tp, fp, tp, fn) | {"tp": tp, "fp": fp, "fn": fn}
    return Report("appch", micro, per_label, len(rows), bad_lines)


# -- entry point -------------------------------------------------------------------------------------------------
SCORERS = {"ca4p": score_ca4p, "appch": score_appch}


def evaluate(corpus: str, path: Path | str, predictions_out: Path | str | None = None) -> Report:
    """Run the analyzer over a corpus file and score it (``corpus`` is "ca4p" or "appch")."""
    if corpus not in SCORERS:
        raise EvaluationError(f"unknown corpus {corpus!r} (expected one of {', '.join(SCORERS)})")
    rows, bad = load_corpus(path)
    if not rows:
        raise EvaluationError(f"{path}: no usable line ({bad} bad): each needs a text and a list of annotations")
    preds = [predict(r) for r in rows]
    if predictions_out is not None:
        write_predictions(predictions_out, preds)
    return SCORERS[corpus](rows, preds, bad)


def table_rows(report: Report) -> Iterator[list[str]]:
    """Rows (label, precision, recall, f1, counts) for a human table."""
    def fmt(x):
        return "" if x is None else f"{x:.3f}"
    for lab, c in report.per_label.items():
        if report.corpus == "ca4p":
            if lab == MISSED:
                yield [lab, "", "", "", f"gold {c['gold']}"]
            else:
                yield [lab, fmt(c["precision"]), "", "", f"tp {c['tp']} fp {c['fp']} gold {c['gold']}"]
        else:
            yield [lab, fmt(c["precision"]), fmt(c["recall"]), fmt(c["f1"]),
                   f"tp {c['tp']} fp {c['fp']} fn {c['fn']}"]
    m = report.micro
    yield ["micro", fmt(m["precision"]), fmt(m["recall"]), fmt(m["f1"]),
           f"tp {m['tp']} fp {m['fp']} fn {m['fn']}"]


def render(report: Report, console=None) -> None:
    """Print a report as a rich table (the human form of ``finmon eval``)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    m = report.micro
    title = (f"{report.corpus.upper()}: {report.policies} policies — precision {m['precision']:.3f}, "
             f"recall {m['recall']:.3f}, F1 {m['f1']:.3f}")
    label = "data type" if report.corpus == "ca4p" else "group"
    table = Table(label, "precision", "recall", "f1", "counts", title=title)
    for row in table_rows(report):
        table.add_row(*row)
    console.print(table)
    if report.corpus == "ca4p":
        console.print(f"{report.extra['detections']} detections and {report.extra['gold_spans']} gold data spans "
                      "in the data-access sentences; recall per type is the gold spans a detection of that type hit")
        pur = report.extra["purpose"]
        console.print(f"purpose statements (sentences, in the data-access sentences): precision "
                      f"{pur['precision']:.3f}, recall {pur['recall']:.3f}, F1 {pur['f1']:.3f} — {pur['sentences']} "
                      f"sentences, {pur['gold_spans']} gold purpose spans (tp {pur['tp']} fp {pur['fp']} "
                      f"fn {pur['fn']})")
    if report.bad_lines:
        console.print(f"[yellow]{report.bad_lines} bad input line(s) skipped[/]")


# -- hand-labelled real policies: the clause rules, C206, C202 evidence and the finance type ----------------------
# rule -> (label, whether the rule fires when the label is false: C203-C205 flag an absent clause)
CLAUSE_LABELS = {"C203": ("withdrawal", True), "C204": ("deletion", True), "C205": ("complaint", True),
                 "C207": ("implied_consent", False), "D302": ("unnamed_sharing", False)}
# categories the checked policies are given, by corpus: the APPCH records are the store category 金融理财
LABELLED_CATEGORY = {"金融理财": "金融理财"}


def evaluate_clauses(labels_path: Path | str, data_dir: Path | str,
                     predictions_out: Path | str | None = None) -> Report:
    """Score ``check_policy`` against hand labels (one JSON line per policy: corpus file name, record id, labels).

    Per rule of :data:`CLAUSE_LABELS`, a finding on a policy is right when its label says so; C206 is scored per
    (policy, data type) against the label's ``no_purpose`` list; a C202 finding is right when its data type is in
    the label's ``collects`` list (the policy really declares collecting it); the finance type is right when it
    equals the label's. The texts are read from the corpus files in ``data_dir``, with the app's ``name`` where a
    corpus line gives one (as a store listing would; the dev corpora give only package names, which are not).
    """
    from finmon.model import PolicyVersion, detect_language, sha256_hex

    from .policy_check import check_policy

    labels, bad = _read_labels(labels_path)
    if not labels:
        raise EvaluationError(f"{labels_path}: no usable label line ({bad} bad)")
    texts: dict[tuple[str, str], dict] = {}
    for corpus in sorted({lab["corpus"] for lab in labels}):
        rows, _ = load_corpus(Path(data_dir) / corpus)
        texts.update({(corpus, r["id"]): r for r in rows})
    counts = {rule: {"tp": 0, "fp": 0, "fn": 0} for rule in (*CLAUSE_LABELS, "C206")}
    c202 = {"right": 0, "wrong": 0}
    finance_right, predictions, missing = 0, [], []
    for lab in labels:
        row = texts.get((lab["corpus"], lab["id"]))
        if row is None:
            missing.append(f"{lab['corpus']}:{lab['id']}")
            continue
        text = row["text"]
        policy = PolicyVersion(url="", final_url="", fetched_at="", sha256=sha256_hex(text), text=text,
                               language=detect_language(text))
        result = check_policy(policy, name=row.get("name", ""),
                              category=LABELLED_CATEGORY.get(row.get("category", ""), ""))
        fired: dict[str, set[str]] = {}
        for f in result["findings"]:
            fired.setdefault(f["rule_id"], set()).add(f["evidence"]["key"])
        for rule, (label, when_absent) in CLAUSE_LABELS.items():
            _tally(counts[rule], rule in fired, lab[label] != when_absent)
        gold_206 = set(lab["no_purpose"])
        for type_id in fired.get("C206", set()) | gold_206:
            _tally(counts["C206"], type_id in fired.get("C206", set()), type_id in gold_206)
        for type_id in fired.get("C202", set()):
            c202["right" if type_id in lab["collects"] else "wrong"] += 1
        finance_right += result["finance_type"]["value"] == lab["finance_type"]
        predictions.append({"corpus": lab["corpus"], "id": lab["id"], **result})
    if missing:
        raise EvaluationError(f"{len(missing)} labelled policies not found in {data_dir}: {', '.join(missing[:5])}")
    if predictions_out is not None:
        write_predictions(predictions_out, predictions)
    per_rule = {rule: {**_prf(c["tp"], c["fp"], c["tp"], c["fn"]), **c} for rule, c in counts.items()}
    total = {k: sum(c[k] for c in counts.values()) for k in ("tp", "fp", "fn")}
    found = c202["right"] + c202["wrong"]
    extra = {"c202_evidence": {**c202, "precision": round(c202["right"] / found, 4) if found else 1.0},
             "finance_type": {"right": finance_right, "policies": len(predictions),
                              "accuracy": round(finance_right / len(predictions), 4) if predictions else 0.0}}
    return Report("clauses", {**_prf(total["tp"], total["fp"], total["tp"], total["fn"]), **total}, per_rule,
                  len(predictions),
                  bad, extra)


def _tally(count: dict, predicted: bool, gold: bool) -> None:
    if predicted and gold:
        count["tp"] += 1
    elif predicted:
        count["fp"] += 1
    elif gold:
        count["fn"] += 1


def _valid_label(row) -> bool:
    """A clause label line: names its corpus and record, a yes/no per clause label, lists of data-type ids."""
    return (isinstance(row, dict) and all(isinstance(row.get(k), str) for k in ("corpus", "id", "finance_type"))
            and all(isinstance(row.get(label), bool) for label, _ in CLAUSE_LABELS.values())
            and all(isinstance(row.get(k), list) and all(isinstance(t, str) for t in row[k])
                    for k in ("no_purpose", "collects")))


def _read_labels(path: Path | str) -> tuple[list[dict], int]:
    """The valid label lines of a JSONL file and the number of bad (skipped) lines."""
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"{path} is not a file")
    return _valid_lines(path, _valid_label)
