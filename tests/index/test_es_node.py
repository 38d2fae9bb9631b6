"""The local Elasticsearch node: configured as documented and answering on loopback."""
import json
import urllib.request

from index.es_node import LocalElasticsearch


def test_node_is_single_node_on_loopback_without_security(es_url):
    with urllib.request.urlopen(f"{es_url}/_nodes/settings", timeout=30) as response:
        nodes = json.load(response)["nodes"]
    (node,) = nodes.values()
    assert node["version"].startswith("9.")
    assert node["settings"]["discovery"]["type"] == "single-node"
    assert node["settings"]["xpack"]["security"]["enabled"] == "false"
    assert node["host"] == "127.0.0.1"


def test_start_is_idempotent_when_the_node_answers(es_url, monkeypatch):
    node = LocalElasticsearch()
    if node.url != es_url:  # an external server: nothing local to check
        return
    monkeypatch.setattr(node, "install", lambda: (_ for _ in ()).throw(AssertionError("must not reinstall")))
    assert node.start() == es_url
    status = node.status()
    assert status["installed"] and status["health"]["status"] in ("green", "yellow")


def test_status_of_a_node_that_is_not_there(tmp_path):
    status = LocalElasticsearch(home=tmp_path, port=1).status()
    assert status == {**status, "installed": False, "pid": None, "health": None}
