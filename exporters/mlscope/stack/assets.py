"""Find the stack's files (alerting/, provisioning/, dashboards JSON) in a checkout or in the installed package."""
from __future__ import annotations

from pathlib import Path

_STACK_PACKAGE = Path(__file__).resolve().parent
# A checkout: exporters/mlscope/stack/ sits three levels below the repository root.
_CHECKOUT_ROOT = _STACK_PACKAGE.parent.parent.parent
# An installed wheel carries the files beside this module, under mlscope/stack/.
_PACKAGED_ROOT = _STACK_PACKAGE


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


# What `mlscope init` writes: (path in the stack root, path in the target folder).
INIT_FILES = (("docker-compose.yml", "docker-compose.yml"), (".env.example", ".env.example"),
              ("alerting", "alerting"), ("provisioning", "provisioning"))


def _source(relative: str) -> Path:
    root = stack_root()
    if root == _PACKAGED_ROOT and relative == ".env.example":
        relative = "env.example"  # dot-files are not package data
    return root / relative


def init(target: Path, *, force: bool = False) -> list[Path]:
    """Write the stack's files into ``target`` (refusing to overwrite unless ``force``)."""
    import shutil

    target.mkdir(parents=True, exist_ok=True)
    existing = [target / dst for _, dst in INIT_FILES if (target / dst).exists()]
    if existing and not force:
        raise FileExistsError(f"{', '.join(map(str, existing))} already exist(s); use --force to overwrite")
    written = []
    for src, dst in INIT_FILES:
        source, destination = _source(src), target / dst
        if source.is_dir():
            shutil.copytree(source, destination, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "tests"))
        else:
            shutil.copyfile(source, destination)
        written.append(destination)
    return written
