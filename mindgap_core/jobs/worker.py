"""The worker: take a jobs folder's lock, then run its queued jobs one at a time with an executor.

An *executor* is ``executor(job, context) -> list[JobOutput]``: it reads ``job.payload``, writes its
files under ``context.out_dir``, reports progress through ``context.progress(done, total)`` (which
raises :class:`JobCancelled` / :class:`JobLost` when the job must stop) and returns its outputs. The
heartbeat, cancel and crash-recovery guarantees are listed in ``mindgap_core/jobs/__init__.py``.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mindgap_core.errors import MindGapError
from mindgap_core.jobs.lock import WorkerLock
from mindgap_core.jobs.queue import Job, JobOutput, JobQueue

HEARTBEAT_S = 1.0
STALE_AFTER_S = 15.0


class JobCancelled(Exception):
    """Raised inside a running job when its cancellation was requested."""


class JobLost(Exception):
    """Raised inside a running job that no longer belongs to this worker (it was re-queued)."""


class JobContext:
    """What an executor gets besides the job: progress reporting (which raises :class:`JobCancelled`
    once cancellation is requested), the output folder and the queue (for paths)."""

    def __init__(self, queue: JobQueue, job: Job) -> None:
        self.queue = queue
        self.job = job
        self.out_dir = queue.output_dir(job.id)
        self.done = 0
        self.total = 0
        self.message = "running"
        self.cancelled = threading.Event()
        self.lost = threading.Event()

    def check(self) -> None:
        """Raise :class:`JobCancelled` / :class:`JobLost` when the job must stop."""
        if self.lost.is_set():
            raise JobLost(f"job {self.job.id} was taken from this worker")
        if self.cancelled.is_set():
            raise JobCancelled(f"job {self.job.id} cancelled")

    def progress(self, done: int, total: int, message: str | None = None) -> None:
        """An ``on_progress(done, total)`` callback (plus an optional message)."""
        self.done, self.total = int(done), int(total)
        if message is not None:
            self.message = message
        self.check()


Executor = Callable[[Job, JobContext], Sequence[JobOutput]]


@dataclass(frozen=True)
class WorkerReport:
    """What one :func:`run_worker` call did."""

    worker: str
    acquired: bool
    ran: tuple[int, ...] = ()
    requeued: tuple[int, ...] = ()


def new_worker_id() -> str:
    """A unique worker name: host, process, thread and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"


def _heartbeat_loop(
    queue: JobQueue, ctx: JobContext, worker: str, every_s: float, done: threading.Event
) -> None:
    while not done.wait(every_s):
        try:
            status = queue.heartbeat(ctx.job.id, worker, ctx.done, ctx.total, ctx.message)
        except sqlite3.Error:  # a busy database must not kill the heartbeat; try again next beat
            continue
        if status == "cancel":
            ctx.cancelled.set()
        elif status == "lost":
            ctx.lost.set()
            return


def run_one(
    queue: JobQueue, job: Job, executor: Executor, worker: str, *, heartbeat_s: float = HEARTBEAT_S
) -> str:
    """Run a claimed job to its end state; returns it (``done``/``failed``/``cancelled``/``lost``)."""
    ctx = JobContext(queue, job)
    if job.cancel_requested:
        ctx.cancelled.set()
    stop_beat = threading.Event()
    beat = threading.Thread(
        target=_heartbeat_loop,
        args=(queue, ctx, worker, heartbeat_s, stop_beat),
        name=f"mindgap-heartbeat-{job.id}",
        daemon=True,
    )
    beat.start()
    try:
        ctx.check()
        outputs = list(executor(job, ctx))
        # the executor returned: its work is complete and kept (a cancellation now comes too late)
        # record the final progress: a job shorter than one heartbeat interval has none recorded yet
        queue.heartbeat(job.id, worker, ctx.done, ctx.total, ctx.message)
        finished = queue.finish(
            job.id, worker, outputs, message=ctx.message if ctx.message != "running" else "done"
        )
        return "done" if finished else "lost"
    except JobLost:
        return "lost"
    except JobCancelled:
        shutil.rmtree(queue.output_dir(job.id), ignore_errors=True)
        queue.mark_cancelled(job.id, worker)
        return "cancelled"
    except MindGapError as exc:
        queue.fail(job.id, worker, str(exc))
        return "failed"
    except Exception as exc:  # a bug or an unexpected library error: keep the worker alive, record it
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        queue.fail(job.id, worker, f"unexpected error: {last}")
        return "failed"
    finally:
        stop_beat.set()
        beat.join()


def run_worker(
    queue: JobQueue,
    executor: Executor,
    *,
    stop: threading.Event | None = None,
    lock_timeout_s: float | None = 0.0,
    idle_exit_s: float | None = 0.0,
    poll_s: float = 0.5,
    heartbeat_s: float = HEARTBEAT_S,
    stale_after_s: float = STALE_AFTER_S,
    worker: str | None = None,
    on_job: Callable[[int, str], None] | None = None,
) -> WorkerReport:
    """Be the queue's worker: take the worker lock, then run queued jobs one at a time, oldest first,
    each with ``executor``.

    ``lock_timeout_s``: how long to wait for the lock (None: until ``stop``); without it, returns at once
    with ``acquired=False``. ``idle_exit_s``: return after this long without a queued job (0: as soon as
    the queue is empty; None: only when ``stop`` is set). ``on_job(id, state)`` is called after each job.
    """
    worker = worker or new_worker_id()
    lock = WorkerLock(queue.lock_path)
    if not lock.acquire(lock_timeout_s, holder=worker, stop=stop):
        return WorkerReport(worker, acquired=False)
    ran: list[int] = []
    try:
        # We hold the lock, so no other worker is alive: every running job is an orphan.
        requeued = queue.requeue_stale(None, except_worker=worker)
        idle_since = time.monotonic()
        while stop is None or not stop.is_set():
            requeued += queue.requeue_stale(stale_after_s, except_worker=worker)
            job = queue.claim(worker) if queue.has_queued() else None  # idle polls only read
            if job is None:
                if idle_exit_s is not None and time.monotonic() - idle_since >= idle_exit_s:
                    break
                if stop is not None:
                    stop.wait(poll_s)
                else:
                    time.sleep(poll_s)
                continue
            state = run_one(queue, job, executor, worker, heartbeat_s=heartbeat_s)
            ran.append(job.id)
            if on_job is not None:
                on_job(job.id, state)
            idle_since = time.monotonic()
    finally:
        lock.release()
    return WorkerReport(worker, acquired=True, ran=tuple(ran), requeued=tuple(requeued))
