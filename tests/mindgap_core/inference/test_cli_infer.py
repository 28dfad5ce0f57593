"""``mindgap infer`` with real registry models (bicubic, regression) saved by save_pretrained."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from rio_cogeo.cogeo import cog_validate

from mindgap_core.cli import main
from mindgap_core.models import build_model, load_model
from mindgap_core.models.presets import resolve_config
from tests.fixtures import S2_PATCH, demo_source
from tests.mindgap_core.inference.toys import CRS_UTM, smooth_scene, write_scene

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


@pytest.fixture(scope="module")
def bicubic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = build_model("bicubic", resolve_config("bicubic", "tiny"), scale=2)
    return model.save_pretrained(tmp_path_factory.mktemp("models") / "bicubic")


def test_infer_real_s2_patch_with_bicubic_equals_untiled(bicubic_dir: Path, tmp_path: Path) -> None:
    # Real Sentinel-2 DN patch without georeferencing; bicubic's receptive field (2 LR px) fits the
    # guard band of overlap 8, so the tiled COG equals the model run on the whole patch at once.
    src = demo_source(S2_PATCH)
    out, unc = tmp_path / "sr.tif", tmp_path / "std.tif"
    code = main([
        "infer", "--model", str(bicubic_dir), "--input", str(src), "--out", str(out),
        "--uncertainty", str(unc), "--tile", "64", "--overlap", "8", "--samples", "2",
        "--dn-scale", "0.0001", "--allow-no-crs",
        "--device", "cpu",
    ])  # fmt: skip
    assert code == 0
    assert cog_validate(str(out), quiet=True)[0] and cog_validate(str(unc), quiet=True)[0]
    with rasterio.open(src) as ds:
        lr = ds.read().astype(np.float32) * np.float32(1e-4)
    expected = load_model(bicubic_dir).sample(torch.from_numpy(lr)[None])[0, 0].numpy()
    with rasterio.open(out) as ds:
        assert ds.crs is None and ds.transform.almost_equals(Affine.scale(0.5))
        assert ds.descriptions == ("blue", "green", "red", "nir")
        assert ds.tags()["description"] == "SR output of bicubic"
        assert ds.tags()["model_path"] == str(bicubic_dir)
        np.testing.assert_allclose(ds.read(), expected, atol=1e-5, rtol=0)
    with rasterio.open(unc) as ds:
        np.testing.assert_array_equal(ds.read(), 0.0)


def _regression_dir(folder: Path) -> Path:
    torch.manual_seed(0)
    model = build_model("regression", resolve_config("regression", "tiny"), scale=2)
    return model.save_pretrained(folder / "regression")


def test_infer_georeferenced_scene_with_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir = _regression_dir(tmp_path)
    src = write_scene(tmp_path / "lr.tif", smooth_scene(48, 40))
    out = tmp_path / "sr.tif"
    argv = ["infer", "--model", str(model_dir), "--input", str(src), "--out", str(out), "--tile", "32"]
    assert main(argv) == 0
    assert "regression x2, 4 tiles" in capsys.readouterr().out
    with rasterio.open(out) as ds:
        assert ds.crs == CRS_UTM and (ds.height, ds.width) == (96, 80) and ds.res == (10.0, 10.0)
        assert np.isfinite(ds.read()).all()


def test_missing_checkpoint_file_is_exit_2_without_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir = _regression_dir(tmp_path)
    for weights in model_dir.rglob("*.safetensors"):
        weights.unlink()
    src = write_scene(tmp_path / "lr.tif", smooth_scene(40, 40))
    code = main(["infer", "--model", str(model_dir), "--input", str(src), "--out", str(tmp_path / "sr.tif")])
    err = capsys.readouterr().err
    assert code == 2 and "missing checkpoint file" in err and "Traceback" not in err
    assert not (tmp_path / "sr.tif").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--tile", "16", "--overlap", "8"], "twice the overlap"), ([], "has no coordinate reference system"),
     (["--allow-no-crs"], "holds digital numbers")],
)  # fmt: skip
def test_cli_errors_are_one_line_exit_2(
    bicubic_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    out = tmp_path / "sr.tif"
    argv = ["infer", "--model", str(bicubic_dir), "--input", str(demo_source(S2_PATCH)), "--out", str(out)]
    assert main(argv + extra) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_real_stochastic_model_gives_uncertainty_independent_of_batch_size(tmp_path: Path) -> None:
    from mindgap_core.inference import run_inference

    torch.manual_seed(0)
    model = build_model("sinsr", resolve_config("sinsr", "tiny"), scale=2).eval()
    assert model.stochastic
    src = write_scene(tmp_path / "lr.tif", smooth_scene(32, 32))
    outs = []
    for bs in (1, 4):
        res = run_inference(
            model, src, tmp_path / f"sr{bs}.tif", num_samples=2, uncertainty_path=tmp_path / f"std{bs}.tif",
            tile=20, overlap=4, batch_size=bs, seed=3,
        )  # fmt: skip
        with rasterio.open(res.out_path) as a, rasterio.open(res.uncertainty_path) as b:
            outs.append((a.read(), b.read()))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    assert (outs[0][1] > 0).mean() > 0.99
