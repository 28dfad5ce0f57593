"""The real job executor (inference + scoring into the jobs folder's results store) and upload
validation, on the shipped demo tiles."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
from affine import Affine

from mindgap_core.data.manifest import read_manifest, resolve
from mindgap_core.errors import ConfigError, InputError
from mindgap_core.inference.job_runner import (
    InferenceExecutor,
    InferenceSpec,
    job_run_id,
    job_scores,
    model_choices,
    save_upload,
    submit,
    uploads_dir,
)
from mindgap_core.io import read_raster
from mindgap_core.jobs import JobCancelled, JobContext, JobQueue, run_worker
from mindgap_core.metrics.engine import Evaluator
from mindgap_core.models.presets import resolve_config
from mindgap_core.models.registry import build_model
from mindgap_core.store import ResultsStore

REPO = Path(__file__).resolve().parents[3]
MANIFEST = REPO / "data" / "demo" / "manifest.parquet"
pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


def _row(tile: str, domain: str):
    table = read_manifest(MANIFEST)
    return table[(table["tile_id"] == tile) & (table["domain"] == domain)].iloc[0]


@pytest.fixture(scope="module")
def executor() -> InferenceExecutor:
    return InferenceExecutor(device="cpu")


def _files(queue: JobQueue, job_id: int) -> dict[tuple[str, str], str]:
    return {(o.item, o.kind): o.path for o in queue.outputs(job_id)}


def test_tile_job_scores_equal_direct_evaluation(tmp_path: Path, executor: InferenceExecutor) -> None:
    queue = JobQueue(tmp_path)
    job_id = submit(
        queue,
        InferenceSpec(
            model="bicubic", tiles=("r1c2", "r4c4"), manifest=str(MANIFEST), domain="simulated_cross_sensor"
        ),
    )
    report = run_worker(queue, executor, idle_exit_s=0)
    job = queue.get(job_id)
    assert report.ran == (job_id,) and job.state == "done", job.error
    assert job.progress_done == job.progress_total == 4  # one inference window + one scoring step per tile
    files = _files(queue, job_id)
    assert set(files) == {(t, k) for t in ("r1c2", "r4c4") for k in ("sr", "abs_error", "lpips_sat")}
    assert files[("r1c2", "sr")] == f"outputs/{job_id}/sr/r1c2.tif"
    row = _row("r1c2", "simulated_cross_sensor")
    lr = read_raster(resolve(MANIFEST, row["lr_path"]))
    hr = read_raster(resolve(MANIFEST, row["hr_path"]))
    sr = read_raster(queue.resolve(files[("r1c2", "sr")]))
    # the SR is the model's output on the HR grid, georeferenced like the HR tile
    model = build_model("bicubic", None, scale=2)
    direct = model.sample(torch.from_numpy(lr.array[None]), num_samples=1)[:, 0].numpy()
    np.testing.assert_allclose(sr.array, direct[0], atol=1e-5)
    assert sr.transform.almost_equals(hr.transform) and sr.crs == hr.crs
    expected = Evaluator(["psnr", "ssim", "sam"]).score_arrays(
        direct, hr.array[None], lr.array[None], band_names=hr.band_names, tile_ids=["r1c2"]
    )
    # the scores are rows of the jobs folder's results store (the experiments' schema)
    scores = job_scores(tmp_path, [job_id])
    got = scores[scores["item"] == "r1c2"].set_index("metric")["value"].to_dict()
    assert set(got) == {"psnr", "ssim", "sam", "lpips_sat"}
    for r in expected:
        if r.band == "all":
            assert got[r.metric] == pytest.approx(r.value, rel=1e-5)
    rows = ResultsStore(tmp_path).rows({"run_id": job_run_id(job_id)})
    assert len(rows) == 2 * (5 + 5 + 1 + 1)  # PSNR and SSIM per band and overall, SAM, LPIPS-Sat
    first = rows[rows["tile_id"] == "r1c2"].iloc[0]
    assert (first["experiment"], first["model"], first["method"], first["regime"], first["split"]) == (
        "on-demand", "bicubic", "bicubic", "none", "test"
    )
    assert set(rows["test_domain"]) == {"simulated_cross_sensor"} and set(rows["sr_path"]) == {
        files[("r1c2", "sr")], files[("r4c4", "sr")]
    }
    lp = rows[(rows["metric"] == "lpips_sat") & (rows["tile_id"] == "r1c2")].iloc[0]
    assert lp["map_path"] == files[("r1c2", "lpips_sat")]
    assert ResultsStore(tmp_path).run(job_run_id(job_id)).finished_at is not None
    error = read_raster(queue.resolve(files[("r1c2", "abs_error")]))
    np.testing.assert_allclose(error.array, np.abs(sr.array - hr.array), atol=1e-6)
    assert ("r1c2", "uncertainty") not in files  # one sample of a deterministic model


def test_a_rerun_of_a_job_keeps_its_scores(tmp_path: Path, executor: InferenceExecutor) -> None:
    """A worker that dies after a job wrote its scores but before it was marked done: the job runs again
    (same id) and writes the same rows again, which the append-only store accepts as a no-op."""
    queue = JobQueue(tmp_path)
    job_id = submit(queue, InferenceSpec(model="bicubic", tiles=("r0c0",), manifest=str(MANIFEST),
                                         domain="synthetic"))
    job = queue.claim("first-worker")
    executor(job, JobContext(queue, job))  # ... then the worker "dies"
    shard = ResultsStore(tmp_path).shard_path("job=" + str(job_id))
    assert shard.is_file()
    before = ResultsStore(tmp_path).rows({"run_id": job_run_id(job_id)})
    report = run_worker(queue, executor, idle_exit_s=0)
    assert report.requeued == (job_id,) and queue.get(job_id).state == "done"
    after = ResultsStore(tmp_path).rows({"run_id": job_run_id(job_id)})
    pd.testing.assert_frame_equal(before, after)


def test_saved_stochastic_model_writes_uncertainty(tmp_path: Path, executor: InferenceExecutor) -> None:
    torch.manual_seed(0)
    folder = build_model("sr3", resolve_config("sr3", "tiny"), scale=2).save_pretrained(
        tmp_path / "models" / "sr3" / "synthetic-only"
    )
    choices = model_choices(tmp_path / "models")
    assert [c.model for c in choices] == ["bicubic", str(folder)]
    assert choices[1].label == "sr3/synthetic-only"
    queue = JobQueue(tmp_path / "jobs")
    job_id = submit(
        queue,
        InferenceSpec(
            model=str(folder), tiles=("r0c2",), manifest=str(MANIFEST), domain="synthetic", samples=2, steps=2
        ),
    )
    run_worker(queue, executor, idle_exit_s=0)
    job = queue.get(job_id)
    assert job.state == "done", job.error
    files = _files(queue, job_id)
    std = read_raster(queue.resolve(files[("r0c2", "uncertainty")]))
    assert std.shape == (64, 64) and float(std.array.max()) > 0  # two different samples
    with rasterio.open(queue.resolve(files[("r0c2", "sr")])) as ds:
        assert ds.tags()["model_path"] == str(folder) and ds.tags()["num_samples"] == "2"
    rows = ResultsStore(tmp_path / "jobs").rows({"run_id": job_run_id(job_id), "metric": "psnr"})
    assert set(rows["model"]) == {"sr3/synthetic-only"} and set(rows["method"]) == {"sr3"}
    assert set(rows["uncertainty_path"]) == {files[("r0c2", "uncertainty")]}
    assert {json.loads(o)["samples"] for o in rows["options"]} == {2}


def test_unknown_tile_fails_the_job_with_a_clear_message(tmp_path: Path, executor: InferenceExecutor) -> None:
    queue = JobQueue(tmp_path)
    job_id = submit(queue, InferenceSpec(model="bicubic", tiles=("r99c99",), manifest=str(MANIFEST),
                                         domain="synthetic"))
    run_worker(queue, executor, idle_exit_s=0)
    job = queue.get(job_id)
    assert job.state == "failed" and "r99c99" in job.error and str(MANIFEST) in job.error


def _write(path: Path, array: np.ndarray, *, crs: str | None = "EPSG:32618", names=None) -> bytes:
    profile = {
        "driver": "GTiff",
        "width": array.shape[2],
        "height": array.shape[1],
        "count": array.shape[0],
        "dtype": str(array.dtype),
        "transform": Affine(10, 0, 792988, 0, -10, 2050382),
    }
    if crs:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(array)
        for i, name in enumerate(names or [], start=1):
            ds.set_band_description(i, name)
    return path.read_bytes()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: b"not a tiff at all" * 10, "not a readable GeoTIFF"),
        (lambda p: _write(p, np.full((3, 8, 8), 0.1, np.float32)), r"has 3 band\(s\)"),
        (
            lambda p: _write(p, np.full((4, 8, 8), 0.1, np.float32), crs=None),
            "no coordinate reference system",
        ),
        (lambda p: _write(p, np.full((4, 8, 8), 1200, np.uint16)), "integer digital numbers"),
        (lambda p: _write(p, np.full((4, 8, 8), 1200.0, np.float32)), "physical range"),
        (
            lambda p: _write(p, np.full((4, 8, 8), 0.1, np.float32), names=["red", "green", "blue", "swir"]),
            "band names",
        ),
        (lambda p: _write(p, np.full((4, 40, 8), 0.1, np.float32)), "limited to 32 × 32"),
    ],
)
def test_bad_uploads_are_refused_and_nothing_is_kept(tmp_path: Path, make, message: str) -> None:
    data = make(tmp_path / "source.tif")
    uploads = tmp_path / "uploads"
    with pytest.raises(InputError, match=message) as info:
        save_upload(uploads, "my<scene>.tif", data, max_side=32)
    assert str(info.value).startswith("my<scene>.tif: ")
    assert not uploads.exists() or list(uploads.iterdir()) == []


def test_oversized_upload_is_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="limited to 1 MB"):
        save_upload(tmp_path / "uploads", "big.tif", b"0" * (2**20 + 1), max_bytes=2**20)
    assert not (tmp_path / "uploads").exists()


def test_upload_job_runs_without_scores(tmp_path: Path, executor: InferenceExecutor) -> None:
    row = _row("r2c2", "simulated_cross_sensor")
    src = resolve(MANIFEST, row["lr_path"])
    queue = JobQueue(tmp_path)
    info = save_upload(uploads_dir(tmp_path), "scene.tif", src.read_bytes())
    assert info.path.parent == tmp_path / "uploads" and (info.rows, info.cols) == (32, 32)
    assert info.crs == "EPSG:32618"
    job_id = submit(queue, InferenceSpec(model="bicubic", upload=str(info.path), upload_name="scene.tif"))
    run_worker(queue, executor, idle_exit_s=0)
    assert queue.get(job_id).state == "done", queue.get(job_id).error
    (out,) = queue.outputs(job_id)
    assert (out.item, out.kind) == ("scene.tif", "sr")
    assert job_scores(tmp_path, [job_id]).empty  # no HR, no score
    assert read_raster(queue.resolve(out.path)).shape == (64, 64)
    shutil.rmtree(queue.output_dir(job_id))


def test_spec_checks_and_payload_round_trip(tmp_path: Path) -> None:
    spec = InferenceSpec(model="bicubic", tiles=("r0c0", "r0c1"), manifest="m", domain="synthetic", steps=3)
    assert InferenceSpec.from_payload(spec.payload()) == spec
    queue = JobQueue(tmp_path)
    job = queue.get(submit(queue, spec, owner="s1"))
    assert job.owner == "s1" and InferenceSpec.from_payload(job.payload) == spec
    assert spec.input_label == "r0c0, r0c1 (synthetic)" and spec.label == "bicubic"
    for bad, message in [
        (InferenceSpec(model="bicubic"), "either tiles or one uploaded file"),
        (InferenceSpec(model="bicubic", tiles=("a",)), "manifest and the LR domain"),
        (InferenceSpec(model="bicubic", tiles=("a", "a"), manifest="m", domain="d"), "tiles repeat"),
        (InferenceSpec(model="bicubic", upload="u", samples=0), "samples"),
    ]:
        with pytest.raises(ConfigError, match=message):
            submit(queue, bad)
    with pytest.raises(ConfigError, match="not an inference job payload"):
        InferenceSpec.from_payload({"item": "x"})
    assert len(queue.jobs()) == 1


@pytest.mark.slow  # two `mindgap worker` processes (torch import, model, LPIPS-Sat backbone)
def test_worker_command_runs_the_queue_then_exits(tmp_path: Path) -> None:
    import subprocess
    import sys

    from mindgap_core.jobs import WorkerLock

    queue = JobQueue(tmp_path)
    ids = [
        submit(queue, InferenceSpec(model="bicubic", tiles=(t,), manifest=str(MANIFEST), domain="synthetic"))
        for t in ("r0c2", "r0c3")
    ]
    command = [sys.executable, "-m", "mindgap_core", "worker", "--jobs-dir", str(tmp_path), "--device", "cpu"]
    with WorkerLock(queue.lock_path) as other:  # another worker holds the lock
        assert other.try_acquire()
        busy = subprocess.run([*command, "--no-wait"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert busy.returncode == 1 and "another worker holds" in busy.stderr
    assert [j.state for j in queue.jobs()] == ["queued", "queued"]
    done = subprocess.run(
        [*command, "--exit-when-idle", "0"], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    assert f"job {ids[0]}: done" in done.stderr and "ran 2 job(s)" in done.stderr
    assert [j.state for j in queue.jobs()] == ["done", "done"]


def test_bring_your_own_cards_are_job_choices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model card in $MINDGAP_MODELS is offered beside the models of the models root, by its name."""
    import yaml

    card = tmp_path / "mine" / "model_card.yaml"
    card.parent.mkdir()
    card.write_text(yaml.safe_dump({
        "name": "toy-bicubic", "format": "entry_point",
        "entry_point": "tests.fixtures.byo_sr.models:bicubic_sr",
        "bands": ["red", "green", "blue", "nir"], "scale": 2,
        "input": {"normalisation": "none", "value_range": [0.0, 1.0]}, "stochastic": False,
    }))
    (tmp_path / "mine" / "broken").mkdir()
    (tmp_path / "mine" / "broken" / "model_card.yaml").write_text("name: [unclosed")
    monkeypatch.setenv("MINDGAP_MODELS", str(tmp_path / "mine"))
    choices = model_choices(tmp_path / "no_models")
    assert [(c.label, c.model) for c in choices] == [("bicubic (no weights)", "bicubic"),
                                                      ("toy-bicubic", str(card))]


class _CancelAfter(JobContext):
    """A job context whose cancellation is requested once ``after`` progress steps were reported."""

    def __init__(self, queue: JobQueue, job, after: int) -> None:
        super().__init__(queue, job)
        self.after = after
        self.seen: list[tuple[int, int]] = []

    def progress(self, done: int, total: int, message: str | None = None) -> None:
        self.seen.append((done, total))
        if len(self.seen) > self.after:
            self.cancelled.set()
        super().progress(done, total, message)


def test_progress_counts_sampling_steps_and_cancel_stops_between_steps(
    tmp_path: Path, executor: InferenceExecutor
) -> None:
    torch.manual_seed(0)
    folder = build_model("sr3", resolve_config("sr3", "tiny"), scale=2).save_pretrained(tmp_path / "sr3")
    queue = JobQueue(tmp_path / "jobs")
    spec = InferenceSpec(model=str(folder), tiles=("r0c2",), manifest=str(MANIFEST), domain="synthetic",
                         steps=6)
    job = queue.get(submit(queue, spec))
    model = executor.model(str(folder), 2)
    calls: list[int] = []
    original = model._sample

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    model._sample = counted
    try:
        ctx = _CancelAfter(queue, job, after=3)
        with pytest.raises(JobCancelled):
            executor(job, ctx)
    finally:
        del model._sample
    windows = 1  # the 32 x 32 LR tile is one 64-pixel inference window
    total = windows * 6 + 1  # six sampling steps, then scoring against HR
    # one report per sampling step; cancelled at the 4th report: after step 2 of 6, inside the first
    # (and only) model call
    assert ctx.seen == [(0, total), (0, total), (1, total), (2, total)] and len(calls) == 1
    assert not (queue.output_dir(job.id) / "sr" / "r0c2.tif").exists()
