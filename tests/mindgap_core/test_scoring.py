"""The one scoring path: samples or SR in, metric rows, rasters and results-store rows out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mindgap_core.errors import ConfigError
from mindgap_core.io import read_raster
from mindgap_core.metrics.engine import Evaluator
from mindgap_core.metrics.maps import metric_maps
from mindgap_core.scoring import MapOptions, score_pair, store_rows, write_rasters
from mindgap_core.store.schema import validate_results
from tests.fixtures.metric_tiles import demo_hr_reflectance

METRICS = ["psnr", "ssim", "sam", "ergas"]


@pytest.fixture(scope="module")
def tiles():
    """Two HR tiles (the second with a masked corner), their LR, and three noisy samples of each."""
    full = demo_hr_reflectance()
    hr = [full.replace(array=full.array[:, r : r + 32, 0:32].copy(), mask=None) for r in (0, 32)]
    mask = np.ones((32, 32), bool)
    mask[:4, :4] = False
    hr[1] = hr[1].replace(mask=mask)
    lr = [h.replace(array=h.array.reshape(4, 16, 2, 16, 2).mean(axis=(2, 4)).astype(np.float32), mask=None)
          for h in hr]
    rng = np.random.default_rng(0)
    stacked = np.stack([h.array for h in hr]).astype(np.float32)
    samples = stacked[:, None] + rng.normal(0, 0.01, (2, 3, *stacked.shape[1:])).astype(np.float32)
    return hr, lr, samples


def test_samples_give_their_mean_std_scores_and_maps(tiles) -> None:
    hr, lr, samples = tiles
    ev = Evaluator(METRICS)
    scored = score_pair(ev, hr, samples=samples, lr=lr, tile_ids=["a", "b"], maps=["abs_error", "sam"],
                        tags={"model": "m"})
    mean = torch.from_numpy(samples).mean(dim=1).numpy()
    std = torch.from_numpy(samples).std(dim=1, unbiased=False).numpy()
    valid = np.stack([h.valid for h in hr])
    expected = ev.score_arrays(mean, np.stack([h.array for h in hr]), np.stack([x.array for x in lr]),
                               band_names=hr[0].band_names, tile_ids=["a", "b"], valid=valid)
    assert list(scored.rows) == expected  # the masked corner of "b" is left out of its scores
    a, b = scored.tiles
    np.testing.assert_array_equal(b.sr.array, mean[1])
    np.testing.assert_array_equal(b.uncertainty.array, std[1])
    assert b.sr.transform == hr[1].transform and (b.sr.valid == hr[1].valid).all()
    assert b.sr.tags == {"model": "m", "description": "SR: per-pixel mean of 3 samples"}
    assert b.uncertainty.tags["description"] == "uncertainty: per-pixel std of 3 samples"
    want = metric_maps(b.sr, hr[1], ["abs_error", "sam"])
    assert list(b.maps) == ["abs_error", "sam"]
    np.testing.assert_array_equal(b.maps["sam"].array, want["sam"].array)
    assert list(a.rasters()) == ["sr", "uncertainty", "abs_error", "sam"]


def test_sr_rasters_score_as_the_samples_they_are_the_mean_of(tiles) -> None:
    hr, lr, samples = tiles
    ev = Evaluator(METRICS)
    from_samples = score_pair(ev, hr, samples=samples, lr=lr, tile_ids=["a", "b"])
    sr = [t.sr for t in from_samples.tiles]
    from_sr = score_pair(ev, hr, sr, lr=lr, tile_ids=["a", "b"],
                         maps=["abs_error"], map_options=MapOptions(hist_match=True))
    assert from_sr.rows == from_samples.rows
    assert all(t.uncertainty is None for t in from_sr.tiles)
    assert from_sr.tiles[0].maps["abs_error"].tags["options"] == json.dumps(
        {"data_range": 1.0, "hist_match": "hr"})
    one = score_pair(ev, hr, samples=samples[:, :1], lr=lr, tile_ids=["a", "b"])
    assert all(t.uncertainty is None for t in one.tiles)  # one sample: no spread


def test_bad_calls_are_config_errors(tiles) -> None:
    hr, lr, samples = tiles
    ev = Evaluator(["psnr"])
    with pytest.raises(ConfigError, match="exactly one of them"):
        score_pair(ev, hr, tile_ids=["a", "b"])
    with pytest.raises(ConfigError, match="distinct tile ids"):
        score_pair(ev, hr, samples=samples, tile_ids=["a", "a"])
    with pytest.raises(ConfigError, match="as many SR"):
        score_pair(ev, hr, [hr[0]], tile_ids=["a", "b"])
    with pytest.raises(ConfigError, match="samples must be"):
        score_pair(ev, hr, samples=samples[:, 0], tile_ids=["a", "b"])


def test_store_rows_follow_the_results_schema(tiles, tmp_path: Path) -> None:
    hr, lr, samples = tiles
    scored = score_pair(Evaluator(["psnr", "sam"]), hr, samples=samples, lr=lr, tile_ids=["a", "b"])
    fields = {"run_id": "r1", "experiment": "e", "model": "m/x", "method": "m", "regime": "x",
              "train_domain": "synthetic", "train_blocks": None, "test_domain": "synthetic"}
    paths = {"a": {"sr": "maps/a_sr.tif", "uncertainty": "maps/a_std.tif", "sam": "maps/a_sam.tif"}}
    frame = store_rows(scored.rows, fields=fields, split={"a": "test", "b": "val"},
                       options={"samples": 3, "seed": 0}, paths=paths)
    table = validate_results(frame, source="test rows").to_pandas()
    assert len(table) == len(scored.rows)
    a_sam = table[(table["tile_id"] == "a") & (table["metric"] == "sam")].iloc[0]
    assert (a_sam["map_path"], a_sam["sr_path"], a_sam["split"]) == ("maps/a_sam.tif", "maps/a_sr.tif",
                                                                     "test")
    assert not a_sam["higher_better"] and a_sam["aggregate"] == "mean"
    options = json.loads(a_sam["options"])
    assert options["samples"] == 3 and options["seed"] == 0 and options["hist_match"] == "none"
    b_psnr = table[(table["tile_id"] == "b") & (table["metric"] == "psnr")]
    assert set(b_psnr["sr_path"]) == {""} and set(b_psnr["split"]) == {"val"}
    assert b_psnr["higher_better"].all()
    written = write_rasters(scored.tiles[0].rasters(), lambda kind: tmp_path / kind / "a.tif")
    assert sorted(written) == ["sr", "uncertainty"]
    np.testing.assert_allclose(read_raster(written["sr"]).array, scored.tiles[0].sr.array)


def test_samples_reach_the_calibration_scores(tiles) -> None:
    """The samples given to score_pair are what the calibration metrics see: scored through the one path,
    they equal the engine's own scores of the same samples; from the SR alone they are skipped."""
    hr, lr, samples = tiles
    names = ["psnr", "coverage_90", "uncertainty_auroc", "spread"]
    ev = Evaluator(names)
    scored = score_pair(ev, hr, samples=samples, lr=lr, tile_ids=["a", "b"])
    mean = torch.from_numpy(samples).mean(dim=1).numpy()
    expected = ev.score_arrays(mean, np.stack([h.array for h in hr]), np.stack([x.array for x in lr]),
                               band_names=hr[0].band_names, tile_ids=["a", "b"],
                               valid=np.stack([h.valid for h in hr]), samples=samples)
    assert list(scored.rows) == expected
    assert {"coverage_90", "uncertainty_auroc", "spread"} <= {r.metric for r in scored.rows}
    single = score_pair(ev, hr, sr=[t.sr for t in scored.tiles], lr=lr, tile_ids=["a", "b"])
    assert {r.metric for r in single.rows} == {"psnr"}
