"""Read any GeoTIFF/COG into a :class:`GeoRaster`; write a GeoRaster as a Cloud-Optimized GeoTIFF.

Tags MindGap writes and reads back: ``units`` ("reflectance" | "DN") and ``acquired`` (ISO 8601,
UTC). Band names travel as GDAL band descriptions. Masks travel as the nodata value when the raster
has one, else as an internal (per-dataset) mask band.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import MemoryFile
from rasterio.shutil import copy as gdal_copy
from rasterio.windows import Window

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.io.atomic import atomic_path
from mindgap_core.io.checks import check_reflectance
from mindgap_core.io.memory import GDAL_CACHE_MB, check_fits
from mindgap_core.types import GeoRaster

#: Tag keys that map onto GeoRaster fields (so they are not repeated in ``GeoRaster.tags``).
UNITS_TAG = "units"
ACQUIRED_TAG = "acquired"
_FIELD_TAGS = {UNITS_TAG, ACQUIRED_TAG, "ACQUISITION_TIME", "AREA_OR_POINT"}

try:  # GDAL errors are raised as CPLE_* exceptions that do not all derive from RasterioError
    from rasterio._err import CPLE_BaseError
except ImportError:  # pragma: no cover - layout of a future rasterio
    CPLE_BaseError = RasterioError  # type: ignore[misc,assignment]

_GDAL_ERRORS = (RasterioError, CPLE_BaseError, OSError)

#: COMPRESS values of GDAL's COG driver (JXL/WEBP/ZSTD depend on the GDAL build; checked after encoding).
COG_COMPRESSIONS = (
    "none", "deflate", "lzw", "zstd", "lzma", "jpeg", "webp", "lerc", "lerc_deflate", "lerc_zstd", "jxl",
)  # fmt: skip
#: OVERVIEW_RESAMPLING values of GDAL's COG driver.
COG_RESAMPLINGS = ("nearest", "average", "bilinear", "cubic", "cubicspline", "lanczos", "mode", "rms")


def _root_cause(exc: BaseException) -> str:
    """The innermost message of a GDAL exception chain (rasterio wraps the useful one)."""
    while (exc.__cause__ or exc.__context__) is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return str(exc)


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 time ("2023-07-14T15:38:19.024Z", "2023-07-14"); naive times are UTC."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _band_names_from(descriptions: Sequence[str | None], count: int) -> tuple[str, ...]:
    names = [d.strip() if d else "" for d in descriptions]
    if all(names) and len(set(names)) == count:
        return tuple(names)
    return tuple(f"b{i}" for i in range(1, count + 1))


def _valid_mask(
    src: rasterio.io.DatasetReader, array: np.ndarray, window: Window | None = None
) -> np.ndarray | None:
    """Validity (rows, cols) of ``array`` (read from ``window``), None when all pixels are valid.

    A pixel is invalid where the file's mask says so (internal mask; or nodata in *every* band, as
    GDAL's dataset mask, so that a valid 0 in one band survives nodata=0) or any float band is
    non-finite.
    """
    valid = None
    if any(flags != [MaskFlags.all_valid] for flags in src.mask_flag_enums):
        valid = np.any(src.read_masks(window=window) > 0, axis=0)
    if np.issubdtype(array.dtype, np.floating):
        finite = np.all(np.isfinite(array), axis=0)
        valid = finite if valid is None else valid & finite
    if valid is None or bool(valid.all()):
        return None
    return valid


#: URL schemes GDAL reads through its virtual file systems (no download of the whole file).
_VSI_PREFIXES: dict[str, str] = {
    "http://": "/vsicurl/", "https://": "/vsicurl/", "s3://": "/vsis3/", "gs://": "/vsigs/",
    "az://": "/vsiaz/",
}  # fmt: skip


def is_remote(href: str | Path) -> bool:
    """Whether ``href`` is a URL (http(s), s3, gs, az) rather than a local path."""
    return isinstance(href, str) and href.lower().startswith(tuple(_VSI_PREFIXES))


def gdal_target(href: str) -> str:
    """The GDAL path of a URL: ``https://x/y.tif`` -> ``/vsicurl/https://x/y.tif``, ``s3://b/k`` ->
    ``/vsis3/b/k`` (GDAL's virtual file systems read only the blocks they need)."""
    for scheme, prefix in _VSI_PREFIXES.items():
        if href.lower().startswith(scheme):
            return prefix + (href if prefix == "/vsicurl/" else href[len(scheme) :])
    raise ValueError(f"not a URL GDAL can read: {href}")


@dataclass(frozen=True)
class Footprint:
    """An area to read (``bounds`` = left, bottom, right, top in ``crs``), from the raster ``name``."""

    crs: object
    bounds: tuple[float, float, float, float]
    name: str

    @classmethod
    def of(cls, raster: GeoRaster, name: str | Path) -> Footprint:
        """The footprint of ``raster`` (read from ``name``)."""
        return cls(crs=raster.crs, bounds=raster.bounds, name=str(name))


def window_transform(transform: Affine, window: Window) -> Affine:
    """The transform of a window's pixels (``rasterio``'s own helper still uses the deprecated ``*``)."""
    return transform @ Affine.translation(window.col_off, window.row_off)


def footprint_window(src: rasterio.io.DatasetReader, footprint: Footprint, margin: int = 1) -> Window | None:
    """The window of ``src`` covering ``footprint`` (snapped outward to whole pixels, grown by
    ``margin`` pixels, cut to the raster), or None when they do not intersect. Needs a north-up
    ``src`` with a CRS; otherwise the whole raster is returned."""
    from rasterio.warp import transform_bounds

    t = src.transform
    if src.crs is None or footprint.crs is None or t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0:
        return Window(0, 0, src.width, src.height)
    left, bottom, right, top = transform_bounds(footprint.crs, src.crs, *footprint.bounds, densify_pts=21)
    c0 = max(math.floor((left - t.c) / t.a) - margin, 0)
    c1 = min(math.ceil((right - t.c) / t.a) + margin, src.width)
    r0 = max(math.floor((top - t.f) / t.e) - margin, 0)
    r1 = min(math.ceil((bottom - t.f) / t.e) + margin, src.height)
    if c1 <= c0 or r1 <= r0:
        return None
    return Window(c0, r0, c1 - c0, r1 - r0)


@dataclass(frozen=True)
class RasterInfo:
    """What is known about a raster before any pixel is read."""

    label: str
    rows: int
    cols: int
    count: int
    dtype: str
    crs: object
    transform: Affine
    nodata: float | None
    band_names: tuple[str, ...]
    units: str  #: the ``units`` tag, else "DN" for integer data, "reflectance" for floats
    acquired: datetime | None
    tags: dict[str, str] = field(default_factory=dict)  #: the file's own tags (not units/acquired)

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows, self.cols

    @property
    def nbytes(self) -> int:
        """Bytes of all pixels in the file's data type."""
        return self.rows * self.cols * self.count * np.dtype(self.dtype).itemsize


def grid_windows(rows: int, cols: int, size: int) -> list[Window]:
    """Row-major windows of ``size`` x ``size`` pixels covering ``rows`` x ``cols`` (edges cut)."""
    return [
        Window(c, r, min(size, cols - c), min(size, rows - r))
        for r in range(0, rows, size)
        for c in range(0, cols, size)
    ]


class WindowReader:
    """An open raster (any GDAL path ``target``) read window by window (a context manager), with the
    mask rules of :func:`read_raster`; errors name ``label``. :meth:`of` opens a path or URL."""

    def __init__(self, target: str, label: str | Path) -> None:
        self.label = str(label)
        self._stack = contextlib.ExitStack()
        try:
            self._stack.enter_context(rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self.src = self._stack.enter_context(rasterio.open(target))
        except _GDAL_ERRORS as exc:
            self._stack.close()
            raise InputError(label, "cannot be opened as a raster (not a GeoTIFF, or corrupt): "
                                    f"{_root_cause(exc)}") from None
        self.info = self._describe()

    @classmethod
    def of(cls, path: str | Path) -> WindowReader:
        """A reader of a local raster file or a URL (http(s), s3, gs, az)."""
        if is_remote(path):
            return cls(gdal_target(str(path)), str(path))
        local = Path(path)
        if not local.exists():
            raise InputError(local, "file not found")
        if local.is_dir():
            raise InputError(local, "is a folder, not a raster file")
        return cls(str(local), local)

    def _describe(self) -> RasterInfo:
        src = self.src
        tags = src.tags()
        acquired = None
        time_text = tags.get(ACQUIRED_TAG) or tags.get("ACQUISITION_TIME")
        if time_text:
            try:
                acquired = parse_time(time_text)
            except ValueError:
                raise InputError(
                    self.label, f"tag {ACQUIRED_TAG}={time_text!r} is not an ISO 8601 time"
                ) from None
        integer = np.issubdtype(np.dtype(src.dtypes[0]), np.integer)
        return RasterInfo(
            label=self.label, rows=src.height, cols=src.width, count=src.count, dtype=src.dtypes[0],
            crs=src.crs, transform=src.transform, nodata=None if src.nodata is None else float(src.nodata),
            band_names=_band_names_from(src.descriptions, src.count),
            units=tags.get(UNITS_TAG) or ("DN" if integer else "reflectance"), acquired=acquired,
            tags={k: v for k, v in tags.items() if k not in _FIELD_TAGS},
        )  # fmt: skip

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """``(array, valid)`` of ``window``: the file's data type, (bands, h, w); validity (h, w)."""
        try:
            array = self.src.read(window=window)
            valid = _valid_mask(self.src, array, window)
        except _GDAL_ERRORS as exc:
            raise InputError(self.label, "opens, but its pixels cannot be read (truncated or corrupt file): "
                                         f"{_root_cause(exc)}") from None
        return array, np.ones(array.shape[1:], bool) if valid is None else valid

    def __enter__(self) -> WindowReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def read_raster(
    path: str | Path,
    band_names: Sequence[str] | None = None,
    *,
    units: str | None = None,
    require_crs: bool = False,
    footprint: Footprint | None = None,
) -> GeoRaster:
    """Read a whole GeoTIFF/COG (any raster GDAL opens, local or a URL) into memory.

    Band names come from ``band_names``, else from the file's band descriptions (when all bands
    have distinct ones), else "b1".."bn". Units come from ``units``, else from the file's ``units``
    tag, else from the data type ("DN" for integers, "reflectance" for floats). Nodata values,
    internal masks and non-finite floats become ``mask`` (False = invalid). When ``units`` is
    passed as "reflectance" the values are checked to look like reflectance
    (:func:`~mindgap_core.io.checks.check_reflectance`). ``footprint`` reads only the pixels
    covering it (:func:`footprint_window`). URLs (http(s), s3, gs, az) are read through GDAL's
    virtual file systems. Every problem raises one :class:`InputError` naming the file.
    """
    if is_remote(path):
        return read_gdal(gdal_target(str(path)), str(path), band_names, units=units, require_crs=require_crs,
                         footprint=footprint)
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    if path.is_dir():
        raise InputError(path, "is a folder, not a raster file")
    return read_gdal(str(path), path, band_names, units=units, require_crs=require_crs, footprint=footprint)


def read_gdal(
    target: str,
    label: str | Path,
    band_names: Sequence[str] | None = None,
    *,
    units: str | None = None,
    require_crs: bool = False,
    footprint: Footprint | None = None,
) -> GeoRaster:
    """:func:`read_raster` for any GDAL path (e.g. ``/vsizip/...``); errors name ``label``."""
    with WindowReader(target, label) as reader:
        info, src = reader.info, reader.src
        window = Window(0, 0, info.cols, info.rows)
        if footprint is not None:
            found = footprint_window(src, footprint)
            if found is None:
                raise InputError(
                    f"{label} + {footprint.name}",
                    "the rasters do not overlap (footprint "
                    + ", ".join(f"{v:.1f}" for v in footprint.bounds)
                    + f" in {footprint.crs}; raster bounds "
                    + ", ".join(f"{v:.1f}" for v in src.bounds)
                    + ")",
                )
            window = found
        itemsize = np.dtype(info.dtype).itemsize
        check_fits(label, info.count * window.height * window.width * (itemsize + 1),
                   f"reading {window.height} x {window.width} pixels x {info.count} band(s) ({info.dtype}) "
                   "at once", "crop or tile it first (e.g. gdal_translate -srcwin)")
        # Read every pixel here: truncated files often open fine and only fail on read.
        array, valid = reader.read(window)
    mask = None if valid.all() else valid
    transform = window_transform(info.transform, window)
    count = array.shape[0]
    if band_names is not None:
        band_names = tuple(band_names)
        if len(band_names) != count:
            raise InputError(label, f"has {count} band(s), expected {len(band_names)} {list(band_names)}")
    else:
        band_names = info.band_names
    if require_crs and info.crs is None:
        raise InputError(label, "has no coordinate reference system (CRS); a georeferenced raster is needed")
    if units == "reflectance":
        check_reflectance(array, label, mask)
    return GeoRaster(
        array=array,
        transform=transform,
        crs=info.crs,
        band_names=band_names,
        nodata=info.nodata,
        units=units or info.units,
        mask=mask,
        acquired=info.acquired,
        tags=info.tags,
    )


def _cast(array: np.ndarray, dtype: np.dtype, valid: np.ndarray | None) -> np.ndarray:
    """``array`` as ``dtype``; floats going to integers are rounded and must fit the type."""
    if array.dtype == dtype:
        return array
    if np.issubdtype(dtype, np.integer) and not np.issubdtype(array.dtype, np.integer):
        values = array if valid is None else array[:, valid]
        info = np.iinfo(dtype)
        if values.size and (
            not np.all(np.isfinite(values)) or values.min() < info.min - 0.5 or values.max() > info.max + 0.5
        ):
            raise ConfigError(
                f"cannot store values in [{np.nanmin(values):.6g}, {np.nanmax(values):.6g}] as {dtype}; "
                "scale them first (e.g. reflectance x 10000 for uint16)"
            )
        array = np.rint(np.nan_to_num(array, nan=0.0)).clip(info.min, info.max)
    return array.astype(dtype)


def _check_nodata(nodata: float, dtype: np.dtype) -> None:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        if not np.isfinite(nodata) or not float(nodata).is_integer() or not info.min <= nodata <= info.max:
            raise ConfigError(f"nodata value {nodata} cannot be stored as {dtype}")


def file_tags(tags: Mapping[str, object], units: str, acquired: datetime | None) -> dict[str, str]:
    """The GDAL metadata MindGap writes: ``tags`` plus ``units`` and ``acquired`` (ISO 8601, UTC)."""
    out = {str(k): str(v) for k, v in tags.items()}
    out[UNITS_TAG] = units
    if acquired is not None:
        aware = acquired if acquired.tzinfo else acquired.replace(tzinfo=UTC)
        out[ACQUIRED_TAG] = aware.astimezone(UTC).isoformat()
    return out


def describe_dataset(
    ds: rasterio.io.DatasetWriter, band_names: Sequence[str], tags: Mapping[str, str]
) -> None:
    """Band names as descriptions, grey (never RGB) colour interpretation, ``tags`` sorted."""
    ds.descriptions = tuple(band_names)
    ds.colorinterp = [ColorInterp.gray] + [ColorInterp.undefined] * (ds.count - 1)
    ds.update_tags(**dict(sorted(tags.items())))


def cog_options(
    blocksize: int = 256, compress: str = "deflate", overview_resampling: str = "average"
) -> dict[str, str]:
    """GDAL COG driver options of every COG MindGap writes (checked names)."""
    if compress.lower() not in COG_COMPRESSIONS:
        raise ConfigError(f"unknown COG compression {compress!r}; choose from {COG_COMPRESSIONS}")
    if overview_resampling.lower() not in COG_RESAMPLINGS:
        raise ConfigError(
            f"unknown overview resampling {overview_resampling!r}; choose from {COG_RESAMPLINGS}"
        )
    options = {
        "BLOCKSIZE": str(blocksize),
        "COMPRESS": compress.upper(),
        "OVERVIEW_RESAMPLING": overview_resampling.upper(),
        "OVERVIEWS": "AUTO",  # overviews down to one block: none for images within one block
    }
    if compress.lower() in {"deflate", "lzw", "zstd"}:
        options["PREDICTOR"] = "YES"
    return options


def encode_cog(
    raster: GeoRaster,
    *,
    dtype: str | None = None,
    blocksize: int = 256,
    compress: str = "deflate",
    overview_resampling: str = "average",
    half_float: bool = False,
) -> bytes:
    """The bytes of a Cloud-Optimized GeoTIFF holding ``raster`` (see :func:`write_cog`)."""
    if blocksize < 16 or blocksize % 16:
        raise ConfigError(f"COG blocksize must be a multiple of 16 (>= 16), got {blocksize}")
    # an image smaller than one block gets a block just big enough: GDAL pads partial blocks with
    # whatever its buffers hold, which bloats small tiles (x10 seen) and makes their bytes vary
    rows, cols = raster.shape
    blocksize = min(blocksize, max(16, -(-max(rows, cols) // 16) * 16))
    out_dtype = np.dtype(dtype) if dtype is not None else raster.array.dtype
    if out_dtype == np.bool_:
        out_dtype = np.dtype(np.uint8)
    array = _cast(raster.array, out_dtype, raster.mask)
    nodata = raster.nodata
    if nodata is not None:
        _check_nodata(nodata, out_dtype)
    internal_mask = None
    if raster.mask is not None:
        if nodata is not None:  # the nodata value carries the mask
            array = np.where(raster.mask[None], array, np.asarray(nodata).astype(out_dtype))
        else:
            internal_mask = np.where(raster.mask, 255, 0).astype(np.uint8)

    tags = file_tags(raster.tags, raster.units, raster.acquired)
    count, rows, cols = array.shape
    profile = {
        "driver": "GTiff",
        "width": cols,
        "height": rows,
        "count": count,
        "dtype": out_dtype.name,
        "crs": raster.crs,
        "transform": raster.transform,
        "nodata": nodata,
        "photometric": "MINISBLACK",  # never let GDAL read 3-4 uint8 bands as RGB(A)
    }
    options = cog_options(blocksize, compress, overview_resampling)
    if half_float:
        if out_dtype != np.float32:
            raise ConfigError(f"half_float storage needs float32 data, got {out_dtype.name}")
        options["NBITS"] = "16"  # IEEE half floats inside a Float32 TIFF; read back as float32
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with MemoryFile(ext=".tif") as staging:
                with staging.open(**profile) as ds:
                    ds.write(array)
                    describe_dataset(ds, raster.band_names, tags)
                    if internal_mask is not None:
                        ds.write_mask(internal_mask)
                with staging.open() as src, MemoryFile(ext=".tif") as out:
                    gdal_copy(src, out.name, driver="COG", **options)
                    with out.open() as written:  # GDAL ignores codecs missing from its build
                        used = written.tags(ns="IMAGE_STRUCTURE").get("COMPRESSION", "NONE")
                    data = out.read()
    except _GDAL_ERRORS as exc:
        raise ConfigError(f"GDAL could not encode the COG ({options}): {_root_cause(exc)}") from None
    if used.upper() != options["COMPRESS"]:
        raise ConfigError(f"compression {compress!r} is not available in this GDAL build (got {used})")
    return data


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()


def write_cog(
    raster: GeoRaster,
    path: str | Path,
    *,
    dtype: str | None = None,
    blocksize: int = 256,
    compress: str = "deflate",
    overview_resampling: str = "average",
    half_float: bool = False,
) -> Path:
    """Write ``raster`` to ``path`` as a valid Cloud-Optimized GeoTIFF, atomically; return the path.

    GDAL's COG driver: internal ``blocksize`` tiles, overviews (``overview_resampling``) when the
    image is larger than one block, band descriptions = band names, tags incl. ``units`` and
    ``acquired``. The mask is stored as the nodata value when ``raster.nodata`` is set, else as an
    internal mask. ``dtype`` casts on the way (floats to integers are rounded and must fit). The
    file is encoded in memory, then written through :func:`atomic_path`: a failure never leaves a
    partial file. Same input gives the same bytes (GDAL writes no timestamps). ``half_float`` stores
    float32 data as 16-bit floats (about 3 significant digits, half the size): for display products
    such as SR previews and metric maps, never for data that is scored.
    """
    path = Path(path)
    data = encode_cog(
        raster, dtype=dtype, blocksize=blocksize, compress=compress, overview_resampling=overview_resampling,
        half_float=half_float,
    )
    with atomic_path(path) as tmp:
        try:
            _write_file(tmp, data)
        except OSError as exc:
            raise InputError(path, f"cannot write ({exc.strerror or exc})") from None
    return path


def validate_cog(path: str | Path) -> tuple[bool, list[str], list[str]]:
    """(is_valid, errors, warnings) of rio-cogeo's COG validation for ``path``."""
    from rio_cogeo.cogeo import cog_validate

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            valid, errors, warns = cog_validate(str(path), quiet=True)
    except _GDAL_ERRORS as exc:
        return False, [f"not a readable GeoTIFF: {exc}"], []
    return bool(valid), list(errors), list(warns)
