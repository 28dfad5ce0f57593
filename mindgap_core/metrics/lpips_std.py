"""Standard LPIPS through the ``lpips`` package, on an RGB view of the 4-band reflectance.

Band choice and scaling: the view is (red, green, blue) in that order (LPIPS was trained on RGB
photographs), each band divided by the data range and mapped ``[0, 1] -> [-1, 1]`` (``2 x - 1``, the
package's ``normalize=True``). Values are not clipped: reflectance above the data range stays above 1.

Weights: the v0.1 linear heads ship inside the ``lpips`` wheel. The AlexNet trunk needs torchvision's
ImageNet weights ``alexnet-owt-7be5be79.pth``, looked up where torchvision caches them
(``$TORCH_HOME/hub/checkpoints/``, default ``~/.cache/torch/hub/checkpoints/``) or at a path the user
gives. Nothing is ever downloaded: when the file is absent LPIPS is reported unavailable with one
message. A randomly initialised trunk exists only as an explicit test mode (``trunk=RANDOM_TRUNK``, a
sentinel object: no string a user types — CLI flag, YAML, URL — can select it).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from mindgap_core.errors import ConfigError

ALEXNET_FILENAME = "alexnet-owt-7be5be79.pth"


class _RandomTrunk:
    """Sentinel type of :data:`RANDOM_TRUNK` (tests and benchmarks only)."""

    def __repr__(self) -> str:
        return "RANDOM_TRUNK"


#: select the seeded random AlexNet trunk (tests/benchmarks); never reachable from user input
RANDOM_TRUNK = _RandomTrunk()

#: torchvision ``alexnet.features`` index -> lpips slice holding it
_ALEX_SLICES = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}


class LPIPSUnavailable(ConfigError):
    """The ImageNet AlexNet weights standard LPIPS needs are not on this machine."""


def default_alexnet_path() -> Path:
    """Where torchvision caches AlexNet: ``torch.hub.get_dir()/checkpoints`` (honours ``$TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILENAME


def unavailable_message(path: Path) -> str:
    """The one message shown when LPIPS cannot be computed."""
    return (
        f"LPIPS unavailable: ImageNet AlexNet weights not found at {path} (nothing is downloaded). "
        f"Copy torchvision's {ALEXNET_FILENAME} there (or set $TORCH_HOME), or pass its path."
    )


@dataclass(frozen=True)
class LPIPSModel:
    """A ready LPIPS network plus the label recorded with each score."""

    net: torch.nn.Module  # lpips.LPIPS, scalar form
    net_spatial: torch.nn.Module  # the same weights, spatial form
    trunk: str  # "alexnet-imagenet:<path>" or "alexnet-random (test only)"


def load_lpips(trunk: str | Path | _RandomTrunk | None = None,
               device: str | torch.device = "cpu") -> LPIPSModel:
    """Build LPIPS (AlexNet, v0.1 heads) with the ImageNet trunk from ``trunk``.

    ``trunk``: a path to ``alexnet-owt-7be5be79.pth``; None for torchvision's cache location;
    :data:`RANDOM_TRUNK` for the random trunk of tests. Raises :class:`LPIPSUnavailable` when the
    weights file is missing.
    """
    import lpips

    if trunk is RANDOM_TRUNK:
        weights_path = None
        label = "alexnet-random (test only)"
    else:
        weights_path = Path(trunk) if trunk is not None else default_alexnet_path()
        if not weights_path.is_file():
            raise LPIPSUnavailable(unavailable_message(weights_path))
        label = f"alexnet-imagenet:{weights_path}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's "pretrained" deprecation note
        net = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, pretrained=True, verbose=False)
    if weights_path is not None:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        load_alexnet_trunk(net, state, source=weights_path)
    net = net.to(device).eval()
    if torch.device(device).type == "cpu":  # oneDNN runs AlexNet ~2x faster in NHWC on the CPU
        net = net.to(memory_format=torch.channels_last)
    for p in net.parameters():
        p.requires_grad_(False)
    spatial = copy.copy(net)  # shares every sub-module and parameter
    spatial.spatial = True
    return LPIPSModel(net=net, net_spatial=spatial, trunk=label)


def load_alexnet_trunk(net: torch.nn.Module, state: dict, source: str | Path = "state dict") -> None:
    """Copy torchvision AlexNet ``features.*`` weights into an ``lpips.LPIPS`` trunk (in place)."""
    mapped = {}
    for idx, sl in _ALEX_SLICES.items():
        for kind in ("weight", "bias"):
            key = f"features.{idx}.{kind}"
            if key not in state:
                raise ConfigError(f"{source}: not a torchvision AlexNet state dict (no {key})")
            mapped[f"slice{sl}.{idx}.{kind}"] = state[key]
    net.net.load_state_dict(mapped, strict=True)


def rgb_view(x: torch.Tensor, band_names: tuple[str, ...], data_range: float = 1.0) -> torch.Tensor:
    """(N, 3, H, W) red-green-blue view scaled to [-1, 1] from [0, data_range]."""
    try:
        idx = [band_names.index(b) for b in ("red", "green", "blue")]
    except ValueError:
        raise ConfigError(f"LPIPS needs red, green and blue bands, got {band_names}") from None
    v = x[:, idx].to(torch.float32) / data_range * 2.0 - 1.0
    return v.contiguous(memory_format=torch.channels_last) if v.device.type == "cpu" else v


def lpips_score(model: LPIPSModel, x: torch.Tensor, y: torch.Tensor, band_names: tuple[str, ...],
                data_range: float = 1.0) -> torch.Tensor:
    """LPIPS per image (N,) between SR ``x`` and reference ``y``."""
    with torch.inference_mode():
        out = model.net(rgb_view(x, band_names, data_range), rgb_view(y, band_names, data_range))
    return out.reshape(-1).to(torch.float64)


def lpips_map(model: LPIPSModel, x: torch.Tensor, y: torch.Tensor, band_names: tuple[str, ...],
              data_range: float = 1.0) -> torch.Tensor:
    """LPIPS spatial map (N, H, W) (each layer's distance upsampled bilinearly, then summed)."""
    with torch.inference_mode():
        out = model.net_spatial(rgb_view(x, band_names, data_range),
                                rgb_view(y, band_names, data_range))
    return out[:, 0].to(torch.float64)
