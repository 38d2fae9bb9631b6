"""Helpers shared by test modules: where the shared evaluation data is, and external test dependencies."""
from __future__ import annotations

import os
import shutil
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FRAMEWORK_RES = "/usr/share/android-framework-res/framework-res.apk"  # where Debian's android-framework-res puts it


def required(what: str, hint: str):
    """A missing test dependency fails the run when CI=true and skips the test locally."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is required when CI=true: {hint}", pytrace=False)
    pytest.skip(f"{what} is missing: {hint}")


def platform_tool(name: str, package: str) -> str:
    """An Android platform tool on PATH (or a file by its path) from a Debian package; see :func:`required`."""
    path = (name if os.path.isfile(name) else None) if os.path.isabs(name) else shutil.which(name)
    if path is None:
        required(name, f"install the Debian package {package} (scripts/install-test-deps.sh does)")
    return path


@contextmanager
def loopback_page(html: str):
    """A loopback HTTP server answering every GET with ``html`` (UTF-8), except /to?url=U, a redirect to U.

    Yields its ``host:port``.
    """
    body = f"<html><body>{html}</body></html>".encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            target = parse_qs(urlsplit(self.path).query).get("url")
            self.send_response(302 if target else 200)
            if target:
                self.send_header("Location", target[0])
            else:
                self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", "0" if target else str(len(body)))
            self.end_headers()
            if not target:
                self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
