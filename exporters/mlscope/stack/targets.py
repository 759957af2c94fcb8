"""The targets folder of a stack (native or compose), and ``mlscope targets add|remove|list``.

The native stack's folder is ``<state dir>/targets/``; a compose stack's is
``<stack folder>/provisioning/prometheus/targets/``. Both are read by Prometheus as job
``model-services`` (file_sd, no restart). Files written by hand (YAML) are listed and checked too.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .. import targets as sd
from ..targets import Target, TargetError

COMPOSE_TARGETS = Path("provisioning") / "prometheus" / "targets"


def native_folder(state_dir: Path) -> Path:
    return Path(state_dir) / "targets"


def compose_folder(stack_dir: Path) -> Path:
    stack_dir = Path(stack_dir)
    if not (stack_dir / "provisioning" / "prometheus").is_dir():
        raise TargetError(f"{stack_dir} is not a compose stack folder (no provisioning/prometheus/); "
                          "give the folder `mlscope init` wrote, or a checkout's root")
    return stack_dir / COMPOSE_TARGETS


@dataclass(frozen=True)
class Listed:
    """A target as found in a file of the folder."""

    name: str
    address: str
    path: Path
    #: The group's labels besides ``service``: a model server's ``server`` kind and its mapping.
    labels: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def kind(self) -> str:
        """``vllm``/``sglang`` for a model server, ``""`` for a service."""
        return self.labels.get(sd.SERVER_LABEL, "")

    def describe(self) -> str:
        """What Prometheus makes of it: ``service``, or the server kind and its model mapping."""
        if not self.kind:
            return "service"
        mapping = f"{self.labels['model']} {self.labels['model_version']}" if "model" in self.labels \
            else "model_name, unversioned"
        return f"{self.kind}: {mapping}"


class TargetsFolder:
    """The ``*.yml`` file_sd files of one folder: list, add (checked against the others), remove."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def list(self) -> list[Listed]:
        """Every target of every file (a file's ``service`` label, else its file name, names it)."""
        found: list[Listed] = []
        for path in sorted(self.path.glob(f"*{sd.SUFFIX}")):
            try:
                groups = yaml.safe_load(path.read_text()) or []
            except (OSError, yaml.YAMLError) as exc:
                raise TargetError(f"{path}: not a file_sd target list ({exc}); fix or remove it") from None
            if not isinstance(groups, list):
                raise TargetError(f"{path}: a file_sd file holds a list of target groups; fix or remove it")
            for group in groups:
                if not isinstance(group, dict):
                    raise TargetError(f"{path}: each target group is a mapping with `targets`; fix or remove it")
                labels = {str(k): str(v) for k, v in (group.get("labels") or {}).items()}
                name = labels.pop(sd.SERVICE_LABEL, path.stem)
                found.extend(Listed(name, str(address), path, labels) for address in group.get("targets") or [])
        return found

    def add(self, target: Target, *, replace: bool = False) -> tuple[Path, bool]:
        """Write ``target``'s file; returns (path, changed). Adding the same target again changes nothing.

        Refused (:class:`TargetError`) unless ``replace``: the name taken by another address, or the address
        already scraped under another name (Prometheus would scrape it twice). With ``replace`` the target
        takes the name or the address over (the other file of that address is removed).
        """
        path = sd.path_of(self.path, target.name)
        superseded = []
        every = self.list()
        for listed in every:
            if listed.address == target.address and listed.path != path:
                if not replace:
                    raise TargetError(f"{target.address} is already a target, as {listed.name!r} in "
                                      f"{listed.path}; use --replace to make it {target.name!r} (or `mlscope "
                                      f"targets remove {listed.path.stem}` first)")
                if any(other.path == listed.path and other.address != target.address for other in every):
                    raise TargetError(f"{listed.path} holds other targets besides {target.address}: take it "
                                      "out of that file by hand")
                superseded.append(listed.path)
            if listed.path == path and listed.address != target.address and not replace:
                raise TargetError(f"target {target.name!r} already points at {listed.address}; "
                                  "use --replace to point it at " + target.address)
        if path.exists() and path.read_text() == target.file_text():
            return path, False
        written = sd.write(self.path, target)
        for old in superseded:  # after the write: the address is never unscraped in between
            old.unlink(missing_ok=True)
        return written, True

    def add_unless_scraped(self, target: Target) -> Listed | None:
        """``mlscope up --scrape…``: the target already at ``target``'s address under another name when it is of
        the same kind (the server kind, or a plain service), which stays as it is (its mapping kept); else
        ``target`` is added (:meth:`add`) and None returned."""
        path, kind = sd.path_of(self.path, target.name), dict(target.labels).get(sd.SERVER_LABEL, "")
        for listed in self.list():
            if listed.address == target.address and listed.path != path and listed.kind == kind:
                return listed
        self.add(target)
        return None

    def remove(self, name: str) -> Path:
        """Remove the target named ``name``, or the file of the target at address ``name`` (``HOST:PORT``)."""
        by_address = [t.path for t in self.list() if t.address == name]
        path = by_address[0] if by_address else sd.path_of(self.path, name)
        if not path.exists():
            known = ", ".join(sorted({p.stem for p in self.path.glob(f"*{sd.SUFFIX}")})) or "none"
            raise TargetError(f"no target {name!r} in {self.path} (targets: {known})")
        path.unlink()
        return path


# -- the command ------------------------------------------------------------------------------------

def _spec(value: str) -> Target:
    try:
        return sd.parse(value)
    except TargetError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _server_spec(value: str) -> Target:
    try:
        return sd.parse_server(value)
    except TargetError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def scrape_argument(p: argparse.ArgumentParser) -> None:
    """``--scrape [NAME=]HOST:PORT`` and ``--scrape-server KIND=HOST:PORT`` (repeatable), for ``mlscope up``."""
    p.add_argument("--scrape", action="append", type=_spec, default=[], metavar="[NAME=]HOST:PORT",
                   help=f"also scrape your service (job {sd.JOB}), e.g. {sd.EXAMPLE}; repeatable; kept in the "
                        "state directory's targets/ for later starts (`mlscope targets` manages them)")
    p.add_argument("--scrape-server", action="append", type=_server_spec, default=[], dest="scrape_servers",
                   metavar="KIND=HOST:PORT",
                   help="also scrape a vLLM or SGLang model server, e.g. vllm=127.0.0.1:8000 (its model_name "
                        "becomes `model`; `mlscope targets add --kind vllm --model M --model-version V` maps it)")


def add_targets(p: argparse.ArgumentParser) -> None:
    where = argparse.ArgumentParser(add_help=False)
    group = where.add_mutually_exclusive_group()
    group.add_argument("--state-dir", default=".state", help="native stack (`mlscope up`): its state directory "
                       "(default: %(default)s; targets in STATE_DIR/targets/)")
    group.add_argument("--stack-dir", help="compose stack folder instead (targets in provisioning/prometheus/targets/)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", parents=[where], help="add or update targets")
    add.add_argument("spec", nargs="+", type=_spec, metavar="[NAME=]HOST:PORT")
    add.add_argument("--replace", action="store_true", help="let an existing name point at a new address, or an "
                     "address already scraped under another name take this name (and mapping)")
    add.add_argument("--kind", choices=sd.SERVER_KINDS, help="the targets are vLLM or SGLang model servers")
    add.add_argument("--model", default="", help="with --kind: the `model` their series get (default: the "
                     "server's model_name)")
    add.add_argument("--model-version", default="", help="with --kind: the `model_version` their series get")
    remove = actions.add_parser("remove", parents=[where], help="remove targets by name (or by HOST:PORT)")
    remove.add_argument("name", nargs="+")
    actions.add_parser("list", parents=[where], help="list the targets (name, address, kind and model mapping, "
                       "file)")
    p.set_defaults(func=targets_command)


def _print_list(folder: TargetsFolder, state_dir: Path | None) -> None:
    """The targets as aligned columns; says so when there are none, and refuses a state dir that is not one."""
    if state_dir is not None and not state_dir.is_dir():
        raise TargetError(f"no stack state in {state_dir}/ (run `mlscope up` there first, or give the "
                          "--state-dir it uses)")
    listed = folder.list()
    if not listed:
        print(f"mlscope: no targets in {folder.path}")
        return
    rows = [(t.name, t.address, t.describe(), str(t.path)) for t in listed]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(f"{cell:<{width}}" for cell, width in zip(row, widths, strict=False)) + f"  {row[3]}")


def targets_command(args: argparse.Namespace) -> int:
    try:
        folder = TargetsFolder(compose_folder(Path(args.stack_dir)) if args.stack_dir
                               else native_folder(Path(args.state_dir)))
        if args.action == "list":
            _print_list(folder, Path(args.state_dir) if not args.stack_dir else None)
        elif args.action == "add":
            if (args.model or args.model_version) and not args.kind:
                raise TargetError("--model and --model-version map a model server's series: give --kind too")
            specs = [sd.server_target(t, args.kind, args.model, args.model_version) if args.kind else t
                     for t in args.spec]
            for target in specs:
                path, changed = folder.add(target, replace=args.replace)
                print(f"mlscope: {'added' if changed else 'already there:'} {target.name} ({target.address}) "
                      f"in {path}; Prometheus reads it without a restart (job {sd.JOB})")
        else:
            for name in args.name:
                print(f"mlscope: removed {folder.remove(name)}")
    except (TargetError, OSError) as exc:
        print(f"mlscope: {exc}", file=sys.stderr)
        return 1
    return 0
