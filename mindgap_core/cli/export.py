"""``mindgap export``: a deterministic MindGap model as TorchScript or ONNX, with its model card."""

from __future__ import annotations

import argparse

HELP = (
    "Export a deterministic model folder (regression, bicubic) as TorchScript or ONNX into a new folder "
    "with its model card; the export is loaded back through the card and compared on a probe tile"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model folder (model_index.json + components)")
    parser.add_argument("--format", required=True, choices=["torchscript", "onnx"], help="export format")
    parser.add_argument("--out", required=True, help="new folder for model.pt|model.onnx + model_card.yaml")
    parser.add_argument(
        "--name", default=None, help="the card's name (default: <method>-<regime>-<format>)"
    )


def run(args: argparse.Namespace) -> int:
    import sys

    from mindgap_core.models.export import export_model

    result = export_model(args.model, args.format, args.out, name=args.name)
    print(
        f"wrote {result.folder} ({result.card.name} + model file); max |export - original| on the probe "
        f"tile: {result.max_abs_difference:.3g}",
        file=sys.stdout,
    )
    return 0
