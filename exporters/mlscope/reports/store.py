"""Where pages are kept: one folder (the state directory's ``snapshots/``, a compose volume), a retention, and
``manifest.json`` listing each page with its sha256, so a later change to a page is visible (``verify``).

A page rewritten (the resolved notification of a group that fired; an earlier page of the group given a note
pointing to its successor) keeps its earlier hashes in the entry's ``history``. Standard library only; one
writer per folder (the receiver), safe across its threads.
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


SUCCESSOR = re.compile(r'<p class="successor">.*?</p>\n', re.S)


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def with_note(html: str, note: str) -> str:
    """``html`` with its successor note (one, replaced when there is one) at the top of its body."""
    html = SUCCESSOR.sub("", html)
    block = f'<p class="successor">{note}</p>\n'
    at = html.find(">", html.find("<body")) + 1 if "<body" in html else 0
    return html[:at] + block + html[at:]


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
            self._put(pages, name, data, status, written)
            self._point_back(pages, name, status, written)
            self._prune(pages, written)
            _atomic_write(self.folder / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
        return self.folder / name

    def _put(self, pages: dict[str, Any], name: str, data: bytes, status: str, written: float,
             **extra: Any) -> None:
        """Write one page and its entry; the entry's earlier hash joins its ``history``."""
        before = pages.get(name)
        history = []
        if before is not None:
            history = before.get("history", []) + [{k: before[k] for k in ("sha256", "status", "written_at")}]
        _atomic_write(self.folder / name, data)
        pages[name] = {"sha256": sha256_of(data), "bytes": len(data), "status": status, "written_at": written,
                       "first_written_at": before["first_written_at"] if before else written,
                       "history": history, **extra}

    def _point_back(self, pages: dict[str, Any], name: str, status: str, at: float) -> None:
        """Earlier pages of the same group (same label hash) left firing or superseded get a note pointing to
        ``name``: "superseded by" while it fires, "resolved at ..., see" once it resolves (a group whose alert
        changed, a new start, wrote a new page: the first notification's link must not stay "firing")."""
        group, start = name.removesuffix(".html").split("-")
        for earlier, entry in sorted(pages.items()):
            head, _, when = earlier.removesuffix(".html").partition("-")
            if head != group or int(when) >= int(start) or entry.get("status") not in ("firing", "superseded"):
                continue
            path = self.folder / earlier
            if not path.is_file():
                continue
            if status == "resolved":
                note = (f"This group resolved at {_iso(at)}: see <a href=\"{name}\">{name}</a> "
                        "(its alerts changed after this page, under a new start).")
                new_status = "resolved"
            else:
                note = (f"Superseded by <a href=\"{name}\">{name}</a>: this group's alerts changed after this "
                        "page (a new start); that page carries on, and says when the group resolves.")
                new_status = "superseded"
            html = with_note(path.read_text(encoding="utf-8"), note)
            self._put(pages, earlier, html.encode("utf-8"), new_status, at, successor=name)

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
