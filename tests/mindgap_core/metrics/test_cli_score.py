"""`mindgap score`: scores one pair, prints JSON, and turns bad inputs into one-line errors (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio

from mindgap_core.cli import main
from mindgap_core.io import read_raster, write_cog
from tests.fixtures.metric_tiles import demo_hr_reflectance

METRICS = "psnr,ssim,sam,ergas,cpsnr,lpips_sat,consistency_reflectance,consistency_spatial,improvement"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("score")
    full = demo_hr_reflectance()
    hr = full.replace(array=full.array[:, 64:128, 128:192].copy(), mask=None,
                      transform=full.transform @ Affine.translation(128, 64))
    sr = hr.replace(array=np.stack([gaussian_filter(b, 0.8) for b in hr.array]).astype(np.float32))
    lr = hr.replace(array=hr.array.reshape(4, 32, 2, 32, 2).mean(axis=(2, 4)).astype(np.float32),
                    transform=hr.transform @ Affine.scale(2))
    paths = {k: write_cog(r, d / f"{k}.tif") for k, r in (("sr", sr), ("hr", hr), ("lr", lr))}
    paths["hr_crop"] = write_cog(hr.replace(array=hr.array[:, :, :60].copy()), d / "hr_crop.tif")
    paths["hr_crs"] = write_cog(hr.replace(crs=CRS.from_epsg(32619)), d / "hr_crs.tif")
    paths["hr_3band"] = write_cog(hr.select(("blue", "green", "red")), d / "hr_3band.tif")
    paths["hr_dn"] = write_cog(hr.replace(array=(hr.array * 10000).astype(np.uint16), units="DN"),
                               d / "hr_dn.tif")
    return paths


def test_json_output_has_rows_with_options(files, capsys):
    code = main(["score", "--sr", str(files["sr"]), "--hr", str(files["hr"]), "--lr", str(files["lr"]),
                 "--metrics", METRICS, "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    rows = out["rows"]
    assert {r["metric"] for r in rows} == set(METRICS.split(","))
    assert all(set(r) == {"tile_id", "band", "metric", "value", "options"} for r in rows)
    assert all(r["options"]["scale"] == 2 and r["options"]["hist_match"] == "none" for r in rows)
    sr, hr = read_raster(files["sr"]), read_raster(files["hr"])
    psnr_red = next(r["value"] for r in rows if r["metric"] == "psnr" and r["band"] == "red")
    assert psnr_red == pytest.approx(peak_signal_noise_ratio(hr.band("red"), sr.band("red"), data_range=1),
                                     abs=1e-4)
    assert next(r for r in rows if r["metric"] == "lpips_sat")["options"]["lpips_sat_backbone"].startswith(
        "mindgap-lpips-sat-simsiam@")


def test_text_output_default_suite_and_maps(files, capsys, tmp_path):
    code = main(["score", "--sr", str(files["sr"]), "--hr", str(files["hr"]), "--hist-match", "hr",
                 "--maps-dir", str(tmp_path)])
    assert code == 0
    captured = capsys.readouterr()
    assert "psnr" in captured.out and "lpips_sat" in captured.out
    assert "LPIPS unavailable" in captured.err or "lpips " in captured.out
    maps = sorted(p.name for p in tmp_path.glob("*.tif"))
    assert "sr_lpips_sat.tif" in maps and "sr_ssim.tif" in maps
    m = read_raster(tmp_path / "sr_ssim.tif")
    assert m.transform == read_raster(files["hr"]).transform


@pytest.mark.parametrize("hr_key,message", [
    ("hr_crop", "is 64x64 pixels"),
    ("hr_crs", "CRS"),
    ("hr_3band", "bands"),
    ("hr_dn", "give --dn-scale"),
])
def test_mismatched_inputs_exit_2_with_one_clear_line(files, capsys, hr_key, message):
    code = main(["score", "--sr", str(files["sr"]), "--hr", str(files[hr_key]), "--metrics", "psnr"])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("mindgap score: error: ")


def test_explicit_metric_that_cannot_run_is_an_error(files, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    base = ["score", "--sr", str(files["sr"]), "--hr", str(files["hr"])]
    assert main([*base, "--metrics", "improvement"]) == 2
    assert "needs the LR image" in capsys.readouterr().err
    assert main([*base, "--metrics", "lpips"]) == 2
    assert "LPIPS unavailable" in capsys.readouterr().err
    assert main([*base, "--metrics", "fid"]) == 2
    assert "unknown metric 'fid'" in capsys.readouterr().err
