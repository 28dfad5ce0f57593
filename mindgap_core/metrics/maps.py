"""Per-pixel metric maps as georeferenced rasters on the HR grid.

Each map is a :class:`GeoRaster` with the HR raster's transform, CRS and mask, float32:
- ``abs_error``: |SR - HR| per band (bands ``abs_error_<band>``), reflectance units;
- ``ssim``: skimage's full SSIM map per band (``ssim_<band>``);
- ``sam``: spectral angle in degrees (NaN where a spectrum is all zero);
- ``lpips`` / ``lpips_sat``: the spatial form of the distance (each layer's map upsampled to the
  HR grid, summed).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import torch

from mindgap_core.errors import ConfigError
from mindgap_core.metrics.lpips_sat import LPIPSSat, lpips_sat_score
from mindgap_core.metrics.lpips_std import LPIPSModel, lpips_map
from mindgap_core.metrics.pixel import abs_error_map, match_histograms, sam_map
from mindgap_core.metrics.ssim import ssim_map
from mindgap_core.types import GeoRaster

MAP_KINDS: tuple[str, ...] = ("abs_error", "ssim", "sam", "lpips", "lpips_sat")
MAP_UNITS: dict[str, str] = {"abs_error": "reflectance", "ssim": "ssim", "sam": "degrees",
                             "lpips": "lpips", "lpips_sat": "lpips_sat"}


def metric_maps(sr: GeoRaster, hr: GeoRaster, kinds: Sequence[str] = ("abs_error", "ssim", "sam"),
                *, data_range: float = 1.0, hist_match: bool = False,
                lpips_model: LPIPSModel | None = None, lpips_sat_model: LPIPSSat | None = None,
                device: str | torch.device = "cpu") -> dict[str, GeoRaster]:
    """Maps of ``kinds`` for one SR/HR pair, each aligned to ``hr``'s grid."""
    if sr.array.shape != hr.array.shape or sr.band_names != hr.band_names:
        raise ConfigError(f"SR {sr.array.shape} {sr.band_names} and HR {hr.array.shape} "
                          f"{hr.band_names} must have the same bands and shape")
    x = torch.from_numpy(np.asarray(sr.array, dtype=np.float32))[None].to(device)
    y = torch.from_numpy(np.asarray(hr.array, dtype=np.float32))[None].to(device)
    if hist_match:
        x = match_histograms(x, y)
    names = hr.band_names
    out: dict[str, GeoRaster] = {}
    for kind in kinds:
        if kind == "abs_error":
            arr = abs_error_map(x, y)[0]
            bands = tuple(f"abs_error_{b}" for b in names)
        elif kind == "ssim":
            arr = ssim_map(x.double(), y.double(), data_range)[0]
            bands = tuple(f"ssim_{b}" for b in names)
        elif kind == "sam":
            arr = sam_map(x, y)
            bands = ("sam",)
        elif kind == "lpips":
            if lpips_model is None:
                raise ConfigError("the LPIPS map needs a loaded LPIPS model (ImageNet AlexNet weights)")
            arr = lpips_map(lpips_model, x, y, names, data_range)
            bands = ("lpips",)
        elif kind == "lpips_sat":
            if lpips_sat_model is None:
                raise ConfigError("the LPIPS-Sat map needs a loaded LPIPS-Sat backbone")
            arr = lpips_sat_score(lpips_sat_model, x, y, names, data_range, spatial=True)
            bands = ("lpips_sat",)
        else:
            raise ConfigError(f"unknown map {kind!r}; known: {', '.join(MAP_KINDS)}")
        tags = {"metric": kind, "options": json.dumps({"data_range": data_range,
                                                        "hist_match": "hr" if hist_match else "none"})}
        out[kind] = GeoRaster(
            array=arr.detach().to("cpu", torch.float32).numpy(), transform=hr.transform, crs=hr.crs,
            band_names=bands, nodata=None, units=MAP_UNITS[kind], mask=hr.mask, acquired=hr.acquired,
            tags=tags,
        )
    return out
