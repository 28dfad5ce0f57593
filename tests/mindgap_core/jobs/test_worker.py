"""The worker: one job at a time across threads and processes, FIFO, cancel of a running job, re-run of
jobs whose worker died (at the next worker start), failures recorded without stopping the worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from mindgap_core.errors import InputError
from mindgap_core.jobs import JobOutput, JobQueue, run_worker, worker_busy
from tests.mindgap_core.jobs.fakes import Recorder, payload

REPO = Path(__file__).resolve().parents[3]


def test_two_worker_threads_never_run_two_jobs(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    ids = [queue.submit(payload()) for _ in range(6)]
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


_WORKER_SCRIPT = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from mindgap_core.jobs import JobOutput, JobQueue, run_worker
folder, log, delay = sys.argv[2], sys.argv[3], float(sys.argv[4])

def executor(job, ctx):
    start = time.time()
    for k in range(4):
        ctx.progress(k, 4)
        time.sleep(delay / 4)
    with open(log, "a") as f:
        f.write(json.dumps([os.getpid(), job.id, start, time.time()]) + "\n")
    return [JobOutput(job.id, job.payload["item"], "log", "outputs/none")]

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
    ids = [queue.submit(payload()) for _ in range(4)]
    log = tmp_path / "log.jsonl"
    procs = [_worker_process(tmp_path, log, 0.2, 1.0) for _ in range(2)]
    # more jobs arrive while the workers run
    time.sleep(0.5)
    ids += [queue.submit(payload()) for _ in range(3)]
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


def test_cancel_running_job_stops_it(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    slow, after = queue.submit(payload()), queue.submit(payload())
    started = threading.Event()

    def executor(job, ctx):
        if job.id == after:
            return [JobOutput(job.id, "t", "x", "outputs/x")]
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


def test_a_job_whose_work_is_complete_is_done_even_if_cancelled_after_its_last_step(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    job_id = queue.submit(payload())

    def executor(job, ctx):
        ctx.progress(1, 1)
        ctx.out_dir.mkdir(parents=True, exist_ok=True)
        (ctx.out_dir / "result.txt").write_text("complete")
        assert queue.cancel(job.id) == "running"  # too late: no progress step follows
        ctx.cancelled.set()
        return [JobOutput(job.id, "t", "result", f"outputs/{job.id}/result.txt")]

    run_worker(queue, executor, idle_exit_s=0)
    assert queue.get(job_id).state == "done"
    assert queue.resolve(queue.outputs(job_id)[0].path).read_text() == "complete"


def test_stale_running_job_is_requeued_and_run_first(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    orphan = queue.submit(payload("r2c2"))
    later = queue.submit(payload("r2c3"))
    assert queue.claim("dead-worker").id == orphan  # its worker "died" here: no heartbeat, no lock
    rec = Recorder()
    report = run_worker(queue, rec, idle_exit_s=0)
    assert report.requeued == (orphan,)
    assert rec.order == [orphan, later]  # the re-queued job keeps its place
    job = queue.get(orphan)
    assert job.state == "done" and job.attempts == 2


def test_killed_worker_process_job_is_rerun(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    job_id = queue.submit(payload())
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


def test_failing_jobs_are_recorded_and_the_worker_goes_on(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    bad_input, bug, good = (queue.submit(payload()) for _ in range(3))

    def executor(job, ctx):
        if job.id == bad_input:
            raise InputError("x.tif", "has 3 band(s)")
        if job.id == bug:
            raise ZeroDivisionError("division by zero")
        return [JobOutput(job.id, "t", "x", "outputs/x")]

    report = run_worker(queue, executor, idle_exit_s=0)
    assert report.ran == (bad_input, bug, good)
    assert queue.get(bad_input).state == "failed" and queue.get(bad_input).error == "x.tif: has 3 band(s)"
    assert queue.get(bug).state == "failed" and "ZeroDivisionError" in queue.get(bug).error
    assert queue.get(good).state == "done"
    assert [o.job_id for o in queue.outputs()] == [good]  # failed jobs have no outputs
