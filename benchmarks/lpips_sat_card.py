"""LPIPS-Sat metric card on held-out real tiles: score per distortion family and severity, with PSNR.

Tiles: the demo's HR tiles of one split (default ``test``: never seen by the backbone's
pre-training nor by its calibration). For each family of ``mindgap_core/ssl/distortions.py`` and
each severity it prints the mean LPIPS-Sat and mean PSNR over the tiles, the share of tiles whose
score rises with every severity step, then every continuous family at a matched PSNR of 34 dB
(severity solved per tile), then the agreement with the calibration's two 2AFC rules on these
tiles, then the bicubic baseline on the demo's LR tiles of that split with and without matching
each band's mean to the HR (a metric about structure should barely move). Markdown tables, ready
for docs/lpips_sat.md.

    python benchmarks/lpips_sat_card.py [--backbone data/lpips_sat] [--split test] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mindgap_core.metrics.lpips_sat import load_backbone  # noqa: E402
from mindgap_core.ssl.calibrate import CalibrationConfig, agreement, judged_set  # noqa: E402
from mindgap_core.ssl.card import (  # noqa: E402
    MATCHED_PSNR_DB,
    bicubic_checks,
    matched_rows,
    severity_rows,
)
from mindgap_core.ssl.data import demo_hr_tiles  # noqa: E402
from mindgap_core.ssl.distortions import FAMILIES  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default=None,
                    help="backbone folder or SSL4EO-S12 file (default: the shipped data/lpips_sat)")
    ap.add_argument("--demo-dir", default=str(ROOT / "data" / "demo"))
    ap.add_argument("--split", default="test", choices=("train", "val", "test"))
    ap.add_argument("--seed", type=int, default=0, help="seed of the noise and texture draws")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = load_backbone(args.backbone)
    ids, tiles = demo_hr_tiles(args.demo_dir, args.split)
    print(f"LPIPS-Sat card: backbone {model.backbone_id}; {len(ids)} real HR tiles of the "
          f"{args.split} split ({tiles.shape[-1]} px, 5 m): {', '.join(ids)}\n")

    print("| family | severity | unit | PSNR (dB) | LPIPS-Sat mean | LPIPS-Sat min-max | tiles rising |")
    print("|---|---|---|---|---|---|---|")
    rows = severity_rows(model, tiles, args.seed)
    for name, fam in FAMILIES.items():
        mine = [r for r in rows if r.family == name]
        scores = np.stack([r.scores for r in mine])
        rising = (np.diff(scores, axis=0) > 0).all(axis=0).mean() if len(mine) > 1 else float("nan")
        for k, r in enumerate(mine):
            tail = f"{rising:.0%}" if k == 0 else ""
            print(f"| {name if k == 0 else ''} | {r.severity:g} | {fam.unit} | {r.psnr.mean():.1f} | "
                  f"{r.scores.mean():.3f} | {r.scores.min():.3f}-{r.scores.max():.3f} | {tail} |")

    print(f"\nMatched PSNR ({MATCHED_PSNR_DB:g} dB, severity solved per tile):\n")
    print("| family | kind | mean severity | PSNR (dB) | LPIPS-Sat mean | LPIPS-Sat min-max |")
    print("|---|---|---|---|---|---|")
    for r in sorted(matched_rows(model, tiles, MATCHED_PSNR_DB, args.seed), key=lambda r: r.scores.mean()):
        print(f"| {r.family} | {FAMILIES[r.family].kind} | {r.severity:.4g} | {r.psnr.mean():.2f} | "
              f"{r.scores.mean():.3f} | {r.scores.min():.3f}-{r.scores.max():.3f} |")

    judged = judged_set(model, tiles, CalibrationConfig(seed=args.seed))
    w = torch.cat([getattr(model, f"w{i}").flatten() for i in range(model.num_taps)]).double().numpy()
    a = agreement(w, judged)
    print(f"\n2AFC agreement on these tiles (rules of mindgap_core/ssl/calibrate.py): "
          f"within-family {a['rule1']:.3f}, radiometric vs structural {a['rule2']:.3f}, "
          f"all {a['all']:.3f} ({a['pairs']} pairs)")

    print(f"\nBicubic baseline on the demo's LR tiles of the {args.split} split vs HR, as is and with "
          f"each band's tile mean shifted onto the HR's (a radiometric-only fix):\n")
    print("| LR domain | LPIPS-Sat | PSNR (dB) | LPIPS-Sat, means matched | PSNR, means matched | "
          "Spearman(LPIPS-Sat, -PSNR) |")
    print("|---|---|---|---|---|---|")
    for c in bicubic_checks(model, args.demo_dir, args.split):
        rho = spearmanr(c.scores, -c.psnr)[0]
        print(f"| {c.domain} | {c.scores.mean():.3f} | {c.psnr.mean():.2f} | "
              f"{c.scores_mean_matched.mean():.3f} | {c.psnr_mean_matched.mean():.2f} | {rho:.2f} |")
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
