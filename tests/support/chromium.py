"""Headless Chromium (Debian's ``chromium``) opening a local page: its DOM, a screenshot, the console messages
and every request the page made (from Chromium's net log), for the tests of self-contained pages."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-default-apps",
         "--hide-scrollbars", "--enable-logging=stderr", "--v=0")
CONSOLE = re.compile(r":(?:INFO|WARNING|ERROR):CONSOLE[^\]]*\] \"(?P<text>.*)\", source: (?P<source>\S+)")
TIMEOUT_S = 60


@dataclass
class Opened:
    dom: str
    screenshot: Path
    console: list[str]        # messages the page wrote to its console (errors included)
    requests: list[str]       # URLs the page itself asked for (not the file, not the browser's own traffic)

    def pixel_std(self) -> float:
        """Standard deviation of the screenshot's pixels (0 for a blank page)."""
        import matplotlib.image

        image = np.asarray(matplotlib.image.imread(self.screenshot), dtype=np.float64)
        return float(image[..., :3].std())


def find() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(binary: str, page: Path, folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary, *FLAGS, f"--user-data-dir={folder / 'profile'}", *extra, page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


def page_requests(net_log: Path) -> list[str]:
    """URLs requested on behalf of a ``file://`` page (their network isolation key is the file origin)."""
    events = json.loads(net_log.read_text())["events"]
    urls = []
    for event in events:
        params = event.get("params") or {}
        if "file://" in str(params.get("network_isolation_key", "")):
            sources = [e for e in events if e.get("source", {}).get("id") == event["source"]["id"]]
            urls += [str(e["params"]["url"]) for e in sources if "url" in (e.get("params") or {})]
    return sorted({u for u in urls if not u.startswith(("file:", "data:"))})


def open_page(binary: str, page: Path, folder: Path, size: str = "1200,2400") -> Opened:
    """Open ``page`` once: its DOM (stdout), a screenshot, the net log and the console (stderr)."""
    folder.mkdir(parents=True, exist_ok=True)
    shot, net = folder / f"{page.stem}.png", folder / f"{page.stem}.netlog.json"
    run = _run(binary, page, folder, "--dump-dom", f"--screenshot={shot}", f"--window-size={size}",
               f"--log-net-log={net}")
    if not shot.exists():
        raise AssertionError(f"chromium wrote no screenshot (exit {run.returncode}): {run.stderr[-2000:]}")
    console = [m.group("text") for m in CONSOLE.finditer(run.stderr)]
    return Opened(run.stdout, shot, console, page_requests(net))
