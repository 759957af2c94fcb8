"""The docs' examples run and their links resolve.

Convention (docs/index.md): every ```python block of README.md, CONTRIBUTING.md and docs/*.md is complete
and runs as it stands, in its own interpreter, with `8001` replaced by a free port, unless the line before it
is `<!-- fragment -->`. Every relative Markdown link resolves: the file, and the #anchor as GitHub makes it.
"""
from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlscope.dashboards import check as dashcheck
from mlscope.dashboards import style as gf
from mlscope.rules.reference import anchor
from mlscope.stack import scaling
from mlscope.stack.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").glob("*.md")])
FRAGMENT = "<!-- fragment -->"
TUTORIAL_FILE = "<!-- file: "  # a file of a tutorial: tests/e2e/test_tutorial.py writes and runs it
FENCE = re.compile(r"^(`{3,})([\w-]*)[^\n]*\n(.*?)^\1\s*$", re.S | re.M)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """(line, code) of every complete python block of ``path``."""
    text = path.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        if match.group(2) == "python" and before.strip() != FRAGMENT and not before.startswith(TUTORIAL_FILE):
            blocks.append((text.count("\n", 0, match.start()) + 1, match.group(3)))
    return blocks


EXAMPLES = [pytest.param(path, line, code, id=f"{path.relative_to(ROOT)}:{line}")
            for path in DOCS for line, code in python_blocks(path)]


@pytest.mark.parametrize("path, line, code", EXAMPLES)
def test_complete_example_runs(path: Path, line: int, code: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    result = subprocess.run([sys.executable, "-c", code.replace("8001", str(free_port()))], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{path.name}:{line}\n{result.stderr[-3000:]}"


def test_there_are_complete_examples() -> None:
    assert len(EXAMPLES) >= 4
    assert {p.values[0].name for p in EXAMPLES} >= {"README.md", "instrumenting.md", "dashboards.md"}


def prose(text: str) -> str:
    """``text`` without fenced blocks and code spans (links there are not links)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


@functools.cache
def anchors(path: Path) -> frozenset[str]:
    """GitHub's anchors of a Markdown file's headings (duplicates get -1, -2...); once per file (docs/metrics.md
    alone links to its own headings some 450 times)."""
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", path.read_text()).splitlines():
        if re.match(r"#{1,6} ", line):
            slug = anchor(line.lstrip("#").replace("`", ""))
            out.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return frozenset(out)


def relative_links(path: Path) -> list[str]:
    return [t for t in LINK.findall(prose(path.read_text())) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


@pytest.mark.parametrize("path", [*DOCS, *sorted((ROOT / "alerting/runbooks").glob("*.md"))],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    broken = []
    for target in relative_links(path):
        file, _, fragment = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        missing_anchor = fragment and resolved.suffix == ".md" and fragment not in anchors(resolved)
        if not resolved.exists() or missing_anchor:
            broken.append(target)
    assert broken == []


def test_link_checker_catches_a_broken_anchor_and_file(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# A `b` c\n\n## Same\n\n## Same\n\n[ok](#a-b-c) [ok](#same-1) [bad](#nope) [bad](gone.md)\n"
                    "`[not a link](nowhere.md)`\n")
    assert anchors(page) == {"a-b-c", "same", "same-1"}
    assert relative_links(page) == ["#a-b-c", "#same-1", "#nope", "gone.md"]


def test_fragments_are_skipped() -> None:
    assert all("req_id" not in code for _, code in python_blocks(ROOT / "docs" / "quality.md"))


# Checks that read the README before its topics moved to docs/.

def test_scaling_table_is_the_computed_one() -> None:
    assert scaling.markdown_table() in (ROOT / "docs" / "scaling.md").read_text()


def test_panel_example_builds_a_clean_panel() -> None:
    text = (ROOT / "docs" / "dashboards.md").read_text()
    code = python_blocks(ROOT / "docs" / "dashboards.md")
    (_, example), = [(line, c) for line, c in code if "batches" in c]
    assert "## Adding a panel" in text
    namespace: dict[str, object] = {}
    exec(compile(example, "dashboards.md", "exec"), namespace)
    data = gf.to_json(gf.dashboard("mlscope-docs", "docs example", rows=[[namespace["batches"]]]))
    assert dashcheck.problems(data) == []
    (query,) = [q for q in dashcheck.queries(data) if not q.variable]
    assert "mlscope_batches_total" in query.expr


def test_band_panels_the_runbooks_and_docs_name_are_the_dashboards_panel_titles() -> None:
    """*… vs its seasonal band…* in a runbook or adaptive-alerts.md is a panel title of a provisioned dashboard."""
    import json

    def titles(node: object) -> set[str]:
        if isinstance(node, dict):
            return ({str(node["title"])} if "title" in node else set()) | {t for v in node.values() for t in titles(v)}
        return {t for v in node for t in titles(v)} if isinstance(node, list) else set()

    shown = {t for p in (ROOT / "provisioning" / "grafana" / "dashboards").glob("*.json")
             for t in titles(json.loads(p.read_text()))}
    texts = [p.read_text() for p in (ROOT / "alerting" / "runbooks").glob("*Anomalous.md")]
    named = {m for t in [*texts, (ROOT / "docs" / "adaptive-alerts.md").read_text()]
             for m in re.findall(r"\*([^*\n]*seasonal band[^*\n]*)\*", t)}
    assert len(named) >= 6 and named <= shown, named - shown
