"""Find the stack's files (alerting/, provisioning/, dashboards JSON) in a checkout or in the installed package."""
from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
# A checkout: exporters/mlscope/ sits two levels below the repository root.
_CHECKOUT_ROOT = _PACKAGE.parent.parent
# An installed wheel carries the files under mlscope/stack/.
_PACKAGED_ROOT = _PACKAGE / "stack"


def stack_root() -> Path:
    """The folder holding alerting/ and provisioning/: the checkout's root, else the packaged copy."""
    if (_CHECKOUT_ROOT / "alerting" / "alertmanager.yml").exists():
        return _CHECKOUT_ROOT
    if (_PACKAGED_ROOT / "alerting" / "alertmanager.yml").exists():
        return _PACKAGED_ROOT
    raise FileNotFoundError(f"mlscope's stack files are neither in {_CHECKOUT_ROOT} nor in {_PACKAGED_ROOT}")


def asset(relative: str) -> Path:
    """Absolute path of a stack file, e.g. ``asset("alerting/alertmanager.yml")``."""
    path = stack_root() / relative
    if not path.exists():
        raise FileNotFoundError(f"{relative} not found under {stack_root()}")
    return path
