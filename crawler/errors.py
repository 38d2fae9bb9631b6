"""Failure kinds: every lost request or item is classified into one of these.

The kind is the ``kind`` of an errors.jsonl line and the ``finmon/errors/<kind>`` stat.
"""
from __future__ import annotations

from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet import error as tx_error
from twisted.python.failure import Failure

HTTP_5XX = "http_5xx"
HTTP_4XX = "http_4xx"
NOT_FOUND = "not_found"
TIMEOUT = "timeout"
CONNECTION = "connection"
MALFORMED_JSON = "malformed_json"
LAYOUT_CHANGED = "layout_changed"
MALFORMED_FIELD = "malformed_field"  # one item or field of a response held a value of the wrong type
DUPLICATE = "duplicate"  # a request the duplicate filter dropped
TOO_LARGE = "too_large"
ROBOTS_FORBIDDEN = "robots_forbidden"
PRIVATE_ADDRESS = "private_address"
REDIRECT_LOOP = "redirect_loop"
UNSUPPORTED_URL = "unsupported_url"
EXTRACTION_FAILED = "extraction_failed"
APK_INVALID = "apk_invalid"
OTHER = "other"

_TIMEOUTS = (DownloadTimeoutError, tx_error.TimeoutError, tx_error.TCPTimedOutError, TimeoutError)
_CONNECTION = (
    CannotResolveHostError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    ResponseDataLossError,
    tx_error.ConnectError,
    tx_error.ConnectionLost,
    tx_error.ConnectionDone,
    OSError,
)


class PrivateAddressRefused(IgnoreRequest):
    """A URL the URL guard refused: its address is not global (``private_address``) or its scheme is not
    http(s) (``unsupported_url``)."""

    def __init__(self, message: str, kind: str = PRIVATE_ADDRESS) -> None:
        super().__init__(message)
        self.kind = kind


def classify(failure: Failure | BaseException, *, policy: bool = False) -> tuple[str, str]:
    """A download failure → (kind, reason). A 404/410 is ``not_found`` for policy URLs."""
    exc = failure.value if isinstance(failure, Failure) else failure
    if isinstance(exc, HttpError):
        status = exc.response.status
        if policy and status in (404, 410):
            kind = NOT_FOUND
        else:
            kind = HTTP_5XX if status >= 500 else HTTP_4XX
        return kind, f"HTTP {status}"
    if isinstance(exc, PrivateAddressRefused):
        return exc.kind, str(exc)
    message = str(exc) or type(exc).__name__
    if isinstance(exc, IgnoreRequest):
        if "robots.txt" in message:
            return ROBOTS_FORBIDDEN, message
        if "max size" in message.lower() or "MAXSIZE" in message:
            return TOO_LARGE, message
        if "redirections" in message:
            return REDIRECT_LOOP, message
        return OTHER, message
    if isinstance(exc, DownloadCancelledError):  # the download handler cancels bodies over the size cap
        return TOO_LARGE, message
    if isinstance(exc, _TIMEOUTS):
        return TIMEOUT, message
    if isinstance(exc, _CONNECTION):
        return CONNECTION, f"{type(exc).__name__}: {message}"
    return OTHER, f"{type(exc).__name__}: {message}"
