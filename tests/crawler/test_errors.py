import pytest
from scrapy import Request
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadTimeoutError,
    IgnoreRequest,
)
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawler.errors import PrivateAddressRefused, classify


def http_error(status: int) -> HttpError:
    return HttpError(Response("http://127.0.0.1/x", status=status, request=Request("http://127.0.0.1/x")))


@pytest.mark.parametrize(
    ("exc", "policy", "kind"),
    [
        (http_error(404), True, "not_found"),
        (http_error(410), True, "not_found"),
        (http_error(404), False, "http_4xx"),
        (http_error(403), True, "http_4xx"),
        (http_error(500), True, "http_5xx"),
        (http_error(503), False, "http_5xx"),
        (DownloadTimeoutError("took longer than 20 seconds"), False, "timeout"),
        (CannotResolveHostError("no such host"), False, "connection"),
        (DownloadConnectionRefusedError("refused"), False, "connection"),
        (DownloadCancelledError("Received 9000000 bytes which is larger than download max size"), True, "too_large"),
        (IgnoreRequest("Ignored response because its body exceeded DOWNLOAD_MAXSIZE during decompression."), True, "too_large"),
        (IgnoreRequest("Forbidden by robots.txt"), False, "robots_forbidden"),
        (IgnoreRequest("max redirections reached"), True, "redirect_loop"),
        (PrivateAddressRefused("10.0.0.1"), True, "private_address"),
        (ValueError("strange"), False, "other"),
    ],
)
def test_classify(exc, policy, kind):
    assert classify(Failure(exc), policy=policy)[0] == kind


def test_classify_reason_names_the_status():
    assert classify(Failure(http_error(503))) == ("http_5xx", "HTTP 503")
