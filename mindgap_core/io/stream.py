"""Rasters larger than memory: write a COG window by window.

(Windows are read with :class:`~mindgap_core.io.geotiff.WindowReader`.) :class:`CogWriter` collects
windows in a staging GeoTIFF on disk (next to the output, so large
outputs do not fill ``/tmp``), then GDAL's COG driver copies it, block by block, into a
Cloud-Optimized GeoTIFF with the options of :func:`~mindgap_core.io.geotiff.write_cog`, through
:func:`~mindgap_core.io.atomic.atomic_path`: nothing partial is left on failure. GDAL's block cache
is capped (:data:`GDAL_CACHE_MB`), so memory stays one window plus that cache whatever the size.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

from mindgap_core.errors import InputError
from mindgap_core.io.atomic import atomic_path
from mindgap_core.io.geotiff import (
    _GDAL_ERRORS,
    _root_cause,
    cog_options,
    describe_dataset,
    file_tags,
)
from mindgap_core.io.memory import GDAL_CACHE_MB


@contextlib.contextmanager
def work_dir(near: Path) -> Iterator[Path]:
    """A temporary folder beside ``near`` (same file system, so big scenes do not fill /tmp)."""
    near = near if str(near) else Path(".")
    try:
        with tempfile.TemporaryDirectory(prefix=".mindgap-work-", dir=near) as tmp:
            yield Path(tmp)
    except PermissionError as exc:
        raise InputError(near, f"cannot write here ({exc.strerror or exc})") from None


class CogWriter:
    """A COG at ``dest`` written window by window (a context manager; see the module docstring).

    ``layout`` of the staging file: "tiled" (256 x 256 blocks; any window order) or "striped" (one
    row per strip; for writers that emit whole rows top to bottom). ``mask``: the output carries an
    internal validity mask (pass ``valid`` to :meth:`write`). :meth:`finish` sets band names and tags;
    the COG appears at ``dest`` only when the ``with`` block ends without an exception.
    """

    def __init__(
        self, dest: str | Path, *, rows: int, cols: int, count: int, dtype: str, crs: object,
        transform: Affine, nodata: float | None = None, mask: bool = False, layout: str = "tiled",
    ) -> None:  # fmt: skip
        if layout not in ("tiled", "striped"):
            raise ValueError(f"layout must be 'tiled' or 'striped', got {layout!r}")
        self.dest = Path(dest)
        self._profile = {
            "driver": "GTiff", "width": cols, "height": rows, "count": count, "dtype": dtype, "crs": crs,
            "transform": transform, "nodata": nodata, "compress": "DEFLATE", "zlevel": 1,
            "predictor": 3 if np.issubdtype(np.dtype(dtype), np.floating) else 2,
            "photometric": "MINISBLACK", "BIGTIFF": "IF_SAFER",
            **({"tiled": True, "blockxsize": 256, "blockysize": 256} if layout == "tiled"
               else {"tiled": False, "blockysize": 1}),
        }  # fmt: skip
        self._mask = mask
        self._stack = contextlib.ExitStack()
        self._finished = False

    def __enter__(self) -> CogWriter:
        stack = self._stack
        try:
            self._tmp = stack.enter_context(atomic_path(self.dest, suffix=".tif"))
            self._staging_path = stack.enter_context(work_dir(self.dest.parent)) / "staging.tif"
            stack.enter_context(rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB, GDAL_TIFF_INTERNAL_MASK=True))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._staging = rasterio.open(self._staging_path, "w", **self._profile)
        except BaseException:
            stack.__exit__(*sys.exc_info())
            raise
        return self

    def write(self, array: np.ndarray, window: Window, valid: np.ndarray | None = None) -> None:
        """Write ``array`` (bands, h, w) at ``window``; ``valid`` (h, w) into the mask."""
        self._staging.write(array.astype(self._profile["dtype"], copy=False), window=window)
        if self._mask:
            if valid is None:
                raise ValueError("this writer carries a mask: pass valid=")
            self._staging.write_mask(np.where(valid, 255, 0).astype(np.uint8), window=window)

    def finish(self, band_names: Sequence[str], tags: dict[str, str], units: str,
               acquired: datetime | None = None) -> None:
        """Band names, tags (plus ``units``/``acquired``); then the COG copy (still at a temp path)."""
        from rasterio.shutil import copy as gdal_copy

        describe_dataset(self._staging, band_names, file_tags(tags, units, acquired))
        for band in range(1, self._staging.count + 1):
            self._staging.set_band_unit(band, units)
        self._staging.close()
        options = {**cog_options(), "BIGTIFF": "IF_SAFER"}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                gdal_copy(self._staging_path, self._tmp, driver="COG", **options)
        except _GDAL_ERRORS as exc:
            raise InputError(self.dest, f"cannot write the COG ({_root_cause(exc)})") from None
        self._finished = True

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        if not self._staging.closed:
            self._staging.close()
        if exc_type is None and not self._finished:
            err = RuntimeError(f"CogWriter for {self.dest}: finish() was not called")
            self._stack.__exit__(RuntimeError, err, None)  # removes the temporary files, re-raises
            raise err
        return self._stack.__exit__(exc_type, exc, tb)
