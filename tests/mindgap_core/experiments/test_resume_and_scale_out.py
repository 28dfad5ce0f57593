"""Crash safety (SIGKILL at several points, then exact resume) and two-process scale-out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from mindgap_core.experiments.runner import plan_units, run_experiment
from mindgap_core.experiments.spec import load_experiment
from mindgap_core.store.results import ResultsStore

REPO = Path(__file__).resolve().parents[3]
COMPARED = ["run_id", "model", "method", "regime", "test_domain", "tile_id", "split", "band", "metric",
            "value", "options", "sr_path", "uncertainty_path", "map_path"]


def _rows(store_root: Path) -> pd.DataFrame:
    rows = ResultsStore(store_root).rows()[COMPARED]
    return rows.sort_values(COMPARED).reset_index(drop=True)


def _evaluate_cmd(experiment: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "mindgap_core", "evaluate", "--experiment", str(experiment), "--out",
            str(out)]


def _shards(out: Path) -> int:
    folder = out / "shards"
    return len(list(folder.glob("*.parquet"))) if folder.is_dir() else 0


def test_sigkill_at_several_points_then_exact_resume(experiment_file: Path, tmp_path: Path) -> None:
    experiment = load_experiment(experiment_file)
    n_units = len(plan_units(experiment))
    reference = tmp_path / "reference"
    run_experiment(experiment, reference, device="cpu")
    expected = _rows(reference)
    assert len(expected) > 0 and _shards(reference) == n_units

    out = tmp_path / "killed"
    # kill after the 1st shard, in the middle of a later unit, and after more than half of the work
    kill_points = [(1, 0.0), (3, 0.25), (n_units // 2 + 2, 0.05)]
    for min_shards, extra_delay in kill_points:
        proc = subprocess.Popen(_evaluate_cmd(experiment_file, out), cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 180
        while _shards(out) < min_shards and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(extra_delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
        assert _shards(out) < n_units
        # whatever is visible is whole: every shard and COG reads
        visible = ResultsStore(out, temp_grace_s=1e9).rows()
        assert visible.duplicated(subset=COMPARED).sum() == 0

    done = subprocess.run(_evaluate_cmd(experiment_file, out), cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _shards(out) == n_units
    pd.testing.assert_frame_equal(_rows(out), expected)
    assert not [p for p in out.rglob(".*") if p.is_file()], "temporary files left behind"


def test_rerun_of_a_finished_run_does_nothing(experiment_file: Path, tmp_path: Path) -> None:
    experiment = load_experiment(experiment_file)
    first = run_experiment(experiment, tmp_path / "r", device="cpu")
    second = run_experiment(experiment, tmp_path / "r", device="cpu")
    assert first.units_run == first.units_total and second.units_run == 0


@pytest.mark.slow
def test_two_process_accelerate_launch_equals_single_process(experiment_file: Path, tmp_path: Path) -> None:
    single = tmp_path / "single"
    run_experiment(load_experiment(experiment_file), single, device="cpu")
    multi = tmp_path / "multi"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "mindgap_core",
           "evaluate", "--experiment", str(experiment_file), "--out", str(multi), "--device", "cpu"]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 0 of 2" in proc.stdout and "rank 1 of 2" in proc.stdout
    pd.testing.assert_frame_equal(_rows(multi), _rows(single))
