"""LPIPS-Sat: the LPIPS formula on a 4-band (B, G, R, NIR) encoder self-supervised on satellite data.

Definition (ours, stated in docs/lpips_sat.md): for an encoder with feature taps l = 1..L,
``d(x, y) = sum_l mean_{h,w} sum_c w_{l,c} (f̂_l(x) - f̂_l(y))^2`` where ``f̂`` is the feature vector
unit-normalised over channels at each position (lpips' ``normalize_tensor``, eps 1e-10) and
``w_{l,c} >= 0`` are per-channel weights (LPIPS's "lin" stage): the shipped backbone's are calibrated
on a generated 2AFC set (:mod:`mindgap_core.ssl.calibrate`) and scaled so that two different HR
tiles of the scene are ~1 apart; a backbone without calibration (SSL4EO-S12 files, ``--no-calibrate``)
uses uniform weights (1), where each layer contributes a value in [0, 4]. The spatial form
upsamples each layer's map bilinearly to the input size before summing (as
``lpips.LPIPS(spatial=True)``) and gives the heatmap.

Inputs are reflectance (values / data range), bands in the backbone's declared order, standardised
with the backbone's per-band mean/std.

Backbones, in order of preference:
1. user-supplied SSL4EO-S12 Sentinel-2 ResNet-18/50 checkpoints (torchgeo's ``SENTINEL2_ALL_MOCO`` /
   ``SENTINEL2_ALL_DINO``, timm-style state dicts over the 13 TOA bands B01, B02, B03, B04, B05, B06,
   B07, B08, B8A, B09, B10, B11, B12): the first convolution keeps input channels 1, 2, 3, 7
   (B02, B03, B04, B08 = blue, green, red, nir); torchgeo normalises those models' inputs by dividing
   DN by 10000, i.e. they take reflectance as is (mean 0, std 1 here);
2. MindGap's own SimSiam backbone shipped in ``data/lpips_sat/`` (``mindgap ssl-pretrain``, which
   also calibrates it; ``mindgap lpips-sat-calibrate`` re-calibrates a folder).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.ssl.encoder import RESNET18, RESNET50, EncoderConfig, ResNetEncoder
from mindgap_core.ssl.pretrain import CONFIG_FILE, WEIGHTS_FILE
from mindgap_core.types import CANONICAL_BANDS

#: SSL4EO-S12 / torchgeo Sentinel-2 band order of the 13-band checkpoints.
SSL4EO_S2_BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
)
#: Our canonical bands in that order: blue=B02, green=B03, red=B04, nir=B08.
SSL4EO_BAND_MAP: dict[str, str] = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08"}
SSL4EO_ARCHS: dict[str, EncoderConfig] = {"resnet18": RESNET18, "resnet50": RESNET50}

#: Where the repository ships MindGap's own backbone.
DEFAULT_BACKBONE_DIR = Path(__file__).resolve().parents[2] / "data" / "lpips_sat"


def normalize_tensor(feat: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Unit-normalise over channels at each position (lpips.normalize_tensor)."""
    return feat / (torch.sqrt(torch.sum(feat**2, dim=1, keepdim=True)) + eps)


class LPIPSSat(nn.Module):
    """LPIPS-Sat distance on a frozen :class:`ResNetEncoder`.

    ``band_names``: the input band order; ``band_mean``/``band_std``: per-band standardisation of
    reflectance; ``channel_weights``: one non-negative vector per tap (None = uniform ones).
    ``backbone_id`` is recorded with every score.
    """

    def __init__(self, encoder: ResNetEncoder, band_names: tuple[str, ...],
                 band_mean: tuple[float, ...], band_std: tuple[float, ...],
                 channel_weights: list[torch.Tensor] | None = None, backbone_id: str = "") -> None:
        super().__init__()
        if len(band_names) != encoder.config.in_chans:
            raise ConfigError(f"LPIPS-Sat backbone takes {encoder.config.in_chans} bands, "
                              f"got names {band_names}")
        self.encoder = encoder.eval()
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        self.band_names = tuple(band_names)
        self.register_buffer("mean", torch.tensor(band_mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(band_std, dtype=torch.float32).view(1, -1, 1, 1))
        taps = encoder.tap_channels
        if channel_weights is None:
            channel_weights = [torch.ones(c) for c in taps]
        if [w.numel() for w in channel_weights] != list(taps):
            raise ConfigError(f"LPIPS-Sat channel weights {[w.numel() for w in channel_weights]} "
                              f"do not match taps {list(taps)}")
        for i, w in enumerate(channel_weights):
            self.register_buffer(f"w{i}", w.to(torch.float32).view(1, -1, 1, 1))
        self.num_taps = len(taps)
        self.backbone_id = backbone_id

    def train(self, mode: bool = True) -> LPIPSSat:
        """The encoder stays in eval mode (BatchNorm running statistics): a metric never trains."""
        super().train(False)
        return self

    def select_bands(self, x: torch.Tensor, band_names: tuple[str, ...]) -> torch.Tensor:
        """Reorder (N, C, H, W) from ``band_names`` to the backbone's bands."""
        try:
            idx = [band_names.index(b) for b in self.band_names]
        except ValueError:
            raise ConfigError(f"LPIPS-Sat needs bands {self.band_names}, got {band_names}") from None
        return x[:, idx]

    def squared_differences(self, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """Per tap, ``(f̂_l(x) - f̂_l(y))^2`` for every channel, each (N, C_l, h_l, w_l), unweighted."""
        n = x.shape[0]
        z = torch.cat([x, y], dim=0).to(torch.float32)
        z = (z - self.mean) / self.std
        out = []
        for f in self.encoder.features(z):
            f = normalize_tensor(f)
            out.append((f[:n] - f[n:]) ** 2)
        return out

    def channel_terms(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(N, sum_l C_l) spatial means of :meth:`squared_differences`, taps concatenated in order:
        the distance is these terms dotted with the concatenated channel weights (the "lin" stage)."""
        return torch.cat([d.mean(dim=(2, 3)) for d in self.squared_differences(x, y)], dim=1)

    def layer_distances(self, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """Per-tap weighted squared distance maps, each (N, 1, h_l, w_l)."""
        return [(d * getattr(self, f"w{i}")).sum(dim=1, keepdim=True)
                for i, d in enumerate(self.squared_differences(x, y))]

    def forward(self, x: torch.Tensor, y: torch.Tensor, spatial: bool = False) -> torch.Tensor:
        """Distance per image (N,), or the heatmap (N, H, W) when ``spatial``."""
        dists = self.layer_distances(x, y)
        if spatial:
            size = x.shape[-2:]
            maps = [F.interpolate(d, size=size, mode="bilinear", align_corners=False) for d in dists]
            return torch.stack(maps, dim=0).sum(dim=0)[:, 0]
        return torch.stack([d.mean(dim=(1, 2, 3)) for d in dists], dim=0).sum(dim=0)


def lpips_sat_score(model: LPIPSSat, x: torch.Tensor, y: torch.Tensor, band_names: tuple[str, ...],
                    data_range: float = 1.0, spatial: bool = False) -> torch.Tensor:
    """LPIPS-Sat of SR ``x`` against ``y`` ((N,) or (N, H, W) float64); inputs divided by data range."""
    xs = model.select_bands(x, band_names) / data_range
    ys = model.select_bands(y, band_names) / data_range
    with torch.inference_mode():
        return model(xs, ys, spatial=spatial).to(torch.float64)


# ---------------------------------------------------------------- backbones ------------------

@dataclass(frozen=True)
class BackboneInfo:
    """What a loaded backbone is (recorded with scores)."""

    backbone_id: str
    source: str
    config: dict


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


def load_mindgap_backbone(folder: str | Path = DEFAULT_BACKBONE_DIR,
                          device: str | torch.device = "cpu") -> LPIPSSat:
    """Load MindGap's own backbone folder (``model.safetensors`` + ``config.json``)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    cfg_path, w_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise InputError(p, "LPIPS-Sat backbone file missing (run `mindgap ssl-pretrain`)")
    try:
        cfg = json.loads(cfg_path.read_text())
        enc_cfg = EncoderConfig.from_dict(cfg["encoder"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(cfg_path, f"not a MindGap LPIPS-Sat config ({exc})") from None
    encoder = ResNetEncoder(enc_cfg)
    state = load_file(str(w_path))
    try:
        missing, unexpected = encoder.load_state_dict(state, strict=False)
    except RuntimeError:
        raise InputError(w_path, "weights do not match config.json's encoder shapes") from None
    if missing or unexpected:
        raise InputError(w_path, f"weights do not match config (missing {missing[:3]}, "
                                 f"unexpected {unexpected[:3]})")
    weights = None
    if cfg.get("channel_weights", "uniform") != "uniform":
        weights = [torch.tensor(w, dtype=torch.float32) for w in cfg["channel_weights"]]
    backbone_id = f"{cfg.get('name', 'mindgap-lpips-sat')}@{_file_digest(w_path)}"
    model = LPIPSSat(encoder, tuple(cfg["band_names"]), tuple(cfg["band_mean"]),
                     tuple(cfg["band_std"]), weights, backbone_id=backbone_id)
    return model.to(device)


def ssl4eo_state_to_4band(state: dict, arch: str, source: str | Path = "checkpoint",
                          bands: tuple[str, ...] = CANONICAL_BANDS) -> dict:
    """Map a 13-band SSL4EO-S12 timm-style ResNet state dict onto our 4 bands.

    Accepts a raw state dict or one nested under ``state_dict``/``model``, with an optional
    ``module.`` prefix. Drops the classifier (``fc.*``). Keeps first-conv input channels of
    ``bands`` via :data:`SSL4EO_BAND_MAP` (B02, B03, B04, B08 → indices 1, 2, 3, 7).
    """
    if arch not in SSL4EO_ARCHS:
        raise ConfigError(f"SSL4EO architecture must be one of {list(SSL4EO_ARCHS)}, got {arch!r}")
    for key in ("state_dict", "model"):
        if key in state and isinstance(state[key], dict):
            state = state[key]
    state = {(k[7:] if k.startswith("module.") else k): v for k, v in state.items()
             if torch.is_tensor(v)}
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    w = state.get("conv1.weight")
    if w is None or w.ndim != 4 or w.shape[1] != len(SSL4EO_S2_BANDS):
        shape = None if w is None else tuple(w.shape)
        raise InputError(source, f"not a 13-band SSL4EO-S12 Sentinel-2 ResNet (conv1.weight {shape})")
    idx = [SSL4EO_S2_BANDS.index(SSL4EO_BAND_MAP[b]) for b in bands]
    state = dict(state)
    state["conv1.weight"] = w[:, idx].clone()
    return state


def load_ssl4eo_backbone(path: str | Path, arch: str = "resnet18",
                         device: str | torch.device = "cpu") -> LPIPSSat:
    """LPIPS-Sat on a user-supplied SSL4EO-S12 Sentinel-2 ResNet checkpoint (local file only)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "SSL4EO-S12 checkpoint not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input problem
            raise InputError(path, f"cannot read checkpoint ({exc})") from None
    state = ssl4eo_state_to_4band(state, arch, source=path)
    encoder = ResNetEncoder(replace(SSL4EO_ARCHS[arch], in_chans=len(CANONICAL_BANDS)))
    try:
        missing, unexpected = encoder.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # tensor shape mismatches
        first = str(exc).split("\n\t")[1] if "\n\t" in str(exc) else str(exc)
        raise InputError(path, f"not a timm-style {arch} state dict ({first.strip()})") from None
    if missing or unexpected:
        raise InputError(path, f"not a timm-style {arch} state dict (missing {missing[:3]}, "
                               f"unexpected {unexpected[:3]})")
    model = LPIPSSat(encoder, CANONICAL_BANDS, (0.0,) * 4, (1.0,) * 4,
                     backbone_id=f"ssl4eo-s12-{arch}@{_file_digest(path)}")
    return model.to(device)


def load_backbone(spec: str | Path | None = None, device: str | torch.device = "cpu",
                  ssl4eo_arch: str = "resnet18") -> LPIPSSat:
    """Resolve a backbone: None → shipped MindGap backbone; a folder → MindGap format; a file →
    SSL4EO-S12 checkpoint of ``ssl4eo_arch``."""
    if spec is None:
        return load_mindgap_backbone(DEFAULT_BACKBONE_DIR, device)
    p = Path(spec)
    if p.is_dir():
        return load_mindgap_backbone(p, device)
    return load_ssl4eo_backbone(p, ssl4eo_arch, device)
