"""Scrape targets as Prometheus file_sd files: one ``<name>.yml`` per service in a targets folder.

Prometheus (native stack: ``<state dir>/targets/``; compose: ``provisioning/prometheus/targets/``) reads
the folder as job ``model-services`` and picks a change up within seconds, without a restart. A file
holds one target group, written as JSON (a subset of YAML, so this module needs no YAML parser):
``[{"targets": ["HOST:PORT"], "labels": {"service": NAME}}]``. Writes are atomic (a temporary file
renamed over the target), so Prometheus never reads half a file.

A service can register itself: :func:`register_from_environment` (called by
:func:`mlscope.exposition.start_metrics_server`) writes its file when ``MLSCOPE_TARGETS_DIR`` names the
folder and removes it at a clean exit and on SIGTERM (what ``kill``, systemd, ``docker stop`` and
Kubernetes send, and what Python by default dies of without running ``atexit``).
"""
from __future__ import annotations

import atexit
import ipaddress
import json
import logging
import os
import re
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("mlscope")

TARGETS_DIR_ENV = "MLSCOPE_TARGETS_DIR"
TARGET_NAME_ENV = "MLSCOPE_TARGET_NAME"
TARGET_HOST_ENV = "MLSCOPE_TARGET_HOST"
SUFFIX = ".yml"
JOB = "model-services"
SERVICE_LABEL = "service"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_HOST_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_HOST_LABEL}(\.{_HOST_LABEL})*")
EXAMPLE = "my-model=127.0.0.1:8001"


class TargetError(ValueError):
    """A target specification, name or address that cannot be used; the message says why and how."""


@dataclass(frozen=True)
class Target:
    """One service Prometheus scrapes: its name (file name and ``service`` label) and address."""

    name: str
    host: str
    port: int
    #: Extra target labels: a model server's ``server`` kind and its ``model``/``model_version`` mapping.
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def file_text(self) -> str:
        """The file_sd content of this target (one group, JSON)."""
        return json.dumps([{"targets": [self.address], "labels": {SERVICE_LABEL: self.name, **dict(self.labels)}}]) \
            + "\n"


def check_name(name: str) -> str:
    """``name`` when it is a safe file name and label value, else :class:`TargetError`."""
    if not _NAME.fullmatch(name):
        raise TargetError(f"target name {name!r}: use 1-63 letters, digits, '.', '_' or '-', starting with a "
                          "letter or digit (it names a file and is the `service` label)")
    return name


def check_host(host: str) -> str:
    """``host`` when it is an IP address or a host name (RFC 1123, with '_' as compose allows)."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if not _HOSTNAME.fullmatch(host):
        raise TargetError(f"host {host!r} is neither an IP address nor a host name")
    return host


def check_port(port: int | str) -> int:
    try:
        number = int(port)
    except (TypeError, ValueError):
        raise TargetError(f"port {port!r} is not a number") from None
    if not 1 <= number <= 65535:
        raise TargetError(f"port {number} is outside 1-65535")
    return number


def default_name(host: str, port: int) -> str:
    """A name derived from the address (``127.0.0.1:8001`` -> ``127.0.0.1-8001``, ``[::1]:8001`` -> ``ipv6-1-8001``)."""
    if ":" in host:
        host = "ipv6-" + "-".join(part for part in host.split(":") if part)
    return check_name((re.sub(r"[^A-Za-z0-9_.-]+", "-", host).strip("-.") or "target") + f"-{port}")


def parse(spec: str) -> Target:
    """``[NAME=]HOST:PORT`` (IPv6 in brackets: ``[::1]:8001``) as a checked :class:`Target`."""
    name, sep, address = spec.partition("=")
    if not sep:
        name, address = "", spec
    host, colon, port = address.rpartition(":")
    if not colon or not host or not port:
        raise TargetError(f"{spec!r}: expected [NAME=]HOST:PORT, e.g. {EXAMPLE}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise TargetError(f"{spec!r}: put an IPv6 address in brackets, e.g. [::1]:8001")
    target_host, target_port = check_host(host), check_port(port)
    return Target(check_name(name) if sep else default_name(target_host, target_port), target_host, target_port)


SERVER_KINDS = ("vllm", "sglang")  # mlscope.catalog.modelservers.KINDS (the light core imports no catalog here)
SERVER_LABEL = "server"


def server_target(target: Target, kind: str, model: str = "", model_version: str = "") -> Target:
    """``target`` marked as a ``kind`` model server (vllm, sglang), its series mapped onto ``model`` and
    ``model_version`` when given (else the scrape job maps the server's ``model_name`` onto ``model``)."""
    if kind not in SERVER_KINDS:
        raise TargetError(f"server kind {kind!r}: choose one of {', '.join(SERVER_KINDS)}")
    if bool(model) != bool(model_version):  # half a mapping would give the series model_version="unversioned"
        raise TargetError("a mapping needs both --model and --model-version (without either, the server's "
                          "model_name becomes `model` and its version `unversioned`)")
    for value in (model, model_version):
        if value and not _NAME.fullmatch(value):
            raise TargetError(f"{value!r}: model and version labels use 1-63 letters, digits, '.', '_' or '-'")
    labels = {SERVER_LABEL: kind, "model": model, "model_version": model_version}
    return Target(target.name, target.host, target.port, tuple((k, v) for k, v in labels.items() if v))


def parse_server(spec: str) -> Target:
    """``KIND=HOST:PORT`` (``vllm=127.0.0.1:8000``): a model server named after its kind and address."""
    kind, sep, address = spec.partition("=")
    if not sep:
        raise TargetError(f"{spec!r}: expected KIND=HOST:PORT with KIND one of {', '.join(SERVER_KINDS)}, "
                          "e.g. vllm=127.0.0.1:8000")
    plain = parse(address)
    return server_target(Target(check_name(f"{kind}-{plain.name}"), plain.host, plain.port), kind)


def path_of(folder: Path, name: str) -> Path:
    return Path(folder) / f"{check_name(name)}{SUFFIX}"


def write(folder: Path, target: Target) -> Path:
    """Write ``target``'s file into ``folder`` atomically; returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = path_of(folder, target.name)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # not *.yml: Prometheus never reads it
    tmp.write_text(target.file_text())
    tmp.replace(path)
    return path


def _remove_if_unchanged(path: Path, text: str) -> None:
    """Remove ``path`` unless someone has since written another target there."""
    try:
        if path.read_text() == text:
            path.unlink()
    except OSError:
        pass


def _also_on_sigterm(cleanup: Callable[[], None]) -> None:
    """Run ``cleanup`` on SIGTERM, then what SIGTERM did before (the process's own handler, or dying of it).

    Only from the main thread (where Python allows it), and not when SIGTERM is ignored: a process that
    ignores it keeps running, so it must stay registered. A server that installs its own handler later
    (gunicorn, uvicorn) exits gracefully through ``atexit`` instead.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous in (signal.SIG_IGN, None):
        return

    def on_sigterm(signum: int, frame: object) -> None:
        cleanup()
        if callable(previous):
            previous(signum, frame)  # type: ignore[arg-type]
            return
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # die of it, as without this handler
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)


def register_from_environment(port: int, addr: str) -> Path | None:
    """Register this process's ``/metrics`` in ``$MLSCOPE_TARGETS_DIR`` (if set); removed at exit and SIGTERM.

    :func:`mlscope.exposition.start_metrics_server` calls it; a service that serves ``/metrics`` on its own
    server (``wsgi_app()``, ``asgi_app()``) calls it once with its port and bind address.

    The name is ``$MLSCOPE_TARGET_NAME`` (default: from the address), the host ``$MLSCOPE_TARGET_HOST``
    (default: ``addr``, or 127.0.0.1 when bound to every interface). A bad setting is logged, never raised:
    the service runs on, unregistered.
    """
    folder = os.environ.get(TARGETS_DIR_ENV)
    if not folder:
        return None
    host = os.environ.get(TARGET_HOST_ENV) or (addr if addr not in ("", "0.0.0.0", "::") else "127.0.0.1")
    try:
        target_host, target_port = check_host(host), check_port(port)
        name = os.environ.get(TARGET_NAME_ENV) or default_name(target_host, target_port)
        target = Target(check_name(name), target_host, target_port)
        path = write(Path(folder), target)
    except (TargetError, OSError) as exc:
        log.warning("mlscope: not registered in %s=%s: %s", TARGETS_DIR_ENV, folder, exc)
        return None
    text = target.file_text()
    atexit.register(_remove_if_unchanged, path, text)
    _also_on_sigterm(lambda: _remove_if_unchanged(path, text))
    log.info("mlscope: registered %s (%s) in %s", target.name, target.address, path)
    return path
