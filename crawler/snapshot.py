"""The snapshot directory a crawl writes: listings.jsonl, policies.jsonl, apks.jsonl, errors.jsonl, run.json,
and the WARC files of its evidence archive (captures*.warc.gz, see :mod:`finmon.evidence`).

One :class:`Snapshot` per directory and process, shared by every crawler writing into it
(pipelines, spiders and the run recorder all reach it through the crawler's settings).
Lines are flushed as written so a crawl in progress can be watched and a killed crawl
keeps what it found.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections import Counter
from http import HTTPStatus
from pathlib import Path
from typing import Any, ClassVar

from scrapy.exceptions import NotConfigured
from scrapy.settings import BaseSettings

from finmon import settings as finmon_settings
from finmon.evidence import CaptureWriter
from finmon.model import Run, dumps, utcnow

FILES = ("listings", "policies", "apks", "errors")


def new_run_id() -> str:
    return f"crawl-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"


class Snapshot:
    """One crawl's output directory, its run record and the policy URLs already claimed."""

    _open: ClassVar[dict[Path, "Snapshot"]] = {}

    def __init__(self, path: Path, run_id: str = "", resume: bool = False) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        (path / "run.json").unlink(missing_ok=True)  # a run record always belongs to the files beside it
        self.run = Run(id=run_id or new_run_id(), kind="crawl", started=utcnow())
        self.counters: Counter[str] = Counter()
        self.close_reasons: list[str] = []
        self.users = 0
        self._claimed: set[str] = set()
        self.shared_claims: Path | None = None  # FINMON_SHARED_CLAIMS: claims shared with the other stores' crawls
        self._files: dict[str, Any] = {}
        self.max_loss_share = finmon_settings.FINMON_MAX_LOSS_SHARE  # set from the crawl's settings by of()
        self.captures = CaptureWriter(path)  # the evidence archive; of() sets its limits from the crawl's settings
        # truncate on first open, append if reopened by a later crawler or resuming an interrupted crawl
        self._mode = "a" if resume else "w"

    @classmethod
    def of(cls, settings: BaseSettings) -> "Snapshot":
        """The process-wide snapshot for ``FINMON_SNAPSHOT_DIR``."""
        out = settings.get("FINMON_SNAPSHOT_DIR")
        if not out:
            raise NotConfigured("FINMON_SNAPSHOT_DIR is not set: give the crawl's output directory")
        path = Path(out).resolve()
        if path not in cls._open:
            cls._open[path] = cls(path, settings.get("FINMON_RUN_ID") or "", settings.getbool("FINMON_RESUME"))
            cls._open[path].max_loss_share = settings.getfloat("FINMON_MAX_LOSS_SHARE",
                                                               finmon_settings.FINMON_MAX_LOSS_SHARE)
            claims = settings.get("FINMON_SHARED_CLAIMS")
            cls._open[path].shared_claims = Path(claims) if claims else None
            cls._open[path].captures = CaptureWriter(
                path, settings.getint("FINMON_WARC_GZIP_LEVEL", finmon_settings.FINMON_WARC_GZIP_LEVEL),
                settings.getint("FINMON_WARC_MAX_BYTES", finmon_settings.FINMON_WARC_MAX_BYTES))
        return cls._open[path]

    # --- writing ------------------------------------------------------------

    def _file(self, name: str):
        fh = self._files.get(name)
        if fh is None:
            fh = self._files[name] = open(self.path / f"{name}.jsonl", self._mode, encoding="utf-8", buffering=1)
        return fh

    def write(self, name: str, record: dict[str, Any]) -> None:
        self._file(name).write(dumps(record) + "\n")

    def capture(self, response, fetched_at: str) -> str:
        """Archive a Scrapy response (status line, headers, body as received) as a WARC ``response`` record; its
        reference, the file relative to this folder, for the snapshot line that keeps what came of it."""
        headers = [(name.decode("latin-1"), value.decode("latin-1"))
                   for name, values in response.headers.items() for value in values]
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = ""
        return self.captures.response(response.url, response.status, headers, response.body, fetched_at,
                                      protocol=getattr(response, "protocol", None) or "HTTP/1.1", reason=reason)

    def error(self, stats, store: str, kind: str, url: str, reason: str, item: str = "", field: str = "") -> None:
        """Record one lost request, item or field: an errors.jsonl line and ``finmon/errors/<kind>``.

        ``item`` and ``field`` (in the line when given) name what was lost when it is less than the response."""
        line = {"time": utcnow(), "store": store, "kind": kind, "url": url, "reason": reason}
        self.write("errors", {**line, **({"item": item} if item else {}), **({"field": field} if field else {})})
        stats.inc_value("finmon/errors")
        stats.inc_value(f"finmon/errors/{kind}")

    def claim(self, url: str) -> bool:
        """True the first time a policy or APK URL is seen in this snapshot (fetch it), then False.

        With ``shared_claims`` (a folder the crawls of one run share), a URL another store's crawl claimed
        first is not fetched again here: the same app in two stores links the same policy and APK, and
        the analysis reads every store's snapshot of the run together. (A shared crawl on a frontier has no
        such folder: its duplicate filter, in Redis, drops the second request instead.)"""
        if url in self._claimed:
            return False
        self._claimed.add(url)
        if self.shared_claims is None:
            return True
        try:  # O_EXCL: exactly one process creates the file, atomically, whichever comes first
            os.close(os.open(self.shared_claims / hashlib.sha256(url.encode()).hexdigest()[:32],
                             os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    # --- lifecycle ------------------------------------------------------------

    def acquire(self) -> None:
        self.users += 1
        for name in FILES:  # every file exists, even when empty
            self._file(name)

    def release(self, counters: dict[str, int], reason: str) -> Run | None:
        """A crawler closed: add its counters; the last one out writes run.json and closes the files."""
        self.counters.update(counters)
        self.close_reasons.append(reason)
        self.users -= 1
        if self.users > 0:
            return None
        self.close()
        self.run.ended = utcnow()
        self.run.counters = dict(sorted(self.counters.items()))
        self.run.outcome, self.run.error = outcome(self.close_reasons, self.run.counters, self.max_loss_share)
        tmp = self.path / "run.json.tmp"
        tmp.write_text(json.dumps(self.run.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.path / "run.json")
        return self.run


    def close(self) -> None:
        """Close the files; a later write reopens them for appending."""
        for fh in self._files.values():
            fh.close()
        self._files.clear()
        self.captures.close()  # a later record starts a new WARC file
        self._mode = "a"

    @classmethod
    def close_all(cls) -> None:
        """Close and forget every snapshot of this process."""
        for snapshot in cls._open.values():
            snapshot.close()
        cls._open.clear()


def outcome(close_reasons: list[str], counters: dict[str, int] | None = None,
            max_loss_share: float = 1.0) -> tuple[str, str]:
    """(outcome, why when not ok) of a run. A shutdown is an interruption; a run whose spiders all finished is
    ok unless it reached nothing (no request ended in an item) or lost more than ``max_loss_share`` of its
    requests (ended in an error; see the request ledger in crawler/spiders/__init__.py): then it failed."""
    if any(r == "shutdown" for r in close_reasons):
        return "interrupted", "stopped before the end"
    if not all(r == "finished" for r in close_reasons):
        return "failed", "a spider closed with " + ", ".join(sorted({r for r in close_reasons if r != "finished"}))
    if counters is None:
        return "ok", ""
    requests, items, errors = (counters.get(f"ledger/{name}", 0) for name in ("requests", "items", "errors"))
    if not items:
        return "failed", f"reached nothing: none of {requests} requests was answered with something readable"
    if errors > max_loss_share * requests:
        return "failed", (f"lost {errors} of {requests} requests ({errors / requests:.0%}), more than "
                          f"FINMON_MAX_LOSS_SHARE={max_loss_share:g}")
    return "ok", ""
