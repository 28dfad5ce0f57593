"""Sentinel-2 L2A and PlanetScope scenes from STAC items, as public catalogues publish them.

A STAC item (a local JSON file or a URL; read with ``pystac``) points at one cloud-optimised GeoTIFF
per asset. MindGap reads:

* **Sentinel-2 L2A**: the 10 m band assets, keyed by band id or common name (``B02``/``blue``,
  ``B03``/``green``, ``B04``/``red``, ``B08``/``nir``: Planetary Computer uses the ids, Earth Search
  the common names, any case) and the scene classification (``SCL``/``scl``), which masks clouds as
  in a ``.SAFE`` product (:func:`~mindgap_core.io.sentinel2.read_sentinel2`). Radiometry comes from
  the item, see :func:`sentinel2_metadata`;
* **PlanetScope**: the 4- or 8-band surface-reflectance asset and its UDM2 (see
  :func:`planetscope_assets`), read by :func:`~mindgap_core.io.planetscope.read_planetscope`.

Asset hrefs may be local paths (relative ones resolve against the item's location) or URLs, which
GDAL reads block by block (:func:`~mindgap_core.io.geotiff.gdal_target`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mindgap_core.errors import InputError
from mindgap_core.io.geotiff import Footprint, is_remote
from mindgap_core.io.sentinel2 import (
    DEFAULT_BANDS,
    DEFAULT_QUANTIFICATION,
    DEFAULT_SCL_INVALID,
    OFFSET_BASELINE,
    L2AMetadata,
    baseline_from_product_uri,
    baseline_tuple,
    normalise_bands,
    read_sentinel2,
)
from mindgap_core.types import S2_TO_CANONICAL, GeoRaster

if TYPE_CHECKING:
    import pystac

#: ESA's BOA_ADD_OFFSET of every band since processing baseline 04.00 (25 January 2022), in DN.
ESA_BOA_ADD_OFFSET = -1000.0
#: Item properties that say whether a catalogue already removed the offset from the DN (Earth Search
#: v1 ``earthsearch:``; its earlier name ``sentinel:``).
OFFSET_APPLIED_KEYS: tuple[str, ...] = ("earthsearch:boa_offset_applied", "sentinel:boa_offset_applied")
#: Item properties holding the processing baseline (STAC sentinel-2 extension; Earth Search's older name).
BASELINE_KEYS: tuple[str, ...] = ("s2:processing_baseline", "sentinel:processing_baseline")
#: Planet asset types of orthorectified surface reflectance, and of the usable data mask v2.
PLANET_SR_TYPES: tuple[str, ...] = ("ortho_analytic_4b_sr", "ortho_analytic_8b_sr", "ortho_analytic_sr")
PLANET_UDM2_TYPES: tuple[str, ...] = ("ortho_udm2", "udm2")
_PLANET_SR_NAME = re.compile(r"AnalyticMS_SR", re.IGNORECASE)
_RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".zip")


def looks_like_stac_item(source: str | Path) -> bool:
    """A local ``.json`` file, or a URL that does not name a raster file (STAC API item URLs have no
    extension)."""
    if is_remote(source):
        return not str(source).lower().split("?", 1)[0].endswith(_RASTER_SUFFIXES)
    return Path(source).suffix.lower() in (".json", ".geojson")


def load_item(source: str | Path) -> pystac.Item:
    """The STAC item at ``source`` (local JSON file or URL); :class:`InputError` naming it otherwise."""
    import json

    import pystac

    href = str(source)
    if not is_remote(source) and not Path(source).is_file():
        raise InputError(source, "no such STAC item file")
    try:
        item = pystac.read_file(href)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(source, f"is not JSON ({exc})") from None
    except (pystac.STACError, pystac.STACTypeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(source, f"is not a valid STAC item ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # pystac wraps HTTP/OS errors in a bare Exception("Could not read uri ...")
        cause = exc.__cause__ or exc
        raise InputError(source, f"cannot read the STAC item ({cause})") from None
    if not isinstance(item, pystac.Item):
        raise InputError(source, f"is a STAC {type(item).__name__}, not an item (one scene)")
    return item


def _href(item: pystac.Item, key: str) -> str:
    """Absolute href of an asset: a URL, or a local path resolved against the item's location."""
    href = item.assets[key].get_absolute_href() or item.assets[key].href
    return href.removeprefix("file://")


def _find_key(item: pystac.Item, names: tuple[str, ...]) -> str | None:
    by_fold = {k.casefold(): k for k in item.assets}
    for name in names:
        if name.casefold() in by_fold:
            return by_fold[name.casefold()]
    return None


def sentinel2_assets(item: pystac.Item, bands: tuple[str, ...], source: str | Path) -> dict[str, str]:
    """``{"B02": href, ..., "SCL": href}``: band assets by id or common name (any case), SCL if present."""
    found: dict[str, str] = {}
    for band in bands:
        key = _find_key(item, (band, S2_TO_CANONICAL[band]))
        if key is None:
            raise InputError(
                source,
                f"STAC item {item.id} has no asset for band {band} (looked for keys {band!r} and "
                f"{S2_TO_CANONICAL[band]!r}, any case; assets: {sorted(item.assets)})",
            )
        found[band] = _href(item, key)
    scl = _find_key(item, ("SCL",))
    if scl is not None:
        found["SCL"] = _href(item, scl)
    return found


@dataclass(frozen=True)
class _Scaling:
    scale: float | None
    offset: float | None


def _raster_scaling(asset: pystac.Asset) -> _Scaling:
    """``scale``/``offset`` of the asset's first band: STAC raster extension v1 (``raster:bands``) or
    v2 (``bands`` with ``raster:scale``/``raster:offset``); physical value = DN x scale + offset."""
    fields = asset.extra_fields
    first = (fields.get("raster:bands") or [{}])[0]
    if "scale" in first or "offset" in first:
        return _Scaling(first.get("scale"), first.get("offset"))
    first = (fields.get("bands") or [{}])[0]
    return _Scaling(first.get("raster:scale", fields.get("raster:scale")),
                    first.get("raster:offset", fields.get("raster:offset")))


def sentinel2_metadata(item: pystac.Item, bands: tuple[str, ...], source: str | Path) -> L2AMetadata:
    """Processing baseline, BOA offsets and quantification of an L2A item, from its properties.

    Reflectance = (DN + offset) / quantification (ESA, baseline 04.00 and later; before, offset 0).
    Evidence, in this order:

    1. ``earthsearch:boa_offset_applied`` (formerly ``sentinel:boa_offset_applied``) true: Earth
       Search already removed the offset from the DN, so offset 0. Its maintainers call this flag the
       truth where the raster offsets disagree (github.com/Element84/earth-search/issues/9); users
       report mis-set flags for some 2022-2025 scenes (Element84/earth-search issues 66 and 71,
       cirrus-geo/cirrus-earth-search#33), which no metadata can reveal: the tags record the flag.
    2. the processing baseline: ``s2:processing_baseline`` (Planetary Computer, Earth Search; formerly
       ``sentinel:processing_baseline``), else the ``_Nxxxx_`` field of ``s2:product_uri`` or of the
       item id. Before 04.00: offset 0. From 04.00: the band asset's ``raster:bands`` offset / scale
       when given (Earth Search ``sentinel-2-c1-l2a``: scale 0.0001, offset -0.1, i.e. -1000 DN),
       else ESA's -1000 for every band (the baseline 04.00 announcement; Planetary Computer's
       "Baseline Change" example subtracts 1000 for baseline >= 04.00).
    3. no baseline: the ``raster:bands`` offset when given; else :class:`InputError` (add
       ``"s2:processing_baseline"`` to the item's properties).

    Quantification: 1 / ``raster:bands`` scale when given, else 10000.
    """
    props = item.properties
    scalings = {b: _raster_scaling(item.assets[_find_key(item, (b, S2_TO_CANONICAL[b]))]) for b in bands}
    scales = {s.scale for s in scalings.values() if s.scale is not None}
    if len(scales) > 1:
        raise InputError(source, f"STAC item {item.id}: band assets disagree on raster scale "
                                 f"{sorted(scales)}")
    quantification = round(1.0 / float(scales.pop()), 6) if scales else DEFAULT_QUANTIFICATION
    if quantification <= 0:
        raise InputError(source, f"STAC item {item.id}: raster scale must be positive")

    baseline_key = next((k for k in BASELINE_KEYS if props.get(k) is not None), None)
    baseline = str(props[baseline_key]) if baseline_key else None
    uri = props.get("s2:product_uri")
    if baseline is None:
        baseline = baseline_from_product_uri(uri) or baseline_from_product_uri(item.id)
        named_in = "s2:product_uri" if baseline_from_product_uri(uri) else "the item id"
        baseline_key = f"the N-field of {named_in}"
    if baseline is not None and baseline_tuple(baseline) is None:
        raise InputError(source, f"STAC item {item.id}: processing baseline {baseline!r} is not of the "
                                 "form NN.NN")
    applied_key = next((k for k in OFFSET_APPLIED_KEYS if props.get(k) is not None), None)

    from_raster = {b: s.offset / s.scale for b, s in scalings.items() if s.offset is not None and s.scale}
    offsets: dict[str, float] = {}
    if applied_key is not None and bool(props[applied_key]):
        offsets, why = {b: 0.0 for b in bands}, f"{applied_key}=true (offset already removed)"
    elif baseline is not None and baseline_tuple(baseline) < OFFSET_BASELINE:  # type: ignore[operator]
        offsets, why = {}, f"{baseline_key}={baseline}"  # read_sentinel2: none before 04.00
    elif baseline is not None:
        if len(from_raster) == len(bands):
            offsets, why = from_raster, f"{baseline_key}={baseline}, asset raster:bands offset/scale"
        else:
            offsets, why = {b: ESA_BOA_ADD_OFFSET for b in bands}, f"{baseline_key}={baseline} (ESA: -1000)"
    elif len(from_raster) == len(bands):
        offsets, why = from_raster, "asset raster:bands offset/scale (no processing baseline)"
    else:
        why = "no s2:processing_baseline, offset flag or raster:bands offset"
    return L2AMetadata(
        baseline=baseline,
        quantification=quantification,
        offsets={b: round(v, 6) for b, v in offsets.items()},
        start_time=item.datetime,
        product_uri=uri or item.id,
        spacecraft=props.get("platform"),
        offset_source=f"STAC item {item.id}: {why}",
    )


def read_sentinel2_item(
    source: str | Path,
    *,
    bands: tuple[str, ...] = DEFAULT_BANDS,
    scl_invalid: frozenset[int] = DEFAULT_SCL_INVALID,
    footprint: Footprint | None = None,
) -> GeoRaster:
    """A Sentinel-2 L2A STAC item as float32 reflectance (canonical band names) with its SCL mask.

    Same output as :func:`~mindgap_core.io.sentinel2.read_sentinel2` on the equivalent ``.SAFE``
    product; radiometry from :func:`sentinel2_metadata`. Without an SCL asset the mask covers no-data
    only (recorded in ``tags["SCL_INVALID"]``). ``footprint``: read only the pixels covering it.
    """
    item = load_item(source)
    bands = normalise_bands(bands)
    files = sentinel2_assets(item, bands, source)
    meta = sentinel2_metadata(item, bands, source)
    raster = read_sentinel2(files, bands=bands, scl_invalid=scl_invalid, metadata=meta, footprint=footprint,
                            label=str(source))
    return raster.replace(tags={**raster.tags, "STAC_ITEM": item.id})


def _asset_type(asset: pystac.Asset) -> str:
    return str(asset.extra_fields.get("pl:asset_type", "")).lower()


def planetscope_assets(item: pystac.Item, source: str | Path) -> tuple[str, str | None]:
    """Hrefs of the surface-reflectance asset and of the UDM2 (None when the item has none).

    SR: ``pl:asset_type`` (or key) ``ortho_analytic_4b_sr`` / ``ortho_analytic_8b_sr`` /
    ``ortho_analytic_sr`` (Planet's Data API), else a key or file name with ``AnalyticMS_SR`` (Planet's
    order deliveries key assets by file name). UDM2: ``pl:asset_type`` (or key) ``ortho_udm2`` /
    ``udm2``, else a key or file name containing ``udm2``.
    """

    def matches(key: str, asset: pystac.Asset, types: tuple[str, ...], name: re.Pattern[str]) -> bool:
        return (_asset_type(asset) in types or key.lower() in types or bool(name.search(key))
                or bool(name.search(Path(asset.href).name)))

    sr = [k for k, a in item.assets.items() if matches(k, a, PLANET_SR_TYPES, _PLANET_SR_NAME)]
    udm = re.compile(r"udm2", re.IGNORECASE)
    masks = [k for k, a in item.assets.items() if matches(k, a, PLANET_UDM2_TYPES, udm) and k not in sr]
    if len(sr) != 1:
        problem = "several" if sr else "no"
        raise InputError(
            source,
            f"STAC item {item.id} has {problem} PlanetScope surface-reflectance asset(s) "
            f"({', '.join(PLANET_SR_TYPES)} or a file *AnalyticMS_SR*); found {sr or sorted(item.assets)}",
        )
    if len(masks) > 1:
        raise InputError(source, f"STAC item {item.id} has several UDM2 assets: {masks}")
    return _href(item, sr[0]), (_href(item, masks[0]) if masks else None)


def read_planetscope_item(source: str | Path) -> GeoRaster:
    """A PlanetScope STAC item as float32 reflectance (blue, green, red, nir) with its UDM2 mask.

    Same output as :func:`~mindgap_core.io.planetscope.read_planetscope` on the SR file and its
    UDM2, except the acquisition time, which is the item's ``datetime``. Without a UDM2 asset there
    is no cloud mask (recorded in ``tags["UDM2"]``).
    """
    from mindgap_core.io.planetscope import read_planetscope

    item = load_item(source)
    sr, udm2 = planetscope_assets(item, source)
    raster = read_planetscope(sr, udm2=udm2, find_mask=False)
    acquired = item.datetime or raster.acquired
    return raster.replace(acquired=acquired, tags={**raster.tags, "STAC_ITEM": item.id})
