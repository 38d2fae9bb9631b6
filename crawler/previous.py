"""The previous capture of a store: validators for conditional requests, and records to reuse on 304.

A scheduled crawl names the last complete snapshot of its store (``FINMON_PREVIOUS_SNAPSHOT``). Its
listings.jsonl (by page URL), policies.jsonl and apks.jsonl (by URL), those of every part of a shared crawl
too, are indexed once (URL → file, line offset, ETag, Last-Modified), so a request can carry ``If-None-Match``/``If-Modified-Since`` and a
``304 Not Modified`` reuses the earlier record (already parsed, extracted or inspected) instead of
downloading and parsing again.
Only the small index stays in memory; a record is read from its line when it is reused.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, ClassVar

log = logging.getLogger(__name__)

KINDS = {"listings": "source_url", "policies": "url", "apks": "url"}  # snapshot file -> its URL field


class PreviousCapture:
    """The indexed policies.jsonl and apks.jsonl of one earlier snapshot directory."""

    _open: ClassVar[dict[Path, "PreviousCapture"]] = {}

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._index: dict[str, dict[str, tuple[Path, int, str, str]]] = {kind: {} for kind in KINDS}
        if path is not None:
            for kind in KINDS:
                self._load(kind)

    @classmethod
    def of(cls, settings) -> "PreviousCapture":
        """The process-wide previous capture named by ``FINMON_PREVIOUS_SNAPSHOT`` (empty when unset)."""
        value = settings.get("FINMON_PREVIOUS_SNAPSHOT") or ""
        path = Path(value).resolve() if value else None
        key = path or Path()
        if key not in cls._open:
            cls._open[key] = cls(path if path is not None and path.is_dir() else None)
        return cls._open[key]

    @classmethod
    def forget_all(cls) -> None:
        """Drop every loaded capture of this process."""
        cls._open.clear()

    def _load(self, kind: str) -> None:
        for file in sorted(self.path.rglob(f"{kind}.jsonl")):  # the snapshot's, or its parts'
            self._load_file(kind, file)

    def _load_file(self, kind: str, file: Path) -> None:
        index = self._index[kind]
        with file.open("rb") as fh:
            offset = 0
            for line in fh:
                try:
                    row = json.loads(line)
                    url, etag, modified = row[KINDS[kind]], row.get("etag") or "", row.get("last_modified") or ""
                    if not all(isinstance(v, str) for v in (url, etag, modified)):
                        raise TypeError("URL and validators must be strings")
                    if row.get("status", "ok") == "ok" and (etag or modified):
                        index[url] = (file, offset, etag, modified)
                except (ValueError, KeyError, AttributeError, TypeError, RecursionError):
                    log.warning("%s: unreadable line at byte %d skipped", file, offset)
                offset += len(line)

    def validators(self, kind: str, url: str) -> dict[str, str]:
        """Conditional request headers for ``url`` (none when it was not captured with a validator)."""
        entry = self._index[kind].get(url)
        if entry is None:
            return {}
        _, _, etag, last_modified = entry
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return headers

    def record(self, kind: str, url: str) -> dict[str, Any] | None:
        """The earlier record of ``url`` (its line of ``<kind>.jsonl``), or None."""
        entry = self._index[kind].get(url)
        if entry is None:
            return None
        with entry[0].open("rb") as fh:
            fh.seek(entry[1])
            return json.loads(fh.readline())

    def folder(self, kind: str, url: str) -> Path | None:
        """The folder of the file holding ``url``'s record (a capture reference in it is relative to it)."""
        entry = self._index[kind].get(url)
        return entry[0].parent if entry is not None else None

    def __len__(self) -> int:
        return sum(len(index) for index in self._index.values())
