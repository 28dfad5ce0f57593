"""A server killed mid-job, restarted with nobody visiting: the new server's start (app.py's lifespan,
mindgap_ui/server.py) re-queues the orphaned job and runs it again as attempt 2. No browser: the test
reads the jobs database only."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mindgap_core.inference.job_runner import InferenceSpec, submit
from mindgap_core.jobs import JobQueue
from tests.fixtures.streamlit_server import serve_app

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "data" / "demo" / "manifest.parquet"
SR3 = REPO / "data" / "demo" / "models" / "sr3" / "synthetic"
pytestmark = pytest.mark.browser


def _wait(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout_s} s: {what}")


def test_killed_server_job_is_requeued_at_restart_without_visitors(tmp_path: Path) -> None:
    if not (SR3 / "model_index.json").is_file():
        pytest.skip("the demo SR3 checkpoint is not installed")
    folder = tmp_path / "jobs"
    queue = JobQueue(folder)
    # long enough to be killed mid-run: SR3, 4 samples of 200 steps on one tile
    job_id = submit(queue, InferenceSpec(model=str(SR3), tiles=("r1c1",), manifest=str(MANIFEST),
                                         domain="synthetic", samples=4, steps=200), owner="someone")
    env = {"MINDGAP_JOBS_DIR": str(folder), "MINDGAP_WORKER": "thread"}
    with serve_app(tmp_path / "first.log", **env) as (_, proc):
        # nobody visits: the server's start alone runs the queued job
        _wait(lambda: (j := queue.get(job_id)).state == "running" and j.progress_done > 0, 90,
              "the first server starts the queued job")
        proc.kill()  # kill -9 mid-job
        proc.wait(timeout=30)
    job = queue.get(job_id)
    assert job.state == "running" and job.attempts == 1  # orphaned: its worker is gone
    with serve_app(tmp_path / "second.log", **env):
        started = time.monotonic()
        job = _wait(lambda: (j := queue.get(job_id)).attempts == 2 and j, 60,
                    "the restarted server re-queues the job and runs it again")
        assert time.monotonic() - started < 60
        assert job.state in ("running", "done") and job.worker and job.error == ""
        queue.cancel(job_id)  # do not make the test wait for the whole job
        _wait(lambda: queue.get(job_id).state == "cancelled", 60, "the re-run job stops when cancelled")
