"""Fixtures of the training tests: a tiny manifest (see tiny_manifest.py), written once per session;
torch on one thread (tiny networks run fastest so, and far faster than two on a shared CPU)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.mindgap_core.train.tiny_manifest import write_tiny_manifest


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_manifest(tmp_path_factory.mktemp("tiny_pairs"))


@pytest.fixture(scope="session")
def three_band_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_manifest(tmp_path_factory.mktemp("three_band_pairs"), bands=3)
