"""A durable queue of jobs shared by every dashboard session and process, and the worker that runs them.

The package knows nothing of what a job does: a job is a JSON ``payload`` (and an ``owner``), run by
an *executor* handed to the worker (``executor(job, context) -> outputs``; MindGap's is
:class:`mindgap_core.inference.job_runner.InferenceExecutor`). Modules, one job each:

- ``queue``: the SQLite job table and the job outputs, :class:`~mindgap_core.jobs.queue.JobQueue`;
- ``lock``: the one-worker-per-folder file lock, :class:`~mindgap_core.jobs.lock.WorkerLock`;
- ``worker``: the worker loop with heartbeat, cancel and crash recovery,
  :func:`~mindgap_core.jobs.worker.run_worker`.

A jobs folder (default ``data/demo/jobs/``, or ``$MINDGAP_JOBS_DIR``) holds::

    jobs.sqlite (+ -wal, -shm)   the queue: tables ``jobs`` and ``job_outputs`` (SQLite, WAL mode)
    worker.lock                  exclusively flock-ed by the one worker that runs jobs
    outputs/<job id>/...         the files a job wrote (its executor decides what they are)

and whatever its executor adds (the inference executor: ``uploads/``, and a results store's
``shards/`` and ``runs/``).

Guarantees, and how they are kept:

* **Durable.** Every change is one committed SQLite transaction (``synchronous=FULL``), so jobs survive a
  page reload, a new browser session and a server restart: a new :class:`JobQueue` on the same folder
  sees the same jobs. Output files are written atomically and recorded (one row per job, item and kind)
  in the same transaction that marks the job done, so a done job always has its outputs and a half-run
  job none. A job whose executor has returned is done: a cancellation requested after its last
  progress step comes too late.
* **FIFO.** Ids come from ``INTEGER PRIMARY KEY AUTOINCREMENT``: strictly increasing in commit order and
  never reused. A worker always claims the smallest queued id; a re-queued job keeps its id, so it runs
  before jobs submitted after it.
* **One job at a time.** (1) A worker runs only while it holds an exclusive ``fcntl.flock`` on
  ``worker.lock`` (``LOCK_EX | LOCK_NB``; a flock belongs to an open file description, so two threads of
  one process exclude each other as two processes do, and the kernel drops it when its holder dies).
  (2) Claiming is a single ``UPDATE jobs SET state='running' ... WHERE id = (SELECT id ... WHERE
  state='queued' ORDER BY id LIMIT 1) RETURNING`` inside ``BEGIN IMMEDIATE``: two claimers can never get
  the same job, even without the lock.
* **Concurrent submitters lose nothing.** A submission is one ``INSERT`` transaction; writers queue up
  behind SQLite's lock (``busy_timeout``) instead of failing.
* **Cancel.** A queued job is cancelled at once (``UPDATE ... WHERE state='queued'``); a running one gets
  ``cancel_requested = 1``, which the worker's heartbeat reads and the job's progress callback turns
  into :class:`JobCancelled` at the next progress step; its output folder is then removed.
* **Crash recovery.** While a job runs, a heartbeat thread updates ``heartbeat`` every ``heartbeat_s``.
  A worker that gets the lock re-queues every ``running`` job (holding the lock proves their worker is
  gone), and before every claim re-queues running jobs whose heartbeat is older than ``stale_after_s``
  (a safety net where flock is not honoured, e.g. some network file systems). A job whose worker died
  :data:`MAX_ATTEMPTS` times is marked failed instead of retried forever.
"""

from mindgap_core.jobs.lock import WorkerLock, worker_busy
from mindgap_core.jobs.queue import (
    ACTIVE_STATES,
    MAX_ATTEMPTS,
    STATES,
    Job,
    JobOutput,
    JobQueue,
    jobs_dir,
)
from mindgap_core.jobs.worker import (
    Executor,
    JobCancelled,
    JobContext,
    JobLost,
    WorkerReport,
    run_one,
    run_worker,
)

__all__ = [
    "ACTIVE_STATES",
    "MAX_ATTEMPTS",
    "STATES",
    "Executor",
    "Job",
    "JobCancelled",
    "JobContext",
    "JobLost",
    "JobOutput",
    "JobQueue",
    "WorkerLock",
    "WorkerReport",
    "jobs_dir",
    "run_one",
    "run_worker",
    "worker_busy",
]
