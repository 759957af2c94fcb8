"""Volume control: which predictions get a full log record, and per-version levels changeable at run time."""
from __future__ import annotations

import json
import logging
import os
import time
import zlib
from collections.abc import Mapping
from pathlib import Path

ANY_VERSION = "*"
#: A level file's content: ``{model: {version or "*": level name}}``.
LevelFile = dict[str, dict[str, str]]


def level_number(level: int | str) -> int:
    """``logging.DEBUG`` for ``"debug"``/``"DEBUG"``/``10``; ValueError for anything else."""
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    number = logging.getLevelName(str(level).upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}")
    return number


def sampled(request_id: str, rate: float) -> bool:
    """Whether ``request_id`` is in the sample: a hash, so every service samples the same requests."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    return zlib.crc32(request_id.encode()) < rate * 4294967296.0


class LogLevels:
    """The prediction-log threshold of each model version, changeable while the service runs.

    ``set("churn", "3.2.0", "debug")`` makes that version log every
    prediction; ``"warning"`` keeps only slow and failed ones; ``"error"``
    only failed ones. With ``path``, a JSON file (``{"churn": {"3.2.0":
    "debug", "*": "info"}}``) is re-read when it changes, checked at most
    every ``poll_seconds``: ``mlscope logs level`` edits it, no restart needed.
    """

    def __init__(self, default: int | str = logging.INFO, *, path: str | Path | None = None,
                 poll_seconds: float = 2.0) -> None:
        self.default = level_number(default)
        self._set: dict[tuple[str, str], int] = {}
        self._file: dict[tuple[str, str], int] = {}
        self.path = Path(path) if path is not None else None
        self._poll = poll_seconds
        self._next_check = 0.0
        self._mtime: float | None = None

    def set(self, model: str, model_version: str, level: int | str) -> None:
        """Set the threshold of one version (``"*"`` for every version of ``model``)."""
        self._set[(model, model_version)] = level_number(level)

    def clear(self, model: str, model_version: str) -> None:
        self._set.pop((model, model_version), None)

    def level(self, model: str, model_version: str) -> int:
        if self.path is not None and time.monotonic() >= self._next_check:
            self._reload(self.path)
        for table in (self._set, self._file):
            if table:
                found = table.get((model, model_version))
                if found is None:
                    found = table.get((model, ANY_VERSION))
                if found is not None:
                    return found
        return self.default

    def _reload(self, path: Path) -> None:
        self._next_check = time.monotonic() + self._poll
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            self._file, self._mtime = {}, None
            return
        if mtime == self._mtime:
            return
        self._mtime = mtime
        try:
            self._file = parse_levels(json.loads(path.read_text()))
        except (OSError, ValueError, AttributeError) as exc:
            logging.getLogger("mlscope.logs").warning("mlscope: ignoring log level file %s: %s", path, exc)


def parse_levels(data: Mapping[str, Mapping[str, str]]) -> dict[tuple[str, str], int]:
    """``{"model": {"version" or "*": "level"}}`` as a lookup table; ValueError on a bad entry."""
    if not isinstance(data, Mapping):
        raise ValueError("expected an object {model: {version: level}}")
    return {(str(model), str(version)): level_number(level)
            for model, versions in data.items() for version, level in versions.items()}


def write_level(path: str | Path, model: str, model_version: str, level: str | None) -> LevelFile:
    """Set (or with ``level=None`` remove) one entry of a level file, atomically; return the new content."""
    path = Path(path)
    data: LevelFile = json.loads(path.read_text()) if path.exists() else {}
    parse_levels(data)
    if level is None:
        data.get(model, {}).pop(model_version, None)
        if not data.get(model, True):
            data.pop(model)
    else:
        level_number(level)
        data.setdefault(model, {})[model_version] = level.lower()
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"folder {path.parent} does not exist: create it first (services read {path.name} there)")
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return data
