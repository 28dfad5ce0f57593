"""Fixtures shared by all test folders (keep this small; generators live in tests/fixtures/)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `pytest` (not `python -m pytest`) with --import-mode=importlib
    sys.path.insert(0, str(REPO_ROOT))

from tests.fixtures import DEMO_SOURCE_DIR  # noqa: E402


@pytest.fixture(scope="session")
def demo_source_dir() -> Path:
    """``<repo>/data/demo/source``: the real sample imagery (read-only)."""
    return DEMO_SOURCE_DIR
