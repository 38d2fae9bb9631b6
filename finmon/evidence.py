"""The evidence archive: what a crawl kept, in WARC files, and the capture each finding rests on.

Writing (:class:`CaptureWriter`, used by the crawler's snapshot): each store's crawl writes WARC 1.1 files into
its snapshot folder (``captures.warc.gz``; a crawl that reopens the folder, or a file past
``FINMON_WARC_MAX_BYTES``, goes on in ``captures-2.warc.gz``, …). Every record is a gzip member of its own,
written whole and flushed before the snapshot line that cites it, so a record is found again by its offset and
a killed crawl leaves every record a line cites readable. A store's detail page and a policy are ``response``
records: the status line, the headers and the body as the crawler received it (de-chunked, and decompressed when
the server compressed it; nothing in it is run or rewritten). An APK is not kept: its inspection is a
``metadata`` record (JSON) for the APK's URL. Every record carries ``WARC-Payload-Digest: sha256:<hex>`` and a
``WARC-Block-Digest``.

A capture reference (:class:`CaptureRef`) is a string ``<WARC file>#<offset>;<WARC-Record-ID>;sha256:<hex>``.
Snapshot lines hold it with the file relative to their own folder; analysis makes the path absolute
(:func:`resolve`) and each finding keeps the reference of what its evidence rests on (:func:`cite`).

Reading (:func:`read_capture`) finds the record again and recomputes its digests on every read: a missing file,
a broken record or a body whose digest differs is an :class:`EvidenceError`, never a wrong body.
"""
from __future__ import annotations

import dataclasses
import hashlib
import mimetypes
import os
import re
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import quote

from finmon import settings
from finmon.model import Analysis, AppSnapshot, Evidence, Listing, parse_utc

WARC_NAME = "captures"  # captures.warc.gz, captures-2.warc.gz, … in a snapshot folder
WARC_SUFFIX = ".warc.gz"
DIGEST_PREFIX = "sha256:"


class EvidenceError(Exception):
    """A capture cannot be shown: no reference, its WARC file is gone, or its record is broken or altered."""


# -- references ------------------------------------------------------------------------------------------------------
_REF = re.compile(r"(?P<file>.+)#(?P<offset>\d+);(?P<record_id><[^;>]+>);(?P<digest>sha256:[0-9a-f]{64})")


@dataclass(frozen=True)
class CaptureRef:
    """Where one WARC record is: its file, the byte offset of its gzip member, its id and its payload digest."""

    file: str
    offset: int
    record_id: str
    digest: str  # "sha256:<hex>" of the payload

    def __str__(self) -> str:
        return f"{self.file}#{self.offset};{self.record_id};{self.digest}"

    @classmethod
    def parse(cls, text: str) -> CaptureRef:
        """The reference ``text`` holds; EvidenceError when it is empty or not a reference."""
        if not text:
            raise EvidenceError("no capture recorded (indexed before the evidence archive, or nothing was captured)")
        found = _REF.fullmatch(text)
        if found is None:
            raise EvidenceError(f"not a capture reference: {text[:200]!r}")
        return cls(found["file"], int(found["offset"]), found["record_id"], found["digest"])


def resolve(ref: str, folder: Path) -> str:
    """``ref`` (as a snapshot line holds it) with its file as an absolute path, relative ones taken from ``folder``;
    "" stays "". A malformed reference raises EvidenceError."""
    if not ref:
        return ""
    parsed = CaptureRef.parse(ref)
    path = Path(parsed.file)
    if not path.is_absolute():
        path = Path(os.path.normpath(Path(folder).absolute() / path))
    return str(dataclasses.replace(parsed, file=str(path)))


def rebase(ref: str, old_folder: Path, new_folder: Path) -> str:
    """``ref`` read from a line in ``old_folder``, as a line in ``new_folder`` cites it (a capture carried forward
    on 304); "" stays "", and so does anything that is not a reference."""
    try:
        absolute = CaptureRef.parse(resolve(ref, old_folder))
    except EvidenceError:
        return ""
    relative = os.path.relpath(absolute.file, Path(new_folder).absolute())
    return str(dataclasses.replace(absolute, file=relative))


def warc_file(ref: str) -> Path | None:
    """The WARC file a reference names (None for "" or anything that is not a reference)."""
    try:
        return Path(CaptureRef.parse(ref).file)
    except EvidenceError:
        return None


def evidence_link(finding_id: str, base: str | None = None) -> str:
    """Where the web application shows a finding's capture: ``<FINMON_SERVE_URL>/evidence/<finding id>``."""
    base = base if base is not None else serve_url()
    return f"{base}/evidence/{quote(finding_id, safe='')}"


def serve_url() -> str:
    """The web application's base URL: FINMON_SERVE_URL from the environment, else the settings'."""
    return (os.environ.get("FINMON_SERVE_URL") or settings.FINMON_SERVE_URL).rstrip("/")


# -- writing ---------------------------------------------------------------------------------------------------------
def _sha256(data: bytes) -> str:
    return DIGEST_PREFIX + hashlib.sha256(data).hexdigest()


def warc_date(moment: str) -> str:
    """An ISO-8601 time as WARC-Date takes it (UTC, ``Z``); the time now when ``moment`` is no time."""
    parsed = parse_utc(moment) if moment else None
    if parsed is None:
        parsed = datetime.now(timezone.utc)
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")


# Hop-by-hop framing the stored body no longer has (it is kept de-chunked).
_DROPPED_HEADERS = {"transfer-encoding"}


class CaptureWriter:
    """Appends capture records to the WARC files of one folder; each method returns the record's reference, its
    file relative to the folder. One writer per folder and process (the crawl's snapshot holds it)."""

    def __init__(self, folder: Path, gzip_level: int | None = None, max_bytes: int | None = None) -> None:
        self.folder = Path(folder)
        self.gzip_level = settings.FINMON_WARC_GZIP_LEVEL if gzip_level is None else gzip_level
        self.max_bytes = settings.FINMON_WARC_MAX_BYTES if max_bytes is None else max_bytes
        self._fh: Any = None
        self._name = ""

    def response(self, url: str, status: int, headers: Iterable[tuple[str, str]], body: bytes, fetched_at: str,
                 protocol: str = "HTTP/1.1", reason: str = "") -> str:
        """A ``response`` record: the status line, ``headers`` (but transfer framing) and ``body`` as received."""
        from warcio.statusandheaders import StatusAndHeaders

        kept = [(name, value) for name, value in headers if name.lower() not in _DROPPED_HEADERS]
        http = StatusAndHeaders(f"{status} {reason}".strip(), kept, protocol=protocol or "HTTP/1.1")
        return self._write("response", url, fetched_at, http.to_bytes(), body, "application/http; msgtype=response")

    def metadata(self, url: str, content: bytes, fetched_at: str, content_type: str = "application/json") -> str:
        """A ``metadata`` record about ``url`` (an APK's inspection: the file itself is not kept)."""
        return self._write("metadata", url, fetched_at, b"", content, content_type)

    def _write(self, kind: str, url: str, fetched_at: str, http: bytes, payload: bytes, content_type: str) -> str:
        record_id = f"<urn:uuid:{uuid.uuid4()}>"
        digest = _sha256(payload)
        member = self._member(kind, http + payload, content_type, [
            ("WARC-Record-ID", record_id), ("WARC-Date", warc_date(fetched_at)), ("WARC-Target-URI", url),
            ("WARC-Payload-Digest", digest)])
        fh = self._file(len(member))
        offset = fh.tell()
        fh.write(member)
        fh.flush()  # on disk before any snapshot line cites it
        return str(CaptureRef(self._name, offset, record_id, digest))

    def _member(self, kind: str, block: bytes, content_type: str, headers: list[tuple[str, str]]) -> bytes:
        """One record (warcio formats its header block) as a gzip member of its own."""
        from warcio.statusandheaders import StatusAndHeaders

        warc = StatusAndHeaders("", [("WARC-Type", kind), *headers, ("WARC-Block-Digest", _sha256(block)),
                                     ("Content-Type", content_type), ("Content-Length", str(len(block)))],
                                protocol="WARC/1.1")
        packer = zlib.compressobj(self.gzip_level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # 16+: the gzip format
        return b"".join((packer.compress(warc.to_bytes()), packer.compress(block), packer.compress(b"\r\n\r\n"),
                         packer.flush()))

    def _file(self, size: int):
        """The open WARC file, a new one when none is open or this record would take it past ``max_bytes``."""
        if self._fh is not None and self._fh.tell() + size > self.max_bytes and self._fh.tell() > 0:
            self.close()
        if self._fh is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            for n in range(1, 1_000_000):
                name = f"{WARC_NAME}{'' if n == 1 else f'-{n}'}{WARC_SUFFIX}"
                try:  # a new file every time: a record already cited is never overwritten
                    self._fh = open(self.folder / name, "xb")
                except FileExistsError:
                    continue
                self._name = name
                break
            fields = f"software: finmon\r\nformat: WARC File Format 1.1\r\nfilename: {name}\r\n".encode()
            self._fh.write(self._member("warcinfo", fields, "application/warc-fields", [
                ("WARC-Record-ID", f"<urn:uuid:{uuid.uuid4()}>"), ("WARC-Date", warc_date("")),
                ("WARC-Filename", name)]))
            self._fh.flush()
        return self._fh

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


# -- reading ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Capture:
    """One captured record, read back with its digest checked."""

    url: str
    date: str  # WARC-Date
    record_type: str  # "response" | "metadata"
    status: int | None  # the HTTP status (None for a metadata record)
    reason: str
    headers: tuple[tuple[str, str], ...]  # the HTTP headers as received (none for a metadata record)
    content_type: str
    body: bytes
    digest: str  # "sha256:<hex>" of the body, recomputed and matching the record's
    record_id: str
    file: str
    offset: int

    def summary(self) -> dict[str, Any]:
        """Everything but the body, JSON-able, with the body's size and ``verified``."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "body"}
        out["headers"] = [list(pair) for pair in self.headers]
        out.update(size=len(self.body), verified=True)
        return out

    def extension(self) -> str:
        """A file name extension for the body, from its content type (``.bin`` when unknown)."""
        if self.body.lstrip()[:5] == b"%PDF-":
            return ".pdf"
        media = self.content_type.split(";")[0].strip().lower()
        if media in ("text/javascript", "application/javascript") and self.body.lstrip()[:1] in (b"{", b"["):
            return ".json"
        return (mimetypes.guess_extension(media) if media else None) or ".bin"


def read_capture(ref: str | CaptureRef) -> Capture:
    """The record ``ref`` names, its payload and block digests recomputed; EvidenceError (naming the WARC file)
    when there is no reference, the file is gone, the record is broken or truncated, or a digest differs."""
    from warcio.archiveiterator import ArchiveIterator

    ref = ref if isinstance(ref, CaptureRef) else CaptureRef.parse(ref)
    path = Path(ref.file)
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise EvidenceError(f"{path}: WARC file not found (capture {ref.record_id})") from None
    except OSError as exc:
        raise EvidenceError(f"{path}: WARC file unreadable ({exc.strerror or exc})") from None
    with fh:
        try:
            fh.seek(ref.offset)
            record = next(iter(ArchiveIterator(fh, check_digests=True)), None)
            if record is None:
                size = path.stat().st_size
                raise EvidenceError(f"{path}: the record at offset {ref.offset} is broken or truncated (the file "
                                    f"ends inside it)" if ref.offset < size else
                                    f"{path}: no record at offset {ref.offset} (the file is {size} bytes)")
            body = record.raw_stream.read()
            headers = record.rec_headers
            problems = list(record.digest_checker.problems)
        except EvidenceError:
            raise
        except Exception as exc:  # zlib, warcio and parsing errors on a damaged file: this capture only
            raise EvidenceError(f"{path}: record at offset {ref.offset} is broken or truncated "
                                f"({type(exc).__name__}: {exc})") from None
    found_id = headers.get_header("WARC-Record-ID") or ""
    if found_id != ref.record_id:
        raise EvidenceError(f"{path}: the record at offset {ref.offset} is {found_id or 'unnamed'}, "
                            f"not {ref.record_id} (the file was replaced?)")
    digest = _sha256(body)
    stated = headers.get_header("WARC-Payload-Digest") or ""
    if digest != ref.digest or stated != ref.digest or problems:
        raise EvidenceError(f"{path}: digest mismatch for {ref.record_id}: the body's is {digest}, the reference "
                            f"says {ref.digest}, the record {stated or 'nothing'}"
                            + (f" ({'; '.join(problems)})" if problems else ""))
    http = record.http_headers
    status = None
    if record.rec_type == "response" and http is not None:
        code = http.get_statuscode()
        status = int(code) if code and code.isdigit() else None
    reason = http.statusline.partition(" ")[2] if http is not None else ""
    content_type = (http.get_header("Content-Type") if http is not None else headers.get_header("Content-Type")) or ""
    return Capture(
        url=headers.get_header("WARC-Target-URI") or "", date=headers.get_header("WARC-Date") or "",
        record_type=record.rec_type, status=status, reason=reason,
        headers=tuple((str(k), str(v)) for k, v in (http.headers if http is not None else ())),
        content_type=content_type, body=body, digest=digest, record_id=found_id, file=str(path), offset=ref.offset)


# -- what a finding rests on -----------------------------------------------------------------------------------------
def cite(app: AppSnapshot, analysis: Analysis) -> Analysis:
    """``analysis`` with each finding's ``capture`` set to the capture its evidence rests on (see
    :func:`finding_capture`); the findings' ids do not change."""
    if not analysis.findings:
        return analysis
    findings = tuple(dataclasses.replace(f, capture=finding_capture(app, f.evidence)) for f in analysis.findings)
    return dataclasses.replace(analysis, findings=findings)


def finding_capture(app: AppSnapshot, ev: Evidence) -> str:
    """The capture a finding's evidence rests on ("" when none was captured).

    An SDK or a manifest flag: the APK's inspection. A Data safety declaration: the form's page. A permission: the
    listing of the first store that shows it, else the APK whose manifest requests it. Evidence whose URL is a store
    page (listing text, a registry lookup): that listing. Evidence from the policy (a quote, a missing clause): the policy's response. No policy at all:
    the listing that names the policy URL, else the first listing captured.
    """
    apk = app.apk.capture if app.apk is not None else ""
    if ev.kind in ("sdk", "manifest"):
        return apk
    if ev.kind == "data_safety":  # what a store's Data safety form declares: that page, else the listing's page
        form = _first(lst.data_safety_capture for lst in app.listings if lst.data_safety is not None)
        if form:
            return form
    if ev.kind == "permission":
        wanted = {ev.key, *(p.strip() for p in ev.text.split(","))} - {""}
        for lst in app.listings:
            if lst.capture and wanted & ({_full_permission(p) for p in lst.permissions} | set(lst.permissions)):
                return lst.capture
        if apk and app.apk is not None and wanted & set(app.apk.permissions):
            return apk
    by_page = _listing(app.listings, lambda lst: ev.url is not None and lst.source_url == ev.url)
    if by_page:
        return by_page
    policy = app.policy
    if policy is not None and policy.capture and (ev.url in (policy.url, policy.final_url, app.policy_url)
                                                  or ev.kind in ("quote", "permission", "absence")):
        return policy.capture
    return (_listing(app.listings, lambda lst: ev.url is not None and lst.privacy_url == ev.url)
            or _listing(app.listings, lambda lst: True))


def _first(captures: Iterable[str]) -> str:
    return next((capture for capture in captures if capture), "")


def _listing(listings: Iterable[Listing], wanted) -> str:
    return next((lst.capture for lst in listings if lst.capture and wanted(lst)), "")


def _full_permission(name: str) -> str:
    return name if "." in name else f"android.permission.{name}"
