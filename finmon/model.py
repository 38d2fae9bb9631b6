"""The data model shared by every stage. Imports nothing of ours.

App identity is ``platform:package``. Listings from several stores merge into one
:class:`AppSnapshot`, the unit the analyzers read. A :class:`Finding` is frozen and its
id is a hash of (app key, rule id, evidence key), so re-indexing is idempotent.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
import types
import typing
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from itertools import islice
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import urlsplit

SEVERITIES = ("high", "medium", "low")
CONFIDENCES = ("high", "medium", "low")
FINDING_STATUSES = ("new", "open", "resolved")

# How an app's privacy policy turned out when the crawler looked for it.
POLICY_OK = "ok"  # fetched and extracted
POLICY_NONE = "none"  # no store listing names a policy URL
POLICY_NOT_FOUND = "not_found"  # the URL answered 404/410
POLICY_UNAVAILABLE = "unavailable"  # network error, 5xx, refused, unreadable: we do not know


def utcnow() -> str:
    """Current UTC time as an ISO-8601 string (seconds precision)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def parse_utc(value: Any) -> datetime | None:
    """An ISO-8601 string or a datetime as an aware UTC datetime (naive means UTC); None if unparseable."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def sha256_hex(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def normalise_text(text: str) -> str:
    """NFKC, unified newlines, collapsed runs of blanks: the form a policy hash is taken on."""
    text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")


def detect_language(text: str) -> str:
    """``zh`` when CJK characters are at least 30% of the words (latin letters / 5), else ``en``."""
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN.findall(text))
    if not cjk and not latin:
        return ""
    return "zh" if cjk >= 0.3 * (cjk + latin / 5) else "en"


def app_key(platform: str, package: str) -> str:
    return f"{platform}:{package}"


@cache
def _checker(hint: Any) -> Callable[[Any], bool]:
    """A test of whether a value (as read from JSON, lists for tuples) has the type ``hint`` names, made once per
    hint: records are read by the million (a snapshot, a crawl's shared queue)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if len(args) == 2 and type(None) in args:  # Optional: the common case, tested in one step
            other = _checker(next(arg for arg in args if arg is not type(None)))
            return lambda value: value is None or other(value)
        alternatives = tuple(_checker(arg) for arg in args)
        return lambda value: any(check(value) for check in alternatives)
    if origin is tuple:
        item = _checker(typing.get_args(hint)[0])
        return lambda value: isinstance(value, (list, tuple)) and all(map(item, value))
    if hint is type(None):
        return lambda value: value is None
    if hint is int:
        return lambda value: isinstance(value, int) and not isinstance(value, bool)
    kind = origin or hint
    return lambda value: isinstance(value, kind)


@cache
def _field_checkers(cls: type) -> dict[str, tuple[Any, Callable[[Any], bool]]]:
    return {name: (hint, _checker(hint)) for name, hint in typing.get_type_hints(cls).items()}


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _plain(value: Any) -> Any:
    """``value`` as :func:`dataclasses.asdict` gives it: records as dicts, containers copied; its leaves (strings,
    numbers, None) are immutable and kept, not deep-copied one by one."""
    if isinstance(value, (str, int, float, type(None))):
        return value
    if isinstance(value, _Record):
        return value.to_dict()
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return copy.deepcopy(value)


class _Record:
    """Dict round-trip for the frozen dataclasses below."""

    def to_dict(self) -> dict[str, Any]:
        return {name: _plain(getattr(self, name)) for name in _field_names(type(self))}

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """The record ``data`` describes; a TypeError names the first field of the wrong type (a snapshot line
        written by a killed crawl or edited by hand must cost that line, not corrupt the analysis)."""
        if not isinstance(data, dict):
            raise TypeError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
        fields = _field_checkers(cls)
        kwargs = {}
        for key, value in data.items():
            if key not in fields:
                continue
            hint, conforms = fields[key]
            if not conforms(value):
                expected = hint.__name__ if isinstance(hint, type) else hint
                raise TypeError(f"{cls.__name__}.{key}: expected {expected}, got {type(value).__name__}")
            kwargs[key] = tuple(value) if isinstance(value, list) else value
        return cls(**kwargs)


# Fields of a Listing that say how and when it was captured, not what the store shows: left out of its content hash.
LISTING_CAPTURE_FIELDS = ("fetched_at", "content_hash", "etag", "last_modified", "capture", "data_safety_capture")


@dataclass(frozen=True)
class Listing(_Record):
    """One store's page for one app, as captured."""

    store: str
    store_id: str
    platform: str  # "android" | "ios"
    package: str  # Android package name or iOS bundle id
    name: str
    developer: str  # the name the store shows
    category: str
    source_url: str
    fetched_at: str
    legal_entity: str = ""  # the developer's legal name where the store gives one (iTunes sellerName, …)
    legal_address: str = ""  # the legal entity's address where the store gives one (Google Play)
    developer_email: str = ""  # the contact e-mail the store shows (Google Play)
    version: str = ""
    updated: str = ""  # update date as the store states it (ISO date when parseable)
    description: str = ""
    downloads: int | None = None
    rating_count: int | None = None
    privacy_url: str | None = None
    permissions: tuple[str, ...] = ()  # Android permission names
    privacy_labels: tuple[str, ...] = ()  # iOS privacy-label data categories
    apk_url: str | None = None  # the store's APK download link (Android)
    # What the developer declared in the store's data-safety form (Google Play's Data safety section), None when the
    # store has no such form or the developer gave none: {"collected": [entry], "shared": [entry], "practices": [str]},
    # an entry {"category", "type", "optional", "purpose"} as the store words them.
    data_safety: dict | None = None
    content_hash: str = ""
    etag: str = ""  # HTTP validators of the page it was read from, for the next crawl's conditional request
    last_modified: str = ""
    capture: str = ""  # the page's record in the evidence archive (finmon.evidence.CaptureRef), "" if none
    data_safety_capture: str = ""  # the record of the page its data_safety was read from, "" if none

    @property
    def app_key(self) -> str:
        return app_key(self.platform, self.package)

    def content_digest(self) -> str:
        """sha256 of what the store shows (the capture fields left out): the listing's content hash."""
        content = {name: getattr(self, name) for name in _LISTING_CONTENT_FIELDS}
        return sha256_hex(dumps({k: v for k, v in content.items() if k not in _LISTING_LATER_FIELDS or v}))


_LISTING_CONTENT_FIELDS = tuple(f.name for f in dataclasses.fields(Listing) if f.name not in LISTING_CAPTURE_FIELDS)
# Content fields added after listings were first stored: hashed only when set, so that an upgrade does not make
# every stored listing look changed.
_LISTING_LATER_FIELDS = ("legal_entity", "legal_address", "developer_email", "data_safety")


@dataclass(frozen=True)
class PolicyVersion(_Record):
    """A fetched privacy policy. A new sha256 of the normalised text is a new version."""

    url: str
    final_url: str
    fetched_at: str
    sha256: str
    text: str
    language: str = ""  # "zh" | "en"
    title: str = ""
    effective_date: str | None = None
    content_type: str = ""  # "html" | "pdf" | "text"
    capture: str = ""  # the response it was extracted from, in the evidence archive ("" if none)


@dataclass(frozen=True)
class ApkInfo(_Record):
    """One APK file: its identity, its manifest as Android applies it, and the SDKs its classes reveal."""

    sha256: str
    size: int
    package: str
    label: str = ""  # the application label when the manifest gives it literally
    version: str = ""
    version_code: int | None = None
    min_sdk: int = 1
    target_sdk: int = 1
    permissions: tuple[str, ...] = ()  # requested (uses-permission, uses-permission-sdk-23), sorted
    implied_permissions: tuple[str, ...] = ()  # added by the platform for this targetSdk, sorted
    debuggable: bool = False
    allow_backup: bool = True
    uses_cleartext_traffic: bool | None = None  # None: a network security config decides
    exported_unprotected: tuple[dict, ...] = ()  # {"kind", "name"} of exported components no permission guards
    sdks: tuple[dict, ...] = ()  # {"id", "name", "category", "evidence"}
    url: str = ""  # where it was downloaded from, if it was
    capture: str = ""  # its inspection's record in the evidence archive ("" if none)


@dataclass(frozen=True)
class AppSnapshot:
    """Everything known about one app at one capture: the analyzers' whole input."""

    key: str
    platform: str
    package: str
    name: str
    developer: str
    category: str
    description: str = ""
    legal_entity: str = ""  # the first store's legal name for the developer ("" when no store gives one)
    listings: tuple[Listing, ...] = ()
    permissions: frozenset[str] = frozenset()
    privacy_labels: frozenset[str] = frozenset()
    policy: PolicyVersion | None = None
    policy_status: str = POLICY_NONE
    policy_url: str | None = None
    apk: ApkInfo | None = None


@dataclass(frozen=True)
class Evidence(_Record):
    """What a finding rests on. ``key`` makes the finding id stable across runs."""

    kind: str  # "quote" | "permission" | "data_safety" | "sdk" | "manifest" | "url" | "absence" | "listing"
    key: str
    text: str = ""  # the quoted sentence, the permission name, ...
    start: int | None = None  # offsets of ``text`` in the policy text, for quotes
    end: int | None = None
    url: str | None = None
    detail: str = ""  # e.g. the matched term or the data type


@dataclass(frozen=True)
class Finding(_Record):
    rule_id: str
    severity: str
    confidence: str
    app_key: str
    title: str
    evidence: Evidence
    regulation: str
    first_seen: str = ""
    last_seen: str = ""
    status: str = "new"
    capture: str = ""  # the record its evidence rests on in the evidence archive; not part of its id

    @property
    def id(self) -> str:
        return finding_id(self.app_key, self.rule_id, self.evidence.key)

    @property
    def family(self) -> str:
        return self.rule_id[0]

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["id"] = self.id
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Finding":
        data = dict(data)
        data.pop("id", None)
        evidence = data.pop("evidence")
        if isinstance(evidence, dict):
            evidence = Evidence.from_dict(evidence)
        return cls(evidence=evidence, **{k: v for k, v in data.items() if k in _FINDING_FIELDS})


_FINDING_FIELDS = {f.name for f in dataclasses.fields(Finding)} - {"evidence"}


def finding_id(app_key_: str, rule_id: str, evidence_key: str) -> str:
    return sha256_hex(f"{app_key_}\x1f{rule_id}\x1f{evidence_key}")[:24]


@dataclass(frozen=True)
class Analysis:
    """What the analyzers made of one app: its finance type and its findings."""

    app_key: str
    finance_type: str  # payment | lending | investment | banking | insurance | securities | other
    finance_confidence: float
    findings: tuple[Finding, ...] = ()


@dataclass
class Run(_Record):
    """One crawl, analysis or report run and what happened in it."""

    id: str
    kind: str  # "crawl" | "analyze" | "report" | "demo"
    started: str
    ended: str | None = None
    counters: dict[str, int] = field(default_factory=dict)
    outcome: str = "running"  # "running" | "ok" | "failed" | "interrupted"
    job: str = ""  # the scheduler job that ran it ("crawl:appgallery", "report:weekly", …), "" when run by hand
    attempt: int = 1  # 2, 3, … for retries and resumptions of the same job run
    error: str = ""  # why it failed or was interrupted


def merge_listings(
    listings: Iterable[Listing],
    policies: dict[str, PolicyVersion],
    policy_failures: dict[str, str],
    apks: dict[str, ApkInfo] | None = None,
) -> list[AppSnapshot]:
    """Merge listings by app key into snapshots, attaching each app's policy and APK.

    ``policies`` maps a policy URL to its fetched version; ``policy_failures`` maps a URL
    that could not be fetched to :data:`POLICY_NOT_FOUND` or :data:`POLICY_UNAVAILABLE`;
    ``apks`` maps an APK download URL to its inspection (an APK of another package is not attached).
    Listings are applied in store order, so the first store with a value wins.
    """
    apks = apks or {}
    grouped: dict[str, list[Listing]] = {}
    for listing in listings:
        grouped.setdefault(listing.app_key, []).append(listing)
    apps = []
    for key in sorted(grouped):
        group = sorted(grouped[key], key=lambda lst: (lst.store, lst.store_id))
        first = group[0]
        urls = [lst.privacy_url for lst in group if lst.privacy_url]
        policy = next((policies[u] for u in urls if u in policies), None)
        if policy is not None:
            status, url = POLICY_OK, policy.url
        elif not urls:
            status, url = POLICY_NONE, None
        elif all(policy_failures.get(u) == POLICY_NOT_FOUND for u in urls):
            status, url = POLICY_NOT_FOUND, urls[0]
        else:
            status, url = POLICY_UNAVAILABLE, urls[0]
        apps.append(
            AppSnapshot(
                key=key,
                platform=first.platform,
                package=first.package,
                name=next((lst.name for lst in group if lst.name), ""),
                developer=next((lst.developer for lst in group if lst.developer), ""),
                category=next((lst.category for lst in group if lst.category), ""),
                legal_entity=next((lst.legal_entity for lst in group if lst.legal_entity), ""),
                description=max((lst.description for lst in group), key=len, default=""),
                listings=tuple(group),
                permissions=frozenset(p for lst in group for p in lst.permissions),
                privacy_labels=frozenset(p for lst in group for p in lst.privacy_labels),
                policy=policy,
                policy_status=status,
                policy_url=url,
                apk=next((apks[lst.apk_url] for lst in group if lst.apk_url in apks
                          and apks[lst.apk_url].package == first.package), None),
            )
        )
    return apps


def redact_url(url: str) -> str:
    """A URL as messages may show it: no user, password, query or fragment (where secrets live)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable URL>"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in lists of ``size`` (the last one shorter), read lazily."""
    items = iter(items)
    while chunk := list(islice(items, size)):
        yield chunk


def dumps(obj: Any) -> str:
    """Compact, stable JSON (keys sorted, UTF-8 kept readable)."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
