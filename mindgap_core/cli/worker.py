"""``mindgap worker``: run queued on-demand inference jobs (the dashboard's queue) outside Streamlit."""

from __future__ import annotations

import argparse

HELP = (
    "Run the on-demand inference jobs queued from the dashboard, one at a time, oldest first "
    "(at most one worker per jobs folder: others wait for the lock)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs-dir", default=None, help="jobs folder (default: $MINDGAP_JOBS_DIR, else data/demo/jobs)"
    )
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default=None, help="torch device (default: cuda if available)"
    )
    parser.add_argument(
        "--exit-when-idle",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop after this many seconds without a queued job (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="exit at once (code 1) when another worker holds the lock, instead of waiting",
    )


def run(args: argparse.Namespace) -> int:
    import signal
    import sys
    import threading
    from pathlib import Path

    from mindgap_core.inference.job_runner import InferenceExecutor
    from mindgap_core.jobs import JobQueue, jobs_dir, run_worker

    folder = Path(args.jobs_dir) if args.jobs_dir else jobs_dir()
    queue = JobQueue(folder)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"mindgap worker: jobs folder {folder}", file=sys.stderr)

    def report(job_id: int, state: str) -> None:
        job = queue.get(job_id)
        detail = f": {job.error}" if job is not None and job.error else ""
        print(f"job {job_id}: {state}{detail}", file=sys.stderr)

    try:
        result = run_worker(
            queue,
            InferenceExecutor(device=args.device),
            stop=stop,
            lock_timeout_s=0.0 if args.no_wait else None,
            idle_exit_s=args.exit_when_idle,
            on_job=report,
        )
    except KeyboardInterrupt:
        stop.set()
        print("mindgap worker: interrupted (a running job is re-queued by the next worker)", file=sys.stderr)
        return 130
    if not result.acquired:
        print(f"mindgap worker: another worker holds {queue.lock_path}", file=sys.stderr)
        return 1
    print(f"mindgap worker: ran {len(result.ran)} job(s)", file=sys.stderr)
    return 0
