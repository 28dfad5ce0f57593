"""Issue 3 acceptance: every kind of bad input, through the real ``mindgap`` process.

Each case runs ``python -m mindgap_core pairs|degrade ...`` in a subprocess (so "no traceback" is
checked on the real stderr, warnings and GDAL log lines included) and asserts: exit code 2, exactly
one line on stderr, naming the offending file (or option) and the problem, no "Traceback", and the
output location exactly as it was before (no output, no half-written or temporary file).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mindgap_core.types import GeoRaster
from tests.fixtures import REPO_ROOT
from tests.fixtures.pairs import (
    PLANET_ITEM,
    make_pair_files,
    make_pair_rasters,
    moved_copy,
    write_reflectance_tif,
)


@dataclass(frozen=True)
class Inputs:
    """Bad (and good) input files, all made once from the fixture generators."""

    s2: Path  # good S2-like LR reflectance GeoTIFF
    ps: Path  # good PlanetScope-like HR reflectance GeoTIFF (64 x 64)
    truncated: Path
    not_raster: Path
    s2_without_b08: Path  # S2 L2A per-band folder whose B08 file is missing
    ps_three_bands: Path
    hr_three_bands: Path
    ps_no_crs: Path
    ps_far: Path
    s2_all_nodata: Path
    ps_all_cloud: Path  # PlanetScope product whose UDM2 marks every pixel cloud
    s2_for_cloud: Path
    ps_dn_uint16: Path  # uint16 DN (reflectance x 10000) passed as reflectance
    ps_product_float: Path  # a PlanetScope product name holding float reflectance
    hr_dn_as_float: Path  # float32 file holding DN values (reflectance x 10000)
    hr_divided_twice: Path  # float32 reflectance / 10000
    hr_all_nodata: Path
    a_file: Path  # an existing regular file, used where a folder is needed


def _write(raster: GeoRaster, path: Path) -> Path:
    return write_reflectance_tif(raster, path)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    root = tmp_path_factory.mktemp("bad_inputs")
    good = make_pair_files(root / "good", size_lr=(32, 32))
    hr = make_pair_rasters(size_lr=(32, 32)).hr

    truncated = root / "truncated.tif"
    data = good.ps_path.read_bytes()
    truncated.write_bytes(data[: len(data) * 2 // 3])
    not_raster = root / "notes.tif"
    not_raster.write_text("field notes, 14 July: clouds in the afternoon\n", encoding="utf-8")

    products = make_pair_files(root / "products", size_lr=(32, 32), products=True)
    (products.s2_path / "B08.tif").unlink()
    cloudy = make_pair_files(root / "cloudy", size_lr=(32, 32), products=True, hr_cloud="all")

    dn = hr.replace(array=np.rint(hr.array * 10000).astype(np.uint16), units="DN")
    from mindgap_core.io.geotiff import write_cog

    a_file = root / "a_file"
    a_file.write_text("not a folder\n", encoding="utf-8")
    return Inputs(
        s2=good.s2_path,
        ps=good.ps_path,
        truncated=truncated,
        not_raster=not_raster,
        s2_without_b08=products.s2_path,
        ps_three_bands=make_pair_files(root / "three", size_lr=(32, 32), hr_bands=3).ps_path,
        hr_three_bands=_write(hr.select(("blue", "green", "red")), root / "hr_rgb.tif"),
        ps_no_crs=_write(hr.replace(crs=None), root / "ps_no_crs.tif"),
        ps_far=_write(moved_copy(hr, 0.0, 30_000.0), root / "ps_30km_north.tif"),
        s2_all_nodata=make_pair_files(root / "nodata", size_lr=(32, 32), lr_nodata="all").s2_path,
        ps_all_cloud=cloudy.ps_path,
        s2_for_cloud=cloudy.s2_path,
        ps_dn_uint16=write_cog(dn, root / "ps_dn_uint16.tif"),
        ps_product_float=_write(hr, root / f"{PLANET_ITEM}_3B_AnalyticMS_SR_float.tif"),
        hr_dn_as_float=_write(hr.replace(array=hr.array * 10000), root / "hr_dn_as_float.tif"),
        hr_divided_twice=_write(hr.replace(array=hr.array / 10000), root / "hr_divided_twice.tif"),
        hr_all_nodata=_write(hr.replace(mask=np.zeros(hr.shape, bool)), root / "hr_all_nodata.tif"),
        a_file=a_file,
    )


@dataclass(frozen=True)
class Case:
    """One bad input: the command's arguments (given the inputs and an empty output folder), what the
    error must name (a path, or an option for option errors) and a keyword of the problem."""

    id: str
    args: Callable[[Inputs, Path], list[str]]
    names: Callable[[Inputs, Path], str]
    keyword: str


def pairs(s2: Callable[[Inputs], Path], ps: Callable[[Inputs], Path], *extra: str) -> Callable[..., list[str]]:
    def args(i: Inputs, out: Path) -> list[str]:
        return ["pairs", "--s2", str(s2(i)), "--ps", str(ps(i)), "--scale", "2", "--out", str(out / "pairs"),
                *extra]
    return args


def degrade(hr: Callable[[Inputs], Path], *extra: str, method: str = "bicubic") -> Callable[..., list[str]]:
    def args(i: Inputs, out: Path) -> list[str]:
        return ["degrade", "--hr", str(hr(i)), "--method", method, "--scale", "2",
                "--out", str(out / "lr.tif"), *extra]
    return args


def _s2(i: Inputs) -> Path:
    return i.s2


def _ps(i: Inputs) -> Path:
    return i.ps


CASES = [
    # corrupt / truncated TIFF
    Case("pairs-truncated", pairs(_s2, lambda i: i.truncated), lambda i, o: str(i.truncated), "corrupt"),
    Case("degrade-truncated", degrade(lambda i: i.truncated), lambda i, o: str(i.truncated), "corrupt"),
    # not a raster
    Case("pairs-not-raster", pairs(lambda i: i.not_raster, _ps), lambda i, o: str(i.not_raster),
         "not a GeoTIFF"),
    Case("degrade-not-raster", degrade(lambda i: i.not_raster), lambda i, o: str(i.not_raster),
         "not a GeoTIFF"),
    # missing bands
    Case("pairs-missing-band-file", pairs(lambda i: i.s2_without_b08, _ps),
         lambda i, o: str(i.s2_without_b08), "no file for band B08"),
    Case("degrade-missing-band", degrade(lambda i: i.hr_three_bands, method="simulated_cross_sensor"),
         lambda i, o: str(i.hr_three_bands), "missing nir"),
    # no CRS
    Case("pairs-no-crs", pairs(_s2, lambda i: i.ps_no_crs), lambda i, o: str(i.ps_no_crs),
         "no coordinate reference system"),
    # rasters that do not overlap
    Case("pairs-no-overlap", pairs(_s2, lambda i: i.ps_far), lambda i, o: str(i.ps_far), "do not overlap"),
    # all-nodata or all-cloud overlap
    Case("pairs-all-nodata", pairs(lambda i: i.s2_all_nodata, _ps), lambda i, o: str(i.s2_all_nodata),
         "no valid pixel"),
    Case("pairs-all-cloud", pairs(lambda i: i.s2_for_cloud, lambda i: i.ps_all_cloud),
         lambda i, o: str(i.ps_all_cloud), "cloud"),
    Case("degrade-all-nodata", degrade(lambda i: i.hr_all_nodata), lambda i, o: str(i.hr_all_nodata),
         "no valid pixel"),
    # scale that does not divide the tile (pairs: the --tile option; degrade: the raster)
    Case("pairs-scale-vs-tile", pairs(_s2, _ps, "--scale", "3"), lambda i, o: "scale 3", "not divisible"),
    Case("degrade-scale-vs-size", degrade(_ps, "--scale", "3"), lambda i, o: str(i.ps), "not divisible"),
    # mismatched band counts
    Case("pairs-band-counts", pairs(_s2, lambda i: i.ps_three_bands), lambda i, o: str(i.ps_three_bands),
         "band counts differ"),
    # float vs uint16 reflectance mix-ups (values out of range)
    Case("pairs-uint16-dn-as-reflectance", pairs(_s2, lambda i: i.ps_dn_uint16),
         lambda i, o: str(i.ps_dn_uint16), "digital numbers"),
    Case("pairs-float-in-planet-product", pairs(_s2, lambda i: i.ps_product_float),
         lambda i, o: str(i.ps_product_float), "reflectance already"),
    Case("degrade-dn-values-in-float", degrade(lambda i: i.hr_dn_as_float), lambda i, o: str(i.hr_dn_as_float),
         "outside the physical range"),
    Case("degrade-divided-twice", degrade(lambda i: i.hr_divided_twice),
         lambda i, o: str(i.hr_divided_twice), "divided by 10000 again"),
    # an unwritable output path
    Case("pairs-out-is-a-file", lambda i, o: [*pairs(_s2, _ps)(i, o)[:-2], "--out", str(i.a_file)],
         lambda i, o: str(i.a_file), "not a folder"),
    Case("pairs-out-below-a-file", lambda i, o: [*pairs(_s2, _ps)(i, o)[:-2], "--out", str(i.a_file / "out")],
         lambda i, o: str(i.a_file / "out"), "cannot write"),
    Case("degrade-out-below-a-file", lambda i, o: [*degrade(_ps)(i, o)[:-2], "--out", str(i.a_file / "lr.tif")],
         lambda i, o: str(i.a_file / "lr.tif"), "cannot write"),
]


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` with its content (hidden temporary files included)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_one_line_exit_2_no_output(case: Case, inputs: Inputs, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    argv = case.args(inputs, out)
    watched = [out, inputs.a_file.parent]
    before = [_tree(folder) for folder in watched]

    proc = subprocess.run(
        [sys.executable, "-m", "mindgap_core", *argv],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=180,
    )

    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and proc.stderr == lines[0] + "\n", proc.stderr
    line = lines[0]
    assert line.startswith(f"mindgap {argv[0]}: error: "), line
    assert case.names(inputs, out) in line, line
    assert case.keyword in line, line
    assert proc.stdout == ""
    assert [_tree(folder) for folder in watched] == before, "output or temporary files were left behind"
    assert sorted(p.name for p in out.iterdir()) == []
