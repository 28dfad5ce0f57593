"""LPIPS-Sat's metric card: its response to every distortion family, severity and matched PSNR.

Used by ``benchmarks/lpips_sat_card.py`` (which prints it) and by the acceptance tests in
``tests/mindgap_core/metrics/test_lpips_sat_card.py`` (which check it), on held-out real tiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mindgap_core.metrics.lpips_sat import LPIPSSat, lpips_sat_score
from mindgap_core.ssl.distortions import FAMILIES, distort, matched_severity, psnr_db
from mindgap_core.types import CANONICAL_BANDS

#: PSNR (dB) at which families are compared head to head
MATCHED_PSNR_DB = 34.0


@dataclass(frozen=True)
class CardRow:
    """One family at one severity: per-tile LPIPS-Sat and PSNR over the reference tiles."""

    family: str
    severity: float  # the grid value, or the mean per-tile severity of a matched-PSNR row
    scores: np.ndarray
    psnr: np.ndarray


def score_tiles(model: LPIPSSat, distorted: np.ndarray, reference: np.ndarray,
                batch: int = 64) -> np.ndarray:
    """LPIPS-Sat per tile (float64), bands in CANONICAL_BANDS order."""
    out = [lpips_sat_score(model, torch.from_numpy(distorted[i:i + batch]).float(),
                           torch.from_numpy(reference[i:i + batch]).float(), CANONICAL_BANDS).numpy()
           for i in range(0, len(reference), batch)]
    return np.concatenate(out)


def severity_rows(model: LPIPSSat, tiles: np.ndarray, seed: int = 0,
                  families: tuple[str, ...] | None = None) -> list[CardRow]:
    """Every family (default all) at each of its grid severities."""
    rows = []
    for name in families or tuple(FAMILIES):
        for s in FAMILIES[name].severities:
            d = distort(name, tiles, s, seed)
            rows.append(CardRow(name, float(s), score_tiles(model, d, tiles), psnr_db(d, tiles)))
    return rows


def matched_rows(model: LPIPSSat, tiles: np.ndarray, target_db: float = MATCHED_PSNR_DB,
                 seed: int = 0, families: tuple[str, ...] | None = None) -> list[CardRow]:
    """Every continuous family (default all) at the per-tile severity that gives ``target_db``."""
    rows = []
    for name in families or tuple(n for n, f in FAMILIES.items() if f.continuous):
        sev = matched_severity(name, tiles, target_db, seed)
        d = distort(name, tiles, sev, seed)
        rows.append(CardRow(name, float(sev.mean()), score_tiles(model, d, tiles), psnr_db(d, tiles)))
    return rows


@dataclass(frozen=True)
class BicubicCheck:
    """Bicubic ×scale of one domain's LR tiles against the HR: as is and with band means matched."""

    domain: str
    scores: np.ndarray
    psnr: np.ndarray
    scores_mean_matched: np.ndarray
    psnr_mean_matched: np.ndarray


def bicubic_checks(model: LPIPSSat, demo_dir: str | Path, split: str = "test") -> list[BicubicCheck]:
    """Per LR domain of the demo manifest: the bicubic baseline's LPIPS-Sat and PSNR on ``split``,
    and the same after shifting each SR band's tile mean onto the HR's (a pure radiometric fix)."""
    from mindgap_core.data.manifest import read_manifest, resolve
    from mindgap_core.io import read_raster
    from mindgap_core.models.base import upsample

    demo_dir = Path(demo_dir)
    frame = read_manifest(demo_dir / "manifest.parquet")
    out = []
    for domain, rows in frame[frame["split"] == split].groupby("domain"):
        def load(paths) -> np.ndarray:
            return np.stack([read_raster(resolve(demo_dir, p), band_names=CANONICAL_BANDS).array
                             for p in paths]).astype(np.float64)

        hr, lr = load(rows["hr_path"]), load(rows["lr_path"])
        scale = int(rows["scale"].iloc[0])
        sr = upsample(torch.from_numpy(lr), scale).numpy()
        matched = sr - sr.mean(axis=(2, 3), keepdims=True) + hr.mean(axis=(2, 3), keepdims=True)
        out.append(BicubicCheck(str(domain), score_tiles(model, sr, hr), psnr_db(sr, hr),
                                score_tiles(model, matched, hr), psnr_db(matched, hr)))
    return out
