"""Reading a crawl snapshot back for analysis: a bad line costs that line, never the analysis."""
import json
import logging

from click.testing import CliRunner

from finmon import jobs
from finmon.cli import main
from index.sqlite import SQLiteStore


def listing(package: str, **changes) -> dict:
    row = {"store": "xiaomi", "store_id": package, "platform": "android", "package": package,
           "name": "鑫鑫借款", "developer": "鑫鑫科技有限公司", "category": "金融理财", "source_url": f"http://store.test/{package}",
           "fetched_at": "2026-01-05T00:00:00+00:00", "privacy_url": "http://store.test/policy"}
    return {**row, **changes}


def policy(**version_changes) -> dict:
    version = {"url": "http://store.test/policy", "final_url": "http://store.test/policy",
               "fetched_at": "2026-01-05T00:00:00+00:00", "sha256": "ab" * 32, "text": "我们收集您的手机号。"}
    return {"url": "http://store.test/policy", "status": "ok", "version": {**version, **version_changes}}


def write_lines(path, lines) -> None:
    path.write_bytes(b"".join((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n"
                              for line in lines))


def bad_snapshot(tmp_path):
    """A snapshot with two good listings, one good policy and a bad line of each kind a broken crawl leaves."""
    crawl = tmp_path / "crawl" / "xiaomi"
    crawl.mkdir(parents=True)
    write_lines(crawl / "listings.jsonl", [
        listing("com.good.one"),
        json.dumps(listing("com.cut.off"), ensure_ascii=False).encode()[:-40] + b"\xe9\x91",  # killed mid-write
        b"\xff\xfe not utf-8",
        listing("com.bad.name", name=12345),
        b"[" * 100_000 + b"]" * 100_000,  # deeper than the JSON decoder recurses
        [listing("com.in.a.list")],
        listing("com.good.two"),
    ])
    write_lines(crawl / "policies.jsonl", [policy(text=None), policy(), {"url": ["x"], "status": "failed"}])
    write_lines(crawl / "apks.jsonl", ["just a string", {"status": "ok", "url": "http://x", "apk": {"size": "big"}}])
    (crawl / "run.json").write_bytes(b'{"id": "crawl-1", "kind": "crawl", "star')  # a killed crawl's record
    return crawl.parent


def test_bad_snapshot_lines_are_counted_reported_with_their_place_and_skipped(tmp_path, caplog):
    crawl = bad_snapshot(tmp_path)
    with caplog.at_level(logging.WARNING, logger="finmon.jobs"), SQLiteStore(tmp_path / "finmon.db") as store:
        run = jobs.analyze(crawl, store)
        apps = {app["key"] for app in store.apps()}
    assert run.outcome == "ok"
    assert apps == {"android:com.good.one", "android:com.good.two"}
    assert run.counters["listings"] == 2 and run.counters["policies"] == 1
    assert run.counters["errors/bad_snapshot_line"] == 9
    places = {r.getMessage().split(": bad snapshot line")[0].rsplit("/", 2)[-1] for r in caplog.records}
    assert {f"listings.jsonl:{n}" for n in (2, 3, 4, 5, 6)} <= places
    assert {"policies.jsonl:1", "policies.jsonl:3", "apks.jsonl:1", "apks.jsonl:2"} <= places


def test_analyze_command_survives_a_bad_snapshot_and_a_corrupt_run_record(tmp_path, caplog):
    crawl = bad_snapshot(tmp_path)
    with caplog.at_level(logging.WARNING, logger="finmon.jobs"):
        result = CliRunner(env={"FINMON_ES_URL": "", "FINMON_REGISTRY": ""}).invoke(
            main, ["analyze", str(crawl), "--db", str(tmp_path / "finmon.db")])
    assert result.exit_code == 0, result.output
    assert "run.json: unreadable run record skipped" in caplog.text
    assert "listings.jsonl:3: bad snapshot line skipped" in caplog.text
    assert "'errors/bad_snapshot_line': 9" in result.output


def test_policies_read_without_their_texts_get_them_back_per_app(tmp_path):
    for store, text in (("xiaomi", "我们收集您的手机号。"), ("appgallery", "我们收集您的位置信息。")):
        crawl = tmp_path / "crawl" / store
        crawl.mkdir(parents=True)
        url = f"http://{store}.test/policy"
        write_lines(crawl / "listings.jsonl", [listing(f"com.{store}.app", store=store, privacy_url=url)])
        write_lines(crawl / "policies.jsonl", [b"", policy(url=url, sha256=store * 4, text=text) | {"url": url}])
    full = jobs.load_snapshot(tmp_path / "crawl")
    lean = jobs.load_snapshot(tmp_path / "crawl", policy_texts=False)
    assert all(v.text for v in full.policies.values()) and not any(v.text for v in lean.policies.values())
    apps = jobs.merge_listings(lean.listings, lean.policies, lean.policy_failures)
    assert jobs.with_policy_texts(apps, lean) == jobs.merge_listings(full.listings, full.policies, full.policy_failures)
    assert lean.bad_lines == full.bad_lines == 0


def test_apps_are_read_back_a_batch_at_a_time_as_merge_listings_makes_them(tmp_path):
    for store in ("xiaomi", "appgallery"):
        crawl = tmp_path / "crawl" / store
        crawl.mkdir(parents=True)
        write_lines(crawl / "listings.jsonl", [
            listing(f"com.app.n{i}", store=store, apk_url=f"http://{store}.test/n{i}.apk") for i in range(5)])
        write_lines(crawl / "policies.jsonl", [policy()])
        write_lines(crawl / "apks.jsonl", [
            {"status": "ok", "url": f"http://{store}.test/n{i}.apk", "apk": {"sha256": store * 4, "size": 1,
                                                                            "package": f"com.app.n{i}"}}
            for i in (1, 3)])
    snap = jobs.load_snapshot(tmp_path / "crawl")
    assert len(snap.listing_places) == 10 and len(snap.apk_places) == 4  # places, not listings, are kept
    batches = list(jobs.app_batches(snap, 2))
    assert [len(batch) for batch in batches] == [2, 2, 1]
    merged = [app for batch in batches for app in batch]
    assert merged == jobs.merge_listings(snap.listings, snap.policies, snap.policy_failures, snap.apks)
    assert [len(app.listings) for app in merged] == [2] * 5
    assert [app.apk.package if app.apk else None for app in merged] == [None, "com.app.n1", None, "com.app.n3", None]


def test_an_apps_analysis_input_changes_with_its_legal_entity_and_data_safety_form():
    """Incremental analysis re-analyses an app when what R603, D304 and D305 read changes."""
    import dataclasses

    from finmon.model import AppSnapshot, Listing

    listing = Listing(store="googleplay", store_id="p", platform="android", package="p", name="n", developer="d",
                      category="c", source_url="u", fetched_at="2026-01-01T00:00:00+00:00")
    digests = {jobs.input_hash(AppSnapshot(key="android:p", platform="android", package="p", name="n",
                                           developer="d", category="c", listings=(lst,)), "v1")
               for lst in (listing, dataclasses.replace(listing, legal_entity="某某有限公司"),
                           dataclasses.replace(listing, data_safety={"collected": [], "shared": [], "practices": []}),
                           dataclasses.replace(listing, downloads=10))}
    assert len(digests) == 3  # downloads change every week and are not read: no new analysis
