"""Type-check dashboard JSON against Grafana's own TypeScript ``Dashboard`` type (``@grafana/schema``, npm).

Each dashboard is checked twice in one ``tsc --noEmit --strict`` run: as ``Dashboard`` exactly, and as
``Loose<Dashboard>``, the same type with every string enum replaced by the union of its values. JSON can
only write an enum member as its string, so the exact check reports every enum field (``"absolute"`` is not
``ThresholdsMode``): that is *enum-literal noise*, listed apart. Every error of the loose check, and every
error of the exact check that is not an enum literal, is *structural* (a wrong shape, a missing or unknown
field, or a string that is no value of its enum).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import ROOT

NODE_MODULES = ROOT / ".node-schema" / "node_modules"
SCHEMA = NODE_MODULES / "@grafana" / "schema"
TSC = NODE_MODULES / "typescript" / "bin" / "tsc"
LOOSE = """import type { Dashboard } from "@grafana/schema";
// Grafana's Dashboard with each string enum replaced by its values: what JSON can write.
type Loose<T> = T extends string ? (string extends T ? T : `${T}`)
  : T extends readonly (infer E)[] ? Loose<E>[]
  : T extends object ? { [K in keyof T]: Loose<T[K]> } : T;
export type LooseDashboard = Loose<Dashboard>;
"""
_ERROR = re.compile(r"^(?P<file>[\w.-]+)\.(?P<kind>exact|loose)\.ts\((?P<line>\d+),(?P<col>\d+)\): "
                    r"error (?P<code>TS\d+): (?P<message>.*)$")
_ENUM_LITERAL = re.compile(r"""^Type '"(?P<literal>[^"]*)"' is not assignable to type '(?P<enum>\w+)'\.$""")


@dataclass
class TypeReport:
    """What tsc found: structural errors (``name: message``) and enum-literal noise (literal -> enum: count)."""

    structural: list[str] = field(default_factory=list)
    enum_literals: Counter[tuple[str, str]] = field(default_factory=Counter)

    def noise(self) -> str:
        return "; ".join(f'{n} x "{lit}" as {enum}' for (lit, enum), n in self.enum_literals.most_common())


def schema_version() -> str | None:
    """The installed ``@grafana/schema`` version, or None."""
    package = SCHEMA / "package.json"
    return json.loads(package.read_text())["version"] if package.exists() else None


def available() -> bool:
    return shutil.which("node") is not None and TSC.exists() and schema_version() is not None


def typecheck(dashboards: dict[str, dict[str, Any]], workdir: Path) -> TypeReport:
    """Run tsc over ``dashboards`` (name -> JSON) in ``workdir``; classify what it reports."""
    (workdir / "node_modules").symlink_to(NODE_MODULES, target_is_directory=True)
    (workdir / "loose.ts").write_text(LOOSE)
    files = []
    for name, data in dashboards.items():
        stem = re.sub(r"\W", "_", name.removesuffix(".json"))
        text = json.dumps(data, indent=1)  # one field per line: tsc's line numbers find the field
        (workdir / f"{stem}.exact.ts").write_text(
            f'import type {{ Dashboard }} from "@grafana/schema";\nexport const d: Dashboard = {text};\n')
        (workdir / f"{stem}.loose.ts").write_text(
            f'import type {{ LooseDashboard }} from "./loose";\nexport const d: LooseDashboard = {text};\n')
        files += [f"{stem}.exact.ts", f"{stem}.loose.ts"]
    result = subprocess.run(["node", str(TSC), "--noEmit", "--strict", "--skipLibCheck", "--target", "es2022",
                             "--module", "esnext", "--moduleResolution", "bundler", *files],
                            cwd=workdir, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "NODE_OPTIONS": ""})
    return classify(result.stdout, result.returncode)


def classify(output: str, returncode: int) -> TypeReport:
    report = TypeReport()
    loose_at = set()
    errors = []
    for line in output.splitlines():
        match = _ERROR.match(line)
        if match is None:
            if line.strip() and not line.startswith(" "):
                report.structural.append(f"tsc: {line}")  # an error tsc reports outside the dashboards
            continue
        errors.append(match)
        if match["kind"] == "loose":
            loose_at.add((match["file"], match["line"], match["col"]))
    for match in errors:
        where = f"{match['file']}.json line {match['line']}"
        enum = _ENUM_LITERAL.match(match["message"])
        if match["kind"] == "exact" and (match["file"], match["line"], match["col"]) in loose_at:
            continue  # the loose check reports it (a wrong enum value is structural there)
        if match["kind"] == "exact" and enum:
            report.enum_literals[(enum["literal"], enum["enum"])] += 1
        else:
            report.structural.append(f"{where}: {match['message']}")
    if returncode not in (0, 2) and not errors:
        report.structural.append(f"tsc exited {returncode}: {output[-500:]}")
    return report
