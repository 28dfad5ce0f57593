"""Viewers do not stall jobs: the same job, run by a real server's worker thread, with nobody on the site
and then with three browser sessions open on the inference page (each polling the jobs panel while the
job runs), takes at most 1.5 x as long with viewers. Alone: the job's ``finished - started`` in the jobs
database; watched: its progress (sampling steps) per second from the moment all three viewers show it
running until it ends, scaled to the whole job. Both measured in the same test on the same server."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from mindgap_core.inference.job_runner import InferenceSpec, submit
from mindgap_core.jobs import JobQueue
from tests.e2e.conftest import streamlit_app
from tests.e2e.test_browser_maps import page_url

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "data" / "demo" / "manifest.parquet"
SR3 = REPO / "data" / "demo" / "models" / "sr3" / "synthetic"
pytestmark = pytest.mark.browser


def _wait_done(queue: JobQueue, job_id: int, timeout_s: float = 240.0) -> float:
    """Wait until the server's worker has done job ``job_id``; its duration in seconds."""
    deadline = time.monotonic() + timeout_s
    while (job := queue.get(job_id)).state not in ("done", "failed", "cancelled"):
        assert time.monotonic() < deadline, f"job {job_id} not done in {timeout_s} s ({job.message})"
        time.sleep(0.2)
    assert job.state == "done", job.error
    return job.finished - job.started


def test_three_viewers_do_not_slow_a_job_down(browser, tmp_path: Path) -> None:
    if not (SR3 / "model_index.json").is_file():
        pytest.skip("the demo SR3 checkpoint is not installed")
    folder = tmp_path / "jobs"
    queue = JobQueue(folder)
    spec = InferenceSpec(model=str(SR3), tiles=("r2c3",), manifest=str(MANIFEST), domain="synthetic",
                         steps=100, model_label="sr3/synthetic")
    warm = submit(queue, spec, owner="warm-up")  # queued before the start: the server's start runs it
    with streamlit_app(tmp_path / "server.log", MINDGAP_JOBS_DIR=str(folder), MINDGAP_WORKER="thread") as url:
        contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(3)]
        try:
            pages = [c.new_page() for c in contexts]
            inference = page_url(pages[0], url, "On-demand inference")  # the server's first session
            _wait_done(queue, warm)  # torch, the model and the metrics are loaded once
            alone = _wait_done(queue, submit(queue, spec, owner="someone"))
            job_id = submit(queue, spec, owner="someone")
            for pg in pages:  # three viewers arrive while it runs; their jobs panels poll
                pg.goto(inference)
            for pg in pages:
                pg.get_by_text(re.compile(rf"Job {job_id} \(running")).first.wait_for(timeout=60000)
            seen, since = queue.get(job_id), time.time()  # from now on, three viewers poll
            _wait_done(queue, job_id)
            for pg in pages:  # ... until it is done
                pg.get_by_text(re.compile(rf"Job {job_id} \(running")).first.wait_for(state="detached",
                                                                                     timeout=30000)
            job = queue.get(job_id)
            assert seen.state == "running" and seen.progress_done < job.progress_total / 2, seen
            # the job's time at the pace it kept while watched (sampling steps per second)
            watched = job.progress_total * (job.finished - since) / (job.progress_total - seen.progress_done)
        finally:
            for c in contexts:
                c.close()
    print(f"job alone {alone:.2f} s, with 3 viewers {watched:.2f} s, ratio {watched / alone:.2f}")
    assert watched <= 1.5 * alone, (alone, watched)
