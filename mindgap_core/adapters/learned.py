"""A small learned LR -> LR adapter: a residual CNN trained with L1 on paired training tiles.

The network (a diffusers ``ModelMixin`` + ``ConfigMixin``, saved as ``network/config.json`` +
safetensors) sees the source LR normalised with the target LR's band statistics and predicts a
correction added to it. It works at LR size, so it trains in a minute or two on a CPU. Training is
seeded (batches are a pure function of seed and step, dihedral augmentation), logs ``loss.csv`` and
records ``training.json`` with the validation L1 before and after adaptation.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from mindgap_core.adapters.base import AdapterPairs, LRAdapter
from mindgap_core.models.base import per_band
from mindgap_core.models.checkpoint import load_component
from mindgap_core.types import ProgressFn, no_progress

NETWORK_FOLDER = "network"


class AdapterNetwork(ModelMixin, ConfigMixin):
    """conv -> ``blocks`` x (conv, ReLU, conv, + skip) -> conv; output = input + correction."""

    @register_to_config
    def __init__(self, channels: int = 4, features: int = 32, blocks: int = 4) -> None:
        super().__init__()
        self.head = nn.Conv2d(channels, features, 3, padding=1, padding_mode="reflect")
        self.body = nn.ModuleList(
            nn.Sequential(nn.Conv2d(features, features, 3, padding=1, padding_mode="reflect"), nn.ReLU(),
                          nn.Conv2d(features, features, 3, padding=1, padding_mode="reflect"))
            for _ in range(blocks)
        )
        self.tail = nn.Conv2d(features, channels, 3, padding=1, padding_mode="reflect")
        nn.init.zeros_(self.tail.weight)  # starts as the identity
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.head(x))
        for block in self.body:
            h = h + block(h)
        return x + self.tail(h)


class LearnedAdapter(LRAdapter):
    """:class:`AdapterNetwork` in the target LR's normalised space."""

    kind: ClassVar[str] = "learned"
    file_parts: ClassVar[tuple[str, ...]] = ("network",)

    @register_to_config
    def __init__(self, *, network: AdapterNetwork, band_mean: Sequence[float], band_std: Sequence[float],
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.network = network.eval()
        self.band_mean = [float(v) for v in band_mean]
        self.band_std = [float(v) for v in band_std]
        self.register_to_config(band_mean=self.band_mean, band_std=self.band_std)

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return per_band(self.band_mean, x), per_band(self.band_std, x)

    def forward_normalised(self, lr: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(lr)
        return self.network((lr.float() - mean) / std)

    def adapt(self, lr: torch.Tensor, reference_hr: torch.Tensor | None = None) -> torch.Tensor:
        self.check_bands(lr)
        mean, std = self._stats(lr)
        with torch.no_grad():
            return (self.forward_normalised(lr) * std + mean).to(lr.dtype)

    def to(self, device: str | torch.device) -> LearnedAdapter:
        self.network.to(device)
        return self

    def _save_files(self, folder: Path) -> None:
        self.network.save_pretrained(folder / NETWORK_FOLDER, safe_serialization=True)

    @classmethod
    def _load_files(cls, folder: Path) -> dict[str, Any]:
        return {"network": load_component(AdapterNetwork, folder / NETWORK_FOLDER)}


def _learning_rate(step: int, steps: int, base: float) -> float:
    """Cosine decay from ``base`` to 10 % of it."""
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / max(steps, 1))))


def train_learned_adapter(
    train: AdapterPairs, val: AdapterPairs | None, *, steps: int = 1500, batch_size: int = 16,
    features: int = 32, blocks: int = 4, learning_rate: float = 1e-3, seed: int = 0, device: str = "cpu",
    on_progress: ProgressFn = no_progress,
) -> tuple[LearnedAdapter, list[tuple[int, float, float, float]], dict[str, Any]]:
    """Train the adapter; (adapter, loss rows (step, loss, lr, wall_s), summary for training.json)."""
    from mindgap_core.train.data import SeededBatches, augment_pair

    torch.manual_seed(seed)
    target = train.target
    mean = target.mean(dim=(0, 2, 3)).tolist()
    std = target.std(dim=(0, 2, 3)).clamp_min(1e-4).tolist()
    network = AdapterNetwork(channels=target.shape[1], features=features, blocks=blocks)
    adapter = LearnedAdapter(network=network, band_mean=mean, band_std=std).to(device)
    net = adapter.network.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=learning_rate)
    batches = SeededBatches(len(train.tile_ids), batch_size, seed)
    src, tgt = train.source.to(device), target.to(device)
    m, s = adapter._stats(src)
    rows: list[tuple[int, float, float, float]] = []
    start = time.perf_counter()
    for step in range(steps):
        idx, codes = batches.indices(step)
        pairs = [augment_pair(src[i], tgt[i], int(c)) for i, c in zip(idx, codes, strict=True)]
        x = torch.stack([p[0] for p in pairs])
        y = torch.stack([p[1] for p in pairs])
        lr_value = _learning_rate(step, steps, learning_rate)
        for group in optimizer.param_groups:
            group["lr"] = lr_value
        loss = F.l1_loss(adapter.forward_normalised(x), (y - m) / s)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        rows.append((step + 1, loss.item(), lr_value, time.perf_counter() - start))
        on_progress(step + 1, steps)
    net.eval()
    summary = {"kind": "learned", "steps": steps, "batch_size": batch_size, "seed": seed,
               "learning_rate": learning_rate, "wall_s": round(time.perf_counter() - start, 2),
               "device": device, "parameters": sum(p.numel() for p in net.parameters()),
               "train_tiles": len(train.tile_ids)}
    if val is not None:
        summary.update(validation_l1(adapter, val, device))
    return adapter, rows, summary


def validation_l1(adapter: LRAdapter, val: AdapterPairs, device: str = "cpu") -> dict[str, float]:
    """Mean absolute LR difference to the target domain before and after adaptation (reflectance)."""
    with torch.no_grad():
        src, tgt = val.source.to(device), val.target.to(device)
        ref = val.hr.to(device) if adapter.uses_reference else None
        adapted = adapter.adapt(src, ref)
    return {"val_tiles": len(val.tile_ids), "val_l1_before": float((src - tgt).abs().mean()),
            "val_l1_after": float((adapted - tgt).abs().mean())}


def write_loss_log(folder: Path, rows: list[tuple[int, float, float, float]]) -> Path:
    """``loss.csv`` (step, loss, lr, wall_s), atomically."""
    from mindgap_core.io.atomic import atomic_path

    with atomic_path(folder / "loss.csv") as tmp:
        lines = "".join(f"{a},{b:.8g},{c:.8g},{d:.3f}\n" for a, b, c, d in rows)
        tmp.write_text("step,loss,lr,wall_s\n" + lines)
    return folder / "loss.csv"


def write_training_info(folder: Path, summary: Mapping[str, Any]) -> Path:
    """``training.json``, atomically."""
    from mindgap_core.io.atomic import atomic_path

    with atomic_path(folder / "training.json") as tmp:
        tmp.write_text(json.dumps(dict(summary), indent=1, sort_keys=True))
    return folder / "training.json"
