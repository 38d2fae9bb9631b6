"""Scoring of the analyzer on CA4P / APPCH (analyzers.evaluation), on tiny hand-made corpora and on ../shared/data."""
import json

import pytest
from click.testing import CliRunner

from analyzers import evaluation as ev
from finmon.cli import main
from tests.support import SHARED_DATA, required

DATA = SHARED_DATA


def span(text, phrase, label, nth=0, **extra):
    start = -1
    for _ in range(nth + 1):
        start = text.index(phrase, start + 1)
    return {"label": label, "span_text": phrase, "start": start, "end": start + len(phrase), **extra}


def ca4p_row(id_, text, *spans):
    return {"id": id_, "text": text, "annotations": list(spans)}


def appch_row(id_, text, *pairs):
    anns = [span(text, phrase, "X", short_label=group) for phrase, group in pairs]
    return {"id": id_, "text": text, "annotations": anns}


def write(tmp_path, name, rows, extra_lines=()):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + "".join(extra_lines),
                    encoding="utf-8")
    return path


# -- CA4P ------------------------------------------------------------------------------------------------------
CA4P_TEXT = ("我们会收集您的手机号码和设备型号、IMEI。"
             "我们的客服热线是400。"
             "为了安全，我们会收集您的通讯录\n"
             "您的位置信息不在此句。")


def ca4p_rows():
    t = CA4P_TEXT
    return [ca4p_row(
        "p1", t,
        span(t, "收集", "collect"),
        span(t, "手机号码", "data"),
        span(t, "设备型号、IMEI", "data"),  # one gold span, two detections overlapping it
        span(t, "收集", "collect", nth=1),
        span(t, "为了安全", "data"),  # a gold span no detection overlaps
        span(t, "位置信息", "data"),  # outside the access sentences: not scored
    )]


def test_access_sentences_split_on_delimiters_and_newlines():
    rows = ca4p_rows()
    sents = ev.access_sentences(rows[0]["text"], rows[0]["annotations"])
    texts = [CA4P_TEXT[s:e] for s, e in sents]
    assert texts == ["我们会收集您的手机号码和设备型号、IMEI。", "为了安全，我们会收集您的通讯录\n"]


def test_ca4p_overlap_logic():
    rows = ca4p_rows()
    report = ev.score_ca4p(rows, [ev.predict(r) for r in rows])
    # detections inside the access sentences: 手机号码, 设备型号, IMEI, 通讯录 → 3 overlap gold, 通讯录 does not
    assert report.micro["tp_detections"] == 3 and report.micro["fp"] == 1
    # gold spans there: 手机号码, 设备型号、IMEI, 为了安全 → 2 hit, 1 missed; 位置信息 is outside
    assert report.micro["tp"] == 2 and report.micro["fn"] == 1
    assert report.micro["precision"] == 0.75 and report.micro["recall"] == round(2 / 3, 4)
    per = report.per_label
    assert per["contacts"] == {"precision": 0.0, "tp": 0, "fp": 1, "gold": 0}
    assert per["phone_number"]["gold"] == 1 and per["device_info"]["gold"] == 1 and "device_id" in per
    assert per[ev.MISSED] == {"gold": 1}


def test_ca4p_policy_without_access_annotations_is_not_scored():
    text = "我们会收集您的手机号码。"
    report = ev.score_ca4p([ca4p_row("x", text, span(text, "手机号码", "data"))],
                           [{"id": "x", "detections": [{"start": 7, "end": 11, "type": "phone_number"}]}])
    assert report.micro["tp"] == report.micro["fp"] == report.micro["fn"] == 0


def purpose_rows():
    t = ("为了实名认证，我们会收集您的身份证号。"  # purpose sentence, gold purpose: tp
         "我们会收集您的设备信息以便排查故障。"  # purpose sentence, no gold purpose span: fp
         "我们会收集您的通讯录，风险控制需要。"  # gold purpose (风险控制) that no purpose sentence holds: fn
         "为了您的安全，请妥善保管密码。")  # a purpose sentence outside the access sentences: not scored
    return [ca4p_row(
        "q", t,
        span(t, "收集", "collect"), span(t, "收集", "collect", nth=1), span(t, "收集", "collect", nth=2),
        span(t, "实名认证", "purpose"), span(t, "风险控制", "purpose"),
        span(t, "妥善保管", "purpose"),  # outside the access sentences: not scored
    )]


def test_purpose_statements_at_sentence_level():
    rows = purpose_rows()
    pred = ev.predict(rows[0])
    t = rows[0]["text"]
    assert [t[s:e] for s, e in pred["purpose"]] == ["为了实名认证，我们会收集您的身份证号。", "我们会收集您的设备信息以便排查故障。",
                                                    "为了您的安全，请妥善保管密码。"]
    purpose = ev.score_ca4p(rows, [pred]).extra["purpose"]
    assert purpose == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "tp": 1, "fp": 1, "fn": 1, "tp_sentences": 1,
                       "sentences": 2, "gold_spans": 2}


def test_purpose_figures_are_a_section_of_the_ca4p_output(tmp_path):
    corpus = write(tmp_path, "c.jsonl", purpose_rows())
    out = tmp_path / "pred.jsonl"
    result = CliRunner().invoke(main, ["eval", "ca4p", str(corpus), "--json", "--predictions", str(out)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["purpose"]["precision"] == 0.5 and {"micro", "per_label", "gold_spans", "detections"} <= set(printed)
    assert ev.read_predictions(out)[0]["purpose"]
    result = CliRunner().invoke(main, ["eval", "ca4p", str(corpus)])
    assert result.exit_code == 0 and "purpose statements" in result.output


# -- APPCH -----------------------------------------------------------------------------------------------------
def test_appch_negation_trap_is_not_a_declaration():
    text = "我们不会收集您的通讯录。我们会收集您的位置信息。"
    row = appch_row("n", text, ("位置信息", "LOC"))
    pred = ev.predict(row)
    assert pred["groups"] == ["LOC"]
    assert any(d["type"] == "contacts" and d["negated"] for d in pred["detections"])
    report = ev.score_appch([row], [pred])
    assert report.micro == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "tp": 1, "fp": 0, "fn": 0}


def test_appch_sms_verification_code_is_not_sms():
    text = "注册时我们会向您的手机号码发送短信验证码。"
    row = appch_row("s", text, ("手机号码", "PHO"))
    pred = ev.predict(row)
    assert "SMS" not in pred["groups"]
    report = ev.score_appch([row], [pred])
    assert report.per_label["SMS"]["fp"] == 0 and report.micro["fp"] == 0


def test_appch_counts_per_group_and_micro():
    rows = [appch_row("a", "我们会使用相机和麦克风。", ("相机", "CAM"), ("麦克风", "MIC")),
            appch_row("b", "我们会读取您的日历。", ("日历", "CAL"), ("日历", "STO"))]
    preds = [{"id": "a", "detections": [], "groups": ["CAM", "LOC"]},
             {"id": "b", "detections": [], "groups": ["CAL"]}]
    report = ev.score_appch(rows, preds)
    assert report.micro["tp"] == 2 and report.micro["fp"] == 1 and report.micro["fn"] == 2
    assert report.micro["precision"] == round(2 / 3, 4) and report.micro["recall"] == 0.5
    assert report.per_label["LOC"]["fp"] == 1 and report.per_label["MIC"]["fn"] == 1
    assert set(report.per_label) == set(ev.GROUPS)


# -- files, CLI ----------------------------------------------------------------------------------------------
def test_bad_lines_are_counted_not_fatal(tmp_path):
    path = write(tmp_path, "c.jsonl", ca4p_rows(),
                 ["not json\n", "[1, 2]\n", json.dumps({"id": "z", "text": "abc"}) + "\n",
                  json.dumps({"id": "o", "text": "ab", "annotations": [{"start": 1, "end": 9}]}) + "\n", "\n"])
    report = ev.evaluate("ca4p", path)
    assert report.bad_lines == 4 and report.policies == 1
    result = CliRunner().invoke(main, ["eval", "ca4p", str(path), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["bad_lines"] == 4 and out["policies"] == 1 and set(out["micro"]) >= {
        "precision", "recall", "f1", "tp", "fp", "fn"}


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ev.EvaluationError, match="not found"):
        ev.evaluate("appch", tmp_path / "nope.jsonl")
    result = CliRunner().invoke(main, ["eval", "appch", str(tmp_path / "nope.jsonl")])
    assert result.exit_code != 0 and "not found" in result.output


def test_predictions_file_recomputes_the_same_figures(tmp_path):
    corpus = write(tmp_path, "c.jsonl", ca4p_rows())
    out = tmp_path / "pred.jsonl"
    result = CliRunner().invoke(main, ["eval", "ca4p", str(corpus), "--json", "--predictions", str(out)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    preds = ev.read_predictions(out)
    assert [p["id"] for p in preds] == ["p1"]
    assert all(set(d) >= {"start", "end", "type"} for d in preds[0]["detections"])
    rows, _ = ev.load_corpus(corpus)
    assert ev.score_ca4p(rows, preds).as_dict() == printed

    rows = [appch_row("a", "我们会收集您的位置信息和通讯录。", ("位置信息", "LOC")),
            appch_row("b", "我们不会收集您的通讯录，但会使用相机。", ("相机", "CAM"))]
    corpus = write(tmp_path, "a.jsonl", rows)
    result = CliRunner().invoke(main, ["eval", "appch", str(corpus), "--json", "--predictions", str(out)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["micro"]["tp"] == 2 and printed["micro"]["fp"] == 1  # CON in policy a is not gold
    assert ev.score_appch(rows, ev.read_predictions(out)).as_dict() == printed


def test_human_table(tmp_path):
    corpus = write(tmp_path, "c.jsonl", ca4p_rows())
    result = CliRunner().invoke(main, ["eval", "ca4p", str(corpus)])
    assert result.exit_code == 0 and "micro" in result.output and "missed" in result.output


# -- floors on the dev split ---------------------------------------------------------------------------------
FLOORS = {
    "ca4p": {"precision": 0.85, "recall": 0.82},
    "appch": {"precision": 0.965, "recall": 0.965, "f1": 0.965},
}
# purpose statements on CA4P dev, sentence level in the data-access sentences (reached: P 0.861, R 0.842)
PURPOSE_FLOORS = {"precision": 0.86, "recall": 0.84}


@pytest.fixture(scope="module")
def shared_data():
    if not (DATA / "ca4p_dev.jsonl").is_file() or not (DATA / "appch_dev.jsonl").is_file():
        required("../shared/data", f"the dev corpora are absent from {DATA}")
    return DATA


@pytest.mark.parametrize("corpus,file", [("ca4p", "ca4p_dev.jsonl"), ("appch", "appch_dev.jsonl")])
def test_accuracy_floors_on_the_dev_split(shared_data, corpus, file):
    report = ev.evaluate(corpus, shared_data / file)
    assert report.bad_lines == 0 and report.policies > 20
    for key, floor in FLOORS[corpus].items():
        assert report.micro[key] >= floor, (corpus, key, report.micro)


def test_purpose_floors_on_the_dev_split(shared_data):
    purpose = ev.evaluate("ca4p", shared_data / "ca4p_dev.jsonl").extra["purpose"]
    assert purpose["gold_spans"] > 1000
    for key, floor in PURPOSE_FLOORS.items():
        assert purpose[key] >= floor, (key, purpose)


# -- hand-labelled real policies (finmon eval clauses) -------------------------------------------------------------
LABELS = __import__("pathlib").Path(__file__).parent / "data" / "real_policy_labels.jsonl"
# reached on the 48 labelled dev policies (the targets are 0.90 for each clause rule and 0.85 for C206 precision)
CLAUSE_FLOORS = {"C203": (1.0, 1.0), "C204": (1.0, 1.0), "C205": (1.0, 1.0), "C207": (1.0, 1.0),
                 "D302": (1.0, 1.0), "C206": (1.0, 0.28)}


def test_clause_floors_on_hand_labelled_real_policies(shared_data):
    report = ev.evaluate_clauses(LABELS, shared_data)
    assert report.policies == 48 and report.bad_lines == 0
    for rule, (precision, recall) in CLAUSE_FLOORS.items():
        figures = report.per_label[rule]
        assert figures["precision"] >= precision and figures["recall"] >= recall, (rule, figures)
    assert report.extra["c202_evidence"]["precision"] >= 0.95, report.extra["c202_evidence"]
    assert report.extra["finance_type"]["accuracy"] >= 0.95, report.extra["finance_type"]


# The later rounds: 30 more dev policies each, labelled by annotators who never ran the rules, after the rules were
# tuned on the rounds before (round 2: 6 finance apps; rounds 3 and 4: no finance app was left, general apps). Each
# scored first as it came (README); the floors are the figures after the fixes of the classes it showed, as counts
# (true positives may only rise, false positives and misses only fall): a ratio over one or two policies would pin
# nothing. Finance types right: at least as many as reached.
LATER_ROUNDS = {  # label file -> (rule -> (tp at least, fp at most, fn at most), finance types right at least)
    "real_policy_labels_round2.jsonl": ({"C203": (4, 0, 0), "C204": (1, 0, 0), "C205": (2, 0, 0), "C207": (24, 0, 0),
                                         "D302": (6, 1, 2), "C206": (6, 2, 1)}, 30),
    "real_policy_labels_round3.jsonl": ({"C203": (4, 1, 0), "C204": (1, 0, 1), "C205": (6, 1, 0), "C207": (27, 0, 0),
                                         "D302": (6, 1, 1), "C206": (2, 0, 2)}, 30),
    "real_policy_labels_round4.jsonl": ({"C203": (11, 0, 2), "C204": (5, 0, 0), "C205": (8, 1, 0), "C207": (26, 0, 0),
                                         "D302": (10, 0, 0), "C206": (11, 0, 10)}, 29),
}


@pytest.mark.parametrize("name", LATER_ROUNDS)
def test_clause_floors_on_the_later_rounds_of_real_policies(shared_data, name):
    report = ev.evaluate_clauses(LABELS.with_name(name), shared_data)
    floors, finance_right = LATER_ROUNDS[name]
    assert report.policies == 30 and report.bad_lines == 0
    for rule, (tp, fp, fn) in floors.items():
        figures = report.per_label[rule]
        assert figures["tp"] >= tp and figures["fp"] <= fp and figures["fn"] <= fn, (rule, figures)
    assert report.extra["c202_evidence"]["precision"] == 1.0, report.extra["c202_evidence"]
    assert report.extra["finance_type"]["right"] >= finance_right, report.extra["finance_type"]


def test_the_issue_targets_over_all_138_labelled_chinese_policies(shared_data):
    """Each clause rule precision and recall >= 0.90, C206 precision >= 0.85, C202 quoting a real collection statement
    and the finance type right >= 0.90, over the four rounds together."""
    names = [LABELS.name, *LATER_ROUNDS]
    reports = [ev.evaluate_clauses(LABELS.with_name(name), shared_data) for name in names]
    assert sum(r.policies for r in reports) == 138
    for rule in ev.CLAUSE_LABELS:
        tp, fp, fn = (sum(r.per_label[rule][k] for r in reports) for k in ("tp", "fp", "fn"))
        assert tp / (tp + fp) >= 0.90 and tp / (tp + fn) >= 0.90, (rule, tp, fp, fn)
    tp, fp = (sum(r.per_label["C206"][k] for r in reports) for k in ("tp", "fp"))
    assert tp / (tp + fp) >= 0.85, (tp, fp)
    right, wrong = (sum(r.extra["c202_evidence"][k] for r in reports) for k in ("right", "wrong"))
    assert right / (right + wrong) >= 0.90, (right, wrong)
    assert sum(r.extra["finance_type"]["right"] for r in reports) >= 0.90 * 138


def test_the_english_labels_are_30_valid_lines_of_opp115_policies():
    """Scored only where the OPP-115 corpus is at hand (scripts/opp115_corpus.py; its texts are not kept here)."""
    labels, bad = ev._read_labels(LABELS.with_name("real_policy_labels_en.jsonl"))
    assert (len(labels), bad) == (30, 0)
    assert {lab["corpus"] for lab in labels} == {"opp115.jsonl"} and all(lab["id"].isdigit() for lab in labels)


def test_clause_scoring_counts_each_rule_against_its_label(tmp_path):
    text = ("我们会收集您的通讯录。继续使用即视为您同意本政策。您可以撤回同意，注销账号。"
            "如有投诉请联系 privacy@example.com。我们会与合作伙伴共享您的个人信息。")
    corpus = write(tmp_path, "mini.jsonl", [{"id": "a", "text": text, "category": "金融理财", "annotations": []}])
    label = {"corpus": corpus.name, "id": "a", "finance_type": "other", "withdrawal": True, "deletion": True,
             "complaint": False, "implied_consent": False, "unnamed_sharing": True, "no_purpose": ["contacts"],
             "collects": []}
    labels = write(tmp_path, "labels.jsonl", [label], ["not json\n"])
    report = ev.evaluate_clauses(labels, tmp_path, tmp_path / "out.jsonl")
    per = report.per_label
    assert report.bad_lines == 1 and report.policies == 1
    assert (per["C203"]["fp"], per["C203"]["fn"]) == (0, 0)  # present, not flagged
    assert per["C205"]["fn"] == 1  # labelled absent (the contact is not what the label accepted), not flagged
    assert per["C207"]["fp"] == 1 and per["D302"]["tp"] == 1 and per["C206"]["tp"] == 1
    assert json.loads((tmp_path / "out.jsonl").read_text(encoding="utf-8"))["id"] == "a"
    with pytest.raises(ev.EvaluationError, match="not found"):
        ev.evaluate_clauses(write(tmp_path, "l2.jsonl", [{**label, "id": "nosuch"}]), tmp_path)


def test_clause_scoring_gives_the_app_its_name_where_the_corpus_line_has_one(tmp_path):
    """A name, as a store listing gives it, tells the operator from a recipient (the OPP-115 lines carry the site's)."""
    text = "We share your personal information with partners outside of Example Inc. to serve ads."
    label = {"corpus": "mini.jsonl", "id": "a", "finance_type": "other", "withdrawal": False, "deletion": False,
             "complaint": False, "implied_consent": False, "unnamed_sharing": True, "no_purpose": [], "collects": []}
    labels = write(tmp_path, "labels.jsonl", [label])
    for row, tp in (({}, 0), ({"name": "example"}, 1)):
        write(tmp_path, "mini.jsonl", [{"id": "a", "text": text, "annotations": [], **row}])
        assert ev.evaluate_clauses(labels, tmp_path).per_label["D302"]["tp"] == tp, row
