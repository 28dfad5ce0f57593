"""The worker lock: one holder at a time; a worker that cannot take it runs nothing."""

from __future__ import annotations

from pathlib import Path

from mindgap_core.jobs import JobQueue, WorkerLock, run_worker, worker_busy
from tests.mindgap_core.jobs.fakes import Recorder, payload


def test_worker_lock_excludes_a_second_holder(tmp_path: Path) -> None:
    first, second = WorkerLock(tmp_path / "worker.lock"), WorkerLock(tmp_path / "worker.lock")
    assert first.try_acquire("a")
    assert worker_busy(tmp_path)
    assert not second.try_acquire("b")
    assert not second.acquire(0.2, poll_s=0.05)
    first.release()
    assert not worker_busy(tmp_path)
    assert second.acquire(0.2)
    second.release()
    # a worker that finds the lock taken returns at once without running anything
    queue = JobQueue(tmp_path)
    queue.submit(payload())
    with WorkerLock(queue.lock_path) as held:
        assert held.try_acquire()
        report = run_worker(queue, Recorder(), lock_timeout_s=0)
    assert not report.acquired and queue.jobs()[0].state == "queued"


def test_no_folder_means_no_worker(tmp_path: Path) -> None:
    assert not worker_busy(tmp_path / "missing")
