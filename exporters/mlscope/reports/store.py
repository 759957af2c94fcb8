"""Where pages are kept: one folder (the state directory's ``snapshots/``, a compose volume), a retention, and
``manifest.json`` listing each page with its sha256, so a later change to a page is visible (``verify``).

A page rewritten (the resolved notification of a group that fired) keeps its earlier hashes in the entry's
``history``. Standard library only; one writer per folder (the receiver), safe across its threads.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
RETENTION_S = 365 * 86400.0
PAGE_NAME = re.compile(r"^[0-9a-f]{16}-[0-9]{1,12}\.html$")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class PageStore:
    """Pages of one folder with their manifest; ``retention_s`` how long a page is kept after its first write."""

    folder: Path
    retention_s: float = RETENTION_S
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def manifest(self) -> dict[str, Any]:
        path = self.folder / MANIFEST
        if not path.exists():
            return {"pages": {}}
        return dict(json.loads(path.read_text(encoding="utf-8")))

    def path(self, name: str) -> Path | None:
        """The file of page ``name`` (``<id>.html``) when it is one of this store's names and exists."""
        if not PAGE_NAME.match(name):
            return None
        found = self.folder / name
        return found if found.is_file() else None

    def write(self, ident: str, html: str, status: str, at: float | None = None) -> Path:
        """Write page ``<ident>.html`` and its manifest entry; prune what outlived the retention."""
        written = time.time() if at is None else at
        data = html.encode("utf-8")
        name = f"{ident}.html"
        if not PAGE_NAME.match(name):
            raise ValueError(f"not a page name: {name!r}")
        with self._lock:
            manifest = self.manifest()
            pages = manifest.setdefault("pages", {})
            before = pages.get(name)
            history = []
            if before is not None:
                history = before.get("history", []) + [{k: before[k] for k in ("sha256", "status", "written_at")}]
            _atomic_write(self.folder / name, data)
            pages[name] = {"sha256": sha256_of(data), "bytes": len(data), "status": status, "written_at": written,
                           "first_written_at": before["first_written_at"] if before else written,
                           "history": history}
            self._prune(pages, written)
            _atomic_write(self.folder / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
        return self.folder / name

    def _prune(self, pages: dict[str, Any], at: float) -> None:
        for name in [n for n, e in pages.items() if at - float(e["first_written_at"]) > self.retention_s]:
            (self.folder / name).unlink(missing_ok=True)
            del pages[name]


def verify(folder: Path) -> list[str]:
    """What does not match ``folder``'s manifest: changed or missing pages, pages it does not list."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.exists():
        return [f"{path}: no manifest"]
    try:
        pages = json.loads(path.read_text(encoding="utf-8"))["pages"]
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{path}: not a manifest ({exc})"]
    problems = []
    for name, entry in sorted(pages.items()):
        page = folder / name
        if not page.is_file():
            problems.append(f"{name}: listed but missing")
        elif sha256_of(page.read_bytes()) != entry.get("sha256"):
            problems.append(f"{name}: changed since it was written (sha256 differs from the manifest's)")
    for page in sorted(folder.glob("*.html")):
        if page.name not in pages:
            problems.append(f"{page.name}: not in the manifest")
    return problems
