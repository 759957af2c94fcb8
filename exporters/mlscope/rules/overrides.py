"""A stack folder's own rule configuration: ``alerting/rules-config.yml`` over the built-in one.

The file holds only what differs from :mod:`mlscope.rules.config`, by the same names::

    thresholds: {error_ratio: 0.02, drift_psi_floor: 0.2}
    links: {grafana_base_url: https://grafana.example.com}
    profiles:
      default: {for_drift: 30m, drift_windows: [2h, 1d]}
      fast: {warmup: {drift: {min_count: 50}}}

Top-level sections are the fields of :class:`~mlscope.rules.config.RuleConfig` (``thresholds``,
``selectors``, ``links``, ``resources``); ``profiles`` changes a profile's fields. A key that is not a field,
or a value of the wrong type, is refused with its path and the valid keys: a typo never silently keeps a
default. ``mlscope rules build|check`` read the file beside their ``--dir`` (``alerting/rules`` ->
``alerting/rules-config.yml``), ``mlscope up`` the stack folder's.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .config import PROFILES, RuleConfig, config_for, duration_seconds

FILE_NAME = "rules-config.yml"
FIXED = {"name"}  # a profile's name selects it; it is not a setting


class RulesConfigError(ValueError):
    """The rule configuration file cannot be used; the message names the key and what is expected."""


def named(error: RulesConfigError, path: Path) -> str:
    """``error``'s message naming the file it came from (the settings are merged under the default name)."""
    text = str(error)
    return str(path) + text[len(FILE_NAME):] if text.startswith(FILE_NAME + ":") else text


def beside(rules_dir: Path) -> Path:
    """The configuration file of a rules folder: ``alerting/rules`` -> ``alerting/rules-config.yml``."""
    return Path(rules_dir).parent / FILE_NAME


def load(path: Path | None) -> dict[str, Any]:
    """The file's overrides ({} when there is no file or it is empty)."""
    if path is None or not Path(path).is_file():
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as exc:
        raise RulesConfigError(f"{path}: not YAML ({exc})") from None
    if not isinstance(data, dict):
        raise RulesConfigError(f"{path}: expected a mapping of sections (thresholds, links, profiles...)")
    return data


def configured(profile: str, overrides: Mapping[str, Any], where: str = FILE_NAME) -> RuleConfig:
    """The rule configuration of ``profile`` with ``overrides`` applied."""
    sections = dict(overrides)
    profiles = sections.pop("profiles", None) or {}
    if not isinstance(profiles, dict) or set(profiles) - set(PROFILES):
        raise RulesConfigError(f"{where}: profiles: expected a mapping with keys among {sorted(PROFILES)}")
    cfg = _merged(config_for(profile), sections, f"{where}: ", skip={"profile"})
    if profile in profiles:
        cfg = dataclasses.replace(cfg, profile=_merged(cfg.profile, profiles[profile],
                                                       f"{where}: profiles.{profile}.", skip=FIXED))
    return cfg


def _merged(obj: Any, data: Any, where: str, skip: frozenset[str] | set[str] = frozenset()) -> Any:
    """``obj`` (a dataclass) with the fields ``data`` names replaced, recursively."""
    names = [f.name for f in dataclasses.fields(obj) if f.name not in skip]
    if not isinstance(data, dict):
        raise RulesConfigError(f"{where.rstrip('. ')}: expected a mapping with keys among {names}")
    changes = {}
    for key, value in data.items():
        if key not in names:
            raise RulesConfigError(f"{where}{key}: unknown key; expected one of {names}")
        changes[key] = _value(getattr(obj, key), value, f"{where}{key}")
    try:
        return dataclasses.replace(obj, **changes)
    except ValueError as exc:  # the section's own checks (RoleError, a setting out of its range)
        raise RulesConfigError(f"{where.rstrip('. ')}: {exc}") from None


def _value(current: Any, value: Any, where: str) -> Any:
    """``value`` as the type of ``current`` (the built-in setting it replaces)."""
    if dataclasses.is_dataclass(current):
        return _merged(current, value, where + ".")
    if isinstance(current, tuple):
        if not isinstance(value, list) or (current and not value):
            raise RulesConfigError(f"{where}: expected a non-empty list")
        return tuple(_value(current[0], item, f"{where}[{i}]") if current else item for i, item in enumerate(value))
    if isinstance(current, (bool, str)):
        if type(value) is not type(current):
            raise RulesConfigError(f"{where}: expected a {type(current).__name__}, got {value!r}")
        if isinstance(current, str) and isinstance(value, str) and _is_duration(current) and not (
                value == "" and where.rsplit(".", 1)[-1] in UNSET_DURATIONS):
            _check_duration(value, where)
        return value
    if isinstance(current, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise RulesConfigError(f"{where}: expected a finite number, got {value!r}")
        if isinstance(current, int) and not float(value).is_integer():
            raise RulesConfigError(f"{where}: expected a whole number, got {value!r}")
        return type(current)(value)
    raise RulesConfigError(f"{where}: cannot be set from the file")


# Durations an empty string unsets (an anomaly signal's own smoothing: the section's; its count window: none).
UNSET_DURATIONS = ("smoothing", "count_window")


def _is_duration(text: str) -> bool:
    try:
        duration_seconds(text)
    except ValueError:
        return False
    return True


def _check_duration(text: str, where: str) -> None:
    if not _is_duration(text):
        raise RulesConfigError(f"{where}: {text!r} is not a Prometheus duration (e.g. 30s, 5m, 1h)")
