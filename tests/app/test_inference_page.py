"""AppTest of the on-demand inference page: submitting queues a job in the shared queue, bad input
queues nothing, cancel works, finished jobs show their scores."""

from __future__ import annotations

from pathlib import Path

import pytest

from mindgap_core.inference.job_runner import InferenceExecutor, job_scores, spec_of
from mindgap_core.jobs import JobQueue, run_worker
from tests.app.conftest import run_page

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "data" / "demo" / "manifest.parquet"


@pytest.fixture()
def jobs_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh jobs folder; no worker thread (jobs stay queued until the test runs them)."""
    monkeypatch.setenv("MINDGAP_JOBS_DIR", str(tmp_path / "jobs"))
    monkeypatch.setenv("MINDGAP_WORKER", "off")
    return tmp_path / "jobs"


def _submit(at):
    at.button(key="inf_submit").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_submit_queues_the_tile_from_the_url(jobs_folder: Path) -> None:
    at = run_page("inference", None, tile="r1c2")
    assert at.multiselect(key="inf_tiles").value == ["r1c2"]
    assert at.selectbox(key="inf_domain").value == "simulated_cross_sensor"
    assert at.selectbox(key="inf_model").value.model == "bicubic"
    at.number_input(key="inf_samples").set_value(3)
    at.number_input(key="inf_steps").set_value(5)
    _submit(at)
    assert not at.exception, [e.value for e in at.exception]
    (job,) = JobQueue(jobs_folder).jobs()
    spec = spec_of(job)
    assert [s.value for s in at.success] == [f"Job {job.id} queued."]
    assert job.state == "queued" and spec.tiles == ("r1c2",) and spec.model == "bicubic"
    assert spec.domain == "simulated_cross_sensor" and spec.manifest == str(MANIFEST)
    assert (spec.samples, spec.steps) == (3, 5) and job.owner
    bars = [p.proto.text.replace("\\", "") for p in at.get("progress")]  # markdown-escaped text
    assert any(text.startswith(f"Job {job.id} (queued): r1c2") for text in bars), bars
    assert "MINDGAP_WORKER=off" in at.caption[0].value  # says who will run it
    shown = at.dataframe[0].value
    assert shown["job"].tolist() == [job.id] and shown["state"].tolist() == ["queued"]


def test_second_session_sees_the_same_queue_in_order(jobs_folder: Path) -> None:
    first = run_page("inference", None, tile="r0c0")
    _submit(first)
    second = run_page("inference", None, tile="r0c1")
    _submit(second)
    jobs = JobQueue(jobs_folder).jobs()
    assert [spec_of(j).tiles for j in jobs] == [("r0c0",), ("r0c1",)]
    assert jobs[0].owner != jobs[1].owner  # two browser sessions
    assert second.dataframe[0].value["job"].tolist() == [jobs[1].id, jobs[0].id]  # newest first


def test_bad_input_queues_nothing(jobs_folder: Path) -> None:
    at = run_page("inference", None)
    assert at.multiselect(key="inf_tiles").value == []
    _submit(at)
    assert [e.value for e in at.error] == ["Not queued: choose at least one tile"]
    at.radio(key="inf_source").set_value("upload").run()
    _submit(at)
    assert [e.value for e in at.error] == ["Not queued: choose a GeoTIFF to upload"]
    assert JobQueue(jobs_folder).jobs() == []


def test_cancel_button_cancels_a_queued_job(jobs_folder: Path) -> None:
    at = _submit(run_page("inference", None, tile="r2c2"))
    (job,) = JobQueue(jobs_folder).jobs()
    at.button(key=f"cancel_{job.id}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert JobQueue(jobs_folder).get(job.id).state == "cancelled"
    assert not any(b.key == f"cancel_{job.id}" for b in at.button)  # no longer active


def test_finished_job_shows_its_scores(jobs_folder: Path) -> None:
    at = _submit(run_page("inference", None, tile="r4c4"))
    queue = JobQueue(jobs_folder)
    run_worker(queue, InferenceExecutor(device="cpu"), idle_exit_s=0)
    (job,) = queue.jobs()
    assert job.state == "done", job.error
    scores = job_scores(jobs_folder, [job.id]).set_index("metric")["value"]  # the jobs' results store
    at.run()
    summary = [m.value for m in at.markdown if m.value.startswith(f"Job {job.id}")]
    assert (
        summary
        and "done" in summary[0]
        and f"PSNR {scores['psnr']:.4g}".replace(".", "\\.") in summary[0]
    )
    table = at.table[0].value
    assert table.loc[job.id, "input"] == "r4c4"
    assert table.loc[job.id, "psnr"] == pytest.approx(round(scores["psnr"], 4))
    assert table.loc[job.id, "ssim"] == pytest.approx(round(scores["ssim"], 4))


def test_only_the_owner_cancels_and_sees_upload_names(jobs_folder: Path) -> None:
    from mindgap_core.inference.job_runner import InferenceSpec

    owner = _submit(run_page("inference", None, tile="r2c2"))
    queue = JobQueue(jobs_folder)
    (mine,) = queue.jobs()
    theirs = queue.submit(InferenceSpec(model="bicubic", upload=str(jobs_folder / "uploads" / "x.tif"),
                                        upload_name="secret_field_7.tif").payload(), owner="another-session")
    owner.run()
    assert not owner.exception, [e.value for e in owner.exception]
    keys = {b.key for b in owner.button}
    assert f"cancel_{mine.id}" in keys and f"cancel_{theirs}" not in keys
    table = owner.dataframe[0].value.set_index("job")
    assert table.loc[theirs, "input"] == "upload" and table.loc[mine.id, "input"].startswith("r2c2")
    assert table["attempt"].tolist() == [0, 0]  # not started yet
    shown = " ".join(str(e.proto) for e in owner.get("progress")) + " ".join(m.value for m in owner.markdown)
    assert "secret_field_7" not in shown and "upload" in shown
    viewer = run_page("inference", None)  # another browser session
    assert not any(b.key and b.key.startswith("cancel_") for b in viewer.button)
    assert "secret_field_7" not in viewer.dataframe[0].value.to_string()
    queue.cancel(theirs)


def test_a_requeued_job_shows_its_attempt(jobs_folder: Path) -> None:
    at = _submit(run_page("inference", None, tile="r3c3"))
    queue = JobQueue(jobs_folder)
    (job,) = queue.jobs()
    queue.claim("dead-worker")
    assert queue.requeue_stale(None) == [job.id]  # its worker died: back in the queue
    queue.claim("second-worker")
    at.run()
    assert at.dataframe[0].value["attempt"].tolist() == [2]
    bars = [p.proto.text.replace("\\", "") for p in at.get("progress")]
    assert any(f"Job {job.id} (running, attempt 2)" in text for text in bars), bars


def test_finished_job_offers_a_preview_and_a_download_of_every_output(jobs_folder: Path) -> None:
    at = _submit(run_page("inference", None, tile="r4c3"))
    queue = JobQueue(jobs_folder)
    run_worker(queue, InferenceExecutor(device="cpu", lpips_sat=False), idle_exit_s=0)
    (job,) = queue.jobs()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    kinds = {o.kind for o in queue.outputs(job.id)}
    assert {"sr", "abs_error"} <= kinds
    downloads = {d.key for d in at.get("download_button")}
    assert downloads == {f"download_{job.id}_r4c3_{kind}" for kind in kinds}
    captions = [c for image in at.get("image") for c in image.captions]
    assert {"SR", "Error |SR − HR|"} <= set(captions)  # previews
