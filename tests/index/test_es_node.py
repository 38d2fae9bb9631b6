"""The local Elasticsearch node: configured as documented and answering on loopback; a local cluster's
configuration per node."""
import json
import socket
import urllib.request

import pytest

from index.es_node import LocalCluster, LocalElasticsearch, NodeError
from tests.support import required


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


@pytest.fixture
def cluster_home(tmp_path):
    """A home for a cluster on the installed distribution and Java (linked, not copied)."""
    installed = LocalElasticsearch()
    if not installed.installed():
        required("the local Elasticsearch installation", "run `finmon es install`")
    (tmp_path / installed.es_dir.name).symlink_to(installed.es_dir)
    (tmp_path / installed.java_home.name).symlink_to(installed.java_home)
    return tmp_path


def test_each_node_of_a_cluster_has_its_own_ports_folders_and_name(cluster_home):
    cluster = LocalCluster(3, home=cluster_home, port=9400)
    cluster.install()
    for i, node in enumerate(cluster.nodes):
        config = (cluster_home / "nodes" / str(i) / "config" / "elasticsearch.yml").read_text(encoding="utf-8")
        assert f"node.name: finmon-{i}\n" in config and "cluster.name: finmon\n" in config
        assert f"http.port: {9400 + i}\ntransport.port: {9500 + i}\n" in config
        assert 'discovery.seed_hosts: ["127.0.0.1:9500", "127.0.0.1:9501", "127.0.0.1:9502"]' in config
        assert 'cluster.initial_master_nodes: ["finmon-0", "finmon-1", "finmon-2"]' in config
        assert "discovery.type" not in config
        assert f"path.data: {cluster_home / 'nodes' / str(i) / 'data'}\n" in config
        assert (cluster_home / "nodes" / str(i) / "config" / "jvm.options").exists()
    assert cluster.url == "http://127.0.0.1:9400,http://127.0.0.1:9401,http://127.0.0.1:9402"
    (cluster_home / "nodes" / "0" / "data" / "_state").mkdir()  # a cluster that has formed is not bootstrapped again
    cluster.install()
    assert "initial_master_nodes" not in (cluster_home / "nodes" / "0" / "config" / "elasticsearch.yml").read_text()
    status = cluster.status()
    assert [(n["name"], n["pid"], n["answers"]) for n in status["nodes"]] == [
        ("finmon-0", None, False), ("finmon-1", None, False), ("finmon-2", None, False)]
    assert status["installed"] and status["health"] is None


def test_a_cluster_does_not_start_when_a_port_is_taken(cluster_home):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cluster = LocalCluster(2, home=cluster_home, port=port - 101)  # the second node's transport port is taken
        with pytest.raises(NodeError, match=f"port {port} of finmon-1 is taken"):
            cluster.start(timeout=30)
    assert all(node.pid() is None for node in cluster.nodes)  # none was started
