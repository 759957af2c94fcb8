"""``mlscope rollback``: the containment action for "candidate worse than baseline".

Run by the alert receiver (``alert_commands``; the contract in :mod:`mlscope.alerts.contract`): it reads the
alert (JSON on stdin, else the ``MLSCOPE_*`` environment), asks the service's control endpoint
(:mod:`mlscope.versions.control`) to send the candidate's (``model_version``) traffic to the baseline
(``baseline_version``), prints one JSON line saying what happened, and exits DONE (also when the traffic was
already on the baseline: idempotent), NOT_APPLICABLE (the alert names no two versions, or the service does not
split that model or version) or FAILED (no answer, a wrong token, any other answer).
"""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..alerts.contract import DONE, FAILED, NOT_APPLICABLE


@dataclass(frozen=True)
class Outcome:
    status: int
    line: dict[str, Any]


def alert_from(stdin_text: str, environ: Mapping[str, str]) -> dict[str, Any]:
    """The alert the receiver handed over: its JSON on stdin, else rebuilt from the environment."""
    if stdin_text.strip():
        try:
            alert = json.loads(stdin_text)
        except ValueError as exc:
            raise ValueError(f"stdin is not the alert's JSON (the alert receiver writes it there; {exc})") from None
        if not isinstance(alert, dict):
            raise ValueError("the alert on stdin is not a JSON object")
        return alert
    return alert_from_environment(environ)


def alert_from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """The alert's labels and fingerprint as the receiver also puts them in the environment."""
    labels = {k.removeprefix("MLSCOPE_LABEL_").lower(): v for k, v in environ.items()
              if k.startswith("MLSCOPE_LABEL_")}
    return {"labels": labels, "fingerprint": environ.get("MLSCOPE_FINGERPRINT", "")}


def line_for(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The start of the JSON line: the action and what the alert names (also on a failure before the request)."""
    labels = alert.get("labels") or {}
    return {"action": "rollback", "fingerprint": str(alert.get("fingerprint") or ""), "model": labels.get("model"),
            "candidate": labels.get("model_version"), "baseline": labels.get("baseline_version")}


def rollback(url: str, token: str, alert: Mapping[str, Any], timeout_s: float = 10.0) -> Outcome:
    """Send the alert's candidate traffic back to its baseline through the control endpoint at ``url``."""
    line = line_for(alert)
    model, candidate, baseline, fingerprint = line["model"], line["candidate"], line["baseline"], line["fingerprint"]
    if not (model and candidate and baseline):
        return Outcome(NOT_APPLICABLE, {**line, "result": "not_applicable",
                                        "reason": "the alert has no model, model_version and baseline_version"})
    body = json.dumps({"candidate": candidate, "baseline": baseline, "fingerprint": fingerprint}).encode()
    request = urllib.request.Request(
        f"{url.rstrip('/')}/traffic/{urllib.parse.quote(str(model), safe='')}/rollback", data=body, method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            answer = json.loads(response.read() or b"{}")
            return Outcome(DONE, {**line, "result": "done", "changed": answer.get("changed"),
                                  "weights": answer.get("weights")})
    except urllib.error.HTTPError as exc:
        reason = _error_text(exc)
        if exc.code in (404, 409):
            return Outcome(NOT_APPLICABLE, {**line, "result": "not_applicable", "reason": reason})
        return Outcome(FAILED, {**line, "result": "failed", "reason": f"HTTP {exc.code}: {reason}"})
    except (OSError, ValueError) as exc:  # refused, unreachable, timed out, not JSON
        return Outcome(FAILED, {**line, "result": "failed", "reason": f"{type(exc).__name__}: {exc}"})


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("error", exc.reason))
    except (OSError, ValueError, AttributeError):
        return str(exc.reason)


def token_file_warning(token_file: str | None) -> str | None:
    """A warning when the token file is readable or writable by others than its owner (it should be mode 600)."""
    if not token_file:
        return None
    mode = os.stat(token_file).st_mode & 0o777
    if mode & 0o077:
        return f"the token file {token_file} has mode {mode:o}: others can read the token (chmod 600 {token_file})"
    return None


def token_from(token_file: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The bearer token: the file's first line, else ``MLSCOPE_CONTROL_TOKEN``; a ValueError when neither."""
    if token_file:
        with open(token_file, encoding="utf-8") as handle:
            token = handle.readline().strip()
    else:
        token = environ.get("MLSCOPE_CONTROL_TOKEN", "").strip()
    if not token:
        raise ValueError("no control token: pass --token-file or set MLSCOPE_CONTROL_TOKEN")
    return token
