"""Issue 3 acceptance: every kind of bad input, through the real ``mindgap`` process.

Each case runs ``python -m mindgap_core pairs|degrade ...`` in a subprocess (so "no traceback" is
checked on the real stderr, warnings and GDAL log lines included) and asserts: exit code 2, exactly
one line on stderr, naming the offending file (or option) and the problem, no "Traceback", and the
output location exactly as it was before (no output, no half-written or temporary file).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mindgap_core.io.geotiff import write_cog
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
    a_file = root / "a_file"
    a_file.write_text("not a folder\n", encoding="utf-8")
    return Inputs(
        s2=good.s2_path,
        ps=good.ps_path,
        truncated=truncated,
        not_raster=not_raster,
        s2_without_b08=products.s2_path,
        ps_three_bands=make_pair_files(root / "three", size_lr=(32, 32), hr_bands=3).ps_path,
        hr_three_bands=write_reflectance_tif(hr.select(("blue", "green", "red")), root / "hr_rgb.tif"),
        ps_no_crs=write_reflectance_tif(hr.replace(crs=None), root / "ps_no_crs.tif"),
        ps_far=write_reflectance_tif(moved_copy(hr, 0.0, 30_000.0), root / "ps_30km_north.tif"),
        s2_all_nodata=make_pair_files(root / "nodata", size_lr=(32, 32), lr_nodata="all").s2_path,
        ps_all_cloud=cloudy.ps_path,
        s2_for_cloud=cloudy.s2_path,
        ps_dn_uint16=write_cog(dn, root / "ps_dn_uint16.tif"),
        ps_product_float=write_reflectance_tif(hr, root / f"{PLANET_ITEM}_3B_AnalyticMS_SR_float.tif"),
        hr_dn_as_float=write_reflectance_tif(hr.replace(array=hr.array * 10000), root / "hr_dn_as_float.tif"),
        hr_divided_twice=write_reflectance_tif(hr.replace(array=hr.array / 10000), root / "hr_twice.tif"),
        hr_all_nodata=write_reflectance_tif(hr.replace(mask=np.zeros(hr.shape, bool)), root / "hr_void.tif"),
        a_file=a_file,
    )


PathOf = Callable[[Inputs], Path]
OutOf = Callable[[Inputs, Path], Path]  # (inputs, the case's empty output folder) -> --out


@dataclass(frozen=True)
class Case:
    """One bad input: the command line (given the inputs and an empty output folder), what the error
    must name (a path, or the option values for an option error) and a keyword of the problem."""

    id: str
    argv: Callable[[Inputs, Path], list[str]]
    names: Callable[[Inputs, Path], str]
    keyword: str


def _s2(i: Inputs) -> Path:
    return i.s2


def _ps(i: Inputs) -> Path:
    return i.ps


def pairs(s2: PathOf, ps: PathOf, *extra: str, out: OutOf | None = None):
    """``mindgap pairs`` on ``s2``/``ps`` into ``out`` (default: ``<output folder>/pairs``)."""

    def argv(i: Inputs, o: Path) -> list[str]:
        dest = out(i, o) if out else o / "pairs"
        return ["pairs", "--s2", str(s2(i)), "--ps", str(ps(i)), "--scale", "2", "--out", str(dest), *extra]

    return argv


def degrade(hr: PathOf, *extra: str, method: str = "bicubic", out: OutOf | None = None):
    """``mindgap degrade`` of ``hr`` x2 to ``out`` (default: ``<output folder>/lr.tif``)."""

    def argv(i: Inputs, o: Path) -> list[str]:
        dest = out(i, o) if out else o / "lr.tif"
        return ["degrade", "--hr", str(hr(i)), "--method", method, "--scale", "2", "--out", str(dest), *extra]

    return argv


def named(path: PathOf) -> Callable[[Inputs, Path], str]:
    return lambda i, o: str(path(i))


CASES = [
    # corrupt / truncated TIFF
    Case("pairs-truncated", pairs(_s2, lambda i: i.truncated), named(lambda i: i.truncated), "corrupt"),
    Case("degrade-truncated", degrade(lambda i: i.truncated), named(lambda i: i.truncated), "corrupt"),
    # not a raster
    Case("pairs-not-raster", pairs(lambda i: i.not_raster, _ps), named(lambda i: i.not_raster),
         "not a GeoTIFF"),
    Case("degrade-not-raster", degrade(lambda i: i.not_raster), named(lambda i: i.not_raster),
         "not a GeoTIFF"),
    # missing bands
    Case("pairs-missing-band-file", pairs(lambda i: i.s2_without_b08, _ps), named(lambda i: i.s2_without_b08),
         "no .jp2/.tif file for band B08"),
    Case("degrade-missing-band", degrade(lambda i: i.hr_three_bands, method="simulated_cross_sensor"),
         named(lambda i: i.hr_three_bands), "missing nir"),
    # no CRS (degrade keeps an ungeoreferenced raster ungeoreferenced: not an error there)
    Case("pairs-no-crs", pairs(_s2, lambda i: i.ps_no_crs), named(lambda i: i.ps_no_crs),
         "no coordinate reference system"),
    # rasters that do not overlap
    Case("pairs-no-overlap", pairs(_s2, lambda i: i.ps_far), named(lambda i: i.ps_far), "do not overlap"),
    # all-nodata or all-cloud overlap
    Case("pairs-all-nodata", pairs(lambda i: i.s2_all_nodata, _ps), named(lambda i: i.s2_all_nodata),
         "no valid pixel"),
    Case("pairs-all-cloud", pairs(lambda i: i.s2_for_cloud, lambda i: i.ps_all_cloud),
         named(lambda i: i.ps_all_cloud), "cloud"),
    Case("degrade-all-nodata", degrade(lambda i: i.hr_all_nodata), named(lambda i: i.hr_all_nodata),
         "no valid pixel"),
    # scale that does not divide the tile (pairs: the --tile option, named by value; degrade: the raster)
    Case("pairs-scale-vs-tile", pairs(_s2, _ps, "--scale", "3"), lambda i, o: "tile size 64", "scale 3"),
    Case("degrade-scale-vs-size", degrade(_ps, "--scale", "3"), named(_ps), "not divisible by scale 3"),
    # mismatched band counts
    Case("pairs-band-counts", pairs(_s2, lambda i: i.ps_three_bands), named(lambda i: i.ps_three_bands),
         "band counts differ"),
    # float vs uint16 reflectance mix-ups (values out of range)
    Case("pairs-uint16-dn-as-reflectance", pairs(_s2, lambda i: i.ps_dn_uint16),
         named(lambda i: i.ps_dn_uint16), "digital numbers"),
    Case("pairs-float-in-planet-product", pairs(_s2, lambda i: i.ps_product_float),
         named(lambda i: i.ps_product_float), "reflectance already"),
    Case("degrade-dn-values-in-float", degrade(lambda i: i.hr_dn_as_float), named(lambda i: i.hr_dn_as_float),
         "outside the physical range"),
    Case("degrade-divided-twice", degrade(lambda i: i.hr_divided_twice), named(lambda i: i.hr_divided_twice),
         "divided by 10000 again"),
    # an unwritable output path
    Case("pairs-out-is-a-file", pairs(_s2, _ps, out=lambda i, o: i.a_file), named(lambda i: i.a_file),
         "not a folder"),
    Case("pairs-out-below-a-file", pairs(_s2, _ps, out=lambda i, o: i.a_file / "pairs"),
         lambda i, o: str(i.a_file / "pairs"), "cannot write"),
    Case("degrade-out-below-a-file", degrade(_ps, out=lambda i, o: i.a_file / "lr.tif"),
         lambda i, o: str(i.a_file / "lr.tif"), "cannot write"),
    Case("degrade-out-is-a-folder", degrade(_ps, out=lambda i, o: o), lambda i, o: str(o), "is a folder"),
]


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` with its content (hidden temporary files included)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@dataclass(frozen=True)
class Run:
    argv: list[str]
    out: Path  # the case's output folder, empty before the run
    proc: subprocess.CompletedProcess[str]


@dataclass(frozen=True)
class Runs:
    by_id: dict[str, Run]
    inputs_before: dict[str, bytes]
    inputs_after: dict[str, bytes]


@pytest.fixture(scope="module")
def runs(inputs: Inputs, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """Every case's ``mindgap`` process, a few at a time (they only read the shared inputs)."""
    root = inputs.a_file.parent

    def run(case: Case) -> Run:
        out = tmp_path_factory.mktemp(case.id)
        argv = case.argv(inputs, out)
        proc = subprocess.run(
            [sys.executable, "-m", "mindgap_core", *argv],
            capture_output=True, text=True, cwd=REPO_ROOT, timeout=300,
        )
        return Run(argv, out, proc)

    before = _tree(root)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        done = dict(zip([c.id for c in CASES], pool.map(run, CASES), strict=True))
    return Runs(done, before, _tree(root))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_one_line_exit_2_no_output(case: Case, inputs: Inputs, runs: Runs) -> None:
    run = runs.by_id[case.id]
    proc = run.proc
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and proc.stderr == lines[0] + "\n", proc.stderr
    line = lines[0]
    assert line.startswith(f"mindgap {run.argv[0]}: error: "), line
    assert case.names(inputs, run.out) in line, line
    assert case.keyword in line, line
    assert proc.stdout == ""
    assert sorted(run.out.iterdir()) == [], "output or temporary files were left in the output folder"
    assert runs.inputs_after == runs.inputs_before, "files were written or changed beside the inputs"
