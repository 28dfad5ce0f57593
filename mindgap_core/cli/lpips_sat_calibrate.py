"""``mindgap lpips-sat-calibrate``: fit LPIPS-Sat's per-channel weights on the generated 2AFC set."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = (
    "Calibrate a MindGap LPIPS-Sat backbone folder's per-channel weights (LPIPS's lin stage) on a "
    "2AFC set generated from the demo's train-split HR tiles and the real S2 patch; rewrites its "
    "config.json and writes calibration_log.json"
)


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """--source-dir and --demo-dir (shared with ``ssl-pretrain``)."""
    parser.add_argument(
        "--source-dir",
        default="data/demo/source",
        help="folder with s2_10m_b02_b03_b04_b08_spyndex.tif and landsat8/ (default data/demo/source)",
    )
    parser.add_argument("--demo-dir", default="data/demo",
                        help="demo folder with scene/hr_reflectance_5m.tif, manifest.parquet and tiles/hr/: "
                             "its HR image is used without the test and val tiles (default data/demo)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backbone", default="data/lpips_sat",
                        help="backbone folder (model.safetensors + config.json); default data/lpips_sat")
    add_source_arguments(parser)
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")


def calibrate_and_report(folder: Path, demo_dir: Path, source_dir: Path, seed: int) -> None:
    """Calibrate ``folder`` (progress bar) and print the agreement it reached."""
    from mindgap_core.cli.progress import tqdm_progress
    from mindgap_core.ssl.calibrate import CalibrationConfig, calibrate_folder

    with tqdm_progress("lpips-sat-calibrate") as on_progress:
        result = calibrate_folder(folder, demo_dir, source_dir, CalibrationConfig(seed=seed), on_progress)
    val = result.log["agreement_val"]
    print(f"calibrated {folder}: 2AFC agreement on the val tiles {val['uniform']['all']:.3f} (uniform) -> "
          f"{val['calibrated']['all']:.3f}; radiometric vs structural {val['uniform']['rule2']:.3f} -> "
          f"{val['calibrated']['rule2']:.3f} ({result.log['wall_time_s']:.0f} s)")


def run(args: argparse.Namespace) -> int:
    import torch

    from mindgap_core.errors import ConfigError

    if args.threads < 1:
        raise ConfigError("--threads must be >= 1")
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        calibrate_and_report(Path(args.backbone), Path(args.demo_dir), Path(args.source_dir), args.seed)
    finally:
        torch.set_num_threads(threads)
    return 0
