"""Exporting a MindGap model as TorchScript or ONNX with its model card (what ``mindgap export`` does).

The whole reflectance -> reflectance pipeline is exported (normalisation, bicubic upsampling, the
networks, de-normalisation), traced on the probe tile, so the card says ``normalisation: none`` and
reflectance ``value_range: [0, 1]``. Only deterministic models are exported: a diffusion sampler's
loop over a scheduler is not captured by tracing. The folder written holds ``model.pt`` or
``model.onnx`` and ``model_card.yaml``; it is written beside ``out`` and renamed into place, then
loaded back through its card (probe checks included) and compared with the original on the probe.
ONNX export uses torch's TorchScript-based exporter (``dynamo=False``): the torch.export-based one
needs the ``onnxscript`` package, which MindGap does not pin.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch import nn

from mindgap_core.errors import ConfigError
from mindgap_core.models.base import SRModel
from mindgap_core.models.card import CARD_NAMES
from mindgap_core.models.external import probe_tile
from mindgap_core.models.registry import describe_model, load_model

#: export format -> model file name in the exported folder
EXPORT_FILES: dict[str, str] = {"torchscript": "model.pt", "onnx": "model.onnx"}
ONNX_OPSET = 17


@dataclass(frozen=True)
class ExportResult:
    """The exported folder, its card, and the largest |export - original| on the probe tile."""

    folder: Path
    card: Path
    max_abs_difference: float


class _Pipeline(nn.Module):
    """``model``'s deterministic reflectance -> reflectance sampling as one module (for tracing)."""

    def __init__(self, model: SRModel) -> None:
        super().__init__()
        self.model = model
        self.networks = nn.ModuleDict(model.networks())  # their parameters become the module's

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.model._sample(lr, self.model.default_steps, None, lambda done, total: None)


def _write_model(pipeline: _Pipeline, example: torch.Tensor, fmt: str, dest: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings on constants, the legacy exporter's notice
        if fmt == "torchscript":
            torch.jit.save(torch.jit.trace(pipeline, example, check_trace=False), str(dest))
            return
        axes = {0: "batch", 2: "rows", 3: "cols"}
        torch.onnx.export(
            pipeline, (example,), str(dest), dynamo=False, input_names=["lr"], output_names=["sr"],
            dynamic_axes={"lr": axes, "sr": axes}, opset_version=ONNX_OPSET,
        )


def _card(model: SRModel, source: Path, fmt: str, name: str | None) -> dict:
    info = describe_model(source)
    # the smallest LR multiple whose HR size is a multiple of the model's size_multiple
    multiple = model.size_multiple // math.gcd(model.size_multiple, model.scale)
    return {
        "name": name or f"{model.method}-{info.regime}-{fmt}",
        "format": fmt,
        "file": EXPORT_FILES[fmt],
        "bands": list(model.band_names),
        "scale": model.scale,
        "input": {"normalisation": "none", "value_range": [0.0, 1.0]},
        "stochastic": False,
        "samples": 1,
        "input_multiple": multiple,
        "regime": info.regime,
        "train_domain": info.train_domain,
        "source": f"exported from {source} by mindgap export",
    }


def export_model(model_dir: str | Path, fmt: str, out: str | Path, name: str | None = None) -> ExportResult:
    """Export the deterministic MindGap model in ``model_dir`` as ``fmt`` into the new folder ``out``."""
    from mindgap_core.models.external import load_external_model

    if fmt not in EXPORT_FILES:
        raise ConfigError(f"export format must be one of {list(EXPORT_FILES)}, got {fmt!r}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} exists and is not an empty folder; choose another --out")
    source = Path(model_dir)
    model = load_model(source, device="cpu")
    if model.stochastic:
        raise ConfigError(
            f"{source}: {model.method} is stochastic; its sampling loop over a scheduler is not captured "
            "by a traced export. Export deterministic models (regression, bicubic)"
        )
    for net in model.networks().values():
        net.requires_grad_(False)
    example = probe_tile(model.band_names)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _write_model(_Pipeline(model), example, fmt, tmp / EXPORT_FILES[fmt])
        (tmp / CARD_NAMES[0]).write_text(yaml.safe_dump(_card(model, source, fmt, name), sort_keys=False))
        exported = load_external_model(tmp)
        with torch.no_grad():
            difference = float((exported.sample(example) - model.sample(example)).abs().max())
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(out, out / CARD_NAMES[0], difference)
