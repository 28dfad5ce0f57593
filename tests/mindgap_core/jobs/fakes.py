"""Fake executors and payloads for the job queue tests: the queue knows nothing of what a job does."""

from __future__ import annotations

import threading
import time

from mindgap_core.jobs import JobOutput


def payload(item: str = "r0c0", **extra) -> dict:
    """A job payload: an item to work on, plus anything."""
    return {"item": item, **extra}


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
            (ctx.out_dir / "result.txt").write_text(str(job.id))
            (ctx.out_dir / "preview.txt").write_text(f"preview {job.id}")
            ctx.progress(self.steps, self.steps)
            item = job.payload["item"]
            return [
                JobOutput(job.id, item, "result", ctx.queue.relative(ctx.out_dir / "result.txt")),
                JobOutput(job.id, item, "preview", ctx.queue.relative(ctx.out_dir / "preview.txt")),
            ]
        finally:
            with self._lock:
                self.active -= 1
