"""A durable queue of on-demand inference jobs, shared by every dashboard session and process.

A jobs folder (default ``data/demo/jobs/``, or ``$MINDGAP_JOBS_DIR``) holds::

    jobs.sqlite (+ -wal, -shm)   the queue: tables ``jobs`` and ``job_outputs`` (SQLite, WAL mode)
    worker.lock                  exclusively flock-ed by the one worker that runs jobs
    uploads/<sha256>.tif         validated uploaded inputs
    outputs/<job id>/...         SR, uncertainty and metric-map COGs of each job

Guarantees, and how they are kept:

* **Durable.** Every change is one committed SQLite transaction (``synchronous=FULL``), so jobs survive a
  page reload, a new browser session and a server restart: a new :class:`JobQueue` on the same folder
  sees the same jobs. Output files are written atomically and recorded in the same transaction that
  marks the job done, so a done job always has its outputs and a half-run job none.
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
  into :class:`JobCancelled` at the next progress step.
* **Crash recovery.** While a job runs, a heartbeat thread updates ``heartbeat`` every ``heartbeat_s``.
  A worker that gets the lock re-queues every ``running`` job (holding the lock proves their worker is
  gone), and before every claim re-queues running jobs whose heartbeat is older than ``stale_after_s``
  (a safety net where flock is not honoured, e.g. some network file systems). A job whose worker died
  :data:`MAX_ATTEMPTS` times is marked failed instead of retried forever.

The work itself is done by an *executor* (``executor(job, context) -> list[JobOutput]``); the real one,
super-resolution + scoring, is :class:`mindgap_core.inference.job_runner.InferenceExecutor`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import socket
import sqlite3
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mindgap_core.errors import ConfigError, InputError, MindGapError

#: environment variable naming the jobs folder
JOBS_DIR_ENV = "MINDGAP_JOBS_DIR"
DB_NAME = "jobs.sqlite"
LOCK_NAME = "worker.lock"
SCHEMA_VERSION = 1
STATES: tuple[str, ...] = ("queued", "running", "done", "failed", "cancelled")
ACTIVE_STATES: tuple[str, ...] = ("queued", "running")
#: a job whose worker died this many times is failed, not re-queued again
MAX_ATTEMPTS = 3
HEARTBEAT_S = 1.0
STALE_AFTER_S = 15.0
BUSY_TIMEOUT_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    created          REAL    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    model            TEXT    NOT NULL,
    model_label      TEXT    NOT NULL DEFAULT '',
    input_kind       TEXT    NOT NULL CHECK (input_kind IN ('tiles', 'upload')),
    manifest         TEXT    NOT NULL DEFAULT '',
    domain           TEXT    NOT NULL DEFAULT '',
    tiles            TEXT    NOT NULL DEFAULT '[]',
    upload           TEXT    NOT NULL DEFAULT '',
    upload_name      TEXT    NOT NULL DEFAULT '',
    samples          INTEGER NOT NULL,
    steps            INTEGER,
    seed             INTEGER NOT NULL DEFAULT 0,
    scale            INTEGER NOT NULL DEFAULT 2,
    submitted_by     TEXT    NOT NULL DEFAULT '',
    progress_done    INTEGER NOT NULL DEFAULT 0,
    progress_total   INTEGER NOT NULL DEFAULT 0,
    message          TEXT    NOT NULL DEFAULT '',
    error            TEXT    NOT NULL DEFAULT '',
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    worker           TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    started          REAL,
    heartbeat        REAL,
    finished         REAL
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, id);
CREATE TABLE IF NOT EXISTS job_outputs (
    job_id           INTEGER NOT NULL REFERENCES jobs (id),
    item             TEXT    NOT NULL,
    domain           TEXT    NOT NULL DEFAULT '',
    sr_path          TEXT    NOT NULL,
    uncertainty_path TEXT    NOT NULL DEFAULT '',
    error_path       TEXT    NOT NULL DEFAULT '',
    lpips_sat_path   TEXT    NOT NULL DEFAULT '',
    scores           TEXT    NOT NULL DEFAULT '{}',
    PRIMARY KEY (job_id, item)
);
"""


def jobs_dir(env: Mapping[str, str] | None = None) -> Path:
    """The jobs folder: ``$MINDGAP_JOBS_DIR`` when set, else ``data/demo/jobs`` in the repository."""
    from mindgap_core.paths import DEMO_ROOT

    env = os.environ if env is None else env
    value = env.get(JOBS_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else DEMO_ROOT / "jobs"


@dataclass(frozen=True)
class JobSpec:
    """What to run. Either ``tiles`` of ``manifest`` (their LR in ``domain``) or an ``upload`` (a file).

    ``model``: ``"bicubic"`` (needs no weights) or a saved model folder. ``steps`` None: the model's
    default. ``scale`` is used by weightless models only (a saved model has its own).
    """

    model: str
    tiles: tuple[str, ...] = ()
    manifest: str = ""
    domain: str = ""
    upload: str = ""
    upload_name: str = ""
    samples: int = 1
    steps: int | None = None
    seed: int = 0
    scale: int = 2
    model_label: str = ""
    submitted_by: str = ""

    @property
    def input_kind(self) -> str:
        return "upload" if self.upload else "tiles"

    def validate(self) -> None:
        """:class:`ConfigError` when the spec cannot be run."""
        if not self.model:
            raise ConfigError("a job needs a model")
        if bool(self.upload) == bool(self.tiles):
            raise ConfigError("a job takes either tiles or one uploaded file")
        if self.tiles and not (self.manifest and self.domain):
            raise ConfigError("tile jobs need the manifest and the LR domain of the tiles")
        if len(set(self.tiles)) != len(self.tiles):
            raise ConfigError(f"tiles repeat: {list(self.tiles)}")
        if self.samples < 1:
            raise ConfigError(f"samples must be >= 1, got {self.samples}")
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")
        if self.scale < 1:
            raise ConfigError(f"scale must be >= 1, got {self.scale}")


@dataclass(frozen=True)
class Job:
    """A job as stored (times are Unix seconds)."""

    id: int
    created: float
    state: str
    spec: JobSpec
    progress_done: int
    progress_total: int
    message: str
    error: str
    cancel_requested: bool
    worker: str | None
    attempts: int
    started: float | None
    heartbeat: float | None
    finished: float | None

    @property
    def fraction(self) -> float:
        """Progress in [0, 1]."""
        if self.state == "done":
            return 1.0
        return min(1.0, self.progress_done / self.progress_total) if self.progress_total > 0 else 0.0

    @property
    def input_label(self) -> str:
        """A short text of the input (tiles and domain, or the upload's name)."""
        if self.spec.upload:
            return f"upload {self.spec.upload_name or Path(self.spec.upload).name}"
        return f"{', '.join(self.spec.tiles)} ({self.spec.domain})"


@dataclass(frozen=True)
class JobOutput:
    """One result of a job: an input item (tile id or upload name) and its files (relative to the jobs
    folder; empty = not produced) and scores against HR (empty when there is no HR)."""

    job_id: int
    item: str
    sr_path: str
    domain: str = ""
    uncertainty_path: str = ""
    error_path: str = ""
    lpips_sat_path: str = ""
    scores: dict[str, float] = field(default_factory=dict)


class JobCancelled(Exception):
    """Raised inside a running job when its cancellation was requested."""


class JobLost(Exception):
    """Raised inside a running job that no longer belongs to this worker (it was re-queued)."""


def _job_from_row(row: sqlite3.Row) -> Job:
    spec = JobSpec(
        model=row["model"],
        tiles=tuple(json.loads(row["tiles"])),
        manifest=row["manifest"],
        domain=row["domain"],
        upload=row["upload"],
        upload_name=row["upload_name"],
        samples=int(row["samples"]),
        steps=None if row["steps"] is None else int(row["steps"]),
        seed=int(row["seed"]),
        scale=int(row["scale"]),
        model_label=row["model_label"],
        submitted_by=row["submitted_by"],
    )
    return Job(
        id=int(row["id"]),
        created=float(row["created"]),
        state=row["state"],
        spec=spec,
        progress_done=int(row["progress_done"]),
        progress_total=int(row["progress_total"]),
        message=row["message"],
        error=row["error"],
        cancel_requested=bool(row["cancel_requested"]),
        worker=row["worker"],
        attempts=int(row["attempts"]),
        started=row["started"],
        heartbeat=row["heartbeat"],
        finished=row["finished"],
    )


def _output_from_row(row: sqlite3.Row) -> JobOutput:
    return JobOutput(
        job_id=int(row["job_id"]),
        item=row["item"],
        domain=row["domain"],
        sr_path=row["sr_path"],
        uncertainty_path=row["uncertainty_path"],
        error_path=row["error_path"],
        lpips_sat_path=row["lpips_sat_path"],
        scores={k: float(v) for k, v in json.loads(row["scores"]).items()},
    )


class JobQueue:
    """The job table of one jobs folder (created on first use). Safe to use from many threads and
    processes at once: every method opens its own short-lived SQLite connection."""

    def __init__(self, folder: str | Path, *, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.folder = Path(folder)
        self.busy_timeout_s = float(busy_timeout_s)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(self.folder, f"cannot create the jobs folder ({exc.strerror or exc})") from None
        if not self.folder.is_dir():
            raise InputError(self.folder, "the jobs folder is not a folder")
        self._init_db()

    # --- layout ---------------------------------------------------------------------------------
    @property
    def db_path(self) -> Path:
        return self.folder / DB_NAME

    @property
    def lock_path(self) -> Path:
        return self.folder / LOCK_NAME

    @property
    def uploads_dir(self) -> Path:
        return self.folder / "uploads"

    def output_dir(self, job_id: int) -> Path:
        """Where job ``job_id`` writes its files."""
        return self.folder / "outputs" / str(int(job_id))

    def resolve(self, relpath: str) -> Path:
        """Absolute path of a path stored in ``job_outputs`` (relative to the folder); refuses escapes."""
        if not relpath:
            raise InputError(self.folder, "empty path: this output has no such file")
        path = (self.folder / relpath).resolve()
        if not path.is_relative_to(self.folder.resolve()):
            raise InputError(relpath, f"path leaves the jobs folder {self.folder}")
        return path

    def relative(self, path: str | Path) -> str:
        """``path`` relative to the jobs folder (as stored)."""
        return Path(path).resolve().relative_to(self.folder.resolve()).as_posix()

    def __repr__(self) -> str:
        return f"JobQueue({str(self.folder)!r})"

    # --- connections ----------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(
            self.db_path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        con.row_factory = sqlite3.Row
        con.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
        con.execute("PRAGMA synchronous = FULL")
        con.execute("PRAGMA foreign_keys = ON")
        return con

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        con = self._connect()
        try:
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (``BEGIN IMMEDIATE``): writers are serialised."""
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finally:
            con.close()

    def _init_db(self) -> None:
        for attempt in range(50):  # several processes may create the database at the same moment
            try:
                with self._read() as con:
                    if con.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                        con.execute("PRAGMA journal_mode = WAL")
                with self._write() as con:
                    version = con.execute("PRAGMA user_version").fetchone()[0]
                    if version > SCHEMA_VERSION:
                        raise InputError(
                            self.db_path,
                            f"job database version {version} is newer than this MindGap's ({SCHEMA_VERSION})",
                        )
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            con.execute(statement)
                    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 49:
                    raise InputError(self.db_path, f"cannot open the job database ({exc})") from None
                time.sleep(0.05)
            except sqlite3.DatabaseError as exc:
                raise InputError(self.db_path, f"not a MindGap job database ({exc})") from None

    # --- submitting and reading -----------------------------------------------------------------
    def submit(self, spec: JobSpec) -> int:
        """Queue a job; returns its id (ids increase in submission order)."""
        spec.validate()
        with self._write() as con:
            cur = con.execute(
                "INSERT INTO jobs (created, state, model, model_label, input_kind, manifest, domain, tiles, "
                "upload, upload_name, samples, steps, seed, scale, submitted_by, message) "
                "VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued')",
                (
                    time.time(),
                    spec.model,
                    spec.model_label,
                    spec.input_kind,
                    spec.manifest,
                    spec.domain,
                    json.dumps(list(spec.tiles)),
                    spec.upload,
                    spec.upload_name,
                    spec.samples,
                    spec.steps,
                    spec.seed,
                    spec.scale,
                    spec.submitted_by,
                ),
            )
            return int(cur.lastrowid)

    def get(self, job_id: int) -> Job | None:
        """The job ``job_id``, or None."""
        with self._read() as con:
            row = con.execute("SELECT * FROM jobs WHERE id = ?", (int(job_id),)).fetchone()
        return None if row is None else _job_from_row(row)

    def jobs(
        self, states: Sequence[str] | None = None, *, limit: int | None = None, newest_first: bool = False
    ) -> list[Job]:
        """Jobs in id order (oldest first unless ``newest_first``), optionally of some states only."""
        sql, params = "SELECT * FROM jobs", []
        if states:
            unknown = [s for s in states if s not in STATES]
            if unknown:
                raise ConfigError(f"unknown job state(s) {unknown}; known: {list(STATES)}")
            sql += f" WHERE state IN ({', '.join('?' * len(states))})"
            params += list(states)
        sql += " ORDER BY id DESC" if newest_first else " ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._read() as con:
            return [_job_from_row(r) for r in con.execute(sql, params).fetchall()]

    def outputs(self, job_id: int | None = None, *, item: str | None = None) -> list[JobOutput]:
        """Outputs of done jobs (of one job, and/or of one item), by job id then item."""
        sql = "SELECT o.* FROM job_outputs o JOIN jobs j ON j.id = o.job_id WHERE j.state = 'done'"
        params: list[object] = []
        if job_id is not None:
            sql += " AND o.job_id = ?"
            params.append(int(job_id))
        if item is not None:
            sql += " AND o.item = ?"
            params.append(item)
        with self._read() as con:
            return [_output_from_row(r) for r in con.execute(sql + " ORDER BY o.job_id, o.item", params)]

    def fingerprint(self) -> str:
        """A short text that changes whenever a job changes state or progresses (a cache key)."""
        with self._read() as con:
            row = con.execute(
                "SELECT count(*), coalesce(max(id), 0), coalesce(sum(progress_done), 0), "
                "coalesce(sum(length(state) * id), 0), coalesce(max(finished), 0) FROM jobs"
            ).fetchone()
        return "-".join(str(v) for v in tuple(row))

    # --- cancelling -----------------------------------------------------------------------------
    def cancel(self, job_id: int) -> str | None:
        """Cancel a job: a queued one at once, a running one at its next progress step.

        Returns the job's state afterwards (``"cancelled"``, or ``"running"`` with the request recorded,
        or the final state it already had); None when there is no such job.
        """
        now = time.time()
        with self._write() as con:
            row = con.execute("SELECT state FROM jobs WHERE id = ?", (int(job_id),)).fetchone()
            if row is None:
                return None
            state = row["state"]
            if state == "queued":
                con.execute(
                    "UPDATE jobs SET state = 'cancelled', finished = ?, message = 'cancelled before it "
                    "started' WHERE id = ? AND state = 'queued'",
                    (now, int(job_id)),
                )
                return "cancelled"
            if state == "running":
                con.execute(
                    "UPDATE jobs SET cancel_requested = 1, message = 'cancelling…' WHERE id = ?",
                    (int(job_id),),
                )
            return state

    # --- the worker's side ----------------------------------------------------------------------
    def claim(self, worker: str) -> Job | None:
        """Atomically move the oldest queued job to ``running`` for ``worker``; None when none is queued."""
        now = time.time()
        with self._write() as con:
            row = con.execute(
                "UPDATE jobs SET state = 'running', worker = ?, started = ?, heartbeat = ?, "
                "attempts = attempts + 1, progress_done = 0, message = 'started', error = '' "
                "WHERE id = (SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1) "
                "AND state = 'queued' RETURNING id",
                (worker, now, now),
            ).fetchone()
        return None if row is None else self.get(int(row["id"]))

    def heartbeat(self, job_id: int, worker: str, done: int, total: int, message: str = "") -> str:
        """Record progress and liveness. Returns ``"ok"``, ``"cancel"`` (cancellation requested) or
        ``"lost"`` (the job is no longer running for ``worker``)."""
        with self._write() as con:
            cur = con.execute(
                "UPDATE jobs SET heartbeat = ?, progress_done = ?, progress_total = ?, "
                "message = CASE WHEN cancel_requested = 1 THEN message ELSE ? END "
                "WHERE id = ? AND state = 'running' AND worker = ? RETURNING cancel_requested",
                (time.time(), int(done), int(total), message, int(job_id), worker),
            ).fetchone()
        if cur is None:
            return "lost"
        return "cancel" if cur["cancel_requested"] else "ok"

    def _end(
        self,
        job_id: int,
        worker: str,
        state: str,
        *,
        message: str,
        error: str = "",
        outputs: Sequence[JobOutput] = (),
    ) -> bool:
        with self._write() as con:
            cur = con.execute(
                "UPDATE jobs SET state = ?, finished = ?, message = ?, error = ?, heartbeat = ?, "
                "progress_done = CASE WHEN ? = 'done' THEN progress_total ELSE progress_done END "
                "WHERE id = ? AND state = 'running' AND worker = ?",
                (state, time.time(), message, error, time.time(), state, int(job_id), worker),
            )
            if cur.rowcount != 1:
                return False
            for out in outputs:
                con.execute(
                    "INSERT OR REPLACE INTO job_outputs (job_id, item, domain, sr_path, uncertainty_path, "
                    "error_path, lpips_sat_path, scores) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        int(job_id),
                        out.item,
                        out.domain,
                        out.sr_path,
                        out.uncertainty_path,
                        out.error_path,
                        out.lpips_sat_path,
                        json.dumps(out.scores, sort_keys=True),
                    ),
                )
            return True

    def finish(self, job_id: int, worker: str, outputs: Sequence[JobOutput], message: str = "done") -> bool:
        """Mark a running job of ``worker`` done with its outputs (one transaction); False if not ours."""
        return self._end(job_id, worker, "done", message=message, outputs=outputs)

    def fail(self, job_id: int, worker: str, error: str) -> bool:
        """Mark a running job of ``worker`` failed with an error message; False if not ours."""
        return self._end(job_id, worker, "failed", message="failed", error=error)

    def mark_cancelled(self, job_id: int, worker: str) -> bool:
        """Mark a running job of ``worker`` cancelled (after it stopped); False if not ours."""
        return self._end(job_id, worker, "cancelled", message="cancelled while running")

    def requeue_stale(
        self,
        older_than_s: float | None,
        *,
        except_worker: str | None = None,
        now: float | None = None,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> list[int]:
        """Re-queue running jobs whose heartbeat is older than ``older_than_s`` (their worker died);
        ``None``: every running job (call it only while holding the worker lock). Jobs of
        ``except_worker`` are left alone.

        A job whose cancellation was requested becomes ``cancelled``; one already tried ``max_attempts``
        times becomes ``failed``. Returns the ids put back in the queue.
        """
        now = time.time() if now is None else now
        limit = math.inf if older_than_s is None else now - older_than_s
        stale = (
            "SELECT id, attempts, cancel_requested, worker FROM jobs WHERE state = 'running' "
            "AND coalesce(heartbeat, 0) <= ? AND coalesce(worker, '') != ? ORDER BY id"
        )
        params = (limit, except_worker or "")
        with self._read() as con:  # the usual case, nothing stale, needs no write transaction
            if not con.execute(stale, params).fetchone():
                return []
        requeued = []
        with self._write() as con:
            rows = con.execute(stale, params).fetchall()
            for row in rows:
                if row["cancel_requested"]:
                    con.execute(
                        "UPDATE jobs SET state = 'cancelled', finished = ?, message = 'cancelled (its "
                        "worker stopped)' WHERE id = ?",
                        (now, row["id"]),
                    )
                elif row["attempts"] >= max_attempts:
                    con.execute(
                        "UPDATE jobs SET state = 'failed', finished = ?, message = 'failed', error = ? "
                        "WHERE id = ?",
                        (
                            now,
                            f"its worker stopped (crashed or was killed) {row['attempts']} times while "
                            "running this job; not retried",
                            row["id"],
                        ),
                    )
                else:
                    con.execute(
                        "UPDATE jobs SET state = 'queued', worker = NULL, heartbeat = NULL, "
                        "progress_done = 0, message = ? WHERE id = ?",
                        (f"re-queued: worker {row['worker']} stopped during the job", row["id"]),
                    )
                    requeued.append(int(row["id"]))
        return requeued

    def has_queued(self) -> bool:
        """Whether any job waits in the queue."""
        with self._read() as con:
            return con.execute("SELECT 1 FROM jobs WHERE state = 'queued' LIMIT 1").fetchone() is not None


class WorkerLock:
    """The exclusive worker lock of a jobs folder (``fcntl.flock`` on ``worker.lock``).

    The lock belongs to this object's open file: another object (another thread or process) cannot take
    it until :meth:`release` or until the holder's process ends (the kernel releases it then).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self, holder: str = "") -> bool:
        """Take the lock if it is free (never waits)."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{holder}\n".encode(), 0)
        return True

    def acquire(
        self,
        timeout_s: float | None = 0.0,
        *,
        holder: str = "",
        poll_s: float = 0.25,
        stop: threading.Event | None = None,
    ) -> bool:
        """Take the lock, waiting up to ``timeout_s`` (None: until ``stop`` is set). True when taken."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            if self.try_acquire(holder):
                return True
            if stop is not None and stop.is_set():
                return False
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if stop is not None:
                stop.wait(poll_s)
            else:
                time.sleep(poll_s)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> WorkerLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def worker_busy(folder: str | Path) -> bool:
    """Whether some worker (any thread or process) holds the worker lock of ``folder`` right now."""
    if not Path(folder).is_dir():
        return False
    probe = WorkerLock(Path(folder) / LOCK_NAME)
    if probe.try_acquire():
        probe.release()
        return False
    return True


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


def _remove_outputs(queue: JobQueue, job_id: int) -> None:
    import shutil

    shutil.rmtree(queue.output_dir(job_id), ignore_errors=True)


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
        ctx.check()
        # record the final progress: a job shorter than one heartbeat interval has none recorded yet
        queue.heartbeat(job.id, worker, ctx.done, ctx.total, ctx.message)
        finished = queue.finish(
            job.id, worker, outputs, message=ctx.message if ctx.message != "running" else "done"
        )
        return "done" if finished else "lost"
    except JobLost:
        return "lost"
    except JobCancelled:
        _remove_outputs(queue, job.id)
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
    executor: Executor | None = None,
    *,
    stop: threading.Event | None = None,
    lock_timeout_s: float | None = 0.0,
    idle_exit_s: float | None = 0.0,
    poll_s: float = 0.5,
    heartbeat_s: float = HEARTBEAT_S,
    stale_after_s: float = STALE_AFTER_S,
    device: str | None = None,
    worker: str | None = None,
    on_job: Callable[[int, str], None] | None = None,
) -> WorkerReport:
    """Be the queue's worker: take the worker lock, then run queued jobs one at a time, oldest first.

    ``lock_timeout_s``: how long to wait for the lock (None: until ``stop``); without it, returns at once
    with ``acquired=False``. ``idle_exit_s``: return after this long without a queued job (0: as soon as
    the queue is empty; None: only when ``stop`` is set). ``executor`` defaults to
    :class:`~mindgap_core.inference.job_runner.InferenceExecutor` on ``device``. ``on_job(id, state)``
    is called after each job.
    """
    worker = worker or new_worker_id()
    lock = WorkerLock(queue.lock_path)
    if not lock.acquire(lock_timeout_s, holder=worker, stop=stop):
        return WorkerReport(worker, acquired=False)
    if executor is None:
        from mindgap_core.inference.job_runner import InferenceExecutor

        executor = InferenceExecutor(device=device)
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
