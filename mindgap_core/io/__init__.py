"""Raster I/O: GeoTIFF/COG, Sentinel-2 L2A and PlanetScope readers (files, products, STAC items), atomic
COG writing.

The readers and writers import rasterio; they are loaded on first use, so that
``from mindgap_core.io.atomic import atomic_path`` (used by non-raster writers) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from mindgap_core.io.atomic import atomic_path

#: public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "read_raster": "mindgap_core.io.geotiff",
    "write_cog": "mindgap_core.io.geotiff",
    "validate_cog": "mindgap_core.io.geotiff",
    "read_sentinel2": "mindgap_core.io.sentinel2",
    "DEFAULT_SCL_INVALID": "mindgap_core.io.sentinel2",
    "read_planetscope": "mindgap_core.io.planetscope",
    "read_sentinel2_item": "mindgap_core.io.stac",
    "read_planetscope_item": "mindgap_core.io.stac",
    "check_reflectance": "mindgap_core.io.checks",
    "check_digital_numbers": "mindgap_core.io.checks",
}

__all__ = [
    "DEFAULT_SCL_INVALID",
    "atomic_path",
    "check_digital_numbers",
    "check_reflectance",
    "read_planetscope",
    "read_planetscope_item",
    "read_raster",
    "read_sentinel2",
    "read_sentinel2_item",
    "validate_cog",
    "write_cog",
]

if TYPE_CHECKING:
    from mindgap_core.io.checks import check_digital_numbers, check_reflectance
    from mindgap_core.io.geotiff import read_raster, validate_cog, write_cog
    from mindgap_core.io.planetscope import read_planetscope
    from mindgap_core.io.sentinel2 import DEFAULT_SCL_INVALID, read_sentinel2
    from mindgap_core.io.stac import read_planetscope_item, read_sentinel2_item


def __getattr__(name: str) -> object:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mindgap_core.io' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
