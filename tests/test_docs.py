"""The documentation matches the code: every Python example in README.md and docs/
runs as written, and every relative link points at a file (and heading) that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCKS = [
    (page, index, code)
    for page in PAGES
    for index, code in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), re.S))
]
#: [text](target) and ![alt](target), outside code blocks and inline code
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def heading_anchors(text: str) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces
    to dashes (``## 3. The camera (ppcam)`` -> ``3-the-camera-ppcam``)."""
    anchors = set()
    for title in re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", text, flags=re.S), re.M):
        slug = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def relative_links(page: Path) -> list[str]:
    return [t for t in LINK.findall(_prose(page.read_text())) if not re.match(r"\w+:", t)]


def test_pages_have_examples_and_links():
    assert {p.name for p, _, _ in BLOCKS} >= {"README.md", "ppcam.md", "minirast.md", "flame.md"}
    assert relative_links(ROOT / "README.md")


def test_heading_anchors():
    assert heading_anchors("# A\n## 3. The camera (`ppcam`)\n```\n# not a heading\n```") == {
        "a",
        "3-the-camera-ppcam",
    }


def test_relative_link_finder():
    text = "see [x](a.md), ![p](img/p.png), [w](https://x.org), `[c](code.md)`"
    assert LINK.findall(_prose(text)) == ["a.md", "img/p.png", "https://x.org"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_exist(page):
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target} (no file {resolved.relative_to(ROOT)})")
        elif anchor and resolved.suffix == ".md":
            if anchor not in heading_anchors(resolved.read_text()):
                broken.append(f"{target} (no heading #{anchor})")
    assert not broken, f"{page.relative_to(ROOT)} has broken links: {broken}"


@pytest.mark.parametrize(
    "page,index,code", BLOCKS, ids=[f"{p.relative_to(ROOT)}-{i}" for p, i, _ in BLOCKS]
)
def test_python_example_runs(page, index, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples may write files (e.g. sphere.png)
    exec(compile(code, f"{page.relative_to(ROOT)} python block {index}", "exec"), {})
