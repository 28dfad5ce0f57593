"""``mindgap infer``: tiled, georeferenced super-resolution of an LR scene with a saved model; under
``accelerate launch -m mindgap_core infer ...`` the processes share the scene and write one COG."""

from __future__ import annotations

import argparse

HELP = (
    "Super-resolve an LR reflectance raster tile by tile with a saved model; write the mean of N "
    "samples as a COG on the HR grid (and optionally their per-pixel std as uncertainty)"
)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", required=True,
        help="model folder (model_index.json + components) or model card (a YAML/JSON file, or a folder "
        "with model_card.yaml) of a TorchScript, ONNX or entry-point model",
    )  # fmt: skip
    parser.add_argument("--input", required=True, help="LR raster (GeoTIFF/COG) with the model's bands")
    parser.add_argument("--out", required=True, help="output SR COG path")
    parser.add_argument(
        "--samples", type=_positive_int, default=None,
        help="samples per tile (mean = output; default: the model's, 1 unless its card says more)",
    )  # fmt: skip
    parser.add_argument("--steps", type=_positive_int, default=None, help="sampling steps (default: model's)")
    parser.add_argument("--tile", type=int, default=64, help="tile size in LR pixels (default 64)")
    parser.add_argument(
        "--overlap", type=int, default=8,
        help="tile overlap in LR pixels (default 8; tile > 2 x overlap); the outer quarter of the "
        "overlap is a guard band, so models whose receptive field is <= overlap/4 show no seams at all",
    )  # fmt: skip
    parser.add_argument("--uncertainty", default=None, help="also write per-pixel std over samples (COG)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (per-tile seeds derive from it)")
    parser.add_argument(
        "--batch-size", type=_positive_int, default=4, help="tiles per model call (deterministic models)"
    )
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default=None, help="torch device (default: cuda if available)"
    )
    parser.add_argument(
        "--bands", default=None,
        help="comma-separated names of the input's bands in file order (default: band descriptions; "
        "files without descriptions must be in the model's order)",
    )  # fmt: skip
    parser.add_argument(
        "--dn-scale", type=float, default=None,
        help="integer DN input: reflectance = (DN + --dn-offset) x DN_SCALE (e.g. 0.0001 for S2 L2A)",
    )  # fmt: skip
    parser.add_argument(
        "--dn-offset", type=float, default=0.0, help="added to DN before scaling (S2 PB >= 04.00: -1000)"
    )
    parser.add_argument(
        "--allow-no-crs", action="store_true",
        help="accept an ungeoreferenced input (e.g. a bare image patch); the output then has the "
        "input's pixel grid scaled by 1/scale and no CRS",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import contextlib
    import sys

    import torch

    from mindgap_core.cli.progress import tqdm_progress
    from mindgap_core.errors import ConfigError
    from mindgap_core.inference import run_inference
    from mindgap_core.inference.tiled import launcher_shard
    from mindgap_core.models import load_model
    from mindgap_core.types import no_progress

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available")
    shard, rank_device = launcher_shard()  # under `accelerate launch`: this rank's share of the scene
    if shard.world > 1 and device == "cuda":
        device = rank_device  # one GPU per rank
    bands = [b.strip() for b in args.bands.split(",")] if args.bands else None
    model = load_model(args.model, device=device)
    with contextlib.ExitStack() as stack:
        bar: list = []

        def on_progress(done: int, total: int) -> None:
            # The bar opens with the first tile, after every input check passed (errors stay one line).
            if not bar:
                bar.append(stack.enter_context(tqdm_progress(f"infer {model.method}")))
            bar[0](done, total)

        result = run_inference(
            model, args.input, args.out,
            num_samples=args.samples or model.default_samples, steps=args.steps, tile=args.tile,
            overlap=args.overlap,
            uncertainty_path=args.uncertainty, seed=args.seed, batch_size=args.batch_size, device=device,
            allow_no_crs=args.allow_no_crs, band_names=bands, dn_scale=args.dn_scale,
            dn_offset=args.dn_offset, model_path=args.model,
            on_progress=on_progress if shard.rank == 0 else no_progress, shard=shard,
        )  # fmt: skip
    if shard.rank != 0:
        return 0
    written = f"{result.out_path}" + (f" and {result.uncertainty_path}" if result.uncertainty_path else "")
    print(
        f"wrote {written}: {result.method} x{result.scale}, {result.n_tiles} tiles "
        f"({result.n_skipped_tiles} all-nodata skipped), {result.num_samples} sample(s), "
        f"{result.steps} steps, {result.seconds:.1f} s",
        file=sys.stdout,
    )
    return 0
