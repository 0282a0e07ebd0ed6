"""Real servers on loopback, started and stopped by this project.

Redis and Prometheus run as child processes on free ports bound to
127.0.0.1, each with its own data folder and log file, and are stopped by
process id. Nothing here ever talks to a server it did not start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class ServerError(RuntimeError):
    """A server could not be found, started or reached in time."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def require_binary(name: str, package: str) -> str:
    """Return the path of a command, or explain which package provides it."""
    path = shutil.which(name)
    if path is None:
        raise ServerError(
            f"{name!r} not found; install it with "
            f"'apt-get install -y --no-install-recommends {package}' "
            f"(or run 'make test', which installs it)"
        )
    return path


def wait_until(
    check: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``check`` until it returns true, or raise naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise ServerError(f"{what} did not become ready within {timeout:.0f} s")


def http_ok(url: str, *, timeout: float = 1.0) -> bool:
    """Return whether ``url`` answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status: int = response.status
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return 200 <= status < 300


def port_open(port: int, host: str = LOOPBACK) -> bool:
    """Return whether something accepts TCP connections on ``host:port``."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), 0.2):
        return True
    return False


class ManagedProcess:
    """A child process with a log file, stopped by its process id.

    Args:
        name: What the process is, for messages.
        argv: The command and its arguments (never a shell string).
        log_path: Where stdout and stderr go.
        env: Extra environment variables.
        cwd: Working directory.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The process id, or None before start."""
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        """Start the process in its own session, so it gets no terminal signals."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        environment = {**os.environ, **(self.env or {})}
        self._process = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=environment,
            cwd=self.cwd,
            start_new_session=True,
        )
        logger.debug("started %s (pid %s): %s", self.name, self.pid, self.argv)

    def alive(self) -> bool:
        """Return whether the process is still running."""
        return self._process is not None and self._process.poll() is None

    def signal(self, signum: int) -> None:
        """Send a signal to the process, if it runs."""
        if self.alive() and self._process is not None:
            self._process.send_signal(signum)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the process: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        process = self._process
        if process is not None and process.poll() is None:
            # A paused process cannot act on SIGTERM until it is continued.
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGCONT)
                process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """Kill the process at once (SIGKILL) and reap it."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(5)
        # A restart opens a new log handle; leaving this one open leaks it.
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 20) -> str:
        """Return the last lines of the process's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def ensure_running(self) -> None:
        """Raise with the log tail if the process has exited."""
        if not self.alive():
            raise ServerError(
                f"{self.name} exited early; last lines of {self.log_path}:\n"
                f"{self.log_tail()}"
            )


class RedisServer:
    """A throwaway ``redis-server`` on a free loopback port, no persistence.

    Args:
        workdir: Its own folder, for the log and the working directory.
        port: The port; a free one unless given (a restart keeps its port).
        extra_args: More ``redis-server`` arguments.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self._process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        """The ``redis://`` URL of this server."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The process id while running."""
        return None if self._process is None else self._process.pid

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and wait until it answers PING."""
        binary = require_binary("redis-server", "redis-server")
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [
            binary,
            "--port", str(self.port),
            "--bind", LOOPBACK,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            "--protected-mode", "yes",
            *self.extra_args,
        ]  # fmt: skip
        self._process = ManagedProcess(
            f"redis-server :{self.port}",
            argv,
            log_path=self.workdir / "redis.log",
            cwd=self.workdir,
        )
        self._process.start()
        wait_until(
            lambda: self._ping() or self._exited(),
            timeout=timeout,
            what=f"redis-server on port {self.port}",
        )
        self._process.ensure_running()
        return self

    def _exited(self) -> bool:
        return self._process is None or not self._process.alive()

    def _ping(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), 0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def alive(self) -> bool:
        """Return whether the server process runs (it may be paused)."""
        return self._process is not None and self._process.alive()

    def stop(self) -> None:
        """Stop the server by its process id."""
        if self._process is not None:
            self._process.stop()

    def kill(self) -> None:
        """Kill the server at once, as a crash would."""
        if self._process is not None:
            self._process.kill()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections hang instead of failing."""
        if self._process is not None:
            self._process.signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Continue a paused server (SIGCONT)."""
        if self._process is not None:
            self._process.signal(signal.SIGCONT)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class PrometheusServer:
    """A Prometheus on a free loopback port with its own data folder.

    Args:
        workdir: Its own folder: configuration, rules, data and log.
        scrape_targets: ``host:port`` targets scraped as job ``job_name``.
        scrape_interval: How often to scrape, e.g. ``"2s"``.
        job_name: The ``job`` label of the targets.
        rule_files: Glob patterns of rule files, relative to ``workdir``.
        evaluation_interval: How often rules are evaluated.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        scrape_targets: Sequence[str] = (),
        scrape_interval: str = "2s",
        evaluation_interval: str = "2s",
        job_name: str = "building-directory",
        rule_files: Sequence[str] = ("rules/*.yml",),
        port: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.scrape_targets = list(scrape_targets)
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.job_name = job_name
        self.rule_files = list(rule_files)
        self.port = port or free_port()
        self._process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        """The base URL of this Prometheus."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The process id while running."""
        return None if self._process is None else self._process.pid

    @property
    def rules_dir(self) -> Path:
        """The folder whose ``*.yml`` files Prometheus loads as rules."""
        return self.workdir / "rules"

    def write_config(self) -> Path:
        """Write ``prometheus.yml`` and return its path."""
        targets = ", ".join(f'"{target}"' for target in self.scrape_targets)
        rule_files = "\n".join(f'  - "{pattern}"' for pattern in self.rule_files)
        config = (
            "global:\n"
            f"  scrape_interval: {self.scrape_interval}\n"
            f"  evaluation_interval: {self.evaluation_interval}\n"
            "rule_files:\n"
            f"{rule_files}\n"
            "scrape_configs:\n"
            f"  - job_name: {self.job_name}\n"
            "    static_configs:\n"
            f"      - targets: [{targets}]\n"
        )
        path = self.workdir / "prometheus.yml"
        path.write_text(config)
        return path

    def start(self, timeout: float = 20.0) -> PrometheusServer:
        """Start Prometheus and wait until ``/-/ready`` answers."""
        binary = require_binary("prometheus", "prometheus")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.rules_dir.mkdir(exist_ok=True)
        config = self.write_config()
        argv = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=1d",
        ]
        self._process = ManagedProcess(
            f"prometheus :{self.port}",
            argv,
            log_path=self.workdir / "prometheus.log",
            cwd=self.workdir,
        )
        self._process.start()
        wait_until(
            lambda: http_ok(f"{self.url}/-/ready") or self._exited(),
            timeout=timeout,
            what=f"prometheus on port {self.port}",
            interval=0.1,
        )
        self._process.ensure_running()
        return self

    def _exited(self) -> bool:
        return self._process is None or not self._process.alive()

    def alive(self) -> bool:
        """Return whether the Prometheus process runs."""
        return self._process is not None and self._process.alive()

    def stop(self) -> None:
        """Stop Prometheus by its process id."""
        if self._process is not None:
            self._process.stop(timeout=10.0)

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# A cluster node also listens on its port + 10,000 (the cluster bus), so Redis
# refuses a port above 55,535; free_port() draws from the whole ephemeral range.
_CLUSTER_BUS_OFFSET = 10_000
_MAX_CLUSTER_PORT = 65_535 - _CLUSTER_BUS_OFFSET


def _free_cluster_port(attempts: int = 200) -> int:
    """Return a free port whose cluster bus port (+10,000) is free too."""
    for _ in range(attempts):
        port = free_port()
        if port > _MAX_CLUSTER_PORT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((LOOPBACK, port + _CLUSTER_BUS_OFFSET))
            except OSError:
                continue
        return port
    raise ServerError("found no free port pair for a Redis Cluster node")


class RedisClusterServer:
    """A Redis Cluster of three masters, no replicas, on loopback ports.

    Each node is a :class:`RedisServer` started with ``--cluster-enabled yes``
    in its own folder; ``redis-cli --cluster create`` then assigns the 16,384
    slots. Meant for tests and demos: no persistence, no replicas.

    Args:
        workdir: Folder holding one sub-folder per node.
        masters: How many master nodes (at least 3, as Redis requires).
    """

    def __init__(self, workdir: Path, *, masters: int = 3) -> None:
        if masters < 3:
            raise ValueError("a Redis Cluster needs at least 3 masters")
        self.workdir = workdir
        cluster_args = [
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "2000",
        ]  # fmt: skip
        self.nodes = [
            RedisServer(
                workdir / f"node-{index}",
                port=_free_cluster_port(),
                extra_args=cluster_args,
            )
            for index in range(masters)
        ]

    @property
    def url(self) -> str:
        """A ``redis+cluster://`` URL naming the first node as the seed."""
        return f"redis+cluster://{LOOPBACK}:{self.nodes[0].port}/0"

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        """Every node's (host, port)."""
        return [(LOOPBACK, node.port) for node in self.nodes]

    def start(self, timeout: float = 20.0) -> RedisClusterServer:
        """Start the nodes, create the cluster and wait until it is ``ok``."""
        cli = require_binary("redis-cli", "redis-tools")
        for node in self.nodes:
            node.start()
        addresses = [f"{LOOPBACK}:{node.port}" for node in self.nodes]
        created = subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0",
             "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )  # fmt: skip
        if created.returncode != 0:
            self.stop()
            raise ServerError(
                f"redis-cli --cluster create failed: {created.stdout}{created.stderr}"
            )
        wait_until(
            lambda: all(self._cluster_ok(node.port) for node in self.nodes),
            timeout=timeout,
            what="the Redis Cluster",
            interval=0.1,
        )
        return self

    def is_ok(self) -> bool:
        """Return whether every node answers and reports ``cluster_state:ok``."""
        return all(self._cluster_ok(node.port) for node in self.nodes)

    def _cluster_ok(self, port: int) -> bool:
        try:
            with socket.create_connection((LOOPBACK, port), 0.5) as sock:
                sock.sendall(b"CLUSTER INFO\r\n")
                reply = b""
                while b"cluster_state" not in reply or not reply.endswith(b"\r\n"):
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    reply += chunk
                return b"cluster_state:ok" in reply
        except OSError:
            return False

    def stop(self) -> None:
        """Stop every node by its process id."""
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> RedisClusterServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
