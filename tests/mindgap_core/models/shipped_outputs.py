"""Outputs of every shipped demo model and adapter on one demo tile, and their recorded references.

``python -m tests.mindgap_core.models.shipped_outputs --write`` records, for every folder under
``data/demo/models/`` holding a ``model_index.json`` (SR models) or an ``adapter_index.json``
(adapters), the SHA-256 of the float32 output bytes on the first ``test`` tile of the demo manifest
(seeded generator, at most ``MAX_STEPS`` sampling steps, two samples for stochastic models; the
model's own ``default_steps`` is recorded beside) and a 4 x 4 corner of
every output plane, into ``shipped_outputs.json`` next to this file. The references in the repository
were recorded from the code before the model configs moved onto diffusers' ``ConfigMixin``;
``test_shipped_outputs.py`` checks that the code still gives bit-identical outputs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from tests.fixtures import REPO_ROOT

MODELS_ROOT = REPO_ROOT / "data" / "demo" / "models"
MANIFEST = REPO_ROOT / "data" / "demo" / "manifest.parquet"
REFERENCE_FILE = Path(__file__).with_name("shipped_outputs.json")
#: test tile and domains the outputs are computed on
TILE_SPLIT = "test"
SR_DOMAIN = "synthetic"
ADAPTER_DOMAIN = "simulated_cross_sensor"
SEED = 0
SAMPLES_IF_STOCHASTIC = 2
CORNER = 4
#: sampling steps used (fewer than SR3/SRDiff/LDM-SR's default 50, to keep the test short)
MAX_STEPS = 8


def shipped_folders(index_name: str) -> list[Path]:
    """Every folder below ``data/demo/models`` holding ``index_name``, sorted."""
    return sorted(p.parent for p in MODELS_ROOT.rglob(index_name))


def demo_tile(domain: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(LR, HR) reflectance (1, C, h, w) of the first ``test`` tile (by tile id) of ``domain``."""
    from mindgap_core.data.manifest import read_manifest
    from mindgap_core.train.data import load_pair_tiles

    table = read_manifest(MANIFEST)
    rows = table[(table["domain"] == domain) & (table["split"] == TILE_SPLIT)].sort_values("tile_id")
    tiles = load_pair_tiles(MANIFEST, rows.head(1))
    return tiles.lr.float(), tiles.hr.float()


def summary(out: torch.Tensor) -> dict[str, Any]:
    """SHA-256 of the contiguous float32 bytes, the shape, and the top-left corner of every plane."""
    out = out.detach().float().cpu().contiguous()
    planes = out.reshape(-1, *out.shape[-2:])[:, :CORNER, :CORNER]
    return {
        "sha256": hashlib.sha256(out.numpy().tobytes()).hexdigest(),
        "shape": list(out.shape),
        "corner": planes.tolist(),
    }


def model_output(folder: Path, lr: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``load_model(folder).sample`` on ``lr`` (seeded, 2 samples when stochastic) and the model's
    ``default_steps``."""
    from mindgap_core.models import load_model

    model = load_model(folder)
    samples = SAMPLES_IF_STOCHASTIC if model.stochastic else 1
    steps = min(model.default_steps, MAX_STEPS)
    out = model.sample(lr, num_samples=samples, steps=steps, generator=torch.Generator().manual_seed(SEED))
    return out, model.default_steps


def adapter_output(folder: Path, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """``load_adapter(folder).adapt`` on ``lr`` (with the HR reference when it co-registers)."""
    from mindgap_core.adapters.registry import load_adapter

    adapter = load_adapter(folder)
    return adapter.adapt(lr, hr if adapter.uses_reference else None)


def current_outputs() -> dict[str, dict[str, Any]]:
    """Summaries of every shipped model and adapter with the code as it is now, by folder."""
    torch.set_num_threads(1)
    lr, _ = demo_tile(SR_DOMAIN)
    adapter_lr, adapter_hr = demo_tile(ADAPTER_DOMAIN)
    out: dict[str, dict[str, Any]] = {}
    with torch.no_grad():
        for folder in shipped_folders("model_index.json"):
            sample, default_steps = model_output(folder, lr)
            name = folder.relative_to(MODELS_ROOT).as_posix()
            out[name] = {**summary(sample), "default_steps": default_steps}
        for folder in shipped_folders("adapter_index.json"):
            out[folder.relative_to(MODELS_ROOT).as_posix()] = summary(
                adapter_output(folder, adapter_lr, adapter_hr)
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {REFERENCE_FILE.name}")
    args = parser.parse_args()
    outputs = current_outputs()
    if args.write:
        REFERENCE_FILE.write_text(json.dumps(outputs, indent=1, sort_keys=True) + "\n")
    reference = json.loads(REFERENCE_FILE.read_text()) if REFERENCE_FILE.is_file() else {}
    for name, row in outputs.items():
        same = reference.get(name, {}).get("sha256") == row["sha256"]
        print(f"{name:<40} {row['sha256'][:16]}  {'identical' if same else 'DIFFERS'}")


if __name__ == "__main__":
    main()
