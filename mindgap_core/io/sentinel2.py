"""Sentinel-2 L2A surface reflectance: a ``.SAFE`` product or a folder/mapping of per-band COGs.

Radiometry (ESA, processing baseline 04.00 and later): reflectance = (DN + BOA_ADD_OFFSET) /
BOA_QUANTIFICATION_VALUE, with both numbers read from ``MTD_MSIL2A.xml`` (offset -1000 and 10000 in
practice; never hard-coded). Products of older baselines carry no offset field and get none. DN 0
is no data. The 20 m scene classification (SCL) is resampled (nearest) to 10 m and its invalid
classes become the mask.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from rasterio.enums import Resampling
from rasterio.warp import reproject

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.io.checks import check_digital_numbers, check_reflectance
from mindgap_core.io.geotiff import Footprint, is_remote, parse_time, read_gdal, read_raster
from mindgap_core.types import S2_TO_CANONICAL, GeoRaster

#: The 10 m bands MindGap reads, S2 band id -> canonical name.
#: ESA's ``band_id`` / ``bandId`` numbering in MTD_MSIL2A.xml (0 = B01 ... 12 = B12).
S2_BAND_IDS: dict[str, int] = {
    "B01": 0, "B02": 1, "B03": 2, "B04": 3, "B05": 4, "B06": 5, "B07": 6,
    "B08": 7, "B8A": 8, "B09": 9, "B10": 10, "B11": 11, "B12": 12,
}  # fmt: skip
#: Scene classification classes of Sen2Cor (L2A).
SCL_CLASSES: dict[int, str] = {
    0: "no data", 1: "saturated or defective", 2: "dark area / topographic shadow", 3: "cloud shadow",
    4: "vegetation", 5: "not vegetated", 6: "water", 7: "unclassified", 8: "cloud medium probability",
    9: "cloud high probability", 10: "thin cirrus", 11: "snow or ice",
}  # fmt: skip
#: SCL classes masked out by default.
DEFAULT_SCL_INVALID: frozenset[int] = frozenset({0, 1, 3, 8, 9, 10})
DEFAULT_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B08")
#: The first processing baseline whose DN carry BOA_ADD_OFFSET.
OFFSET_BASELINE: tuple[int, int] = (4, 0)
NODATA_DN = 0
SATURATED_DN = 65535
DEFAULT_QUANTIFICATION = 10000.0
_RASTER_SUFFIXES = (".jp2", ".tif", ".tiff")


@dataclass(frozen=True)
class L2AMetadata:
    """What MindGap needs from ``MTD_MSIL2A.xml``."""

    baseline: str | None
    quantification: float
    #: BOA_ADD_OFFSET per band ("B02": -1000.0); empty when the product has no offset list.
    offsets: Mapping[str, float] = field(default_factory=dict)
    start_time: datetime | None = None
    product_uri: str | None = None
    spacecraft: str | None = None
    #: where ``baseline`` and ``offsets`` come from (recorded in the tags; named in errors)
    offset_source: str = "MTD_MSIL2A.xml"

    @property
    def baseline_tuple(self) -> tuple[int, int] | None:
        return baseline_tuple(self.baseline)


def baseline_tuple(baseline: str | None) -> tuple[int, int] | None:
    """``"04.00"`` -> ``(4, 0)``; None when absent or not of the form NN.NN."""
    if not baseline:
        return None
    match = re.fullmatch(r"\s*(\d{1,2})\.(\d{1,2})\s*", baseline)
    return (int(match.group(1)), int(match.group(2))) if match else None


def baseline_from_product_uri(product_uri: str | None) -> str | None:
    """``S2A_MSIL2A_..._N0400_...`` -> ``"04.00"``; None when the name has no ``_Nxxxx_`` field."""
    match = re.search(r"_N(\d{2})(\d{2})(?:_|\.|$)", product_uri or "")
    return f"{match.group(1)}.{match.group(2)}" if match else None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find_text(root: ET.Element, name: str) -> str | None:
    for el in root.iter():
        if _local(el.tag) == name and el.text and el.text.strip():
            return el.text.strip()
    return None


def _physical_band(name: str) -> str:
    """ESA's "B2"/"B8A" spelling to the file spelling "B02"/"B8A"."""
    match = re.fullmatch(r"B(\d)", name.strip().upper())
    return f"B0{match.group(1)}" if match else name.strip().upper()


def parse_mtd_msil2a(path: str | Path) -> L2AMetadata:
    """Parse a Sentinel-2 L2A product metadata file (``MTD_MSIL2A.xml``)."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise InputError(path, f"cannot read the product metadata: {exc.strerror or exc}") from None
    return parse_mtd_msil2a_text(text, path)


def parse_mtd_msil2a_text(text: bytes | str, path: str | Path) -> L2AMetadata:
    """Parse the content of ``MTD_MSIL2A.xml``; errors name ``path``."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise InputError(path, f"cannot parse the product metadata XML: {exc}") from None
    baseline = _find_text(root, "PROCESSING_BASELINE")
    product_uri = _find_text(root, "PRODUCT_URI")
    if baseline is None:  # e.g. S2A_MSIL2A_..._N0400_... -> "04.00"
        baseline = baseline_from_product_uri(product_uri)
    if baseline is not None and baseline_tuple(baseline) is None:
        raise InputError(path, f"PROCESSING_BASELINE {baseline!r} is not of the form NN.NN")

    id_to_band = {v: k for k, v in S2_BAND_IDS.items()}
    for el in root.iter():
        if _local(el.tag) == "Spectral_Information" and "bandId" in el.attrib and "physicalBand" in el.attrib:
            id_to_band[int(el.attrib["bandId"])] = _physical_band(el.attrib["physicalBand"])
    offsets: dict[str, float] = {}
    for el in root.iter():
        if _local(el.tag) == "BOA_ADD_OFFSET":
            try:
                offsets[id_to_band[int(el.attrib["band_id"])]] = float(el.text or "")
            except (KeyError, ValueError):
                raise InputError(path, f"malformed BOA_ADD_OFFSET element {ET.tostring(el)!r}") from None

    quant_text = _find_text(root, "BOA_QUANTIFICATION_VALUE")
    try:
        quantification = float(quant_text) if quant_text else DEFAULT_QUANTIFICATION
        start_text = _find_text(root, "PRODUCT_START_TIME")
        start_time = parse_time(start_text) if start_text else None
    except ValueError as exc:
        raise InputError(path, f"malformed metadata value: {exc}") from None
    if quantification <= 0:
        raise InputError(path, f"BOA_QUANTIFICATION_VALUE must be positive, got {quantification}")
    return L2AMetadata(
        baseline=baseline,
        quantification=quantification,
        offsets=offsets,
        start_time=start_time,
        product_uri=product_uri,
        spacecraft=_find_text(root, "SPACECRAFT_NAME"),
    )


def normalise_bands(bands: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Sentinel-2 ids (B02 ...) of the 10 m bands asked for by id or canonical name; ConfigError else."""
    canonical_to_s2 = {v: k for k, v in S2_TO_CANONICAL.items()}
    out = []
    for band in bands:
        s2 = canonical_to_s2.get(band.lower(), band.upper())
        if s2 not in S2_TO_CANONICAL:
            raise ConfigError(
                f"Sentinel-2 band {band!r} is not supported; MindGap reads the 10 m bands "
                f"{sorted(S2_TO_CANONICAL)} (or {sorted(canonical_to_s2)})"
            )
        out.append(s2)
    if len(set(out)) != len(out):
        raise ConfigError(f"Sentinel-2 bands repeat: {list(bands)}")
    return tuple(out)


@dataclass(frozen=True)
class _ZipMember:
    """A raster inside a zipped ``.SAFE``, read through GDAL's /vsizip/."""

    archive: Path
    member: str

    @property
    def label(self) -> str:
        return f"{self.archive}!{self.member}"


#: a band file: a local path, a member of a zipped .SAFE, or a URL (str)
_Ref = Path | _ZipMember | str


def _label(ref: _Ref) -> str | Path:
    return ref.label if isinstance(ref, _ZipMember) else ref


def _read(
    ref: _Ref, band_names: tuple[str, ...] | None = None, footprint: Footprint | None = None
) -> GeoRaster:
    if isinstance(ref, _ZipMember):
        return read_gdal(f"/vsizip/{ref.archive.resolve()}/{ref.member}", ref.label, band_names,
                         footprint=footprint)
    return read_raster(ref, band_names, footprint=footprint)


def _zip_files(archive: Path, bands: tuple[str, ...]) -> tuple[L2AMetadata, dict[str, _Ref], _Ref]:
    """Metadata, band and SCL members of a zipped L2A ``.SAFE`` (as downloaded from Copernicus)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            mtds = [n for n in names if n.rsplit("/", 1)[-1] == "MTD_MSIL2A.xml"]
            if len(mtds) != 1:
                level1 = any(n.endswith("MTD_MSIL1C.xml") for n in names)
                problem = "is a Level-1C product; MindGap needs L2A" if level1 else "has no MTD_MSIL2A.xml"
                raise InputError(archive, problem)
            meta = parse_mtd_msil2a_text(zf.read(mtds[0]), f"{archive}!{mtds[0]}")
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(archive, f"not a readable zip archive: {exc}") from None
    prefix = re.escape(mtds[0][: -len("MTD_MSIL2A.xml")])

    def member(pattern: str, what: str) -> _ZipMember:
        hits = [n for n in names if re.fullmatch(prefix + pattern, n, re.IGNORECASE)]
        if len(hits) != 1:
            raise InputError(archive, f"{'several files' if hits else 'no file'} for {what}")
        return _ZipMember(archive, hits[0])

    img = r"GRANULE/[^/]+/IMG_DATA/"
    files: dict[str, _Ref] = {
        b: member(rf"{img}R10m/[^/]*_{b}_10m\.(jp2|tiff?)", f"band {b} (R10m/*_{b}_10m)") for b in bands
    }
    return meta, files, member(rf"{img}R20m/[^/]*_SCL_20m\.(jp2|tiff?)", "the scene classification (SCL)")


def _token_pattern(token: str) -> re.Pattern[str]:
    return re.compile(rf"(^|[^A-Za-z0-9]){re.escape(token)}([^A-Za-z0-9]|$)", re.IGNORECASE)


def _find_one(folder: Path, pattern: str | re.Pattern[str], what: str, required: bool = True) -> Path | None:
    if isinstance(pattern, str):
        hits = sorted(p for p in folder.glob(pattern) if p.suffix.lower() in _RASTER_SUFFIXES)
    else:
        hits = sorted(
            p for p in folder.iterdir() if p.suffix.lower() in _RASTER_SUFFIXES and pattern.search(p.stem)
        )
    if len(hits) > 1:
        raise InputError(folder, f"several files for {what}: {[p.name for p in hits]}")
    if not hits:
        if required:
            raise InputError(folder, f"no .jp2/.tif file for {what}")
        return None
    return hits[0]


def _safe_files(safe: Path, bands: tuple[str, ...]) -> tuple[dict[str, Path], Path]:
    granules = sorted(p for p in (safe / "GRANULE").glob("*") if p.is_dir())
    if len(granules) != 1:
        raise InputError(safe, f"expected one folder under GRANULE/, found {len(granules)}")
    img = granules[0] / "IMG_DATA"
    files = {b: _find_one(img / "R10m", f"*_{b}_10m.*", f"band {b} (R10m/*_{b}_10m)") for b in bands}
    if not (img / "R20m").is_dir():
        raise InputError(img, "no R20m folder with the scene classification (SCL)")
    scl = _find_one(img / "R20m", "*_SCL_20m.*", "the scene classification (R20m/*_SCL_20m)")
    return files, scl  # type: ignore[return-value]


def _folder_files(folder: Path, bands: tuple[str, ...]) -> tuple[dict[str, Path], Path | None]:
    files = {b: _find_one(folder, _token_pattern(b), f"band {b} (a file named like {b}.tif)") for b in bands}
    scl = _find_one(folder, _token_pattern("SCL"), "SCL", required=False)
    return files, scl  # type: ignore[return-value]


def _mapping_files(
    mapping: Mapping[str, str | Path], bands: tuple[str, ...], label: str
) -> tuple[dict[str, _Ref], _Ref | None]:
    canonical_to_s2 = {v: k for k, v in S2_TO_CANONICAL.items()}
    by_id: dict[str, _Ref] = {
        canonical_to_s2.get(k.lower(), k.upper()): v if is_remote(v) else Path(v) for k, v in mapping.items()
    }
    missing = [b for b in bands if b not in by_id]
    if missing:
        raise InputError(label, f"no file given for band(s) {missing}; keys: {sorted(mapping)}")
    return {b: by_id[b] for b in bands}, by_id.get("SCL")


def _scl_to_grid(scl: GeoRaster, ref: GeoRaster, scl_path: str | Path) -> np.ndarray:
    """SCL classes on the 10 m grid of ``ref`` (nearest neighbour); 0 (no data) outside."""
    classes = scl.array[0]
    if scl.shape == ref.shape and (scl.crs is None or scl.transform == ref.transform):
        return classes
    if scl.crs is not None and ref.crs is not None:
        out = np.zeros(ref.shape, dtype=classes.dtype)
        reproject(
            classes, out, src_transform=scl.transform, src_crs=scl.crs, dst_transform=ref.transform,
            dst_crs=ref.crs, resampling=Resampling.nearest, src_nodata=None, dst_nodata=0,
        )  # fmt: skip
        return out
    fy, ry = divmod(ref.shape[0], scl.shape[0])
    fx, rx = divmod(ref.shape[1], scl.shape[1])
    if ry or rx or fy != fx:
        raise InputError(
            scl_path, f"SCL grid {scl.shape} does not fit the band grid {ref.shape} (no CRS to align them)"
        )
    return np.repeat(np.repeat(classes, fy, axis=0), fx, axis=1)


def read_sentinel2(
    source: str | Path | Mapping[str, str | Path],
    *,
    bands: tuple[str, ...] = DEFAULT_BANDS,
    boa_offset: float | None = None,
    scl_invalid: frozenset[int] = DEFAULT_SCL_INVALID,
    metadata: L2AMetadata | None = None,
    footprint: Footprint | None = None,
    label: str | None = None,
) -> GeoRaster:
    """Read Sentinel-2 L2A 10 m bands as float32 surface reflectance with a validity mask.

    ``source`` is one of:

    * a ``.SAFE`` folder (or its ``MTD_MSIL2A.xml``, or the ``.zip`` as downloaded): bands from
      ``GRANULE/*/IMG_DATA/R10m/*_B0X_10m.jp2|tif``, SCL from ``R20m/*_SCL_20m.*``; baseline,
      BOA_ADD_OFFSET per band, quantification and acquisition time (PRODUCT_START_TIME) from the
      metadata. The offset is applied only for baseline >= 04.00 (where the metadata must list it);
    * a folder of per-band files named with the band id (``B02.tif``, ``T18TWL_..._B02_10m.tif``,
      optional ``SCL.tif``), or a mapping ``{"B02": path or URL, ..., "SCL": ...}``. With a mapping,
      ``metadata`` may give what a product's metadata would (a STAC item does:
      :func:`mindgap_core.io.stac.read_sentinel2_item`); without it the offset is
      ``boa_offset`` if given, else the file's ``BOA_ADD_OFFSET`` tag, else 0 when a
      ``PROCESSING_BASELINE`` tag says < 04.00 (a tag saying >= 04.00 without an offset is an
      error). When nothing is known the baseline is unknown and **no offset is assumed** (right for
      baselines < 04.00, 0.1 too bright for newer data: pass ``boa_offset=-1000`` then). Quantification: tag
      ``BOA_QUANTIFICATION_VALUE`` or 10000. Acquisition time: tag ``acquired`` or None. Without an
      SCL file the mask covers no-data only.

    ``boa_offset``, when given, overrides the metadata for every band. ``footprint`` reads only the
    10 m pixels covering it (plus one pixel; SCL likewise), e.g. the footprint of the HR scene it
    will be paired with. ``bands`` are S2 ids (or
    canonical names) among B02, B03, B04, B08; returned names are canonical ("blue", "green", "red",
    "nir") with the S2 ids in ``tags["S2_BANDS"]``. Mask: False where any band has DN 0 (no data;
    reflectance set to 0 there) or 65535 (saturated), or the SCL class is in ``scl_invalid``
    (default: no data, saturated, cloud shadow, cloud medium/high probability, thin cirrus). Masked
    pixels otherwise keep their reflectance. ``label`` names a mapping source in errors and tags.
    """
    bands = normalise_bands(bands)
    if metadata is not None and not isinstance(source, Mapping):
        raise ConfigError("metadata= applies to a band mapping only; a .SAFE product carries its own")
    meta: L2AMetadata | None = None
    files: Mapping[str, _Ref]
    scl_path: _Ref | None
    name: str | Path
    if isinstance(source, Mapping):
        name = label or "<band mapping>"
        files, scl_path = _mapping_files(source, bands, str(name))
        meta = metadata
    else:
        source = Path(source)
        if source.name == "MTD_MSIL2A.xml":
            source = source.parent
        name = source
        if not source.exists():
            raise InputError(source, "not found")
        if source.is_file() and source.suffix.lower() == ".zip":
            meta, files, scl_path = _zip_files(source, bands)
        elif source.is_file():
            raise InputError(source, "expected a .SAFE folder (or its .zip) or a folder of per-band files")
        elif (source / "MTD_MSIL2A.xml").is_file():
            meta = parse_mtd_msil2a(source / "MTD_MSIL2A.xml")
            files, scl_path = _safe_files(source, bands)
        elif list(source.glob("MTD_MSIL1C.xml")):
            raise InputError(source, "is a Level-1C product (top-of-atmosphere); MindGap needs L2A")
        else:
            files, scl_path = _folder_files(source, bands)

    rasters = {b: _read(files[b], (b,), footprint) for b in bands}
    ref = rasters[bands[0]]
    for b, r in rasters.items():
        if r.shape != ref.shape or r.transform != ref.transform or r.crs != ref.crs:
            raise InputError(
                _label(files[b]), f"grid {r.shape} differs from {bands[0]}'s {ref.shape} (bands must align)"
            )
        check_digital_numbers(r.array, _label(files[b]), r.mask, expected="Sentinel-2 L2A digital numbers")

    offsets, quantification, radiometry_tags = _radiometry(meta, rasters, files, boa_offset, name)
    tags = {**ref.tags, "SENSOR": "Sentinel-2 L2A", "S2_BANDS": ",".join(bands), "SOURCE": str(name)}
    tags.update(radiometry_tags)

    dn = np.stack([rasters[b].array[0] for b in bands])
    no_data = np.any(dn == NODATA_DN, axis=0)
    valid = ~no_data & np.all(dn != SATURATED_DN, axis=0)
    for r in rasters.values():
        valid &= r.valid
    if scl_path is not None:
        scl = _read(scl_path, footprint=footprint)
        classes = _scl_to_grid(scl, ref, _label(scl_path))
        valid &= ~np.isin(classes, sorted(scl_invalid))
        tags["SCL_INVALID"] = ",".join(str(c) for c in sorted(scl_invalid))
    else:
        tags["SCL_INVALID"] = "none (no SCL file)"

    offset_arr = np.asarray([offsets[b] for b in bands], dtype=np.float32)[:, None, None]
    reflectance = (dn.astype(np.float32) + offset_arr) / np.float32(quantification)
    # Masked pixels keep their values (clouds stay visible); only no-data pixels are set to 0.
    reflectance = np.where(no_data[None], np.float32(0.0), reflectance).astype(np.float32)
    check_reflectance(reflectance, name, valid)

    acquired = meta.start_time if meta is not None else ref.acquired
    return GeoRaster(
        array=reflectance,
        transform=ref.transform,
        crs=ref.crs,
        band_names=tuple(S2_TO_CANONICAL[b] for b in bands),
        nodata=None,
        units="reflectance",
        mask=valid,
        acquired=acquired,
        tags=tags,
    )


def _radiometry(
    meta: L2AMetadata | None,
    rasters: Mapping[str, GeoRaster],
    files: Mapping[str, _Ref],
    boa_offset: float | None,
    label: str | Path,
) -> tuple[dict[str, float], float, dict[str, str]]:
    """Per-band BOA offsets, the quantification value, and tags recording where they came from."""
    bands = list(rasters)
    tags: dict[str, str] = {}
    if meta is not None:
        quantification = meta.quantification
        baseline = meta.baseline_tuple
        listed = all(b in meta.offsets for b in bands)
        if baseline is None and not (listed or boa_offset is not None):
            raise InputError(
                label,
                f"{meta.offset_source} gives no processing baseline: cannot tell whether DN carry an offset",
            )
        tags["PROCESSING_BASELINE"] = meta.baseline or "unknown"
        for key, value in (("PRODUCT_URI", meta.product_uri), ("SPACECRAFT_NAME", meta.spacecraft)):
            if value:
                tags[key] = value
        if boa_offset is not None:
            offsets, source = {b: float(boa_offset) for b in bands}, "argument"
        elif baseline is None or baseline >= OFFSET_BASELINE:
            missing = [b for b in bands if b not in meta.offsets]
            if missing:
                raise InputError(
                    label,
                    f"baseline {meta.baseline} (>= 04.00) but {meta.offset_source} lists no BOA_ADD_OFFSET "
                    f"for {missing}",
                )
            offsets, source = {b: meta.offsets[b] for b in bands}, meta.offset_source
        else:
            source = f"none (baseline {meta.baseline} < 04.00)"
            if meta.offset_source != L2AMetadata.offset_source:
                source = f"{source}; {meta.offset_source}"
            offsets = {b: 0.0 for b in bands}
    else:
        quantification = DEFAULT_QUANTIFICATION
        quants = {rasters[b].tags.get("BOA_QUANTIFICATION_VALUE") for b in bands} - {None}
        if len(quants) > 1:
            raise InputError(label, f"bands disagree on BOA_QUANTIFICATION_VALUE: {sorted(quants)}")
        if quants:
            try:
                quantification = float(quants.pop())
            except ValueError:
                raise InputError(label, "tag BOA_QUANTIFICATION_VALUE is not a number") from None
        if boa_offset is not None:
            offsets, source = {b: float(boa_offset) for b in bands}, "argument"
        else:
            offsets, sources = {}, set()
            for b in bands:
                offsets[b], why = _band_file_offset(rasters[b].tags, _label(files[b]))
                sources.add(why)
            source = " / ".join(sorted(sources))
    tags["BOA_ADD_OFFSET"] = ",".join(f"{offsets[b]:g}" for b in bands)
    tags["BOA_OFFSET_SOURCE"] = source
    tags["BOA_QUANTIFICATION_VALUE"] = f"{quantification:g}"
    return offsets, quantification, tags


def _band_file_offset(file_tags: Mapping[str, str], path: str | Path) -> tuple[float, str]:
    """BOA offset of one per-band file from its tags, and where it came from."""
    text = file_tags.get("BOA_ADD_OFFSET")
    if text is not None:
        try:
            return float(text), "file tag"
        except ValueError:
            raise InputError(path, f"tag BOA_ADD_OFFSET={text!r} is not a number") from None
    stated = file_tags.get("PROCESSING_BASELINE")
    baseline = baseline_tuple(stated)
    if baseline is None:
        return 0.0, "none (baseline unknown, no offset assumed)"
    if baseline >= OFFSET_BASELINE:
        raise InputError(
            path, f"tag PROCESSING_BASELINE={stated} (>= 04.00) but no BOA_ADD_OFFSET tag; pass boa_offset="
        )
    return 0.0, f"none (baseline {stated} < 04.00)"
