"""Self-supervised pre-training of MindGap's LPIPS-Sat backbone (SimSiam on the real imagery we ship).

``pretrain(images, config)`` is deterministic for a given seed on one machine and thread count:
every random draw comes from seeded generators, ``torch.use_deterministic_algorithms(True)`` is on
during training, data are produced in-process (no worker processes). ``save_backbone`` writes the
encoder (fp32 safetensors) and ``config.json`` (architecture, bands, standardisation, training
settings) in the folder format :func:`mindgap_core.metrics.lpips_sat.load_mindgap_backbone` reads.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from mindgap_core.io.atomic import atomic_path
from mindgap_core.ssl.augment import AugmentConfig, RegionSampler, sample_batch
from mindgap_core.ssl.data import SSLImage, band_statistics
from mindgap_core.ssl.encoder import EncoderConfig, ResNetEncoder, json_safe
from mindgap_core.ssl.simsiam import SimSiam, collapse_std
from mindgap_core.types import CANONICAL_BANDS, ProgressFn, no_progress

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
LOG_FILE = "training_log.json"
BACKBONE_NAME = "mindgap-lpips-sat-simsiam"

#: The shipped backbone's encoder: ~1.2 M parameters, stride-2 stem, one basic block per stage.
DEFAULT_ENCODER = EncoderConfig(in_chans=4, stem_width=32, stem_kernel=5, stem_stride=2,
                                stem_pool=False, block="basic", layers=(1, 1, 1, 1),
                                widths=(32, 64, 128, 256), strides=(2, 2, 2, 2))


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that determines the trained weights."""

    seed: int = 0
    steps: int = 400
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_steps: int = 20
    proj_dim: int = 512
    pred_dim: int = 128
    encoder: EncoderConfig = DEFAULT_ENCODER
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict:
        """JSON-safe dict."""
        d = asdict(self)
        d["encoder"] = self.encoder.to_dict()
        d["augment"] = json_safe(self.augment)
        return d


@dataclass(frozen=True)
class PretrainResult:
    """The trained encoder and what happened."""

    encoder: ResNetEncoder
    band_mean: tuple[float, ...]
    band_std: tuple[float, ...]
    losses: tuple[float, ...]
    collapse_std: float
    wall_time_s: float
    sources: tuple[str, ...]
    cpu_time_s: float = float("nan")


def _lr_at(step: int, cfg: PretrainConfig) -> float:
    """Linear warm-up then cosine decay to 0."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * t))


def pretrain(images: list[SSLImage], cfg: PretrainConfig = PretrainConfig(),
             device: str | torch.device = "cpu", on_progress: ProgressFn = no_progress) -> PretrainResult:
    """Train the encoder with SimSiam on views of ``images``; returns it in eval mode on CPU."""
    t0, c0 = time.perf_counter(), time.process_time()
    band_mean, band_std = band_statistics(images)
    mean_t = torch.tensor(band_mean, dtype=torch.float32).view(1, -1, 1, 1).to(device)
    std_t = torch.tensor(band_std, dtype=torch.float32).view(1, -1, 1, 1).to(device)
    rng = np.random.default_rng(cfg.seed)
    sampler = RegionSampler(images, cfg.augment.region)
    was_det = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        torch.manual_seed(cfg.seed)
        encoder = ResNetEncoder(cfg.encoder)
        model = SimSiam(encoder, cfg.proj_dim, cfg.pred_dim).to(device).train()
        # SimSiam: the predictor keeps a fixed learning rate; encoder/projector follow the schedule
        groups = [
            {"params": list(model.encoder.parameters()) + list(model.projector.parameters()),
             "fix_lr": False},
            {"params": list(model.predictor.parameters()), "fix_lr": True},
        ]
        opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        losses = []
        z_last = None
        for step in range(cfg.steps):
            lr = _lr_at(step, cfg)
            for g in opt.param_groups:
                g["lr"] = cfg.lr if g["fix_lr"] else lr
            v1, v2 = sample_batch(sampler, cfg.batch_size, band_mean, rng, cfg.augment)
            v1 = (v1.to(device) - mean_t) / std_t
            v2 = (v2.to(device) - mean_t) / std_t
            loss, z_last = model(v1, v2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(round(float(loss.detach()), 6))
            on_progress(step + 1, cfg.steps)
    finally:
        torch.use_deterministic_algorithms(was_det)
    encoder = model.encoder.to("cpu").eval()
    return PretrainResult(
        encoder=encoder, band_mean=band_mean, band_std=band_std, losses=tuple(losses),
        collapse_std=collapse_std(z_last.cpu()) if z_last is not None else float("nan"),
        wall_time_s=time.perf_counter() - t0, sources=tuple(im.name for im in images),
        cpu_time_s=time.process_time() - c0,
    )


def backbone_config(result: PretrainResult, cfg: PretrainConfig) -> dict:
    """The ``config.json`` content (deterministic: no timings)."""
    return {
        "name": BACKBONE_NAME,
        "format_version": 1,
        "ssl_method": "SimSiam (Chen & He 2021)",
        "encoder": cfg.encoder.to_dict(),
        "band_names": list(CANONICAL_BANDS),
        "input_units": "reflectance",
        "band_mean": list(result.band_mean),
        "band_std": list(result.band_std),
        "channel_weights": "uniform",
        "taps": ["stem", "layer1", "layer2", "layer3", "layer4"],
        "training_sources": list(result.sources),
        "nir_handling": f"band dropout: missing NIR (Landsat-8) and {cfg.augment.nir_dropout:.0%} of "
                        "present NIR views set to the NIR mean (0 after standardisation)",
        "augmentations": "integer-offset crops, flips/90° rotations, global gain/offset, small per-band "
                         "gain/offset; no blur, noise, resampling or texture (mindgap_core/ssl/augment.py)",
        "pretrain": cfg.to_dict(),
    }


def save_backbone(folder: str | Path, result: PretrainResult, cfg: PretrainConfig,
                  device: str = "cpu") -> Path:
    """Write ``model.safetensors``, ``config.json`` and ``training_log.json`` into ``folder``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32).contiguous()
             for k, v in result.encoder.state_dict().items() if v.is_floating_point()}
    state.update({k: v.detach().cpu().contiguous()
                  for k, v in result.encoder.state_dict().items() if not v.is_floating_point()})
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp), metadata={"name": BACKBONE_NAME, "format": "pt"})
    with atomic_path(folder / CONFIG_FILE) as tmp:
        tmp.write_text(json.dumps(backbone_config(result, cfg), indent=2) + "\n")
    log = {
        "wall_time_s": round(result.wall_time_s, 1),
        "cpu_time_s": round(result.cpu_time_s, 1),
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "final_loss": result.losses[-1] if result.losses else None,
        "collapse_std": round(result.collapse_std, 5),
        "collapse_std_reference": round(1 / math.sqrt(cfg.proj_dim), 5),
        "losses": list(result.losses),
    }
    with atomic_path(folder / LOG_FILE) as tmp:
        tmp.write_text(json.dumps(log, indent=1) + "\n")
    for name in (WEIGHTS_FILE, CONFIG_FILE, LOG_FILE):  # shippable files: readable by everyone
        os.chmod(folder / name, 0o644)
    return folder
