"""README's findings and docs/results.md are what scripts/demo_results.py computes from the shipped
results store today: a rebuilt store, or a hand edit of a number, makes this fail."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location("demo_results", REPO / "scripts" / "demo_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_and_results_doc_are_current(generator, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(REPO)
    code = generator.main_(["--check"])
    assert code == 0, capsys.readouterr().out


def test_a_changed_number_is_caught(generator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(REPO)
    readme = tmp_path / "README.md"
    section = generator.readme_section()
    text = generator.with_section(f"# x\n{generator.START}\n{generator.END}\n", section)
    assert section in text and "SIMULATED" in section
    readme.write_text(text.replace("dB PSNR", "dB of PSNR", 1))
    monkeypatch.setattr(generator, "README", readme)
    monkeypatch.setattr(generator, "RESULTS_DOC", REPO / "docs" / "results" / "demo.md")
    assert generator.with_section(readme.read_text(), section) != readme.read_text()
