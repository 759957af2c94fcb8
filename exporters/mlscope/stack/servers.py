"""Start and stop real Prometheus and Alertmanager binaries on loopback.

Used by ``mlscope`` commands that run the stack natively and by the tests.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from ..rules.config import RETENTION

PROMETHEUS_BINARIES = ("prometheus",)
ALERTMANAGER_BINARIES = ("alertmanager", "prometheus-alertmanager")
PUSHGATEWAY_BINARIES = ("pushgateway", "prometheus-pushgateway")
PUSHGATEWAY_HINT = "Debian/Ubuntu: `apt-get install prometheus-pushgateway`; or the upstream release on PATH"
INSTALL_HINT = ("install them with: apt-get update && apt-get install -y --no-install-recommends "
                "prometheus prometheus-alertmanager prometheus-pushgateway (Debian/Ubuntu), or put the upstream "
                "binaries on PATH")


class ServerError(RuntimeError):
    """A server binary is missing, or a server did not become ready."""


def find_binary(names: tuple[str, ...]) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise ServerError(f"none of {', '.join(names)} found on PATH; {INSTALL_HINT}")


def _load_prctl() -> Any:
    try:
        return ctypes.CDLL(None).prctl if sys.platform == "linux" else None
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()  # looked up in the parent: the forked child only calls it
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec (Linux): get SIGTERM when the parent dies, so no server outlives mlscope."""
    _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A child process serving HTTP on 127.0.0.1:port, ready when ``ready_path`` answers 200."""

    name: str
    argv: list[str]
    port: int
    log_path: Path
    ready_path: str = "/-/ready"
    env: dict[str, str] | None = field(default=None, repr=False)
    cwd: Path | None = None  # the working directory (relative paths a server writes land there)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log_start: int = field(default=0, repr=False)  # where this run's output begins in the (appended) log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Server:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self._log_start = self.log_path.stat().st_size
        if port_in_use(self.port):
            log.close()
            raise ServerError(f"{self.name}: port 127.0.0.1:{self.port} is already in use")
        env = {**os.environ, **self.env} if self.env else None
        if self.cwd is not None:
            self.cwd.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.cwd,
                                        stdin=subprocess.DEVNULL, start_new_session=True,
                                        preexec_fn=_die_with_parent if _PRCTL is not None else None)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(self.exit_reason())
            try:
                if requests.get(self.url + self.ready_path, timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise ServerError(f"{self.name} not ready on {self.url} after {timeout:.0f}s: {self.log_tail()}")

    def log_tail(self, lines: int = 5) -> str:
        """The last ``lines`` of what this run wrote to its log, joined by `` | ``; a note when it wrote none."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_start)
                text = log.read().decode(errors="replace")
        except OSError as exc:
            return f"its log {self.log_path} cannot be read ({exc.strerror})"
        tail = text.strip().splitlines()[-lines:]
        return " | ".join(tail) if tail else f"it wrote nothing to its log {self.log_path}"

    def exit_reason(self) -> str:
        """Why the process ended: its exit status (or signal) and the last lines of its log."""
        code = None if self.process is None else self.process.poll()
        if code is None:
            status = "has not exited"
        elif code < 0:
            try:
                status = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                status = f"was killed by signal {-code}"
        else:
            status = f"exited with code {code}"
        return f"{self.name} {status}: {self.log_tail()}"

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def prometheus(config_file: Path, data_dir: Path, port: int | None = None, *,
               exemplars: bool = True, lifecycle: bool = False, retention: str = RETENTION,
               alert_resend_delay: str = "1m", remote_write_receiver: bool = False) -> Server:
    """A Prometheus server (not yet started) on 127.0.0.1.

    ``alert_resend_delay`` also bounds how long a firing alert waits when its
    first send found no Alertmanager yet (service discovery starts throttled).
    ``remote_write_receiver`` accepts writes on ``/api/v1/write`` (Tempo's metrics-generator): the flag
    ``--web.enable-remote-write-receiver`` of Prometheus 2.33 and later (2.42's ``--enable-feature=
    remote-write-receiver`` is deprecated) and of 3.x.
    """
    port = port or free_port()
    argv = [find_binary(PROMETHEUS_BINARIES), f"--config.file={config_file}", f"--storage.tsdb.path={data_dir}",
            f"--storage.tsdb.retention.time={retention}", f"--web.listen-address=127.0.0.1:{port}",
            f"--rules.alert.resend-delay={alert_resend_delay}",
            # Its own address in alerts' generatorURL (the snapshots' "PromQL in Prometheus" link), not the host's name.
            f"--web.external-url=http://127.0.0.1:{port}"]
    if exemplars:
        argv.append("--enable-feature=exemplar-storage")
    if lifecycle:
        argv.append("--web.enable-lifecycle")
    if remote_write_receiver:
        argv.append("--web.enable-remote-write-receiver")
    return Server("prometheus", argv, port, data_dir / "prometheus.log")


@dataclass(frozen=True)
class Cluster:
    """Gossip settings of one clustered Alertmanager on 127.0.0.1.

    ``peer_timeout`` is how long the replica at position n waits (n times) for a
    peer's notification log before it notifies itself: it must exceed gossip
    propagation, or both replicas notify.
    """

    port: int
    peers: tuple[int, ...]
    peer_timeout: str = "15s"
    settle_timeout: str = "1m"
    gossip_interval: str = "200ms"

    def args(self) -> list[str]:
        return [f"--cluster.listen-address=127.0.0.1:{self.port}",
                f"--cluster.advertise-address=127.0.0.1:{self.port}",
                *(f"--cluster.peer=127.0.0.1:{p}" for p in self.peers),
                f"--cluster.peer-timeout={self.peer_timeout}", f"--cluster.settle-timeout={self.settle_timeout}",
                f"--cluster.gossip-interval={self.gossip_interval}"]


def alertmanager(config_file: Path, data_dir: Path, port: int | None = None, *,
                 cluster: Cluster | None = None) -> Server:
    """An Alertmanager (not yet started) on 127.0.0.1; clustering off unless ``cluster`` is given."""
    port = port or free_port()
    argv = [find_binary(ALERTMANAGER_BINARIES), f"--config.file={config_file}", f"--storage.path={data_dir}",
            f"--web.listen-address=127.0.0.1:{port}"]
    argv += cluster.args() if cluster else ["--cluster.listen-address="]
    return Server("alertmanager", argv, port, data_dir / "alertmanager.log")


def pushgateway(data_dir: Path, port: int | None = None, *, persistence_interval: str = "1m") -> Server:
    """A Prometheus Pushgateway (not yet started) on 127.0.0.1, its groups kept in ``data_dir/pushgateway.db``
    (written every ``persistence_interval`` and at shutdown, read back at start: groups survive a restart)."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [find_binary(PUSHGATEWAY_BINARIES), f"--web.listen-address=127.0.0.1:{port}",
            f"--persistence.file={data_dir / 'pushgateway.db'}", f"--persistence.interval={persistence_interval}"]
    return Server("pushgateway", argv, port, data_dir / "pushgateway.log")


class PrometheusAPI:
    """The few calls of Prometheus's HTTP API that mlscope and its tests use."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _get(self, path: str, **params: Any) -> Any:
        response = requests.get(self.url + path, params=params, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise ServerError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def _list(self, path: str, key: str | None, **params: Any) -> list[dict[str, Any]]:
        """The list of objects under ``key`` in the API's data (the data itself when ``key`` is None)."""
        data = self._get(path, **params)
        items: list[dict[str, Any]] = data if key is None else data[key]
        return items

    def query(self, expr: str, time_: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"query": expr}
        if time_ is not None:
            params["time"] = time_
        return self._list("/api/v1/query", "result", **params)

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        return self._list("/api/v1/query_range", "result", query=expr, start=start, end=end, step=step)

    def exemplars(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        return self._list("/api/v1/query_exemplars", None, query=expr, start=start, end=end)

    def targets(self) -> list[dict[str, Any]]:
        return self._list("/api/v1/targets", "activeTargets")

    def rules(self) -> list[dict[str, Any]]:
        return self._list("/api/v1/rules", "groups")

    def alerts(self) -> list[dict[str, Any]]:
        return self._list("/api/v1/alerts", "alerts")

    def wait_for(self, expr: str, predicate: Any = bool, timeout: float = 30.0, interval: float = 0.25) -> Any:
        """Poll ``expr`` until ``predicate(result)`` holds; return the result or raise on timeout."""
        deadline = time.monotonic() + timeout
        result: Any = None
        while time.monotonic() < deadline:
            result = self.query(expr)
            if predicate(result):
                return result
            time.sleep(interval)
        raise TimeoutError(f"{expr!r} did not satisfy the condition within {timeout}s; last result: {result}")
