"""``mindgap degrade``: make a synthetic or simulated cross-sensor LR raster from an HR raster."""

from __future__ import annotations

import argparse

HELP = (
    "Degrade an HR reflectance raster to LR (synthetic: bicubic, gaussian_mtf, opensr_like; or "
    "simulated_cross_sensor) and write a COG plus <out>.params.json"
)

_METHODS_HELP = "bicubic, gaussian_mtf, opensr_like, simulated_cross_sensor"
_EFFECTS_HELP = "mtf, spectral, radiometric, temporal, misregistration, noise"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hr", required=True, help="HR raster (GeoTIFF/COG) in surface reflectance")
    parser.add_argument("--method", required=True, help=f"degradation: {_METHODS_HELP}")
    parser.add_argument("--scale", required=True, type=int, help="integer downsampling factor")
    parser.add_argument("--out", required=True, help="output LR COG path")
    parser.add_argument(
        "--dn-scale",
        type=float,
        default=None,
        help="read an integer (DN) HR raster as reflectance = DN x this factor (e.g. 0.0001)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (noise, simulator draws)")
    parser.add_argument(
        "--disable",
        nargs="+",
        default=[],
        metavar="EFFECT",
        help=f"simulated_cross_sensor only: effects to switch off ({_EFFECTS_HELP})",
    )
    parser.add_argument(
        "--tile-id", default=None, help="simulated_cross_sensor only: draw parameters for this tile id"
    )
    parser.add_argument(
        "--noise-sigma",
        type=float,
        default=None,
        help="synthetic methods only: add Gaussian noise of this std (reflectance; shot std at 1 when "
        "--signal-dependent-noise)",
    )
    parser.add_argument("--read-noise", type=float, default=0.0, help="synthetic methods: read-noise std")
    parser.add_argument(
        "--signal-dependent-noise", action="store_true", help="synthetic methods: std grows with sqrt(signal)"
    )
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")


def run(args: argparse.Namespace) -> int:
    import json

    from mindgap_core.cli.progress import tqdm_progress
    from mindgap_core.degrade.apply import SIMULATED_METHOD, check_method, degrade_file, params_sidecar_path
    from mindgap_core.degrade.sensor_config import SimulatorConfig
    from mindgap_core.degrade.synthetic import NoiseConfig
    from mindgap_core.errors import ConfigError
    from mindgap_core.io.atomic import atomic_path, check_writable

    check_method(args.method)
    out = check_writable(args.out)
    sidecar = check_writable(params_sidecar_path(out))
    simulated = args.method == SIMULATED_METHOD
    if not simulated and (args.disable or args.tile_id is not None):
        raise ConfigError(f"--disable and --tile-id apply to {SIMULATED_METHOD} only")
    if simulated and (args.noise_sigma is not None or args.signal_dependent_noise or args.read_noise):
        raise ConfigError(f"{SIMULATED_METHOD} draws its own noise; use --disable noise to switch it off")

    config = SimulatorConfig().without(*args.disable) if simulated else None
    noise = None
    if args.noise_sigma is not None or args.read_noise:
        noise = NoiseConfig(
            sigma=args.noise_sigma or 0.0,
            signal_dependent=args.signal_dependent_noise,
            read_sigma=args.read_noise,
        )
    with atomic_path(sidecar) as tmp, tqdm_progress(f"degrade {args.method}") as on_progress:
        # the raster is read by windows (synthetic methods) and the COG written as it goes; the
        # sidecar is renamed only if the COG was written too
        record = degrade_file(
            args.hr, out, args.method, args.scale, seed=args.seed, config=config, noise=noise,
            tile_id=args.tile_id, dn_scale=args.dn_scale, device=args.device, on_progress=on_progress,
        )  # fmt: skip
        record["hr"] = str(args.hr)
        tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    bands, (rows, cols) = len(record["bands"]), record["lr_shape"]
    print(f"wrote {out} ({bands} bands, {rows}x{cols}) and {sidecar}")
    return 0
