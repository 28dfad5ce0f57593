"""The durable job table: WAL, payload checks, FIFO outputs as rows, atomic claim, cancel of a queued
job, restart, re-queue by heartbeat age, concurrent submitters, path confinement, and the refusal of an
older database. Executors here are fakes (no torch); the inference executor is tested in
tests/mindgap_core/inference/test_job_runner.py."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.jobs import MAX_ATTEMPTS, JobOutput, JobQueue, jobs_dir, run_worker
from tests.mindgap_core.jobs.fakes import Recorder, payload

REPO = Path(__file__).resolve().parents[3]


def test_jobs_dir_from_env(tmp_path: Path) -> None:
    assert jobs_dir({"MINDGAP_JOBS_DIR": str(tmp_path)}) == tmp_path
    assert jobs_dir({}) == REPO / "data" / "demo" / "jobs"


def test_database_is_wal_and_payloads_are_checked(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    con = sqlite3.connect(queue.db_path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    with pytest.raises(ConfigError, match="must be a mapping"):
        queue.submit(["not", "a", "mapping"])
    with pytest.raises(ConfigError, match="plain JSON"):
        queue.submit({"when": object()})
    with pytest.raises(ConfigError, match="plain JSON"):
        queue.submit({"value": float("nan")})
    assert queue.jobs() == []
    job_id = queue.submit(payload("r0c0", samples=3, steps=None, tiles=["a", "b"]), owner="session-1")
    job = queue.get(job_id)
    assert job.payload == {"item": "r0c0", "samples": 3, "steps": None, "tiles": ["a", "b"]}
    assert job.owner == "session-1" and job.state == "queued" and job.message == "queued"


def test_not_a_database_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "jobs.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InputError, match="jobs.sqlite"):
        JobQueue(tmp_path)


def _old_database(folder: Path, version: int) -> None:
    """A job database as an older MindGap wrote it (its own table, its version number)."""
    folder.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(folder / "jobs.sqlite")
    con.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, model TEXT NOT NULL, tiles TEXT)")
    con.execute("INSERT INTO jobs (model, tiles) VALUES ('bicubic', '[\"r0c0\"]')")
    con.execute(f"PRAGMA user_version = {version}")
    con.commit()
    con.close()


def test_an_older_database_is_refused_with_one_clear_message_and_left_alone(tmp_path: Path) -> None:
    folder = tmp_path / "jobs"
    _old_database(folder, 1)
    before = (folder / "jobs.sqlite").read_bytes()
    with pytest.raises(InputError) as info:
        JobQueue(folder)
    text = str(info.value)
    assert text.startswith(f"{folder / 'jobs.sqlite'}: is a job database of an older MindGap (version 1")
    assert "move the jobs folder" in text and "MINDGAP_JOBS_DIR" in text and "\n" not in text
    assert (folder / "jobs.sqlite").read_bytes() == before  # not converted, not touched
    _old_database(tmp_path / "newer", 99)
    with pytest.raises(InputError, match="version 99 is newer than this MindGap's"):
        JobQueue(tmp_path / "newer")


def test_fifo_order_and_outputs_as_rows(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    ids = [queue.submit(payload(f"r0c{i}")) for i in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert [j.state for j in queue.jobs()] == ["queued"] * 5
    rec = Recorder()
    report = run_worker(queue, rec, idle_exit_s=0)
    assert report.acquired and list(report.ran) == ids and rec.order == ids
    jobs = queue.jobs()
    assert [j.state for j in jobs] == ["done"] * 5
    assert all(j.fraction == 1.0 and j.attempts == 1 for j in jobs)
    out = queue.outputs(ids[2])
    assert [(o.item, o.kind) for o in out] == [("r0c2", "preview"), ("r0c2", "result")]
    assert queue.resolve(out[1].path).read_text() == str(ids[2])
    assert [o.job_id for o in queue.outputs(kind="result")] == ids
    assert queue.outputs(item="r0c4", kind="preview") == [
        JobOutput(ids[4], "r0c4", "preview", f"outputs/{ids[4]}/preview.txt")
    ]


def test_an_output_of_another_job_is_refused(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    job_id = queue.submit(payload())
    report = run_worker(queue, lambda job, ctx: [JobOutput(job.id + 1, "x", "k", "p")], idle_exit_s=0)
    assert report.ran == (job_id,)
    assert queue.get(job_id).state == "failed" and "an output of job" in queue.get(job_id).error
    assert queue.outputs() == []


def test_claim_is_atomic_between_racing_threads(tmp_path: Path) -> None:
    """Without the worker lock, two claimers still never get the same job."""
    queue = JobQueue(tmp_path)
    ids = [queue.submit(payload()) for _ in range(40)]
    got: dict[str, list[int]] = {"a": [], "b": []}

    def claimer(name: str) -> None:
        while (job := queue.claim(name)) is not None:
            got[name].append(job.id)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got["a"] + got["b"]) == ids
    assert got["a"] == sorted(got["a"]) and got["b"] == sorted(got["b"])  # each takes the oldest


def test_cancel_queued_job_never_runs(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    a, b, c = (queue.submit(payload()) for _ in range(3))
    assert queue.cancel(b) == "cancelled"
    assert queue.cancel(999) is None
    rec = Recorder()
    run_worker(queue, rec, idle_exit_s=0)
    assert rec.order == [a, c]
    assert [j.state for j in queue.jobs()] == ["done", "cancelled", "done"]
    assert queue.cancel(a) == "done"  # finished jobs stay finished
    assert queue.outputs(b) == []


def test_queue_survives_restart(tmp_path: Path) -> None:
    first = JobQueue(tmp_path)
    ids = [first.submit(payload(f"r1c{i}", samples=2), owner="me") for i in range(3)]
    first.cancel(ids[1])
    del first
    second = JobQueue(tmp_path)  # "server restart": a new queue object on the same folder
    jobs = second.jobs()
    assert [j.id for j in jobs] == ids and [j.state for j in jobs] == ["queued", "cancelled", "queued"]
    assert jobs[0].payload == payload("r1c0", samples=2) and jobs[0].owner == "me"
    run_worker(second, Recorder(), idle_exit_s=0)
    third = JobQueue(tmp_path)
    assert [j.state for j in third.jobs()] == ["done", "cancelled", "done"]
    assert [o.item for o in third.outputs(kind="result")] == ["r1c0", "r1c2"]


def test_jobs_by_state_owner_and_order(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    ids = [queue.submit(payload(), owner=owner) for owner in ("a", "b", "a", "a")]
    queue.cancel(ids[2])
    assert [j.id for j in queue.jobs(owner="a")] == [ids[0], ids[2], ids[3]]
    assert [j.id for j in queue.jobs(["queued"], owner="a", newest_first=True)] == [ids[3], ids[0]]
    assert [j.id for j in queue.jobs(limit=2, newest_first=True)] == [ids[3], ids[2]]
    with pytest.raises(ConfigError, match="unknown job state"):
        queue.jobs(["finished"])


def test_requeue_stale_by_heartbeat_age(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    fresh, stale, cancelling, exhausted = (queue.submit(payload()) for _ in range(4))
    for _ in range(4):
        queue.claim("w")
    now = time.time()
    assert queue.requeue_stale(60, now=now) == []  # every heartbeat is recent
    assert queue.heartbeat(fresh, "w", 1, 2) == "ok"
    assert queue.heartbeat(stale, "other", 1, 2) == "lost"  # not that worker's job
    queue.cancel(cancelling)
    assert queue.heartbeat(cancelling, "w", 1, 2) == "cancel"
    con = sqlite3.connect(queue.db_path)
    con.execute(
        "UPDATE jobs SET heartbeat = ? WHERE id IN (?, ?, ?)", (now - 100, stale, cancelling, exhausted)
    )
    con.execute("UPDATE jobs SET attempts = ? WHERE id = ?", (MAX_ATTEMPTS, exhausted))
    con.commit()
    con.close()
    assert queue.requeue_stale(60, now=now) == [stale]
    states = {j.id: j.state for j in queue.jobs()}
    assert states == {fresh: "running", stale: "queued", cancelling: "cancelled", exhausted: "failed"}
    assert "not retried" in queue.get(exhausted).error


_SUBMIT_SCRIPT = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from mindgap_core.jobs import JobQueue
queue = JobQueue(sys.argv[2])
name, n, start = sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
while time.time() < start:
    time.sleep(0.001)
ids = [queue.submit({"item": f"{name}{i}"}, owner=name) for i in range(n)]
print(json.dumps(ids))
"""


def test_concurrent_submitters_lose_no_job(tmp_path: Path) -> None:
    JobQueue(tmp_path)
    start = time.time() + 1.5
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SUBMIT_SCRIPT, str(REPO), str(tmp_path), name, "40", str(start)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    threads_ids: list[int] = []

    def submit_in_thread() -> None:
        while time.time() < start:
            time.sleep(0.001)
        threads_ids.extend(JobQueue(tmp_path).submit(payload(f"t{i}"), owner="t") for i in range(40))

    thread = threading.Thread(target=submit_in_thread)
    thread.start()
    got = {}
    for name, p in zip(("a", "b"), procs, strict=True):
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        got[name] = json.loads(out)
    thread.join()
    got["t"] = threads_ids
    jobs = JobQueue(tmp_path).jobs()
    assert len(jobs) == 120 and sorted(j.id for j in jobs) == sorted(sum(got.values(), []))
    for name, ids in got.items():
        mine = JobQueue(tmp_path).jobs(owner=name)
        assert [j.id for j in mine] == ids  # each submitter's jobs keep its order
        assert [j.payload["item"] for j in mine] == [f"{name}{i}" for i in range(40)]
    assert len({j.id for j in jobs}) == 120


def test_resolve_refuses_paths_leaving_the_folder(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path / "jobs")
    with pytest.raises(InputError, match="leaves the jobs folder"):
        queue.resolve("../../etc/passwd")
