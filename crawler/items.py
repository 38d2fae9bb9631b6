"""Items the spiders yield besides :class:`finmon.model.Listing`."""
from __future__ import annotations

from dataclasses import dataclass

POLICY_STATUSES = ("ok", "not_found", "unavailable")


@dataclass
class PolicyFetch:
    """The outcome of fetching one policy URL: a body to extract, or why there is none."""

    url: str
    store: str
    status: str  # ok | not_found | unavailable
    fetched_at: str
    final_url: str = ""
    body: bytes = b""
    content_type: str = ""
    error: str | None = None  # "<kind>: <reason>" when status is not ok
    etag: str = ""  # validators the server sent, for the next crawl's conditional request
    last_modified: str = ""
    unchanged: bool = False  # the server answered 304: reuse the previous capture's record
    capture: str = ""  # the response's record in the evidence archive (finmon.evidence)


@dataclass
class ApkFetch:
    """The outcome of downloading one APK: a body to inspect, or why there is none."""

    url: str
    store: str
    status: str  # ok | unavailable
    fetched_at: str
    body: bytes = b""
    error: str | None = None
    etag: str = ""
    last_modified: str = ""
    unchanged: bool = False
