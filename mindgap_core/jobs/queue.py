"""The job table of a jobs folder: submit, read, cancel, and the worker's claim/heartbeat/finish.

A job is a JSON ``payload`` (what to do, read by the executor) and an ``owner`` (who submitted it);
its outputs are rows ``(job, item, kind, path)``, so an executor may produce any kind of file. The
guarantees (durable, FIFO, atomic claim, cancel, re-queue of orphans) are listed in
``mindgap_core/jobs/__init__.py``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.jobs.lock import LOCK_NAME
from mindgap_core.paths import DEMO_ROOT, resolve_inside

#: environment variable naming the jobs folder
JOBS_DIR_ENV = "MINDGAP_JOBS_DIR"
DB_NAME = "jobs.sqlite"
#: 1: one column per inference setting and per map kind (MindGap before the job queue was generic);
#: 2: JSON payload, owner, outputs as (job, item, kind, path) rows
SCHEMA_VERSION = 2
STATES: tuple[str, ...] = ("queued", "running", "done", "failed", "cancelled")
ACTIVE_STATES: tuple[str, ...] = ("queued", "running")
#: a job whose worker died this many times is failed, not re-queued again
MAX_ATTEMPTS = 3
BUSY_TIMEOUT_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    created          REAL    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    payload          TEXT    NOT NULL CHECK (json_type(payload) = 'object'),
    owner            TEXT    NOT NULL DEFAULT '',
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
CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, id);
CREATE TABLE IF NOT EXISTS job_outputs (
    job_id           INTEGER NOT NULL REFERENCES jobs (id),
    item             TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    path             TEXT    NOT NULL,
    PRIMARY KEY (job_id, item, kind)
);
"""


def jobs_dir(env: Mapping[str, str] | None = None) -> Path:
    """The jobs folder: ``$MINDGAP_JOBS_DIR`` when set, else ``data/demo/jobs`` in the repository."""
    env = os.environ if env is None else env
    value = env.get(JOBS_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else DEMO_ROOT / "jobs"


@dataclass(frozen=True)
class Job:
    """A job as stored (times are Unix seconds). ``payload`` is what its executor reads."""

    id: int
    created: float
    state: str
    payload: Mapping[str, Any]
    owner: str
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


@dataclass(frozen=True)
class JobOutput:
    """One file a job produced: for input ``item`` (e.g. a tile id), of ``kind`` (e.g. ``sr``), at
    ``path`` relative to the jobs folder."""

    job_id: int
    item: str
    kind: str
    path: str


def _job_from_row(row: sqlite3.Row) -> Job:
    return Job(
        id=int(row["id"]),
        created=float(row["created"]),
        state=row["state"],
        payload=json.loads(row["payload"]),
        owner=row["owner"],
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


def _payload_text(payload: Mapping[str, Any]) -> str:
    if not isinstance(payload, Mapping):
        raise ConfigError(f"a job payload must be a mapping, got {type(payload).__name__}")
    try:
        return json.dumps(dict(payload), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"a job payload must be plain JSON ({exc})") from None


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

    def output_dir(self, job_id: int) -> Path:
        """Where job ``job_id`` writes its files (removed when the job is cancelled while running)."""
        return self.folder / "outputs" / str(int(job_id))

    def resolve(self, relpath: str) -> Path:
        """Absolute path of a path stored in ``job_outputs`` (relative to the folder); refuses escapes."""
        return resolve_inside(self.folder, relpath, "the jobs folder")

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
                with self._read() as con:  # refuse a foreign version before changing anything
                    self._check_version(con.execute("PRAGMA user_version").fetchone()[0])
                    if con.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                        con.execute("PRAGMA journal_mode = WAL")
                with self._write() as con:
                    self._check_version(con.execute("PRAGMA user_version").fetchone()[0])
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

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise InputError(
                self.db_path,
                f"job database version {version} is newer than this MindGap's ({SCHEMA_VERSION})",
            )
        if 0 < version < SCHEMA_VERSION:
            raise InputError(
                self.db_path,
                f"is a job database of an older MindGap (version {version}; this one reads version "
                f"{SCHEMA_VERSION}, with outputs as rows and scores in a results store) and is not "
                f"converted: move the jobs folder {self.folder} aside (or delete it) to start an empty "
                "queue, or set MINDGAP_JOBS_DIR to another folder",
            )

    # --- submitting and reading -----------------------------------------------------------------
    def submit(self, payload: Mapping[str, Any], *, owner: str = "") -> int:
        """Queue a job; returns its id (ids increase in submission order). ``payload``: plain JSON."""
        text = _payload_text(payload)
        with self._write() as con:
            cur = con.execute(
                "INSERT INTO jobs (created, state, payload, owner, message) "
                "VALUES (?, 'queued', ?, ?, 'queued')",
                (time.time(), text, str(owner)),
            )
            return int(cur.lastrowid)

    def get(self, job_id: int) -> Job | None:
        """The job ``job_id``, or None."""
        with self._read() as con:
            row = con.execute("SELECT * FROM jobs WHERE id = ?", (int(job_id),)).fetchone()
        return None if row is None else _job_from_row(row)

    def jobs(
        self,
        states: Sequence[str] | None = None,
        *,
        owner: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[Job]:
        """Jobs in id order (oldest first unless ``newest_first``), optionally of some states only and of
        one owner only."""
        clauses, params = [], []
        if states:
            unknown = [s for s in states if s not in STATES]
            if unknown:
                raise ConfigError(f"unknown job state(s) {unknown}; known: {list(STATES)}")
            clauses.append(f"state IN ({', '.join('?' * len(states))})")
            params += list(states)
        if owner is not None:
            clauses.append("owner = ?")
            params.append(owner)
        sql = "SELECT * FROM jobs" + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
        sql += " ORDER BY id DESC" if newest_first else " ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._read() as con:
            return [_job_from_row(r) for r in con.execute(sql, params).fetchall()]

    def outputs(
        self, job_id: int | None = None, *, item: str | None = None, kind: str | None = None
    ) -> list[JobOutput]:
        """Outputs of done jobs (of one job, item and/or kind), by job id, item, then kind."""
        sql = "SELECT o.* FROM job_outputs o JOIN jobs j ON j.id = o.job_id WHERE j.state = 'done'"
        params: list[object] = []
        wanted = (("job_id", None if job_id is None else int(job_id)), ("item", item), ("kind", kind))
        for column, value in wanted:
            if value is not None:
                sql += f" AND o.{column} = ?"
                params.append(value)
        with self._read() as con:
            rows = con.execute(sql + " ORDER BY o.job_id, o.item, o.kind", params).fetchall()
        return [JobOutput(int(r["job_id"]), r["item"], r["kind"], r["path"]) for r in rows]

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
            now = time.time()
            cur = con.execute(
                "UPDATE jobs SET state = ?, finished = ?, message = ?, error = ?, heartbeat = ?, "
                "progress_done = CASE WHEN ? = 'done' THEN progress_total ELSE progress_done END "
                "WHERE id = ? AND state = 'running' AND worker = ?",
                (state, now, message, error, now, state, int(job_id), worker),
            )
            if cur.rowcount != 1:
                return False
            for out in outputs:
                if int(out.job_id) != int(job_id):
                    raise ConfigError(f"job {job_id} returned an output of job {out.job_id}: {out}")
                con.execute(
                    "INSERT OR REPLACE INTO job_outputs (job_id, item, kind, path) VALUES (?, ?, ?, ?)",
                    (int(job_id), out.item, out.kind, out.path),
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
