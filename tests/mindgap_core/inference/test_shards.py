"""One scene across several processes: the same COG, byte for byte, as a single-process run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import rasterio

from mindgap_core.inference import run_inference
from mindgap_core.inference.tiled import Shard
from mindgap_core.models import build_model
from mindgap_core.models.presets import resolve_config
from tests.fixtures import REPO_ROOT, S2_PATCH, demo_source
from tests.mindgap_core.inference.toys import ConvUpModel, NoisyModel

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """160 x 200 pixels of the real Sentinel-2 patch (uint16 DN), with a no-data corner that holds a
    whole tile (so that skipped tiles are part of the deal)."""
    with rasterio.open(demo_source(S2_PATCH)) as src:
        dn = src.read(window=((20, 180), (40, 240)))
        profile = {"driver": "GTiff", "width": 200, "height": 160, "count": 4, "dtype": dn.dtype.name,
                   "nodata": 0}
    dn[:, :70, :70] = 0
    path = tmp_path_factory.mktemp("scene") / "s2_patch.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(dn)
        dst.descriptions = ("B02", "B03", "B04", "B08")
    return path


def pixels(path: Path) -> bytes:
    with rasterio.open(path) as ds:
        return ds.read().tobytes() + ds.read_masks().tobytes()


class ThreadGather:
    """``gather`` for ranks that are threads of this process (a barrier-guarded exchange)."""

    def __init__(self, world: int) -> None:
        self.world = world
        self.slots: list[object] = [None] * world
        self.barrier = threading.Barrier(world)

    def for_rank(self, rank: int):  # type: ignore[no-untyped-def]
        def gather(obj: object) -> list[object]:
            self.slots[rank] = obj
            self.barrier.wait()
            out = list(self.slots)
            self.barrier.wait()
            return out

        return gather


def run_ranks(model: object, scene: Path, out: Path, world: int, **kwargs: object) -> None:
    exchange = ThreadGather(world)
    errors: list[BaseException] = []

    def rank_main(rank: int) -> None:
        try:
            run_inference(model, scene, out, shard=Shard(rank, world, exchange.for_rank(rank)), **kwargs)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
            exchange.barrier.abort()

    threads = [threading.Thread(target=rank_main, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_write_the_single_process_bytes(scene: Path, tmp_path: Path, world: int) -> None:
    common = {"tile": 48, "overlap": 8, "dn_scale": 1e-4, "allow_no_crs": True, "batch_size": 3}
    for model, extra in ((ConvUpModel(), {}), (NoisyModel(), {"num_samples": 2, "seed": 5})):
        single = tmp_path / f"single_{model.method}.tif"
        run_inference(model, scene, single, uncertainty_path=tmp_path / f"single_{model.method}_std.tif",
                      **common, **extra)
        shared = tmp_path / f"shared_{model.method}.tif"
        run_ranks(model, scene, shared, world, uncertainty_path=tmp_path / f"shared_{model.method}_std.tif",
                  **common, **extra)
        assert pixels(shared) == pixels(single)
        assert pixels(tmp_path / f"shared_{model.method}_std.tif") == pixels(
            tmp_path / f"single_{model.method}_std.tif")
        with rasterio.open(single) as ds:
            assert np.isnan(ds.read(1)[:20, :20]).all() and np.isfinite(ds.read(1)[-20:, -20:]).all()


def test_rank_gets_no_output_of_its_own(scene: Path, tmp_path: Path) -> None:
    run_ranks(ConvUpModel(), scene, tmp_path / "sr.tif", 2, tile=64, overlap=8, dn_scale=1e-4,
              allow_no_crs=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sr.tif"]  # one COG, no staging left


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("accelerate") is None, reason="accelerate launcher not on PATH")
def test_accelerate_launch_two_cpu_processes_equals_one(scene: Path, tmp_path: Path) -> None:
    model_dir = build_model("sr3", resolve_config("sr3", "tiny"), scale=2).save_pretrained(tmp_path / "sr3")
    argv = ["-m", "mindgap_core", "infer", "--model", str(model_dir), "--input", str(scene), "--tile", "64",
            "--overlap", "8", "--samples", "2", "--steps", "1", "--dn-scale", "0.0001", "--allow-no-crs",
            "--device", "cpu", "--batch-size", "2"]
    # both runs in fresh processes with one thread each: same arithmetic, so any byte of difference
    # would come from how the scene was shared
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO_ROOT)}
    one = [sys.executable, *argv, "--out", str(tmp_path / "one.tif"),
           "--uncertainty", str(tmp_path / "one_std.tif")]
    two = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", *argv,
           "--out", str(tmp_path / "two.tif"), "--uncertainty", str(tmp_path / "two_std.tif")]
    for cmd in (one, two):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.count("wrote ") == 1  # under the launcher, only rank 0 reports
    assert pixels(tmp_path / "two.tif") == pixels(tmp_path / "one.tif")
    assert pixels(tmp_path / "two_std.tif") == pixels(tmp_path / "one_std.tif")
    with rasterio.open(tmp_path / "two_std.tif") as ds:
        assert np.nanmax(ds.read()) > 0  # stochastic: the two samples differ
