"""The ``mindgap`` command: one sub-command per pipeline stage.

Each sub-command is a module in this package exposing ``HELP: str``, ``add_arguments(parser)`` and
``run(args) -> int``. Modules import heavy libraries (torch, rasterio) inside ``run`` so that
``mindgap --help`` stays fast. Input problems (:class:`MindGapError`) become one line on stderr and
exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from mindgap_core.errors import MindGapError

#: sub-command name -> module path (a plain registry, no import magic)
COMMANDS: dict[str, str] = {
    "demo": "mindgap_core.cli.demo",
    "pairs": "mindgap_core.cli.pairs",
    "degrade": "mindgap_core.cli.degrade",
    "infer": "mindgap_core.cli.infer",
    "export": "mindgap_core.cli.export",
    "gap": "mindgap_core.cli.gap",
    "train": "mindgap_core.cli.train",
    "score": "mindgap_core.cli.score",
    "ssl-pretrain": "mindgap_core.cli.ssl_pretrain",
    "lpips-sat-calibrate": "mindgap_core.cli.lpips_sat_calibrate",
    "evaluate": "mindgap_core.cli.evaluate",
    "attribute": "mindgap_core.cli.attribute",
    "adapter": "mindgap_core.cli.adapter",
    "worker": "mindgap_core.cli.worker",
    "spread-scale": "mindgap_core.cli.spread_scale",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered sub-command."""
    parser = argparse.ArgumentParser(prog="mindgap", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_path in COMMANDS.items():
        module = importlib.import_module(module_path)
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except MindGapError as exc:
        print(f"mindgap {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mindgap {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
