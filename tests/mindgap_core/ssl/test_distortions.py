"""The distortion families behave as their definitions say (on real demo tiles of the train split)."""

from __future__ import annotations

import numpy as np
import pytest

from mindgap_core.ssl.data import demo_hr_tiles
from mindgap_core.ssl.distortions import FAMILIES, distort, matched_severity, psnr_db
from tests.fixtures import REPO_ROOT

DEMO = REPO_ROOT / "data" / "demo"


@pytest.fixture(scope="module")
def tiles() -> np.ndarray:
    return demo_hr_tiles(DEMO, "train")[1][:6]


def test_families_and_kinds():
    assert set(FAMILIES) == {"blur", "bicubic", "noise", "shift", "texture", "global_gain",
                             "global_offset", "band_offset", "band_mixing"}
    kinds = {f.name: f.kind for f in FAMILIES.values()}
    assert {n for n, k in kinds.items() if k == "radiometric"} == {"global_gain", "global_offset",
                                                                     "band_offset"}
    assert kinds["band_mixing"] == "spectral"
    assert all(list(f.severities) == sorted(f.severities) for f in FAMILIES.values())


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_family_is_deterministic_and_psnr_falls_with_severity(tiles, name):
    grid = FAMILIES[name].severities
    a = distort(name, tiles, grid[0], seed=3)
    assert np.array_equal(a, distort(name, tiles, grid[0], seed=3))
    assert a.shape == tiles.shape and not np.array_equal(a, tiles)
    p = np.stack([psnr_db(distort(name, tiles, s, seed=3), tiles) for s in grid])
    assert np.all(np.diff(p, axis=0) < 0), f"{name}: PSNR by severity {p.mean(axis=1)}"


def test_closed_form_errors(tiles):
    for name in ("global_offset", "band_offset", "texture"):
        assert psnr_db(distort(name, tiles, 0.02), tiles) == pytest.approx(
            np.full(len(tiles), -20 * np.log10(0.02)), abs=1e-6), name
    d = distort("global_gain", tiles, 0.1)
    assert np.allclose(d, tiles * 1.1)
    s = distort("shift", tiles, 2)
    assert np.array_equal(s[..., 2:], tiles[..., :-2]) and np.array_equal(s[..., 1], tiles[..., 0])
    mixed = distort("band_mixing", tiles, 0.5)
    assert np.allclose(mixed[:, 0], 0.5 * tiles[:, 0] + 0.5 * tiles[:, 1])
    assert np.allclose(mixed[:, 2], 0.5 * tiles[:, 2] + 0.25 * (tiles[:, 1] + tiles[:, 3]))
    # texture is the same spatial pattern in every band, scaled by the band's std in the tile
    t = distort("texture", tiles, 0.01, seed=1) - tiles
    corr = np.corrcoef(t[0, 0].ravel(), t[0, 3].ravel())[0, 1]
    assert corr > 0.999
    assert np.array_equal(distort("noise", tiles, 0.0), tiles)


@pytest.mark.parametrize("name", [n for n, f in FAMILIES.items() if f.continuous])
def test_matched_severity_hits_the_target_psnr(tiles, name):
    sev = matched_severity(name, tiles, 34.0)
    assert np.all(np.abs(psnr_db(distort(name, tiles, sev), tiles) - 34.0) < 0.02)
    with pytest.raises(ValueError, match="discrete"):
        matched_severity("shift", tiles, 34.0)
