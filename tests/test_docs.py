"""The README and docs/ hold together: links resolve, the README stays short and keeps its commands, and
every repository path a docstring cites exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
#: the README's set-up and test commands, exactly as a newcomer types them
COMMANDS = ("pip install -r requirements.txt", "streamlit run app.py", "python -m pytest")
MAX_README_LINES = 200
RESULTS_MARKERS = ("<!-- results:start -->", "<!-- results:end -->")
#: packages whose docstrings are checked
DOCSTRING_ROOTS = ("mindgap_core", "mindgap_ui", "pages")

LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
PATH_TOKEN = re.compile(r"[\w./<>*{}-]+\.(?:md|py)\b")


def relative_links(text: str) -> list[str]:
    """Targets of the markdown links in ``text`` that point into the repository (no URL, no bare anchor),
    without their ``#fragment``."""
    out = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        out.append(target.split("#", 1)[0])
    return out


def docstrings(path: Path) -> list[str]:
    """The module, class and function docstrings of a Python file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return [doc for node in ast.walk(tree) if isinstance(node, nodes)
            if (doc := ast.get_docstring(node, clean=False))]


def top_level_names() -> set[str]:
    return {p.name for p in REPO.iterdir() if not p.name.startswith(".")}


def cited_paths(text: str, top_level: set[str]) -> list[str]:
    """Repository paths cited in ``text``: tokens ending in .md or .py that contain a '/' and start with a
    top-level entry of the repository (``docs/science.md``, ``mindgap_core/scoring.py``). Placeholders
    (``pages/<name>.py``) and other projects' files (``opensr_test/main.py``) are not repository paths."""
    found = []
    for token in PATH_TOKEN.findall(text):
        token = token[2:] if token.startswith("./") else token
        if "/" not in token or any(c in token for c in "<>*{}"):
            continue
        if token.split("/", 1)[0] in top_level:
            found.append(token)
    return found


def bare_markdown_names(text: str) -> list[str]:
    """``name.md`` tokens without a folder (``science.md``)."""
    return [t for t in PATH_TOKEN.findall(text) if t.endswith(".md") and "/" not in t]


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_resolves_to_a_file(doc: Path) -> None:
    links = relative_links(doc.read_text(encoding="utf-8"))
    missing = [link for link in links if not (doc.parent / link).resolve().is_file()]
    assert not missing, f"{doc.name}: links to missing files {missing}"


def test_the_docs_are_linked_from_the_readme_and_the_index() -> None:
    def targets(doc: Path) -> set[Path]:
        return {(doc.parent / link).resolve() for link in relative_links(doc.read_text(encoding="utf-8"))}

    index = REPO / "docs" / "README.md"
    readme_links, index_links = targets(README), targets(index)
    assert index.resolve() in readme_links
    assert {d.resolve() for d in DOCS if d != index} <= index_links


def test_readme_is_short_and_keeps_its_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_README_LINES
    for command in COMMANDS:
        assert command in text, command
    start, end = (text.index(marker) for marker in RESULTS_MARKERS)
    assert start < end


def test_readme_names_no_retired_regime() -> None:
    """The regime trained on the cross-sensor domain is ``cross_sensor`` (real or simulated data)."""
    text = README.read_text(encoding="utf-8")
    assert "--regime real " not in text and "/real`" not in text


def _python_files() -> list[Path]:
    return [f for root in DOCSTRING_ROOTS for f in sorted((REPO / root).rglob("*.py"))]


def test_docstrings_cite_only_paths_that_exist() -> None:
    top_level = top_level_names()
    missing = []
    for path in _python_files():
        for doc in docstrings(path):
            missing += [f"{path.relative_to(REPO)}: {p}" for p in cited_paths(doc, top_level)
                        if not (REPO / p).exists()]
    assert not missing, missing


def test_docstrings_name_no_markdown_file_that_is_nowhere() -> None:
    """A note cited without its folder (``science.md``) must at least exist in the repository."""
    names = {p.name for p in REPO.rglob("*.md") if ".git" not in p.parts}
    missing = []
    for path in _python_files():
        for doc in docstrings(path):
            missing += [f"{path.relative_to(REPO)}: {n}" for n in bare_markdown_names(doc) if n not in names]
    assert not missing, missing


def test_the_checks_above_see_what_they_check(tmp_path: Path) -> None:
    """The extractors find links and cited paths (so the tests above cannot pass by finding nothing)."""
    top_level = top_level_names()
    doc = 'See docs/nowhere.md ("x"), ``mindgap_core/scoring.py``, pages/<name>.py and opensr_test/main.py.'
    assert cited_paths(doc, top_level) == ["docs/nowhere.md", "mindgap_core/scoring.py"]
    assert bare_markdown_names("as science.md says; docs/metrics.md") == ["science.md"]
    text = "[a](docs/x.md#s) [b](https://e.org/y.md) [c](#top) [d](../README.md)"
    assert relative_links(text) == ["docs/x.md", "../README.md"]
    py = tmp_path / "m.py"
    py.write_text('"""Module, cites docs/a.md."""\n\ndef f():\n    """Function."""\n')
    assert docstrings(py) == ["Module, cites docs/a.md.", "Function."]
    assert sum(len(relative_links(d.read_text(encoding="utf-8"))) for d in DOCS) > 10
