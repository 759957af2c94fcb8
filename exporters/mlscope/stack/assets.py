"""Find the stack's files (alerting/, provisioning/, dashboards) in a stack folder, a checkout or the package.

A stack folder is one written by ``mlscope init`` (or a checkout's root): the current folder or one above it
holding ``alerting/alertmanager.yml`` and ``provisioning/``. Run inside one, its own files win.
"""
from __future__ import annotations

from pathlib import Path

from .. import __version__

_STACK_PACKAGE = Path(__file__).resolve().parent
# A checkout: exporters/mlscope/stack/ sits three levels below the repository root.
_CHECKOUT_ROOT = _STACK_PACKAGE.parent.parent.parent
# An installed wheel carries the files beside this module, under mlscope/stack/.
_PACKAGED_ROOT = _STACK_PACKAGE


def _is_stack_folder(folder: Path) -> bool:
    return (folder / "alerting" / "alertmanager.yml").is_file() and (folder / "provisioning").is_dir()


def stack_folder(start: Path | None = None) -> Path | None:
    """The stack folder holding ``start`` (default: the current folder), None outside any."""
    here = (start or Path.cwd()).resolve()
    return next((folder for folder in (here, *here.parents) if _is_stack_folder(folder)), None)


def stack_root() -> Path:
    """The folder holding alerting/ and provisioning/: the stack folder we run in, else the checkout's root,
    else the packaged copy."""
    folder = stack_folder()
    if folder is not None:
        return folder
    if _is_stack_folder(_CHECKOUT_ROOT):
        return _CHECKOUT_ROOT
    if _is_stack_folder(_PACKAGED_ROOT):
        return _PACKAGED_ROOT
    raise FileNotFoundError(f"mlscope's stack files are neither in {_CHECKOUT_ROOT} nor in {_PACKAGED_ROOT}")


def asset(relative: str) -> Path:
    """Absolute path of a stack file, e.g. ``asset("alerting/alertmanager.yml")``."""
    path = stack_root() / relative
    if not path.exists():
        raise FileNotFoundError(f"{relative} not found under {stack_root()}")
    return path


# What `mlscope init` writes: (path in the package, path in the target folder). The image's Dockerfile
# installs the published package (``{version}``: this one) and copies the folder's alerting/ and provisioning/.
INIT_FILES = (("docker-compose.yml", "docker-compose.yml"), ("env.example", ".env.example"),
              ("alerting", "alerting"), ("provisioning", "provisioning"), ("dashboards", "dashboards"),
              ("standalone.Dockerfile", "Dockerfile"))
WHEELS_NOTE = ("Wheels here are installed into the image before the package index is asked (`pip wheel "
               "--no-deps -w wheels mlscope==VERSION`, or a wheel you built); empty: the published package.\n")


def init(target: Path, *, force: bool = False) -> list[Path]:
    """Write a stack folder that stands alone into ``target`` (refusing to overwrite unless ``force``): the
    compose file, its image's Dockerfile, alerting/, provisioning/ and the dashboards' Python sources, all
    from the installed package (a checkout's package links to the checkout's files)."""
    import shutil

    target.mkdir(parents=True, exist_ok=True)
    existing = [target / dst for _, dst in INIT_FILES if (target / dst).exists()]
    if existing and not force:
        raise FileExistsError(f"{', '.join(map(str, existing))} already exist(s); use --force to overwrite")
    written = []
    for src, dst in INIT_FILES:
        source, destination = _PACKAGED_ROOT / src, target / dst
        if source.is_dir():
            shutil.copytree(source, destination, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "tests"))
        elif dst == "Dockerfile":
            destination.write_text(source.read_text().replace("{version}", __version__))
        else:
            shutil.copyfile(source, destination)
        written.append(destination)
    (target / "wheels").mkdir(exist_ok=True)
    (target / "wheels" / "README").write_text(WHEELS_NOTE)
    written.append(target / "wheels")
    return written
