"""ResNet-style encoders that expose the five feature taps LPIPS-Sat compares.

One class covers MindGap's own small backbone and the SSL4EO-S12 ResNet-18/50 checkpoints: module and
parameter names follow torchvision/timm (``conv1``, ``bn1``, ``layer1.0.conv1`` ...,
``downsample.0``), so a timm-style state dict loads without renaming. Taps: the stem activation
(after ``relu``, before max-pooling) and the outputs of ``layer1`` ... ``layer4``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn


def json_safe(config: Any) -> dict:
    """``asdict(config)`` of a flat dataclass with its tuple fields as lists (as JSON reads them back)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()}


@dataclass(frozen=True)
class EncoderConfig:
    """Architecture of a :class:`ResNetEncoder` (JSON round-trips through :meth:`to_dict`)."""

    in_chans: int = 4
    stem_width: int = 32
    stem_kernel: int = 3
    stem_stride: int = 1
    stem_pool: bool = False
    block: str = "basic"  # "basic" (ResNet-18/34) or "bottleneck" (ResNet-50)
    layers: tuple[int, ...] = (1, 1, 1, 1)
    widths: tuple[int, ...] = (32, 64, 128, 256)
    strides: tuple[int, ...] = (2, 2, 2, 2)

    def to_dict(self) -> dict:
        """JSON-safe dict."""
        return json_safe(self)

    @classmethod
    def from_dict(cls, d: dict) -> EncoderConfig:
        """Inverse of :meth:`to_dict` (unknown keys rejected)."""
        d = dict(d)
        for key in ("layers", "widths", "strides"):
            if key in d:
                d[key] = tuple(int(v) for v in d[key])
        return cls(**d)


#: torchvision/timm ResNet-18 and ResNet-50 layouts (SSL4EO-S12 checkpoints use these).
RESNET18 = EncoderConfig(in_chans=13, stem_width=64, stem_kernel=7, stem_stride=2, stem_pool=True,
                         block="basic", layers=(2, 2, 2, 2), widths=(64, 128, 256, 512),
                         strides=(1, 2, 2, 2))
RESNET50 = EncoderConfig(in_chans=13, stem_width=64, stem_kernel=7, stem_stride=2, stem_pool=True,
                         block="bottleneck", layers=(3, 4, 6, 3), widths=(64, 128, 256, 512),
                         strides=(1, 2, 2, 2))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18)."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = _downsample(cin, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + idt)


class Bottleneck(nn.Module):
    """1x1 - 3x3 (strided) - 1x1 bottleneck with expansion 4 (ResNet-50, v1.5 as timm)."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int) -> None:
        super().__init__()
        out = planes * 4
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(cin, out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + idt)


def _downsample(cin: int, cout: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class ResNetEncoder(nn.Module):
    """A ResNet trunk without classifier; :meth:`features` returns the five LPIPS taps."""

    def __init__(self, config: EncoderConfig = EncoderConfig()) -> None:
        super().__init__()
        self.config = config
        blk = BasicBlock if config.block == "basic" else Bottleneck
        if config.block not in ("basic", "bottleneck"):
            raise ValueError(f"unknown block type {config.block!r}")
        self.conv1 = nn.Conv2d(config.in_chans, config.stem_width, config.stem_kernel,
                               config.stem_stride, config.stem_kernel // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(config.stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if config.stem_pool else nn.Identity()
        cin = config.stem_width
        for i, (n, planes, stride) in enumerate(zip(config.layers, config.widths, config.strides,
                                                     strict=True)):
            blocks = []
            for j in range(n):
                blocks.append(blk(cin, planes, stride if j == 0 else 1))
                cin = planes * blk.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_stages = len(config.layers)
        self.out_channels = cin

    @property
    def tap_channels(self) -> tuple[int, ...]:
        """Channels of each feature tap (stem, layer1 ... layerN)."""
        exp = 1 if self.config.block == "basic" else 4
        return (self.config.stem_width, *(w * exp for w in self.config.widths))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Stem activation and each stage's output."""
        x = self.relu(self.bn1(self.conv1(x)))
        feats = [x]
        x = self.maxpool(x)
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
            feats.append(x)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled embedding (N, out_channels)."""
        return self.features(x)[-1].mean(dim=(-2, -1))
