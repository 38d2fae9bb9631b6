"""Session-wide servers: one Elasticsearch node and one Redis server for every test that needs them."""
import os
import shutil
import socket
import subprocess
import time

import pytest

from index.es_node import LocalElasticsearch, NodeError
from tests.support import required


def pytest_collection_modifyitems(items):
    """Mark every test that talks to Elasticsearch, so the summary can count them."""
    for item in items:
        if "es_url" in getattr(item, "fixturenames", ()):
            item.add_marker("elasticsearch")


def pytest_terminal_summary(terminalreporter):
    """One line saying how many Elasticsearch tests really ran (and passed)."""
    outcomes = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        reports = terminalreporter.stats.get(outcome, [])
        outcomes[outcome] = sum(1 for r in reports if r.when in ("call", "setup") and "elasticsearch" in r.keywords
                                and (r.when == "call" or outcome != "passed"))
    terminalreporter.write_line("Elasticsearch tests: " + ", ".join(f"{n} {k}" for k, n in outcomes.items()))


@pytest.fixture(scope="session")
def es_url():
    """FINMON_ES_URL if set, else the local node (`finmon es install`), started once per session."""
    url = os.environ.get("FINMON_ES_URL")
    if url:
        yield url
        return
    node = LocalElasticsearch()
    was_running = node.health() is not None
    try:
        url = node.start()
    except NodeError as exc:
        required("Elasticsearch", f"{exc}; run `finmon es install` or set FINMON_ES_URL")  # CI=true: a failure
    yield url
    if not was_running:
        node.stop()


@pytest.fixture(scope="session")
def drop_es_prefix():
    """Deletes the indices and templates under a test's prefix (by name: wildcard deletes are refused)."""

    def drop(es, prefix):
        indices = list(es.indices.get(index=f"{prefix}-*"))
        if indices:
            es.indices.delete(index=",".join(indices))
        templates = es.options(ignore_status=404).indices.get_index_template(name=f"{prefix}-*")
        for template in templates["index_templates"]:
            es.indices.delete_index_template(name=template["name"])

    return drop


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A Redis server on loopback (Debian's redis-server), started once per session, nothing kept on disk."""
    binary = shutil.which("redis-server")
    if binary is None:
        required("Redis", "install the Debian package redis-server (scripts/install-test-deps.sh does)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                               "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            required("Redis", f"redis-server did not start on port {port}")
        time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(30)
