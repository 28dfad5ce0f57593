"""The durable job queue: FIFO, one worker at a time (threads and processes), cancel, restart,
re-queue of jobs whose worker died, concurrent submitters. Executors here are fakes (no torch): the
real one is tested in test_job_runner.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.inference.jobs import (
    MAX_ATTEMPTS,
    JobOutput,
    JobQueue,
    JobSpec,
    WorkerLock,
    jobs_dir,
    run_worker,
    worker_busy,
)

REPO = Path(__file__).resolve().parents[3]
MANIFEST = str(REPO / "data" / "demo" / "manifest.parquet")


def spec(tile: str = "r0c0", **kw) -> JobSpec:
    return JobSpec(model="bicubic", tiles=(tile,), manifest=MANIFEST, domain="synthetic", **kw)


class Recorder:
    """A fake executor: records which job ran when, and how many ran at the same time."""

    def __init__(self, delay: float = 0.0, steps: int = 1) -> None:
        self.delay, self.steps = delay, steps
        self.order: list[int] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def __call__(self, job, ctx):
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.order.append(job.id)
        try:
            for k in range(self.steps):
                ctx.progress(k, self.steps)
                time.sleep(self.delay / self.steps)
            ctx.out_dir.mkdir(parents=True, exist_ok=True)
            (ctx.out_dir / "sr.tif").write_text(str(job.id))
            ctx.progress(self.steps, self.steps)
            return [
                JobOutput(
                    job.id,
                    job.spec.tiles[0],
                    ctx.queue.relative(ctx.out_dir / "sr.tif"),
                    domain=job.spec.domain,
                    scores={"psnr": float(job.id)},
                )
            ]
        finally:
            with self._lock:
                self.active -= 1


def test_jobs_dir_from_env(tmp_path: Path) -> None:
    assert jobs_dir({"MINDGAP_JOBS_DIR": str(tmp_path)}) == tmp_path
    assert jobs_dir({}) == REPO / "data" / "demo" / "jobs"


def test_database_is_wal_and_specs_are_checked(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    import sqlite3

    con = sqlite3.connect(queue.db_path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    with pytest.raises(ConfigError, match="either tiles or one uploaded file"):
        queue.submit(JobSpec(model="bicubic"))
    with pytest.raises(ConfigError, match="samples"):
        queue.submit(spec(samples=0))
    assert queue.jobs() == []


def test_not_a_database_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "jobs.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InputError, match="jobs.sqlite"):
        JobQueue(tmp_path)


def test_fifo_order_and_outputs(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    ids = [queue.submit(spec(f"r0c{i}")) for i in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert [j.state for j in queue.jobs()] == ["queued"] * 5
    rec = Recorder()
    report = run_worker(queue, rec, idle_exit_s=0)
    assert report.acquired and list(report.ran) == ids and rec.order == ids
    jobs = queue.jobs()
    assert [j.state for j in jobs] == ["done"] * 5
    assert all(j.fraction == 1.0 and j.attempts == 1 for j in jobs)
    out = queue.outputs(ids[2])
    assert [(o.item, o.scores) for o in out] == [("r0c2", {"psnr": float(ids[2])})]
    assert queue.resolve(out[0].sr_path).read_text() == str(ids[2])


def test_claim_is_atomic_between_racing_threads(tmp_path: Path) -> None:
    """Without the worker lock, two claimers still never get the same job."""
    queue = JobQueue(tmp_path)
    ids = [queue.submit(spec()) for _ in range(40)]
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


def test_two_worker_threads_never_run_two_jobs(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    ids = [queue.submit(spec()) for _ in range(6)]
    rec = Recorder(delay=0.05, steps=2)
    reports = []

    def work() -> None:
        reports.append(
            run_worker(queue, rec, lock_timeout_s=20, idle_exit_s=0, poll_s=0.02, heartbeat_s=0.05)
        )

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    assert worker_busy(tmp_path)
    for t in threads:
        t.join()
    assert rec.max_active == 1
    assert rec.order == ids  # FIFO, each exactly once
    assert sorted(j for r in reports for j in r.ran) == ids
    assert all(j.state == "done" for j in queue.jobs())
    assert not worker_busy(tmp_path)


def test_worker_lock_excludes_a_second_holder(tmp_path: Path) -> None:
    first, second = WorkerLock(tmp_path / "worker.lock"), WorkerLock(tmp_path / "worker.lock")
    assert first.try_acquire("a")
    assert not second.try_acquire("b")
    assert not second.acquire(0.2, poll_s=0.05)
    first.release()
    assert second.acquire(0.2)
    second.release()
    # a worker that finds the lock taken returns at once without running anything
    queue = JobQueue(tmp_path)
    queue.submit(spec())
    with WorkerLock(queue.lock_path) as held:
        assert held.try_acquire()
        report = run_worker(queue, Recorder(), lock_timeout_s=0)
    assert not report.acquired and queue.jobs()[0].state == "queued"


_WORKER_SCRIPT = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from mindgap_core.inference.jobs import JobOutput, JobQueue, run_worker
folder, log, delay = sys.argv[2], sys.argv[3], float(sys.argv[4])

def executor(job, ctx):
    start = time.time()
    for k in range(4):
        ctx.progress(k, 4)
        time.sleep(delay / 4)
    with open(log, "a") as f:
        f.write(json.dumps([os.getpid(), job.id, start, time.time()]) + "\n")
    return [JobOutput(job.id, job.spec.tiles[0], "outputs/none")]

print("ready", flush=True)
report = run_worker(JobQueue(folder), executor, lock_timeout_s=60, idle_exit_s=float(sys.argv[5]),
                    poll_s=0.05, heartbeat_s=0.1)
print(json.dumps(list(report.ran)), flush=True)
"""


def _worker_process(folder: Path, log: Path, delay: float, idle: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _WORKER_SCRIPT, str(REPO), str(folder), str(log), str(delay), str(idle)],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_two_worker_processes_never_run_two_jobs(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    ids = [queue.submit(spec()) for _ in range(4)]
    log = tmp_path / "log.jsonl"
    procs = [_worker_process(tmp_path, log, 0.2, 1.0) for _ in range(2)]
    # more jobs arrive while the workers run
    time.sleep(0.5)
    ids += [queue.submit(spec()) for _ in range(3)]
    ran = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        ran += json.loads(out.splitlines()[-1])
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r[1] for r in records] == ids and sorted(ran) == ids  # FIFO, each job exactly once
    spans = sorted((r[2], r[3]) for r in records)
    # the jobs' run times never overlap
    assert all(prev_end <= start for (_, prev_end), (start, _) in zip(spans, spans[1:], strict=False))
    assert all(j.state == "done" for j in queue.jobs())


def test_cancel_queued_job_never_runs(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    a, b, c = (queue.submit(spec()) for _ in range(3))
    assert queue.cancel(b) == "cancelled"
    assert queue.cancel(999) is None
    rec = Recorder()
    run_worker(queue, rec, idle_exit_s=0)
    assert rec.order == [a, c]
    assert [j.state for j in queue.jobs()] == ["done", "cancelled", "done"]
    assert queue.cancel(a) == "done"  # finished jobs stay finished
    assert queue.outputs(b) == []


def test_cancel_running_job_stops_it(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    slow, after = queue.submit(spec()), queue.submit(spec())
    started = threading.Event()

    def executor(job, ctx):
        if job.id == after:
            return [JobOutput(job.id, "t", "outputs/x")]
        started.set()
        ctx.out_dir.mkdir(parents=True, exist_ok=True)
        (ctx.out_dir / "partial.tif").write_text("partial")
        for k in range(400):  # 20 s unless cancelled
            ctx.progress(k, 400)
            time.sleep(0.05)
        return []

    thread = threading.Thread(
        target=run_worker, args=(queue, executor), kwargs={"idle_exit_s": 0, "heartbeat_s": 0.05}
    )
    t0 = time.monotonic()
    thread.start()
    assert started.wait(10)
    assert queue.cancel(slow) == "running"
    thread.join(15)
    assert not thread.is_alive() and time.monotonic() - t0 < 10
    assert queue.get(slow).state == "cancelled"
    assert not queue.output_dir(slow).exists()  # nothing partial left
    assert queue.get(after).state == "done"  # the worker went on with the next job


def test_queue_survives_restart(tmp_path: Path) -> None:
    first = JobQueue(tmp_path)
    ids = [first.submit(spec(f"r1c{i}", samples=2, steps=3, seed=7)) for i in range(3)]
    first.cancel(ids[1])
    del first
    second = JobQueue(tmp_path)  # "server restart": a new queue object on the same folder
    jobs = second.jobs()
    assert [j.id for j in jobs] == ids and [j.state for j in jobs] == ["queued", "cancelled", "queued"]
    assert jobs[0].spec == spec("r1c0", samples=2, steps=3, seed=7)
    run_worker(second, Recorder(), idle_exit_s=0)
    third = JobQueue(tmp_path)
    assert [j.state for j in third.jobs()] == ["done", "cancelled", "done"]
    assert [o.item for o in third.outputs()] == ["r1c0", "r1c2"]


def test_stale_running_job_is_requeued_and_run_first(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    orphan = queue.submit(spec("r2c2"))
    later = queue.submit(spec("r2c3"))
    assert queue.claim("dead-worker").id == orphan  # its worker "died" here: no heartbeat, no lock
    rec = Recorder()
    report = run_worker(queue, rec, idle_exit_s=0)
    assert report.requeued == (orphan,)
    assert rec.order == [orphan, later]  # the re-queued job keeps its place
    job = queue.get(orphan)
    assert job.state == "done" and job.attempts == 2


def test_requeue_stale_by_heartbeat_age(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    fresh, stale, cancelling, exhausted = (queue.submit(spec()) for _ in range(4))
    for _ in range(4):
        queue.claim("w")
    now = time.time()
    assert queue.requeue_stale(60, now=now) == []  # every heartbeat is recent
    assert queue.heartbeat(fresh, "w", 1, 2) == "ok"
    assert queue.heartbeat(stale, "other", 1, 2) == "lost"  # not that worker's job
    queue.cancel(cancelling)
    assert queue.heartbeat(cancelling, "w", 1, 2) == "cancel"
    import sqlite3

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


def test_killed_worker_process_job_is_rerun(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    job_id = queue.submit(spec())
    log = tmp_path / "log.jsonl"
    proc = _worker_process(tmp_path, log, 30.0, 0.0)  # a job that would take 30 s
    assert proc.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 20
    while queue.get(job_id).state != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert queue.get(job_id).state == "running"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    assert queue.get(job_id).state == "running"  # the dead worker could not say anything
    assert not worker_busy(tmp_path)  # but the kernel released its lock
    report = run_worker(queue, Recorder(), idle_exit_s=0)
    assert report.requeued == (job_id,) and report.ran == (job_id,)
    assert queue.get(job_id).state == "done" and queue.get(job_id).attempts == 2


_SUBMIT_SCRIPT = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from mindgap_core.inference.jobs import JobQueue, JobSpec
queue = JobQueue(sys.argv[2])
name, n, start = sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
while time.time() < start:
    time.sleep(0.001)
ids = [queue.submit(JobSpec(model="bicubic", tiles=(f"{name}{i}",), manifest="m", domain="synthetic",
                            submitted_by=name)) for i in range(n)]
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
        threads_ids.extend(JobQueue(tmp_path).submit(spec(f"t{i}", submitted_by="t")) for i in range(40))

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
        mine = [j for j in jobs if j.spec.submitted_by == name]
        assert [j.id for j in mine] == ids  # each submitter's jobs keep its order
        assert [j.spec.tiles[0] for j in mine] == [f"{name}{i}" for i in range(40)]
    assert len({j.id for j in jobs}) == 120


def test_failing_jobs_are_recorded_and_the_worker_goes_on(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    bad_input, bug, good = (queue.submit(spec()) for _ in range(3))

    def executor(job, ctx):
        if job.id == bad_input:
            raise InputError("x.tif", "has 3 band(s)")
        if job.id == bug:
            raise ZeroDivisionError("division by zero")
        return [JobOutput(job.id, "t", "outputs/x")]

    report = run_worker(queue, executor, idle_exit_s=0)
    assert report.ran == (bad_input, bug, good)
    assert queue.get(bad_input).state == "failed" and queue.get(bad_input).error == "x.tif: has 3 band(s)"
    assert queue.get(bug).state == "failed" and "ZeroDivisionError" in queue.get(bug).error
    assert queue.get(good).state == "done"
    assert [o.job_id for o in queue.outputs()] == [good]  # failed jobs have no outputs


def test_resolve_refuses_paths_leaving_the_folder(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path / "jobs")
    with pytest.raises(InputError, match="leaves the jobs folder"):
        queue.resolve("../../etc/passwd")
