"""Killing a writer at any moment (SIGKILL) and rerunning it resumes: no row lost, none duplicated.

The harness (``run_killed``) is meant to be reused for the ``evaluate`` command: start the command,
SIGKILL it at chosen moments, check that readers never see a partial file, rerun it to completion and
compare the rows with an uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from mindgap_core.store import ResultsStore, views

WRITER = Path(__file__).with_name("crash_writer.py")
N_SHARDS = 12

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")


def start(root: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, str(WRITER), str(root), "--shards", str(N_SHARDS), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_killed(
    root: Path,
    ready: Callable[[subprocess.Popen], bool],
    *extra: str,
    delay: float = 0.0,
    timeout: float = 60,
) -> None:
    """Start the writer, wait until ``ready(proc)``, wait ``delay`` more, then SIGKILL it."""
    proc = start(root, *extra)
    deadline = time.monotonic() + timeout
    try:
        while not ready(proc):
            if proc.poll() is not None:
                raise AssertionError(f"writer ended before the kill point: {proc.communicate()}")
            if time.monotonic() > deadline:
                raise AssertionError("writer never reached the kill point")
            time.sleep(0.002)
        time.sleep(delay)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def run_to_end(root: Path) -> None:
    proc = start(root)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.strip().endswith("DONE")


def n_shards(root: Path) -> int:
    folder = root / "shards"
    return len(list(folder.glob("*.parquet"))) if folder.is_dir() else 0


def hidden_files(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*") if p.is_file()]


def rows_without_time(root: Path) -> pd.DataFrame:
    frame = ResultsStore(root).rows().drop(columns=["created_at"])
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def check_readable(root: Path) -> int:
    """Readers see only whole shards: the views load, and every visible shard has all its rows."""
    store = ResultsStore(root)
    con = store.connect()
    total = con.execute("SELECT count(*) FROM results").fetchone()[0]
    assert total == 3000 * n_shards(root)
    assert views.duplicate_rows(con).empty
    con.close()
    return total


def test_sigkill_at_several_points_then_resume_equals_uninterrupted_run(tmp_path):
    reference = tmp_path / "reference"
    run_to_end(reference)
    assert n_shards(reference) == N_SHARDS and not hidden_files(reference)

    root = tmp_path / "RESULTS"
    seen = [0]
    # 1. killed as soon as the run record exists: before or while the first files are written
    run_killed(root, lambda proc: (root / "runs" / "crash.json").is_file())
    seen.append(check_readable(root))
    # 2-4. killed at moments after k shards: mid-compute or mid-write
    for k, delay in ((2, 0.0), (5, 0.013), (8, 0.027)):
        run_killed(root, lambda proc, k=k: n_shards(root) >= k, delay=delay)
        seen.append(check_readable(root))
    # 5. killed exactly between a complete temporary file and its rename
    stall = N_SHARDS - 2
    run_killed(root, lambda proc: proc.stdout.readline().startswith("STALLED"), "--stall-at", str(stall))
    assert n_shards(root) == stall and hidden_files(root), "the stalled temp file should be left behind"
    seen.append(check_readable(root))
    assert seen == sorted(seen), "shards only ever get added"
    assert ResultsStore(root).run("crash").finished_at is None

    run_to_end(root)  # resume
    assert n_shards(root) == N_SHARDS
    pd.testing.assert_frame_equal(rows_without_time(root), rows_without_time(reference))
    con = ResultsStore(root).connect()
    assert views.duplicate_rows(con).empty
    cond = views.conditions(con)
    assert len(cond) == (3000 // 6) * N_SHARDS and not cond.duplicated(["tile_id", "test_domain"]).any()
    assert ResultsStore(root).run("crash").finished_at is not None
    # the killed writers' temporary files are never read, and go once stale (or on demand)
    ResultsStore(root).clean_temp(older_than_s=0)
    assert not hidden_files(root)
    assert ResultsStore(root).completed_keys() == ResultsStore(reference).completed_keys()
