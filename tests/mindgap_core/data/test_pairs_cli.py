"""`mindgap pairs` end to end: output, summary, exit codes, nothing written on errors."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from mindgap_core.cli import main
from mindgap_core.data.manifest import MANIFEST_NAME, read_manifest
from tests.fixtures import REPO_ROOT
from tests.fixtures.pairs import make_pair_files


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_pair_files(tmp_path_factory.mktemp("inputs"), size_lr=(64, 96))


def test_cli_builds_pairs_and_prints_summary(files, tmp_path, capsys):
    out = tmp_path / "pairs"
    code = main(["pairs", "--s2", str(files.s2_path), "--ps", str(files.ps_path), "--scale", "2",
                 "--out", str(out), "--tile", "64", "--min-valid", "0.9", "--block-size", "1", "--seed", "3"])
    captured = capsys.readouterr()
    assert code == 0
    lines = captured.out.strip().splitlines()
    assert lines[0] == str(out / MANIFEST_NAME)
    frame = read_manifest(lines[0])
    assert len(frame) == 6 and frame["block_id"].nunique() == 6 and (frame["seed"] == 3).all()
    counts = frame["split"].value_counts()
    per_split = f"train {counts['train']}, val {counts['val']}, test {counts['test']}"
    assert lines[1].startswith(f"6 pairs ({per_split}); ")
    num = r"([-+.\d]+)"
    found = re.search(rf"median tile shift dx {num}, dy {num}.*scene shift dx {num}, dy {num}", lines[1])
    assert found, lines[1]
    tile_dx, tile_dy, scene_dx, scene_dy = map(float, found.groups())
    assert (tile_dx, tile_dy) == pytest.approx(files.shift_lr, abs=0.1)
    assert (scene_dx, scene_dy) == pytest.approx(files.shift_lr, abs=0.1)


def test_cli_correct_shift(files, tmp_path, capsys):
    code = main(["pairs", "--s2", str(files.s2_path), "--ps", str(files.ps_path), "--scale", "2",
                 "--out", str(tmp_path), "--correct-shift"])
    assert code == 0
    assert "(corrected)" in capsys.readouterr().out
    assert read_manifest(tmp_path)["shift_corrected"].all()


@pytest.mark.parametrize(
    ("case", "extra", "message"),
    [
        ("bad_scale", ["--scale", "3"], "tile size 64 is not divisible by scale 3"),
        ("bands", ["--scale", "2"], "band counts differ"),
        ("nodata", ["--scale", "2"], "no valid pixel"),
        ("cloud", ["--scale", "2"], "no valid pixel"),
        ("far", ["--scale", "2"], "do not overlap"),
    ],
)
def test_cli_errors_exit_2_and_write_no_manifest(files, tmp_path, capsys, case, extra, message):
    s2, ps = files.s2_path, files.ps_path
    if case == "bands":
        ps = make_pair_files(tmp_path / "in", size_lr=(64, 64), hr_bands=3).ps_path
    elif case == "nodata":
        bad = make_pair_files(tmp_path / "in", size_lr=(64, 64), lr_nodata="all")
        s2, ps = bad.s2_path, bad.ps_path
    elif case == "cloud":
        bad = make_pair_files(tmp_path / "in", size_lr=(64, 64), products=True, hr_cloud="all")
        s2, ps = bad.s2_path, bad.ps_path
    elif case == "far":
        from tests.fixtures.pairs import make_pair_rasters, moved_copy, write_reflectance_tif

        far = moved_copy(make_pair_rasters(size_lr=(32, 32)).hr, 0.0, 30_000.0)
        ps = write_reflectance_tif(far, tmp_path / "far.tif")
    out = tmp_path / "out"
    code = main(["pairs", "--s2", str(s2), "--ps", str(ps), "--out", str(out), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("mindgap pairs: error: ")
    assert message in err and "Traceback" not in err
    if case != "bad_scale":
        assert str(ps) in err or str(s2) in err
    assert not (out / MANIFEST_NAME).exists()


def test_cli_as_a_process(files, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mindgap_core", "pairs", "--s2", str(files.s2_path), "--ps",
         str(tmp_path / "missing.tif"), "--scale", "2", "--out", str(tmp_path / "o")],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
    )
    assert proc.returncode == 2
    assert "missing.tif" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_synthetic_domain_on_the_same_tiles(files, tmp_path, capsys):
    import numpy as np

    from mindgap_core.degrade.apply import degrade_raster
    from mindgap_core.io.geotiff import read_raster

    out = tmp_path / "pairs"
    argv = ["pairs", "--s2", str(files.s2_path), "--ps", str(files.ps_path), "--scale", "2",
            "--out", str(out), "--block-size", "1"]
    assert main([*argv, "--synthetic", "gaussian_mtf"]) == 0
    assert "+ 6 synthetic (gaussian_mtf) LR tiles" in capsys.readouterr().out
    frame = read_manifest(out / MANIFEST_NAME)
    real = frame[frame["domain"] == "real_cross_sensor"].set_index("tile_id")
    syn = frame[frame["domain"] == "synthetic"].set_index("tile_id")
    assert len(real) == len(syn) == 6
    assert (syn["split"] == real["split"]).all() and (syn["hr_path"] == real["hr_path"]).all()
    assert (syn["degradation"] == "gaussian_mtf").all() and (syn["dt_days"] == 0).all()
    for _, row in syn.iterrows():
        expected, _ = degrade_raster(read_raster(out / row["hr_path"]), "gaussian_mtf", 2)
        np.testing.assert_array_equal(read_raster(out / row["lr_path"]).array, expected.array)
    assert main(argv) == 0  # rebuilt without: the synthetic tiles go with the old manifest
    assert not list((out / "lr_synthetic").glob("*.tif"))
    assert set(read_manifest(out / MANIFEST_NAME)["domain"]) == {"real_cross_sensor"}
    assert main([*argv, "--synthetic", "lanczos"]) == 2
    assert "unknown synthetic degradation 'lanczos'" in capsys.readouterr().err
