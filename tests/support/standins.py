"""Stand-in `grafana`, `loki` and `tempo` executables: they record how they were started and answer every GET
with 200.

Real Grafana, Loki and Tempo are not run in the tests. A stand-in writes ``<record dir>/<name>.json`` (argv and
the ``GF_*`` environment), finds its port where the real server would (Loki and Tempo:
``server.http_listen_port`` of its ``-config.file``; Grafana: ``GF_SERVER_HTTP_PORT``) and serves ``/ready``,
``/api/health`` and ``/metrics``.
"""
from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

RECORD_ENV = "MLSCOPE_STANDIN_RECORD"

SCRIPT = '''#!{python}
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import yaml

name = Path(sys.argv[0]).name
record = {{"argv": sys.argv, "env": {{k: v for k, v in os.environ.items() if k.startswith("GF_")}}}}
Path(os.environ["{record_env}"], name + ".json").write_text(json.dumps(record))
if name in ("loki", "tempo"):
    config = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("-config.file="))
    port = yaml.safe_load(Path(config).read_text())["server"]["http_listen_port"]
else:
    port = int(os.environ["GF_SERVER_HTTP_PORT"])


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"# stand-in\\n" if self.path.startswith("/metrics") else b"ready\\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", port), Handler).serve_forever()
'''


def install(bin_dir: Path, record_dir: Path, names: tuple[str, ...] = ("grafana", "loki")) -> dict[str, str]:
    """Write the stand-ins into ``bin_dir``; returns the environment that puts them first on PATH."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    record_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = bin_dir / name
        path.write_text(SCRIPT.format(python=sys.executable, record_env=RECORD_ENV))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", RECORD_ENV: str(record_dir)}


def recorded(record_dir: Path, name: str) -> dict[str, Any]:
    """How stand-in ``name`` was started: ``{"argv": [...], "env": {GF_*: ...}}``."""
    data: dict[str, Any] = json.loads((record_dir / f"{name}.json").read_text())
    return data
