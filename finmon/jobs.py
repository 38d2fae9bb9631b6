"""The steps of the main job, wired together: crawl → analyse → index → report.

Used by the CLI and the scheduler (the only places that wire the parts). Each crawl of
a store runs in its own subprocess: Twisted reactors cannot be restarted, and separate
processes let a crawl of several stores use more than one core.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from finmon import settings
from finmon.model import (
    POLICY_NOT_FOUND,
    POLICY_UNAVAILABLE,
    ApkInfo,
    AppSnapshot,
    Listing,
    PolicyVersion,
    Run,
    chunks,
    dumps,
    merge_listings,
    sha256_hex,
    utcnow,
)

if TYPE_CHECKING:  # imported where used: commands that analyse nothing start faster without the rule data
    import analyzers

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int | None], None]  # (label, done, total or None)


def new_run(kind: str) -> Run:
    return Run(id=f"{kind}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}", kind=kind, started=utcnow())


def run_lock_path(run_id: str) -> Path:
    """The lock file a process holds (flock) while its run is in progress: per user, on this host."""
    return Path(tempfile.gettempdir()) / f"finmon-runs-{os.getuid()}" / f"{run_id}.lock"


@contextlib.contextmanager
def run_in_progress(run_id: str) -> Iterator[None]:
    """Hold the run's lock file while the run is in progress; the kernel drops the lock if the process dies.

    The body records the run's end before it returns. After an exception the file stays: if the end could
    not be recorded, the next :func:`interrupt_stale_runs` finds the lock free and marks the run interrupted.
    """
    path = run_lock_path(run_id)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield
        path.unlink(missing_ok=True)  # while still held: a checker that locks it next finds the run ended


def interrupt_stale_runs(store, orphaned: Callable[[dict], bool] = lambda row: False,
                         reason: str = "its process ended without recording an outcome (killed?)") -> list[str]:
    """Mark runs left "running" by a process that died as interrupted; returns their ids.

    A run is stale when its lock file on this host (:func:`run_in_progress`) is no longer held, or when
    ``orphaned(row)`` says so (the scheduler, holding its own lock, claims its job runs). A run started on
    another host or by another user, or one still in progress, is left as it is.
    """
    stale = []
    for row in store.runs(limit=200):
        if row.get("outcome") != "running":
            continue
        if orphaned(row):
            stale.append(_interrupt(store, Run.from_dict(row), reason))
            continue
        try:
            fh = open(run_lock_path(row["id"]), "r+")  # never created here: no file, not a run of this host
        except OSError:
            continue
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its process is alive
            # Locked now, so its process has ended; it records its outcome before it lets go: read it again.
            current = next((r for r in store.runs(limit=200) if r["id"] == row["id"]), row)
            if current.get("outcome") == "running":
                stale.append(_interrupt(store, Run.from_dict(current), reason))
            run_lock_path(row["id"]).unlink(missing_ok=True)
    return stale


def _interrupt(store, run: Run, reason: str) -> str:
    run.outcome, run.ended = "interrupted", run.ended or utcnow()
    run.error = run.error or reason
    store.save_run(run)
    log.warning("run %s was left running: marked interrupted (%s)", run.id, run.error)
    return run.id


def crawl(
    out_dir: Path,
    store_urls: dict[str, str],
    allow_hosts: Iterable[str] = (),
    progress: Progress | None = None,
    timeout: float | None = None,
    overrides: dict[str, Any] | None = None,
    stop: threading.Event | None = None,
    processes: int = 1,
    announce: bool = True,
) -> list[Run]:
    """Crawl each configured store in its own subprocess, side by side, into ``out_dir/<store>``; a store of
    LOOKUP_STORES (Google Play) starts when the others are done and looks up the Android apps they listed.

    With ``FINMON_FRONTIER`` (in ``overrides`` or the environment) the crawl is shared through Redis
    (:mod:`crawler.frontier`) with every process, here or on other hosts, given the same ``FINMON_FRONTIER_CRAWL``
    (a new name when none is given): ``processes`` processes per store here, each writing its own part,
    ``out_dir/<store>/part-<host>-<tag>-<n>``, until the shared crawl is drained. The store's Run then sums its parts;
    a part that died (even by SIGKILL) costs nothing when the others drained the crawl. Unless ``announce`` is
    false, each store's crawl is announced in Redis while it runs, for ``finmon crawl-worker`` on other hosts to
    join (:func:`crawl_worker`). Raises :class:`crawler.frontier.FrontierUnavailable` when that Redis does not
    answer.

    ``overrides`` are settings for the crawl (JOBDIR, FINMON_PREVIOUS_SNAPSHOT, …). A crawl past
    ``timeout`` seconds, or when ``stop`` is set, gets SIGTERM: Scrapy finishes its requests in
    flight and checkpoints its JOBDIR; after ``FINMON_CRAWL_STOP_GRACE`` seconds it is killed. A crawl
    also stops gracefully when this process dies, even by SIGKILL (Linux). Returns one Run per store (read
    from the run.json each crawl writes); a crawl that dies without writing one is reported as a
    failed Run, never raised.
    """
    from finmon.processes import die_with_parent

    out_dir.mkdir(parents=True, exist_ok=True)
    crawled = [store for store, url in store_urls.items() if url]
    overrides = dict(overrides or {})
    frontier = overrides.get("FINMON_FRONTIER", os.environ.get("FINMON_FRONTIER", settings.FINMON_FRONTIER))
    redis = None
    if frontier:
        from crawler import frontier as shared

        redis = shared.connect(frontier)  # FrontierUnavailable now, rather than a failed crawl per process
        overrides["FINMON_FRONTIER"] = frontier
        overrides.setdefault("FINMON_FRONTIER_CRAWL", os.environ.get("FINMON_FRONTIER_CRAWL") or new_run("crawl").id)
        overrides.pop("JOBDIR", None)  # the queue lives in Redis, and outlives the processes
    elif len(crawled) > 1 and "JOBDIR" not in overrides:  # a resumable crawl keeps its own claims
        claims = out_dir / ".claims"
        shutil.rmtree(claims, ignore_errors=True)
        claims.mkdir()
        overrides["FINMON_SHARED_CLAIMS"] = str(claims)
    tag = f"{socket.gethostname()}-{uuid.uuid4().hex[:4]}"  # parts of other hosts and runs in the same folder
    parts = [f"part-{tag}-{n}" for n in range(max(processes, 1))] if frontier else [""]
    procs: dict[tuple[str, str], tuple[subprocess.Popen, Any, float]] = {}

    prefix = overrides.get("FINMON_FRONTIER_PREFIX", settings.FINMON_FRONTIER_PREFIX)
    announced = []

    def start(store: str, settings_: dict[str, Any]) -> None:
        if redis is not None and announce:
            shared.publish(redis, prefix, overrides["FINMON_FRONTIER_CRAWL"], store, {
                "url": store_urls[store], "out": str(out_dir.resolve()), "allow_hosts": list(allow_hosts),
                "settings": {k: v for k, v in settings_.items() if k != "FINMON_FRONTIER"}})
            announced.append(store)
        for part in parts:
            part_dir = out_dir / store / part
            part_dir.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "crawler.run", "--out", str(part_dir),
                   "--store", f"{store}={store_urls[store]}"]
            for host in allow_hosts:
                cmd += ["--allow-host", host]
            for key, value in settings_.items():
                cmd += ["--set", f"{key}={json.dumps(value)}"]
            log_file = open(part_dir / "crawl.log", "ab")
            # its own session: a terminal's Ctrl-C reaches this process, which stops the crawl once, gracefully;
            # SIGUSR1 if this process dies (crawler.run then stops gracefully, once however often it comes)
            proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=partial(die_with_parent, signal.SIGUSR1))
            procs[store, part] = (proc, log_file, time.monotonic())

    # a store that looks up what the others listed starts when they are done (unless given listings to look up)
    later = [s for s in crawled
             if s in LOOKUP_STORES and len(crawled) > 1 and "FINMON_LOOKUP_LISTINGS" not in overrides]
    for store in crawled:
        if store not in later:
            start(store, overrides)
    count_listings = LineCounter()
    runs: list[Run] = []
    stopping: dict[tuple[str, str], float] = {}  # (store, part) -> when SIGTERM was sent
    try:
        while procs or later:
            if later and not procs:
                listings = sorted(str(p) for s in crawled if s not in later
                                  for p in (out_dir / s).rglob("listings.jsonl"))
                for store in later:
                    if stop is not None and stop.is_set():  # stopped before it began: nothing to resume
                        run = new_run("crawl")
                        run.job, run.ended, run.outcome = f"crawl:{store}", utcnow(), "interrupted"
                        run.error = "stopped before it started (it waits for the other stores' crawls)"
                        runs.append(run)
                    else:
                        start(store, {**overrides, "FINMON_LOOKUP_LISTINGS": listings})
                later = []
            for key, (proc, log_file, started) in list(procs.items()):
                over = timeout is not None and time.monotonic() - started > timeout
                if (over or (stop is not None and stop.is_set())) and key not in stopping:
                    proc.terminate()
                    stopping[key] = time.monotonic()
                if key in stopping and time.monotonic() - stopping[key] > settings.FINMON_CRAWL_STOP_GRACE:
                    proc.kill()
                if proc.poll() is not None:
                    log_file.close()
                    del procs[key]
                    store, part = key
                    runs.append(_crawl_result(store, out_dir / store / part, proc.returncode, key in stopping))
            if progress:
                progress("crawl", count_listings(out_dir.glob("*/**/listings.jsonl")), None)
            time.sleep(0.2)
    finally:  # interrupted (Ctrl-C, an error): stop what still runs, gracefully first
        if redis is not None:
            for store in announced:
                shared.withdraw(redis, prefix, overrides["FINMON_FRONTIER_CRAWL"], store)
            redis.close()
        for proc, _, _ in procs.values():
            proc.terminate()
        for proc, log_file, _ in procs.values():
            try:
                proc.wait(settings.FINMON_CRAWL_STOP_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log_file.close()
    return [merge_part_runs(store, [r for r in runs if r.job == f"crawl:{store}"]) for store in crawled
            if any(r.job == f"crawl:{store}" for r in runs)] if frontier else runs


def crawl_worker(frontier: str, processes: int = 1, stop: threading.Event | None = None, poll: float = 5.0,
                 prefix: str = settings.FINMON_FRONTIER_PREFIX) -> list[Run]:
    """A crawler host's loop: join every crawl announced on the frontier (:func:`crawl`) with ``processes``
    processes, writing parts into the folder the announcement names (shared storage: the same path on every
    host), until ``stop`` is set; returns the Runs of the crawls it joined. Each crawl is joined once."""
    from crawler import frontier as shared

    stop = stop or threading.Event()
    redis = shared.connect(frontier)
    joined: dict[str, threading.Thread] = {}
    runs: list[Run] = []

    def join(spec: dict[str, Any], crawl_id: str, store: str) -> None:
        given = spec.get("settings") if isinstance(spec.get("settings"), dict) else {}
        ignored = sorted(set(given) - set(ANNOUNCED_SETTINGS) - {"FINMON_FRONTIER_CRAWL", "JOBDIR", "FINMON_RESUME"})
        if ignored:
            log.warning("the crawl of %s %s announces settings a crawler host does not take: %s", store, crawl_id,
                        ", ".join(ignored))
        overrides = {**{k: v for k, v in given.items() if k in ANNOUNCED_SETTINGS}, "FINMON_FRONTIER": frontier,
                     "FINMON_FRONTIER_CRAWL": crawl_id, "FINMON_FRONTIER_PREFIX": prefix}
        try:
            runs.extend(crawl(Path(spec["out"]), {store: spec["url"]}, spec.get("allow_hosts", ()), stop=stop,
                              overrides=overrides, processes=processes, announce=False))
        except Exception as exc:  # one crawl's trouble (its folder, the frontier) never ends the worker
            log.error("joining the crawl of %s %s failed: %s", store, crawl_id, exc)

    try:
        while not stop.is_set():
            try:
                announced = shared.published(redis, prefix)
            except Exception as exc:  # Redis away for a while: keep asking
                log.warning("frontier: %s", exc)
                announced = {}
            for key, spec in announced.items():
                crawl_id, _, store = key.rpartition(":")
                if key not in joined and isinstance(spec.get("url"), str) and isinstance(spec.get("out"), str):
                    log.info("joining the crawl of %s %s", store, crawl_id)
                    joined[key] = threading.Thread(target=join, args=(spec, crawl_id, store), daemon=True)
                    joined[key].start()
            stop.wait(poll)
    finally:
        for thread in joined.values():
            thread.join()
        redis.close()
    return runs


# What a crawler host takes from an announced crawl's settings (anything else could make it run other code)
ANNOUNCED_SETTINGS = ("FINMON_RUN_ID", "FINMON_PREVIOUS_SNAPSHOT", "FINMON_LOOKUP_LISTINGS")


def merge_part_runs(store: str, parts: list[Run]) -> Run:
    """One Run for a store's shared crawl from the Runs of its processes here: counters summed. A process that
    died without a run record costs nothing when another finished, since the crawl only finishes drained."""
    if len(parts) == 1:
        return parts[0]
    recorded = [run for run in parts if run.counters.get("exit_code") is None]
    run = dataclasses.replace(recorded[0] if recorded else parts[0], counters={})
    for part in recorded:
        for name, value in part.counters.items():
            run.counters[name] = run.counters.get(name, 0) + value
    run.counters["processes"], run.counters["processes_lost"] = len(parts), len(parts) - len(recorded)
    run.started = min(part.started for part in parts)
    run.ended = max((part.ended for part in parts if part.ended), default=run.ended)
    outcomes = {part.outcome for part in recorded}
    if not recorded:
        run.outcome, run.error = "failed", "every process of the crawl died: " + (parts[0].error or "")
    elif "interrupted" in outcomes:
        run.outcome, run.error = "interrupted", "stopped before the end"
    else:
        from crawler.snapshot import outcome

        run.outcome, run.error = outcome(["finished"], run.counters, settings.FINMON_MAX_LOSS_SHARE)
    run.job = f"crawl:{store}"
    return run


LOOKUP_STORES = ("googleplay",)  # crawled after the others, looking up the Android apps they listed


def _crawl_result(store: str, store_dir: Path, returncode: int, timed_out: bool) -> Run:
    run_file = store_dir / "run.json"
    run = load_run_record(run_file) if run_file.exists() else None
    if run is not None:
        run.job = run.job or f"crawl:{store}"  # which store's crawl, in messages and the run history
        if timed_out:
            run.outcome = "interrupted"
        return run
    run = new_run("crawl")
    run.job = f"crawl:{store}"
    run.ended = utcnow()
    run.outcome = "interrupted" if timed_out else "failed"
    run.counters = {"exit_code": returncode}
    run.error = _last_line(store_dir / "crawl.log") or f"exit code {returncode}"
    log.error("crawl of %s ended without a run record (exit code %s: %s); see %s", store, returncode, run.error,
              store_dir / "crawl.log")
    return run


def _last_line(path: Path, tail: int = 4096) -> str:
    """The last non-blank line of a log (e.g. the exception that killed a crawl), "" when there is none."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - tail))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")[:300]


class LineCounter:
    """Lines of growing files, reading only what was appended since the last count (progress of a long crawl
    costs the new bytes, not the whole snapshot again, five times a second)."""

    def __init__(self) -> None:
        self._read: dict[Path, tuple[int, int]] = {}  # path -> (bytes counted, lines in them)

    def __call__(self, paths: Iterable[Path]) -> int:
        total = 0
        for path in paths:
            offset, lines = self._read.get(path, (0, 0))
            try:
                with open(path, "rb") as fh:
                    if fh.seek(0, os.SEEK_END) < offset:  # rewritten from the start (a fresh crawl)
                        offset, lines = 0, 0
                    fh.seek(offset)
                    chunk = fh.read()
            except OSError:
                chunk = b""
            done = chunk.rfind(b"\n") + 1  # a line still being written is counted once it ends
            self._read[path] = (offset + done, lines + chunk.count(b"\n", 0, done))
            total += self._read[path][1]
        return total


Place = tuple[Path, int]  # a snapshot line: its file and byte offset


@dataclass
class Snapshot:
    """What one or more crawl directories hold, read back; bad lines are counted, not fatal.

    Listings and APK inspections stay on disk: the snapshot holds where each line is, and reads
    them back when asked (:attr:`listings`, :attr:`apks`, or a batch of apps at a time with
    :func:`app_batches`), so a whole market's listings are never in memory at once.
    """

    policies: dict[str, PolicyVersion] = field(default_factory=dict)
    policy_failures: dict[str, str] = field(default_factory=dict)
    bad_lines: int = 0
    listing_places: list[tuple[str, Place]] = field(default_factory=list)  # (app key, place), in file order
    apk_places: dict[str, Place] = field(default_factory=dict)  # download URL -> place of its inspection
    # policy sha256 -> place of a line holding its text, when read without texts
    texts: dict[str, Place] = field(default_factory=dict)

    @property
    def listings(self) -> list[Listing]:
        """Every listing, in file order (for a small snapshot: they are all read into memory)."""
        with _LineReader() as read:
            return [_listing(read(place), place) for _, place in self.listing_places]

    @property
    def apks(self) -> dict[str, ApkInfo]:
        """Every inspected APK by download URL (for a small snapshot: they are all read into memory)."""
        with _LineReader() as read:
            return {url: _apk(read(place), place) for url, place in self.apk_places.items()}


class _LineReader(contextlib.ExitStack):
    """Reads snapshot lines back by place, each file opened once."""

    def __init__(self) -> None:
        super().__init__()
        self._files: dict[Path, Any] = {}

    def __call__(self, place: Place) -> Any:
        path, offset = place
        if path not in self._files:
            self._files[path] = self.enter_context(path.open("rb"))
        self._files[path].seek(offset)
        return json.loads(self._files[path].readline())


def _jsonl(path: Path) -> Iterator[tuple[int, int, Any]]:
    """(line number, byte offset, decoded JSON) of each non-blank line; a line that is not UTF-8 JSON gives its
    ValueError instead."""
    if not path.exists():
        return
    with open(path, "rb") as fh:
        offset = 0
        for line_no, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield line_no, offset, json.loads(line.decode("utf-8"))
                except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
                    yield line_no, offset, exc
            offset += len(line)


def _read_lines(path: Path, snap: Snapshot, read: Callable[[Any, Place], None]) -> None:
    """Apply ``read`` to each line of ``path`` and its place; a line it cannot take is counted, logged with its
    place, skipped."""
    for line_no, offset, row in _jsonl(path):
        try:
            if isinstance(row, Exception):
                raise row
            read(row, (path, offset))
        except (ValueError, RecursionError, TypeError, KeyError, AttributeError) as exc:
            snap.bad_lines += 1
            log.warning("%s:%d: bad snapshot line skipped (%s)", path, line_no, str(exc)[:200])


def _listing(row: Any, place: Place) -> Listing:
    """A listings.jsonl line → its Listing, capture references made absolute."""
    found = Listing.from_dict(row)
    captures = {name: _capture(ref, place) for name in ("capture", "data_safety_capture")
                if (ref := getattr(found, name))}
    return dataclasses.replace(found, **captures) if captures else found


def _apk(row: Any, place: Place) -> ApkInfo:
    """An apks.jsonl line of a successful inspection → its ApkInfo, capture reference made absolute."""
    if not isinstance(row["url"], str):
        raise TypeError(f"url: expected str, got {type(row['url']).__name__}")
    info = ApkInfo.from_dict(row["apk"])
    return dataclasses.replace(info, capture=_capture(row.get("capture") or info.capture, place))


def load_snapshot(*crawl_dirs: Path, policy_texts: bool = True) -> Snapshot:
    """Read every listings.jsonl/policies.jsonl/apks.jsonl under the ``crawl_dirs``.

    Each line is checked as it is read (a bad one is counted and skipped), but only the places of
    listings and APK inspections are kept. ``policy_texts=False``: policy versions come without their
    text, and ``texts`` says where to read it back (:func:`with_policy_texts`).
    """
    snap = Snapshot()

    def listing(row, place) -> None:
        snap.listing_places.append((_listing(row, place).app_key, place))

    def policy(row, place) -> None:
        url, status = row["url"], row["status"]
        if not isinstance(url, str):
            raise TypeError(f"url: expected str, got {type(url).__name__}")
        if status == "ok":
            version = PolicyVersion.from_dict(row["version"])
            version = dataclasses.replace(version, capture=_capture(row.get("capture") or version.capture, place))
            if not policy_texts:
                snap.texts[version.sha256] = place
                version = dataclasses.replace(version, text="")
            snap.policies[url] = version
            snap.policy_failures.pop(url, None)
        elif url not in snap.policies:
            snap.policy_failures[url] = POLICY_NOT_FOUND if status == "not_found" else POLICY_UNAVAILABLE

    def apk(row, place) -> None:
        if row["status"] == "ok":
            _apk(row, place)  # checked now: a bad line costs itself, never a later batch
            snap.apk_places[row["url"]] = place

    roots = sorted({p.parent for d in crawl_dirs for p in d.rglob("listings.jsonl")}
                   | {p.parent for d in crawl_dirs for p in d.rglob("policies.jsonl")})
    for root in roots:
        _read_lines(root / "listings.jsonl", snap, listing)
        _read_lines(root / "policies.jsonl", snap, policy)
        _read_lines(root / "apks.jsonl", snap, apk)
    return snap


def app_batches(snap: Snapshot, size: int) -> Iterator[list[AppSnapshot]]:
    """The snapshot's apps merged from their listings (:func:`merge_listings`), ``size`` apps at a time in
    app-key order; only one batch's listings and APK inspections are read into memory."""
    places = sorted(snap.listing_places, key=itemgetter(0))  # stable: each app's listings keep file order
    by_app = [list(group) for _, group in groupby(places, key=itemgetter(0))]
    with _LineReader() as read:
        for batch in chunks(by_app, size):
            listings = [_listing(read(place), place) for group in batch for _, place in group]
            urls = {lst.apk_url for lst in listings if lst.apk_url in snap.apk_places}  # each read once
            apks = {url: _apk(read(snap.apk_places[url]), snap.apk_places[url]) for url in urls}
            yield merge_listings(listings, snap.policies, snap.policy_failures, apks)


def snapshot_warc_files(crawl_dir: Path) -> set[Path]:
    """The WARC files the listing, policy and APK lines under ``crawl_dir`` cite (those of a 304 in an earlier
    snapshot's folder too), as real paths; lines it cannot read are skipped."""
    from finmon.evidence import warc_file

    cited = set()
    for path in (p for name in ("listings", "policies", "apks") for p in crawl_dir.rglob(f"{name}.jsonl")):
        for _, offset, row in _jsonl(path):
            ref = row.get("capture") if isinstance(row, dict) else None
            try:
                file = warc_file(_capture(ref, (path, offset))) if ref else None
            except (ValueError, TypeError):
                continue  # load_snapshot warns about the line
            if file is not None:
                cited.add(Path(os.path.realpath(file)))
    return cited


def _capture(ref: Any, place: tuple[Path, int]) -> str:
    """A snapshot line's capture reference with its WARC file as an absolute path (a malformed one costs the line)."""
    from finmon.evidence import EvidenceError, resolve

    if not isinstance(ref, str):
        raise TypeError(f"capture: expected str, got {type(ref).__name__}")
    try:
        return resolve(ref, place[0].parent)
    except EvidenceError as exc:
        raise ValueError(f"capture: {exc}") from None


def with_policy_texts(apps: Iterable[AppSnapshot], snap: Snapshot) -> list[AppSnapshot]:
    """``apps`` with their policies' texts, read back from the snapshot lines ``snap.texts`` names."""
    out = []
    with _LineReader() as read:
        for app in apps:
            place = snap.texts.get(app.policy.sha256) if app.policy is not None and not app.policy.text else None
            if place is not None:
                text = read(place)["version"]["text"]
                app = dataclasses.replace(app, policy=dataclasses.replace(app.policy, text=text))
            out.append(app)
    return out


def load_run_record(path: Path) -> Run | None:
    """The run a crawl recorded in ``path`` (run.json); None, with a warning, when it is unreadable or malformed."""
    try:
        return Run.from_dict(json.loads(path.read_bytes().decode("utf-8")))
    except (ValueError, RecursionError, TypeError) as exc:
        log.warning("%s: unreadable run record skipped (%s)", path, str(exc)[:200])
        return None


_FROM_SETTINGS = object()


def registry_path() -> str:
    """The registry file named by FINMON_REGISTRY (environment, else settings); "" when none."""
    return os.environ.get("FINMON_REGISTRY", settings.FINMON_REGISTRY).strip()


def load_registry(path: str | Path | None = None) -> analyzers.Registry | None:
    """The registry CSV at ``path`` (default: FINMON_REGISTRY); None when no path is configured.

    Raises :class:`analyzers.RegistryError` for a missing or malformed file: a configured
    registry that cannot be read must not turn into "rule not applied" silently.
    """
    import analyzers

    path = registry_path() if path is None else str(path)
    if not path:
        return None
    file = Path(path)
    try:
        with open(file, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames:
                raise analyzers.RegistryError(f"{file.name}: empty registry file (expected a header row)")
            return analyzers.Registry.from_rows(reader, source=file.name)
    except OSError as exc:
        raise analyzers.RegistryError(f"registry {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise analyzers.RegistryError(f"registry {path}: unreadable CSV ({exc})") from exc


def rules_with_status(registry: analyzers.Registry | None) -> list[dict]:
    """The rule table, each row marked ``applied`` (and ``not_applied``: the reason, zh and en)."""
    import analyzers

    skipped = analyzers.not_applied(registry)
    table = analyzers.rules_table()
    for row in table:
        row["applied"] = row["id"] not in skipped
        if row["id"] in skipped:
            row["not_applied"], row["not_applied_en"] = skipped[row["id"]]
    return table


# What an analysis reads of a listing (not downloads, ratings or capture times, which change every week).
ANALYSED_LISTING_FIELDS = ("store", "store_id", "name", "developer", "legal_entity", "category", "description",
                           "privacy_url", "permissions", "privacy_labels", "apk_url", "data_safety")


def input_hash(app: AppSnapshot, version: str) -> str:
    """A digest of everything the analysis of ``app`` reads, under analysis ``version``."""
    listings = sorted(dumps([getattr(lst, f) for f in ANALYSED_LISTING_FIELDS]) for lst in app.listings)
    policy = app.policy.sha256 if app.policy is not None else f"{app.policy_status}:{app.policy_url}"
    return sha256_hex(dumps([version, app.key, listings, policy, app.apk.sha256 if app.apk else None]))


def analyze(crawl_dir: Path | Iterable[Path], store, progress: Progress | None = None, registry=_FROM_SETTINGS,
            incremental: bool = False, job: str = "", alert_ledger: Path | None = None) -> Run:
    """Merge the crawled listings into apps, run every rule, and index the results.

    ``crawl_dir``: one snapshot directory or several (the latest of each store). ``registry``: an
    :class:`analyzers.Registry`, None for none, or by default the file named by FINMON_REGISTRY.
    Rules that could not be applied are marked in the stored rule table (``applied``/``not_applied``)
    and counted in the run (``rules_not_applied``). ``incremental``: apps whose inputs (listings as
    analysed, policy version, APK, and the analysis version) are those of their last analysis are
    skipped, and keep their findings. Then the alerts go out (:mod:`finmon.alerts`, when a sink is
    configured; ``alert_ledger``: where their ledger is unless FINMON_ALERT_LEDGER says).
    """
    if registry is _FROM_SETTINGS:
        registry = load_registry()
    run = new_run("analyze")
    run.job = job
    with run_in_progress(run.id):
        try:
            _analyze(crawl_dir, store, run, progress, registry, incremental)
        except BaseException as exc:
            run.ended = utcnow()
            run.outcome = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            with contextlib.suppress(Exception):  # the store may be what failed; the first error is the one to raise
                store.save_run(run)
                run_lock_path(run.id).unlink(missing_ok=True)  # recorded: nothing left for a checker to do
            raise
        _alert(store, run, alert_ledger)
    return run


def _alert(store, run: Run, ledger: Path | None) -> None:
    """Send the alerts of a stored analysis and add their counters to its run; a failure never fails the analysis."""
    from finmon import alerts

    counters = alerts.after_analysis(store, run, ledger)
    if counters:
        run.counters.update(counters)
        try:
            store.save_run(run)
        except Exception as exc:  # the analysis is recorded already; only these counters are missing from it
            log.warning("alert counters of %s not recorded (%s)", run.id, str(exc)[:200])


def _analyze(crawl_dir, store, run: Run, progress: Progress | None, registry, incremental: bool) -> Run:
    import analyzers
    from finmon.evidence import cite

    store.save_run(run)
    snap = load_snapshot(*([crawl_dir] if isinstance(crawl_dir, Path) else crawl_dir), policy_texts=False)
    version = analyzers.analysis_version(registry)
    known = store.analysis_inputs() if incremental else {}
    table = rules_with_status(registry)
    for row in table:
        if not row["applied"]:
            log.warning("%s not applied: %s", row["id"], row["not_applied_en"])
    store.save_rules(table)
    skipped = [row["id"] for row in table if not row["applied"]]
    seen, findings, counts, apps, analysed = utcnow(), 0, Counter(), 0, 0
    total = len({key for key, _ in snap.listing_places})
    # read, analysed and indexed in batches, one transaction each: neither the listings nor the findings of the
    # whole market are ever held
    for merged in app_batches(snap, settings.FINMON_ANALYZE_BATCH):
        apps += len(merged)
        inputs = {app.key: input_hash(app, version) for app in merged}
        batch = with_policy_texts([app for app in merged if known.get(app.key) != inputs[app.key]], snap)
        if batch:
            results = [cite(app, analyzers.analyze(app, registry=registry)) for app in batch]
            findings += sum(len(r.findings) for r in results)
            analysed += len(batch)
            counts.update(store.save_analysis(batch, results, seen, skipped_rules=skipped,
                                              inputs={app.key: inputs[app.key] for app in batch}))
        if progress:
            progress("analyse", apps, total)
    run.ended = utcnow()
    run.outcome = "ok"
    run.counters = {
        "apps": apps,
        "apps_analysed": analysed,
        "apps_unchanged": apps - analysed,
        "listings": len(snap.listing_places),
        "policies": len(snap.policies),
        "findings": findings,
        "errors/bad_snapshot_line": snap.bad_lines,
        "rules_not_applied": sum(1 for row in table if not row["applied"]),
        "registry_entries": len(registry) if registry is not None else 0,
        **{f"findings_{k}": counts[k] for k in ("new", "open", "resolved")},
    }
    store.save_run(run)
    return run


def open_store(db_path: Path, read_only: bool = False):
    """The index: Elasticsearch when FINMON_ES_URL is set, else the SQLite file at ``db_path``.

    ``read_only``: for commands that only read: the SQLite file must exist and is neither locked nor
    changed (Elasticsearch readers never wait for writers).
    """
    if os.environ.get("FINMON_ES_URL"):
        from index.elastic import ElasticStore

        return ElasticStore.from_env()
    from index.sqlite import SQLiteStore

    return SQLiteStore(db_path, read_only=read_only)


def env_store_urls(defaults: dict[str, str]) -> dict[str, str]:
    """Store URLs from settings, overridable per store with FINMON_STORE_<NAME>."""
    return {name: os.environ.get(f"FINMON_STORE_{name.upper()}", url) for name, url in defaults.items()}
