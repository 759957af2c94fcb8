"""``mlscope quality-exporter``, ``mlscope quality-import`` and ``mlscope quality-register``."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from .._runtime import wait_for_shutdown

TOKEN_ENV = "MLSCOPE_QUALITY_TOKEN"


def _token(args: argparse.Namespace) -> str | None:
    if args.token_file:
        return open(args.token_file, encoding="utf-8").read().strip() or None
    return os.environ.get(TOKEN_ENV) or None


def _quality(args: argparse.Namespace, **kwargs: Any) -> Any:
    from ..rules.config import PROFILES
    from ..rules.promql import duration_seconds
    from .core import Quality
    from .store import open_store

    store = open_store(args.store, max_predictions=args.max_predictions, max_age_s=args.max_age_s)
    windows = {w: duration_seconds(w) for w in PROFILES[args.profile].quality_windows}
    return Quality(store, windows=windows, **kwargs)


def exporter(args: argparse.Namespace) -> int:
    from prometheus_client import CollectorRegistry

    from .server import QualityServer
    from .store import StoreError

    registry = CollectorRegistry()
    try:
        quality = _quality(args, registry=registry, pending_ttl_s=args.pending_ttl_s)
    except StoreError as exc:
        print(f"mlscope: {exc}", file=sys.stderr)
        return 1
    token = _token(args)
    if token is None and args.addr not in ("127.0.0.1", "::1", "localhost"):
        print(f"mlscope: warning: {args.addr} is not loopback and no token is set ({TOKEN_ENV} or "
              "--token-file): anyone who reaches it can post outcomes", file=sys.stderr)
    server = QualityServer(args.addr, args.port, quality, registry, token).start()
    print(f"mlscope: quality exporter on http://{args.addr}:{server.server_port} (/metrics, POST /outcomes, "
          f"POST /predictions, POST /versions); store {args.store}", flush=True)
    wait_for_shutdown()  # SIGTERM too: the queue is flushed to the store before exit
    server.stop()
    quality.close()
    return 0


class ExporterError(OSError):
    """A running quality exporter refused a request or could not be reached; one line says which and why."""


def _post(url: str, path: str, body: Any, token: str | None) -> Any:
    """POST ``body`` as JSON to a running exporter; its JSON answer, or :class:`ExporterError`."""
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url.rstrip("/") + path, data=json.dumps(body).encode(), headers=headers,
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            reason = json.loads(exc.read()).get("error", exc.reason)
        except (ValueError, AttributeError):
            reason = exc.reason
        hint = f" (set {TOKEN_ENV} or --token-file)" if exc.code == 401 else ""
        raise ExporterError(f"{url.rstrip('/')}{path} answered {exc.code}: {reason}{hint}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ExporterError(f"no quality exporter answers at {url} ({reason})") from None


def _post_outcomes(url: str, outcome_batches: Any, token: str | None) -> dict[str, int]:
    """POST each batch to a running quality exporter's ``/outcomes``; the summed counts it answered."""
    total: dict[str, int] = {}
    for batch in outcome_batches:
        body = {"outcomes": [{"request_id": o.request_id, "y_true": o.y_true, "time": o.time} for o in batch]}
        for key, value in _post(url, "/outcomes", body, token).items():
            total[key] = total.get(key, 0) + value
    return total


def import_file(args: argparse.Namespace) -> int:
    from .outcomes import OutcomeFormatError, batches, import_outcomes, read_outcomes
    from .store import StoreError

    if not args.url and args.store is None:
        print("mlscope: give --store (the exporter's SQLite file) or --url (a running quality exporter)",
              file=sys.stderr)
        return 2
    try:
        if args.url:
            total = _post_outcomes(args.url, batches(read_outcomes(args.file)), _token(args))
        else:
            quality = _quality(args, registry=None, expose=False, start=False)
            total = import_outcomes(quality, read_outcomes(args.file))
            quality.store.close()
    except (OutcomeFormatError, StoreError, OSError) as exc:
        print(f"mlscope: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(total, sort_keys=True))
    return 0


def _registration_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"model": args.model, "model_version": args.model_version, "task": args.task}
    if args.classes:
        body["classes"] = args.classes
    if args.baseline:
        try:
            body["baseline"] = {k: float(v) for k, _, v in (b.partition("=") for b in args.baseline)}
        except ValueError:
            raise ValueError(f"--baseline takes METRIC=NUMBER, got {' '.join(args.baseline)}") from None
    if args.windows:
        body["windows"] = args.windows
    return body


def register_version(args: argparse.Namespace) -> int:
    from .registration import RegistrationError, parse, register
    from .store import StoreError

    if not args.url and args.store is None:
        print("mlscope: give --url (a running quality exporter) or --store (its SQLite file)", file=sys.stderr)
        return 2
    try:
        body = _registration_body(args)
        if args.url:
            answer = _post(args.url, "/versions", body, _token(args))
        else:
            quality = _quality(args, registry=None, expose=False, start=False)
            try:
                answer = register(quality, parse(body))
            finally:
                quality.store.close()
    except (RegistrationError, StoreError, OSError, ValueError) as exc:
        print(f"mlscope: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(answer, sort_keys=True))
    return 0


def _store_args(p: argparse.ArgumentParser, store: str | None = "mlscope-quality.db") -> None:
    p.add_argument("--store", default=store,
                   help="SQLite file of the prediction store, or :memory: (default: %(default)s)")
    p.add_argument("--max-predictions", type=int, default=1_000_000)
    p.add_argument("--max-age-s", type=float, default=30 * 86400.0)
    p.add_argument("--profile", default="default", choices=["default", "fast"],
                   help="rule profile whose quality windows the ROC AUC uses")
    p.add_argument("--token-file", help=f"file holding the bearer token (default: ${TOKEN_ENV})")


def add_quality_exporter(exp: argparse.ArgumentParser) -> None:
    """Arguments of ``mlscope quality-exporter``."""
    _store_args(exp)
    exp.add_argument("--port", type=int, default=9108)
    exp.add_argument("--addr", default="127.0.0.1")
    exp.add_argument("--pending-ttl-s", type=float, default=300.0,
                     help="how long an outcome waits for its prediction (default: %(default)s)")
    exp.set_defaults(func=exporter)


def add_quality_register(reg: argparse.ArgumentParser) -> None:
    """Arguments of ``mlscope quality-register``."""
    reg.add_argument("model")
    reg.add_argument("model_version")
    reg.add_argument("--task", default="classification", choices=["classification", "regression"])
    reg.add_argument("--classes", nargs="+", metavar="CLASS", help="classifiers: the classes in predict_proba order")
    reg.add_argument("--baseline", action="extend", nargs="+", metavar="METRIC=VALUE",
                     help="validation metrics to publish as the baseline (accuracy, f1_macro, roc_auc, mae...), "
                          "e.g. --baseline accuracy=0.93 f1_macro=0.92")
    reg.add_argument("--windows", nargs="+", metavar="WINDOW",
                     help="the windows you expect (refused when they are not the exporter's)")
    _store_args(reg, store=None)
    reg.add_argument("--url", help="base URL of a running quality exporter (e.g. http://127.0.0.1:9102): "
                     "POST /versions with the bearer token; or give --store")
    reg.set_defaults(func=register_version)


def add_quality_import(imp: argparse.ArgumentParser) -> None:
    """Arguments of ``mlscope quality-import``."""
    imp.add_argument("file")
    _store_args(imp, store=None)
    imp.add_argument("--url", help="base URL of a running quality exporter (e.g. http://127.0.0.1:9102) "
                     "instead of opening the store")
    imp.set_defaults(func=import_file)
