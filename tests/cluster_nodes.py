"""A Redis Cluster of three primaries on loopback, started by a test and stopped by it.

``redis-server --cluster-enabled yes`` three times, joined by ``redis-cli --cluster create``, and
ready once every node's ``CLUSTER INFO`` says ``cluster_state:ok``. Valkey, the drop-in, is
started the same way with its own binaries. A binary missing, or too old to be joined into a
cluster by its command line tool (``--cluster create`` came with Redis 5), skips the test.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

_BUS_OFFSET = 10000
"""A node's cluster bus listens on its port plus this (Redis before 7 cannot be told another)."""
_OLDEST = (5, 0)
_VERSION = re.compile(rb"v=(\d+)\.(\d+)")
_START_TRIES = 5
"""Another process may take a port between its choosing and the node's binding it."""


def binaries(kind: str) -> tuple[str, str]:
    """The server and command line tool of ``kind`` (``redis`` or ``valkey``), or a skip saying
    what is missing. Valkey is joined by ``valkey-cli`` if it is there, else by ``redis-cli``."""
    server = shutil.which(f"{kind}-server")
    if server is None:
        package = "redis-server; .ci/run installs it" if kind == "redis" else "valkey-server"
        pytest.skip(f"{kind}-server is not on PATH (Debian package {package})")
    cli = shutil.which(f"{kind}-cli") or shutil.which("redis-cli")
    if cli is None:
        pytest.skip(f"neither {kind}-cli nor redis-cli is on PATH: nothing can create a cluster")
    version = _version(server)
    if kind == "redis" and (version is None or version < _OLDEST):
        pytest.skip(f"{server} is older than Redis 5: redis-cli cannot create its cluster")
    return server, cli


def _version(binary: str) -> tuple[int, int] | None:
    out = subprocess.run([binary, "--version"], capture_output=True, timeout=30, check=False)
    found = _VERSION.search(out.stdout)
    return (int(found[1]), int(found[2])) if found else None


def _free_ports(count: int) -> list[int]:
    """``count`` loopback ports free now, each with its cluster bus port free too."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            first = socket.socket()
            held.append(first)
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            if port + _BUS_OFFSET > 65535:
                continue
            bus = socket.socket()
            held.append(bus)
            with contextlib.suppress(OSError):
                bus.bind(("127.0.0.1", port + _BUS_OFFSET))
                ports.append(port)
    finally:
        for s in held:
            s.close()
    return ports


class Cluster:
    """Three primaries on loopback ports, their files under ``directory``; :meth:`stop` ends
    only the processes :meth:`start` started."""

    def __init__(self, server: str, cli: str, directory: Path, *, size: int = 3) -> None:
        self.server = server
        self.cli = cli
        self.directory = directory
        self.size = size
        self.ports: list[int] = []
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """A node to find the cluster from: ``RedisCluster.from_url(url)``."""
        return f"redis://127.0.0.1:{self.ports[0]}"

    def start(self, timeout: float = 60.0) -> None:
        """Start the nodes, join them, and return once every node says the cluster is ok."""
        deadline = time.monotonic() + timeout
        for attempt in range(_START_TRIES):
            if self._start_nodes(deadline):
                break
            self.stop()
            if attempt == _START_TRIES - 1:
                pytest.fail(f"no cluster node would start; see {self.directory}/*.log")
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        create = [self.cli, "--cluster", "create", *nodes, "--cluster-replicas", "0"]
        joined = subprocess.run(
            [*create, "--cluster-yes"],
            capture_output=True,
            timeout=max(1.0, deadline - time.monotonic()),
            check=False,
        )
        if joined.returncode != 0:
            pytest.fail(f"redis-cli --cluster create failed: {joined.stdout!r} {joined.stderr!r}")
        for port in self.ports:
            self._wait_ok(port, deadline)

    def _start_nodes(self, deadline: float) -> bool:
        """Start one node on each of fresh ports; False if one exited (its port was taken)."""
        self.ports = _free_ports(self.size)
        for port in self.ports:
            args = [
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(self.directory / f"nodes-{port}.conf"),
                "--dir", str(self.directory),
                "--save", "",
                "--appendonly", "no",
            ]  # fmt: skip
            with (self.directory / f"{port}.log").open("wb") as log:
                self._procs.append(
                    subprocess.Popen([self.server, *args], stdout=log, stderr=subprocess.STDOUT)
                )
        for port, proc in zip(self.ports, self._procs, strict=True):
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                if proc.poll() is not None:
                    return False
                if time.monotonic() > deadline:
                    pytest.fail(f"cluster node on port {port} did not start listening")
                time.sleep(0.01)
        return True

    @staticmethod
    def _wait_ok(port: int, deadline: float) -> None:
        node = redis.Redis(host="127.0.0.1", port=port)
        try:
            while b"cluster_state:ok" not in node.execute_command("CLUSTER", "INFO"):
                if time.monotonic() > deadline:
                    pytest.fail(f"cluster node on port {port} never said cluster_state:ok")
                time.sleep(0.02)
        finally:
            node.close()

    def stop(self) -> None:
        for proc in self._procs:
            proc.kill()
        for proc in self._procs:
            proc.wait(10)
        self._procs = []
