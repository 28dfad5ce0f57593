"""The exclusive worker lock of a jobs folder: at most one worker runs jobs at a time.

See the guarantees in ``mindgap_core/jobs/__init__.py``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from pathlib import Path

#: the lock file in a jobs folder
LOCK_NAME = "worker.lock"


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
