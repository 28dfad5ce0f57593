"""Fixtures of the training tests: a tiny manifest (see tiny_manifest.py), written once per session;
torch on one thread (tiny networks run fastest so, and far faster than two on a shared CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.torch_threads import one_torch_thread  # noqa: F401  (autouse)
from tests.mindgap_core.train.tiny_manifest import write_tiny_manifest


@pytest.fixture(scope="session")
def tiny_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_manifest(tmp_path_factory.mktemp("tiny_pairs"))


@pytest.fixture(scope="session")
def three_band_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_manifest(tmp_path_factory.mktemp("three_band_pairs"), bands=3)
