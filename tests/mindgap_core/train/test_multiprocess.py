"""The same command under ``accelerate launch`` with two CPU processes (gloo): ranks see each other."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mindgap_core.models import load_model


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("accelerate") is None, reason="accelerate launcher not on PATH")
def test_two_processes_train_one_model(tiny_manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [
        "accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "mindgap_core", "train",
        "--method", "srdiff", "--regime", "mixed", "--data", str(tiny_manifest), "--out", str(out),
        "--steps", "3", "--config", "tiny", "--batch-size", "2", "--threads", "1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    info = json.loads((out / "training.json").read_text())
    assert info["num_processes"] == 2 and info["steps"] == 3
    assert done.stdout.count("srdiff/mixed 3 steps") == 1  # only rank 0 reports
    assert load_model(out).method == "srdiff"
