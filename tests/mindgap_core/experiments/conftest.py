"""Fixtures of the experiment tests."""

from pathlib import Path

import pytest

from tests.fixtures.experiments import write_experiment


@pytest.fixture()
def experiment_file(tmp_path: Path) -> Path:
    return write_experiment(tmp_path)
