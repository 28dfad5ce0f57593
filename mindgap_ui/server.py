"""What the dashboard's server does once when it starts, before any visitor (``app.py``'s ``st.App``
lifespan): resume the jobs folder's unfinished jobs (:func:`mindgap_ui.jobs.resume`), so that a job
running when a previous server was killed is re-queued or failed with a reason at once, not when someone
next opens a page."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

_LOG = logging.getLogger("mindgap.server")


@contextlib.asynccontextmanager
async def lifespan(_app: object) -> AsyncIterator[None]:
    """The server's start: resume the job queue (errors are logged, never stop the server)."""
    from mindgap_ui import jobs

    try:
        if jobs.resume(jobs.folder()):
            _LOG.info("unfinished jobs in %s: worker started", jobs.folder())
    except Exception:  # the dashboard must start even when the jobs folder is broken
        _LOG.exception("could not resume the job queue")
    yield
