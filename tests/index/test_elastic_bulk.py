"""The store's bulk writes: what Elasticsearch refused before applying it is sent again, a chunk that
never left goes to the next node, and a write that conflicts with itself counts as written."""
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from finmon import settings
from index.elastic import ElasticStore, IndexingError


class FakeNode(BaseHTTPRequestHandler):
    """Answers _bulk as Elasticsearch does, refusing the first item of the first request as a shard with
    no active primary does (503); records the ids of each bulk request."""

    bulks: list[list[str]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        answer = {"_shards": {"total": 1, "successful": 1, "failed": 0}}
        if self.path.startswith("/_bulk"):
            lines = [json.loads(line) for line in body.splitlines() if line]
            actions = [next(iter(line.items())) for line in lines[::2]]
            ids = [meta["_id"] for _, meta in actions]
            first = not self.bulks
            self.bulks.append(ids)
            items = [{op: {"_index": meta["_index"] + "-v1", "_id": meta["_id"], "status": 201, "result": "created"}}
                     for op, meta in actions]
            if first:
                items[0][actions[0][0]].update(status=503, error={
                    "type": "unavailable_shards_exception", "reason": "primary shard is not active"})
            answer = {"took": 1, "errors": first, "items": items}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_PUT = do_POST

    def log_message(self, *args):
        pass


class UnopenedStore(ElasticStore):
    def migrate(self):  # nothing to create on the fake node
        return {}


@pytest.fixture
def fake_node():
    FakeNode.bulks = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeNode)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_refused_items_are_sent_again_and_a_refused_connection_goes_to_the_next_node(fake_node, monkeypatch, caplog):
    monkeypatch.setattr(settings, "FINMON_ES_BACKOFF", 0.01)
    with socket.socket() as probe:  # a port nothing listens on: its connections are refused
        probe.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{probe.getsockname()[1]}"
    store = UnopenedStore(f"{gone},{fake_node}", prefix="fake", randomize_nodes_in_pool=False)  # gone comes first
    docs = [{"_op_type": "create", "_index": "fake-runs", "_id": str(i), "_source": {"id": str(i)}} for i in range(3)]
    with caplog.at_level(logging.WARNING, logger="elastic_transport"):
        assert store._bulk(docs) == 3
    assert FakeNode.bulks == [["0", "1", "2"], ["0"]]  # then only what was refused
    assert any(gone in record.getMessage() for record in caplog.records), "the dead node was never tried"
    store.close()


def test_a_write_that_conflicts_with_itself_counts_as_written(es_store):
    """As when a node leaves mid-write and ES runs the write again on the copy that takes over."""
    doc = {"id": "r1", "kind": "analyze", "started": "2026-11-23T08:00:00+00:00", "ended": None, "counters": {"apps": 3},
           "outcome": "ok", "job": "", "attempt": 1, "error": ""}
    create = {"_op_type": "create", "_index": es_store.alias("runs"), "_id": "r1", "_source": doc}
    assert es_store._bulk([create]) == 1
    assert es_store._bulk([create]) == 1  # already there, exactly as sent
    with pytest.raises(IndexingError, match="version_conflict"):
        es_store._bulk([{**create, "_source": {**doc, "outcome": "failed"}}])
    assert es_store.runs()[0]["outcome"] == "ok"
