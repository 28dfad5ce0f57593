"""`mindgap pairs` refuses, before reading a pixel, an HR scene too large for the memory budget."""

from __future__ import annotations

import resource
from pathlib import Path

import numpy as np
import pytest
import rasterio

from mindgap_core.cli import main
from mindgap_core.data.manifest import MANIFEST_NAME
from tests.fixtures.pairs import make_pair_files


def test_large_hr_scene_is_refused_with_its_size(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    files = make_pair_files(tmp_path / "in", size_lr=(64, 64))
    big = tmp_path / "mosaic_20000.tif"
    with rasterio.open(files.s2_path) as s2:  # a 20000 x 20000 x 4 HR on the S2's ground, never written
        profile = {"driver": "GTiff", "width": 20000, "height": 20000, "count": 4, "dtype": "float32",
                   "tiled": True, "SPARSE_OK": True, "BIGTIFF": "YES", "crs": s2.crs,
                   "transform": s2.transform @ rasterio.Affine.scale(0.5)}
    with rasterio.open(big, "w", **profile) as dst:
        dst.write(np.zeros((4, 256, 256), np.float32), window=rasterio.windows.Window(0, 0, 256, 256))
    monkeypatch.setenv("MINDGAP_MEMORY_BUDGET", "16G")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code = main(["pairs", "--s2", str(files.s2_path), "--ps", str(big), "--scale", "2",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert str(big) in err and "20000 x 20000 pixels x 4 bands" in err and "16.0 GiB" in err
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB: nothing allocated
    assert not (tmp_path / "out" / MANIFEST_NAME).exists()

    monkeypatch.setenv("MINDGAP_MEMORY_BUDGET", "1M")  # the fixture pair itself, with a tiny budget
    assert main(["pairs", "--s2", str(files.s2_path), "--ps", str(files.ps_path), "--scale", "2",
                 "--out", str(tmp_path / "out")]) == 2
    assert "MINDGAP_MEMORY_BUDGET" in capsys.readouterr().err
