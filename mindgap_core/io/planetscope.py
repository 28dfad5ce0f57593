"""PlanetScope analytic surface reflectance (4-band or 8-band SuperDove) with its UDM2 mask.

Planet's SR product stores reflectance x 10000 as uint16 (0 = no data). MindGap keeps the four bands
it compares with Sentinel-2 (blue, green, red, nir), picked by name.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from mindgap_core.errors import InputError
from mindgap_core.io.checks import check_digital_numbers, check_reflectance
from mindgap_core.io.geotiff import is_remote, read_raster
from mindgap_core.types import CANONICAL_BANDS, GeoRaster

#: Band order of Planet's analytic products, by band count.
PS_LAYOUTS: dict[int, tuple[str, ...]] = {
    4: ("blue", "green", "red", "nir"),
    8: ("coastal_blue", "blue", "green_i", "green", "yellow", "red", "rededge", "nir"),
}
#: Band order of Planet's Usable Data Mask v2.
UDM2_BANDS: tuple[str, ...] = (
    "clear", "snow", "shadow", "light_haze", "heavy_haze", "cloud", "confidence", "udm1",
)  # fmt: skip
PS_QUANTIFICATION = 10000.0
#: Planet item ids start with the acquisition time in UTC: 20230714_153012[_61]_24a3.
_ITEM_TIME = re.compile(r"^(\d{8})_(\d{6})(?=_|$)")
_ITEM_ID = re.compile(r"^\d{8}_\d{6}(?:_\d{2})?_[0-9a-z]{4}", re.IGNORECASE)


def acquisition_time_from_name(name: str) -> datetime | None:
    """UTC time from a Planet file name ``YYYYMMDD_HHMMSS_...``; None when the name has none."""
    match = _ITEM_TIME.match(name)
    if not match:
        return None
    try:
        return datetime.strptime("".join(match.groups()), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def find_udm2(path: str | Path) -> Path | None:
    """The sibling UDM2 file of an analytic file, or None.

    Planet delivers ``<item id>_3B_AnalyticMS_SR[_8b][_clip].tif`` next to
    ``<item id>_3B_udm2[_clip].tif``: a sibling whose name contains ``udm2`` and starts with the same
    item id (``YYYYMMDD_HHMMSS[_NN]_XXXX``; without one, with ``<stem>_udm2``) is the mask. Several
    candidates raise :class:`InputError` (pass ``udm2=`` explicitly).
    """
    path = Path(path)
    match = _ITEM_ID.match(path.name)
    prefix = match.group(0) if match else f"{path.stem}_udm2"
    hits = sorted(
        p
        for p in path.parent.glob(f"{prefix}*")
        if p != path and "udm2" in p.name.lower() and p.suffix.lower() in {".tif", ".tiff"}
    )
    if len(hits) > 1:
        raise InputError(path, f"several UDM2 candidates {[p.name for p in hits]}; pass udm2= explicitly")
    return hits[0] if hits else None


def _name(path: str | Path) -> str:
    """The file name of a path or URL."""
    return str(path).rstrip("/").rsplit("/", 1)[-1]


def _analytic_names(raster: GeoRaster, path: Path) -> tuple[tuple[str, ...], str]:
    count = raster.array.shape[0]
    if count not in PS_LAYOUTS:
        raise InputError(
            path,
            f"has {count} band(s); PlanetScope analytic surface reflectance has 4 (blue, green, red, "
            "nir) or 8 (SuperDove: coastal_blue, blue, green_i, green, yellow, red, rededge, nir)",
        )
    layout = PS_LAYOUTS[count]
    described = tuple(name.strip().lower() for name in raster.band_names)
    if set(described) == set(layout):
        return described, "band descriptions"
    return layout, f"Planet's {count}-band order"


def read_planetscope(
    path: str | Path, *, udm2: str | Path | None = None, find_mask: bool = True
) -> GeoRaster:
    """Read a PlanetScope analytic SR GeoTIFF as float32 reflectance (blue, green, red, nir).

    Reflectance = DN / 10000. A 4-band file is (blue, green, red, nir); an 8-band SuperDove file is
    (coastal_blue, blue, green_i, green, yellow, red, rededge, nir), from which blue, green, red,
    nir (bands 2, 4, 6, 8) are taken by name (band descriptions, when they name all bands, win over
    the standard order). Other band counts raise :class:`InputError`.

    Mask: False where the file's nodata/mask says so or all bands are 0, and — with a UDM2 file —
    where its band 1 ("clear") is not 1. ``udm2=None`` looks for a sibling ``*_udm2*.tif`` with the
    same Planet item id (:func:`find_udm2`); none found means no cloud mask (recorded in
    ``tags["UDM2"]``; ``find_mask=False`` skips the search). Acquisition time: from the item id in
    the file name (``YYYYMMDD_HHMMSS_...``, UTC), else the file's ``acquired`` tag, else None.
    ``path`` and ``udm2`` may be URLs (no sibling search then).
    """
    path = path if is_remote(path) else Path(path)
    raw = read_raster(path)
    names, named_by = _analytic_names(raw, path)
    raw = raw.replace(band_names=names)
    check_digital_numbers(raw.array, path, raw.mask, expected="PlanetScope digital numbers")

    picked = raw.select(CANONICAL_BANDS)
    dn = picked.array
    valid = raw.valid & np.any(raw.array != 0, axis=0)

    tags = {
        **raw.tags,  # the file's own tags (provenance) first; ours win
        "SENSOR": f"PlanetScope {len(names)}-band analytic SR",
        "PS_BANDS": ",".join(str(names.index(b) + 1) for b in CANONICAL_BANDS),
        "PS_BAND_NAMES_FROM": named_by,
        "SOURCE": str(path),
    }
    if udm2 is not None:
        udm2_path: str | Path | None = udm2 if is_remote(udm2) else Path(udm2)
    else:
        udm2_path = find_udm2(path) if find_mask and not is_remote(path) else None
    if udm2_path is not None:
        mask_raster = read_raster(udm2_path)
        count = mask_raster.array.shape[0]
        if count != len(UDM2_BANDS):
            raise InputError(udm2_path, f"has {count} band(s); a UDM2 file has 8 (band 1 = clear)")
        same_grid = mask_raster.shape == raw.shape and (
            mask_raster.crs is None or (mask_raster.crs == raw.crs and mask_raster.transform == raw.transform)
        )
        if not same_grid:
            raise InputError(udm2_path, f"grid {mask_raster.shape} does not match {_name(path)} {raw.shape}")
        valid &= mask_raster.array[0] == 1
        tags["UDM2"] = _name(udm2_path)
    else:
        tags["UDM2"] = "none found (no cloud mask)" if find_mask else "none given (no cloud mask)"

    reflectance = dn.astype(np.float32) / np.float32(PS_QUANTIFICATION)  # masked pixels keep values
    check_reflectance(reflectance, path, valid)
    acquired = acquisition_time_from_name(_name(path)) or raw.acquired
    return GeoRaster(
        array=reflectance.astype(np.float32),
        transform=raw.transform,
        crs=raw.crs,
        band_names=CANONICAL_BANDS,
        nodata=None,
        units="reflectance",
        mask=valid,
        acquired=acquired,
        tags=tags,
    )
