"""Prometheus recording and alert rules generated from one configuration (see ``config``)."""
from .config import PROFILES, Profile, RuleConfig, config_for
from .generate import build_all, render, stale_files

__all__ = ["PROFILES", "Profile", "RuleConfig", "config_for", "build_all", "render", "stale_files"]
