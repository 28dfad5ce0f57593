"""The shipped demo data is exactly what ``mindgap demo --stage data`` produces."""

import hashlib
from pathlib import Path

import numpy as np

from mindgap_core.cli import main
from mindgap_core.data.manifest import read_manifest, resolve
from mindgap_core.io import read_raster

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "data" / "demo"
GENERATED = ("manifest.parquet", "scene", "tiles", "real_s2")


def _digests(root: Path) -> dict[str, str]:
    files = [p for name in GENERATED for p in sorted((root / name).rglob("*")) if p.is_file()]
    files += [root / "manifest.parquet"] if (root / "manifest.parquet").is_file() else []
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_demo_stage_data_reproduces_shipped_bytes(tmp_path: Path) -> None:
    assert main(["demo", "--stage", "data", "--out", str(tmp_path), "--source", str(DEMO / "source")]) == 0
    rebuilt, shipped = _digests(tmp_path), _digests(DEMO)
    assert rebuilt.keys() == shipped.keys()
    assert rebuilt == shipped


def test_demo_manifest_is_paired_and_labelled() -> None:
    manifest = read_manifest(DEMO / "manifest.parquet")
    assert set(manifest["domain"]) == {"synthetic", "simulated_cross_sensor"}
    per_tile = manifest.groupby("tile_id")["domain"].nunique()
    assert (per_tile == 2).all()  # a paired design: every HR tile in both domains
    simulated = manifest[manifest["domain"] == "simulated_cross_sensor"]
    assert simulated["lr_path"].str.contains("simulated").all()
    assert simulated["source_lr"].str.contains("simulated").all()
    assert manifest.groupby("block_id")["split"].nunique().max() == 1
    assert set(manifest["split"]) == {"train", "val", "test"}


def test_demo_tiles_are_reflectance_on_aligned_grids() -> None:
    manifest = read_manifest(DEMO / "manifest.parquet")
    row = manifest.iloc[0]
    hr = read_raster(resolve(DEMO, row["hr_path"]))
    lr = read_raster(resolve(DEMO, row["lr_path"]))
    assert hr.band_names == lr.band_names == ("blue", "green", "red", "nir")
    assert hr.shape == (64, 64) and lr.shape == (32, 32)
    assert lr.transform.a == 2 * hr.transform.a
    assert (lr.transform.c, lr.transform.f) == (hr.transform.c, hr.transform.f)
    assert 0.0 < float(np.nanmean(hr.array)) < 0.5
