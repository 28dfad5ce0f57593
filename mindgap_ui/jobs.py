"""The dashboard's side of the on-demand inference queue (:mod:`mindgap_core.jobs`, jobs run by
:class:`mindgap_core.inference.job_runner.InferenceExecutor`).

Jobs live in a SQLite queue in the jobs folder, shared by every browser session and server process; their
scores are rows of the jobs folder's results store.
This Streamlit server runs them in one background thread, started on first need: the thread waits for
the folder's worker lock, so across sessions and processes at most one job runs at a time (a
``mindgap worker`` process may hold the lock instead). ``MINDGAP_WORKER=off`` keeps the dashboard from
starting a thread (jobs then wait for ``mindgap worker``).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import uuid
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from mindgap_core.errors import MindGapError
from mindgap_core.inference import job_runner
from mindgap_core.inference.job_runner import InferenceExecutor, InferenceSpec, spec_of
from mindgap_core.jobs import ACTIVE_STATES, Job, JobQueue, jobs_dir, run_worker, worker_busy
from mindgap_core.jobs.queue import DB_NAME
from mindgap_core.paths import DEMO_ROOT
from mindgap_ui import navigation

#: environment variable: "thread" (default) starts a worker thread in the server; "off" does not
WORKER_ENV = "MINDGAP_WORKER"
MODELS_ROOT = DEMO_ROOT / "models"
_LOG = logging.getLogger("mindgap.worker")
_THREADS: dict[str, tuple[threading.Thread, threading.Event]] = {}
_GUARD = threading.Lock()


def folder() -> str:
    """The jobs folder (``$MINDGAP_JOBS_DIR`` or ``data/demo/jobs``)."""
    return str(jobs_dir())


@st.cache_resource(show_spinner=False)
def queue(path: str) -> JobQueue:
    """The queue of a jobs folder (one object per server process; it holds no connection)."""
    return JobQueue(path)


def fingerprint(path: str) -> str:
    """A cache key that changes with the jobs ("" when no job was ever submitted: creates nothing)."""
    if not (Path(path) / DB_NAME).is_file():
        return ""
    try:
        return queue(path).fingerprint()
    except (MindGapError, sqlite3.Error):  # unreadable or read-only jobs folder: show no jobs
        return ""


def worker_enabled() -> bool:
    return os.environ.get(WORKER_ENV, "thread").strip().lower() not in ("off", "0", "no", "false")


def _work(path: str, stop: threading.Event) -> None:
    """The worker thread: be the queue's worker (waiting for the lock) until the server stops."""
    while not stop.is_set():
        try:
            run_worker(JobQueue(path), InferenceExecutor(), stop=stop, lock_timeout_s=None, idle_exit_s=None,
                       poll_s=0.5)
        except Exception:  # keep serving: log, wait, start over (the lock was released by run_worker)
            _LOG.exception("job worker crashed; restarting in 2 s")
            stop.wait(2.0)


def ensure_worker(path: str) -> bool:
    """Start this server's worker thread for ``path`` unless it runs already; False when disabled."""
    if not worker_enabled():
        return False
    with _GUARD:
        entry = _THREADS.get(path)
        if entry is not None and entry[0].is_alive():
            return True
        stop = threading.Event()
        thread = threading.Thread(target=_work, args=(path, stop), name="mindgap-job-worker", daemon=True)
        thread.start()
        _THREADS[path] = (thread, stop)
    return True


def resume(path: str) -> bool:
    """Start this server's worker when the jobs folder holds unfinished jobs (queued, or running under a
    worker that died with a previous server): the worker re-queues each orphan (attempt + 1) or fails it
    with a reason after :data:`mindgap_core.jobs.MAX_ATTEMPTS`, then runs the queue. Called once per
    server process, when the server starts (``mindgap_ui/server.py``).
    Returns whether a worker was started for unfinished jobs."""
    if not (Path(path) / DB_NAME).is_file():
        return False  # no job was ever submitted: create nothing
    try:
        unfinished = JobQueue(path).jobs(list(ACTIVE_STATES), limit=1)
    except (MindGapError, sqlite3.Error) as exc:  # unreadable jobs folder: the inference page says so
        _LOG.warning("jobs folder %s not resumed: %s", path, exc)
        return False
    return bool(unfinished) and ensure_worker(path)


def session_id() -> str:
    """A random id of this browser session, recorded as the owner of the jobs it submits. (The password
    gate is one shared password: it names no user, so a session is the finest owner there is.)"""
    if "job_session" not in st.session_state:
        st.session_state["job_session"] = uuid.uuid4().hex[:12]
    return st.session_state["job_session"]


def owns(job: Job) -> bool:
    """Whether this session submitted ``job`` (only its owner may cancel it and see its file names)."""
    return bool(job.owner) and job.owner == session_id()


def input_label(job: Job) -> str:
    """The job's input as this session may see it: an upload's file name only for its owner."""
    spec = spec_of(job)
    return spec.input_label if not spec.upload or owns(job) else "upload"


@st.cache_data(show_spinner=False, ttl=30)
def model_choices(root: str) -> list[job_runner.ModelChoice]:
    """Models a job may use (bicubic + saved model folders)."""
    return job_runner.model_choices(root)


def submit(spec: InferenceSpec) -> int:
    """Queue a job from this session and make sure a worker will run it."""
    path = folder()
    job_id = job_runner.submit(queue(path), spec, owner=session_id())
    st.session_state.setdefault("my_jobs", []).append(job_id)
    ensure_worker(path)
    return job_id


def worker_status(path: str) -> str:
    """A sentence on who runs jobs."""
    mine = _THREADS.get(path)
    running_here = mine is not None and mine[0].is_alive()
    if not worker_enabled():
        base = "This dashboard starts no worker (MINDGAP_WORKER=off): run `mindgap worker` to process jobs."
        return base + (" A worker is active." if worker_busy(path) else " No worker is active now.")
    if running_here:
        return "Jobs run one at a time, oldest first, in this server's background worker."
    return "Jobs run one at a time, oldest first; the worker starts with the first submitted job."


def _when(stamp: float | None) -> str:
    return datetime.fromtimestamp(stamp).strftime("%H:%M:%S") if stamp else ""


def jobs_frame(jobs: list[Job]) -> pd.DataFrame:
    """The jobs table shown on the page (uploads' file names only to their owner; ``attempt`` > 1: the
    job was re-queued after its worker stopped)."""
    specs = [spec_of(j) for j in jobs]
    return pd.DataFrame.from_records(
        [
            {
                "job": j.id,
                "state": j.state,
                "progress": round(100 * j.fraction),
                "attempt": j.attempts,
                "model": spec.label,
                "input": input_label(j),
                "samples": spec.samples,
                "steps": str(spec.steps) if spec.steps else "default",  # one type per column
                "submitted": _when(j.created),
                "finished": _when(j.finished),
                "message": j.error or j.message,
            }
            for j, spec in zip(jobs, specs, strict=True)
        ],
        columns=[
            "job",
            "state",
            "progress",
            "attempt",
            "model",
            "input",
            "samples",
            "steps",
            "submitted",
            "finished",
            "message",
        ],
    )


@st.cache_data(show_spinner=False, ttl=60)
def scores(path: str, fingerprint: str, job_ids: tuple[int, ...]) -> pd.DataFrame:
    """Overall scores of jobs (``job``, ``item``, ``domain``, ``metric``, ``value``, ``higher_better``),
    from the jobs folder's results store (``fingerprint`` makes the cache follow finished jobs)."""
    return job_runner.job_scores(path, list(job_ids))


def _item_scores(found: pd.DataFrame, job_id: int, item: str) -> dict[str, float]:
    """metric -> value of one job input (sorted by metric name)."""
    mine = found[(found["job"] == job_id) & (found["item"] == item)].sort_values("metric")
    return {str(m): float(v) for m, v in zip(mine["metric"], mine["value"], strict=True)}


def results_frame(path: str, limit: int = 50) -> pd.DataFrame:
    """Scores of finished jobs' outputs (one row per job and input, one column per metric), newest job
    first."""
    done = {j.id: j for j in queue(path).jobs(["done"], limit=limit, newest_first=True)}
    found = scores(path, fingerprint(path), tuple(sorted(done)))
    records = []
    for out in queue(path).outputs(kind="sr"):
        job = done.get(out.job_id)
        if job is None:
            continue
        spec = spec_of(job)
        item = out.item if not spec.upload or owns(job) else "upload"
        record = {"job": out.job_id, "model": spec.label, "input": item, "domain": spec.domain or "upload"}
        record.update({m: round(v, 4) for m, v in _item_scores(found, out.job_id, out.item).items()})
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    return frame.sort_values(["job", "input"], ascending=[False, True]) if not frame.empty else frame


_MD_SPECIAL = set("\\`*_{}[]()<>#+-.!|~$")


def md_escape(text: str) -> str:
    """``text`` with Markdown/HTML syntax characters backslash-escaped (user-supplied names)."""
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in str(text))


def _summary(job: Job, path: str) -> str:
    spec = spec_of(job)
    text = f"Job {job.id} — {job.state} — {spec.label} on {input_label(job)}"
    if job.state == "done":
        found = scores(path, fingerprint(path), (job.id,))
        parts = []
        for out in queue(path).outputs(job.id, kind="sr"):
            values = _item_scores(found, job.id, out.item)
            listed = ", ".join(f"{m.upper()} {v:.4g}" for m, v in values.items())
            parts.append(f"{out.item}: {listed}" if listed else f"{out.item}: SR written (no HR to score)")
        text += " — " + "; ".join(parts)
    elif job.state == "failed":
        text += f" — {job.error}"
    return text


def _draw(path: str) -> bool:
    """Progress of active jobs (a cancel button on this session's own), this session's job summaries,
    the jobs table. Returns whether any job is still queued or running."""
    q = queue(path)
    jobs = q.jobs(newest_first=True, limit=200)
    active = [j for j in jobs if j.state in ACTIVE_STATES]
    for job in sorted(active, key=lambda j: j.id):
        attempt = f", attempt {job.attempts}" if job.attempts > 1 else ""
        text = f"Job {job.id} ({job.state}{attempt}): {input_label(job)} — {job.message}"
        col_bar, col_btn = st.columns([5, 1])
        col_bar.progress(job.fraction, text=md_escape(text))
        if owns(job) and col_btn.button("Cancel", key=f"cancel_{job.id}", disabled=job.cancel_requested):
            q.cancel(job.id)
            st.rerun()
    mine = set(st.session_state.get("my_jobs", [])) | {j.id for j in jobs if owns(j)}
    for job in sorted((j for j in jobs if j.id in mine), key=lambda j: j.id):
        st.markdown(md_escape(_summary(job, path)))
    st.dataframe(
        jobs_frame(jobs),
        hide_index=True,
        width="stretch",
        column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0, max_value=100, format="%d%%")
        },
    )
    if active:
        ensure_worker(path)
    return bool(active)


#: seconds between two refreshes of the jobs panel while a job is active (each refresh reruns only the
#: panel, a fragment; the worker thread shares the server's CPU with every viewer's refreshes)
POLL_S = 2.0


@st.fragment(run_every=POLL_S)
def _live_panel(path: str) -> None:
    if not _draw(path):
        st.rerun(scope="app")  # all finished: redraw the page (results table) and stop polling


def jobs_panel(path: str) -> None:
    """The jobs panel: polls the queue every :data:`POLL_S` seconds while a job is queued or running."""
    if queue(path).jobs(list(ACTIVE_STATES), limit=1):
        _live_panel(path)
    else:
        _draw(path)
        if st.button("Refresh", key="jobs_refresh"):
            st.rerun()


def map_links(path: str, limit: int = 6) -> None:
    """Links opening this session's finished tile jobs in the map explorer."""
    q = queue(path)
    mine = set(st.session_state.get("my_jobs", []))
    shown = 0
    for job in q.jobs(["done"], newest_first=True, limit=100):
        spec = spec_of(job)
        if job.id not in mine or not spec.tiles:
            continue
        for tile in spec.tiles:
            if shown >= limit:
                return
            navigation.page_link(
                "map_explorer",
                label=f"Job {job.id}: open tile {tile} in the map explorer",
                query_params={
                    "tile": tile,
                    "map_model": f"job:{job.id}",
                    "map_left": f"sr|job:{job.id}|{spec.domain}",
                    "map_right": "hr",
                },
            )
            shown += 1


#: a job output kind -> (how it is named, its layer kind in mindgap_core/viz/layers.py)
OUTPUT_KINDS: dict[str, tuple[str, str]] = {
    "sr": ("SR", "reflectance"),
    "uncertainty": ("Uncertainty (std over samples)", "uncertainty"),
    "abs_error": ("Error |SR − HR|", "error"),
    "lpips_sat": ("LPIPS-Sat map", "lpips_sat"),
}


@st.cache_data(show_spinner="Rendering previews…", max_entries=32)
def previews(path: str, job_id: int, item: str) -> list[tuple[str, np.ndarray]]:
    """(kind, RGB image) of each previewable output of one input of a done job, drawn with one stretch
    per kind (``mindgap_core/viz/layers.py``); uncertainty that is zero everywhere is left out. A done
    job's outputs never change, so the job id is the cache key."""
    from mindgap_core.viz import layers as lyr

    sources = [
        lyr.LayerSource(out.kind, OUTPUT_KINDS[out.kind][0], OUTPUT_KINDS[out.kind][1],
                        queue(path).resolve(out.path))
        for out in queue(path).outputs(job_id, item=item)
        if out.kind in OUTPUT_KINDS
    ]
    shown = [s for s in sources if not lyr.blank_uncertainty(s)]
    return [(layer.source.key, layer.image) for layer in lyr.render_layers(shown)]


def outputs_panel(path: str, limit: int = 3) -> None:
    """Previews and COG downloads of every output of this session's newest finished jobs."""
    q = queue(path)
    mine = set(st.session_state.get("my_jobs", []))
    done = [j for j in q.jobs(["done"], newest_first=True, limit=200) if j.id in mine or owns(j)][:limit]
    for n, job in enumerate(done):
        outputs = q.outputs(job.id)
        title = f"Outputs of job {job.id}: {spec_of(job).label} on {input_label(job)}"
        with st.expander(md_escape(title), expanded=n == 0):
            for item in dict.fromkeys(o.item for o in outputs):
                st.markdown(f"**{md_escape(item)}**")
                images = dict(previews(path, job.id, item))
                kinds = [o for o in outputs if o.item == item]
                for column, out in zip(st.columns(max(len(kinds), 1)), kinds, strict=False):
                    name = OUTPUT_KINDS.get(out.kind, (out.kind, ""))[0]
                    if out.kind in images:
                        column.image(images[out.kind], caption=name, width="stretch")
                    file = q.resolve(out.path)
                    column.download_button(
                        f"Download {name} (COG)", data=file.read_bytes if file.is_file() else b"",
                        file_name=f"job{job.id}_{out.kind}_{Path(out.path).name}", mime="image/tiff",
                        key=f"download_{job.id}_{out.item}_{out.kind}", on_click="ignore",
                        disabled=not file.is_file(), icon=":material/download:",
                    )


def validate_upload(name: str, data: bytes) -> job_runner.UploadInfo:
    """Store an uploaded LR GeoTIFF after checking it (MindGapError with a clear message otherwise)."""
    return job_runner.save_upload(job_runner.uploads_dir(queue(folder()).folder), name, data)
