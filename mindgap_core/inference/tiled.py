"""Tiled, georeferenced super-resolution of a whole LR scene, with per-pixel uncertainty.

The scene is never read whole. Tiles of ``tile`` LR pixels (overlapping by ``overlap``) are read as
windows, super-resolved by ``model.sample`` (``num_samples`` draws: their mean is the SR output, their
per-pixel standard deviation the uncertainty), weighted by :mod:`~mindgap_core.inference.blend`'s
tapered windows and accumulated in a strip buffer one tile row high. Rows no later tile touches are
normalised and written by a :class:`~mindgap_core.io.stream.CogWriter` (striped staging file, then
GDAL's COG driver, atomically). Peak memory is one tile batch plus one strip (tile height x scene
width); nothing partial is left on failure.

Several processes (``accelerate launch`` / ``torchrun``; one per GPU, or CPU processes over gloo)
share one scene through a :class:`Shard`: every rank reads the tile row, the batches are formed as in
one process and dealt out round-robin, rank 0 gathers the results and blends them in the same order
into the one output. The output is therefore byte-identical to a single-process run (stochastic models
draw from per-tile generators; deterministic models see the same batches), given the same device type.
"""

from __future__ import annotations

import contextlib
import math
import resource
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.inference.blend import tile_starts, tile_weights
from mindgap_core.io.checks import check_reflectance
from mindgap_core.io.memory import GDAL_CACHE_MB
from mindgap_core.types import ProgressFn, canonical_band, no_progress

if TYPE_CHECKING:  # torch/rasterio stay out of import time for the CLI's --help
    import rasterio
    import torch

#: Output nodata: NaN, which no reflectance value can be mistaken for.
OUTPUT_NODATA: float = float("nan")
#: Largest side of the decimated preview read to check that the input looks like reflectance.
_PREVIEW_SIDE: int = 256

#: Sentinel-2 band IDs accepted for canonical names (descriptions are matched case-blind). Bare
#: "B2".."B8" are not: Landsat numbers its bands differently (its B8 is panchromatic).


@dataclass(frozen=True)
class InferenceResult:
    """What :func:`run_inference` wrote and how long it took."""

    out_path: Path
    uncertainty_path: Path | None
    method: str
    scale: int
    steps: int
    num_samples: int
    seed: int
    n_tiles: int  #: tiles in the grid (including skipped all-nodata tiles)
    n_skipped_tiles: int  #: tiles without any valid pixel (not sent to the model)
    seconds: float
    peak_buffer_bytes: int  #: host memory of the blending strip buffers
    peak_rss_bytes: int  #: peak resident memory of this process so far (includes everything before)
    peak_device_bytes: int | None  #: torch.cuda peak allocation during the run (None on CPU)


@dataclass(frozen=True)
class _InputInfo:
    """What is known about the input scene before any pixel is read."""

    indexes: tuple[int, ...]  # 1-based file band indexes in the model's band order
    rows: int
    cols: int
    crs: object
    transform: object
    dn_scale: float
    dn_offset: float


def _gdal_errors() -> tuple[type[BaseException], ...]:
    """Exceptions GDAL/rasterio raise for unreadable files (CPLE_* do not all derive from RasterioError)."""
    from rasterio.errors import RasterioError

    try:
        from rasterio._err import CPLE_BaseError
    except ImportError:  # pragma: no cover - layout of a future rasterio
        return (RasterioError, OSError)
    return (RasterioError, CPLE_BaseError, OSError)


def _band_indexes(
    descriptions: Sequence[str | None],
    model_bands: tuple[str, ...],
    source: Path,
    band_names: Sequence[str] | None,
    method: str,
) -> tuple[int, ...]:
    """1-based indexes of the file's bands in the model's order; InputError when they do not fit."""
    count = len(descriptions)
    expected = f"model {method!r} expects {len(model_bands)} bands {list(model_bands)}"
    if count != len(model_bands):
        raise InputError(source, f"has {count} band(s); {expected}")
    if band_names is not None:
        names = [canonical_band(n) for n in band_names]
        if len(names) != count:
            raise ConfigError(f"{len(names)} band names {list(band_names)} for {count} bands in {source}")
    elif all(d and d.strip() for d in descriptions):
        names = [canonical_band(d) for d in descriptions]  # type: ignore[union-attr]
    else:
        names = [f"b{i}" for i in range(1, count + 1)]
    if names == [f"b{i}" for i in range(1, count + 1)]:
        # unnamed bands (no descriptions, or io's placeholder names b1..bn): taken in the model's order
        return tuple(range(1, count + 1))
    missing = [b for b in model_bands if b not in names]
    if missing or len(set(names)) != count:
        raise InputError(
            source,
            f"band names {names} do not match: {expected}"
            + (f"; missing {missing}" if missing else "; names repeat")
            + " (name the file's bands in order with band_names / --bands)",
        )
    return tuple(names.index(b) + 1 for b in model_bands)


def _open_input(path: Path) -> rasterio.io.DatasetReader:
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    if not path.exists():
        raise InputError(path, "file not found")
    if path.is_dir():
        raise InputError(path, "is a folder, not a raster file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except _gdal_errors() as exc:
        raise InputError(path, f"not a readable raster file: {exc}") from None


def _describe_input(
    ds: rasterio.io.DatasetReader,
    source: Path,
    model_bands: tuple[str, ...],
    method: str,
    *,
    band_names: Sequence[str] | None,
    allow_no_crs: bool,
    dn_scale: float | None,
    dn_offset: float,
) -> _InputInfo:
    indexes = _band_indexes(ds.descriptions, model_bands, source, band_names, method)
    if ds.crs is None and not allow_no_crs:
        raise InputError(
            source,
            "has no coordinate reference system (CRS); georeferenced output needs one "
            "(use allow_no_crs / --allow-no-crs for ungeoreferenced patches)",
        )
    integer = np.issubdtype(np.dtype(ds.dtypes[0]), np.integer)
    units = ds.tags().get("units") or ("DN" if integer else "reflectance")
    if dn_scale is None:
        if units == "DN":
            raise InputError(
                source,
                f"holds digital numbers ({ds.dtypes[0]}, units {units!r}); the model needs reflectance: "
                "give dn_scale / --dn-scale (reflectance = (DN + dn_offset) x dn_scale, e.g. 0.0001 "
                "for Sentinel-2 L2A or PlanetScope SR)",
            )
        dn_scale, dn_offset = 1.0, 0.0
    elif not (math.isfinite(dn_scale) and dn_scale > 0):
        raise ConfigError(f"dn_scale must be a positive number, got {dn_scale}")
    return _InputInfo(indexes, ds.height, ds.width, ds.crs, ds.transform, float(dn_scale), float(dn_offset))


def _read_valid(
    ds: rasterio.io.DatasetReader,
    info: _InputInfo,
    window: object = None,
    out_shape: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Reflectance (bands, rows, cols) float32 and validity (rows, cols) of a window or preview."""
    kwargs: dict[str, object] = {"window": window}
    if out_shape is not None:
        kwargs["out_shape"] = (len(info.indexes), *out_shape)
    raw = ds.read(list(info.indexes), **kwargs)
    mask_kwargs = {"window": window} if out_shape is None else {"out_shape": out_shape}
    valid = ds.dataset_mask(**mask_kwargs) > 0
    array = ((raw.astype(np.float64) + info.dn_offset) * info.dn_scale).astype(np.float32)
    valid &= np.all(np.isfinite(array), axis=0)
    return array, valid


def _read_window(
    ds: rasterio.io.DatasetReader, info: _InputInfo, source: Path, window: object
) -> tuple[np.ndarray, np.ndarray]:
    try:
        return _read_valid(ds, info, window=window)
    except _gdal_errors() as exc:
        raise InputError(source, f"reading {window} failed (corrupt or truncated file?): {exc}") from None


def _check_looks_like_reflectance(ds: rasterio.io.DatasetReader, info: _InputInfo, source: Path) -> None:
    """Cheap up-front check on a decimated preview, before any tile is computed."""
    factor = max(1, math.ceil(max(info.rows, info.cols) / _PREVIEW_SIDE))
    shape = (max(1, info.rows // factor), max(1, info.cols // factor))
    try:
        array, valid = _read_valid(ds, info, out_shape=shape)
    except _gdal_errors() as exc:
        raise InputError(source, f"not readable (corrupt or truncated file?): {exc}") from None
    check_reflectance(array, source, valid, what="input reflectance")


def _fill_invalid(array: np.ndarray, valid: np.ndarray) -> np.ndarray | None:
    """Invalid pixels replaced by the tile's per-band valid mean; None when nothing is valid.

    Tiles are not padded: every tile is ``min(tile, rows) x min(tile, cols)`` (the models pad
    internally to the sizes their networks need).
    """
    if not valid.any():
        return None
    if not valid.all():
        means = array[:, valid].mean(axis=1)
        array = np.where(valid[None], array, means[:, None, None].astype(np.float32))
    return np.ascontiguousarray(array, dtype=np.float32)


@dataclass(frozen=True)
class Shard:
    """This process's place among ``world`` processes sharing one scene (rank 0 writes the output).

    ``gather(obj)`` returns every rank's ``obj`` in rank order (all ranks must call it together).
    """

    rank: int = 0
    world: int = 1
    gather: Callable[[object], list[object]] | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world:
            raise ConfigError(f"rank {self.rank} is not in 0..{self.world - 1}")
        if self.world > 1 and self.gather is None:
            raise ConfigError("several processes need a gather function")


#: the shard of a run in one process
SINGLE_PROCESS = Shard()


def launcher_shard() -> tuple[Shard, str]:
    """The :class:`Shard` of this process under ``accelerate launch`` / ``torchrun`` (a single process
    otherwise) and its device ("cuda:<local rank>" or "cpu"). Without CUDA the ranks talk over gloo
    (``PartialState(cpu=True)``; see the experiment runner's ``process_grid``)."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import gather_object

    state = PartialState(cpu=not torch.cuda.is_available())
    if state.num_processes == 1:
        return SINGLE_PROCESS, str(state.device)
    shard = Shard(state.process_index, state.num_processes, lambda obj: gather_object([obj]))
    return shard, str(state.device)


def tile_seed(seed: int, tile_index: int) -> int:
    """The generator seed of one tile: a hash of (seed, tile index), independent of batching."""
    entropy = [int(seed) & 0xFFFFFFFFFFFFFFFF, int(tile_index)]
    state = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


class _TilePlan:
    """The tile grid of a scene and each tile's LR window and HR blending weights."""

    def __init__(self, tile: int, overlap: int, scale: int, rows: int, cols: int) -> None:
        self.tile, self.overlap, self.scale, self.rows, self.cols = tile, overlap, scale, rows, cols
        self.ys = tile_starts(rows, tile, overlap)
        self.xs = tile_starts(cols, tile, overlap)
        self.total = len(self.ys) * len(self.xs)
        self._weights: dict[tuple[bool, ...], np.ndarray] = {}

    def window(self, y0: int, x0: int) -> rasterio.windows.Window:
        """The LR window of the tile at (y0, x0): ``tile`` square, cut to the scene when smaller."""
        from rasterio.windows import Window

        return Window(x0, y0, min(self.tile, self.cols - x0), min(self.tile, self.rows - y0))

    def weights(self, y0: int, x0: int) -> np.ndarray:
        """HR weights of the tile at (y0, x0); sides on the image border do not taper."""
        sides = (y0 > 0, y0 + self.tile < self.rows, x0 > 0, x0 + self.tile < self.cols)
        if sides not in self._weights:
            h = min(self.tile, self.rows) * self.scale
            w = min(self.tile, self.cols) * self.scale
            top, bottom, left, right = sides
            self._weights[sides] = tile_weights(
                h, w, self.overlap * self.scale, top=top, bottom=bottom, left=left, right=right
            ).astype(np.float32)
        return self._weights[sides]


class _Strip:
    """Weighted sums for the HR rows one tile row spans; hands out rows once they are final."""

    def __init__(self, bands: int, height: int, width: int, with_std: bool) -> None:
        self.top = 0  # HR row of buffer row 0
        self.mean = np.zeros((bands, height, width), np.float32)
        self.std = np.zeros((bands, height, width), np.float32) if with_std else None
        self.weight = np.zeros((height, width), np.float32)
        self.valid = np.zeros((height, width), bool)

    @property
    def nbytes(self) -> int:
        arrays = [self.mean, self.weight, self.valid] + ([self.std] if self.std is not None else [])
        return sum(a.nbytes for a in arrays)

    def add(
        self, row: int, col: int, mean: np.ndarray, std: np.ndarray, weight: np.ndarray, valid: np.ndarray
    ) -> None:
        """Add one tile's mean and std (bands, h, w), weighted, at HR (row, col)."""
        r0 = row - self.top
        sl = (slice(r0, r0 + weight.shape[0]), slice(col, col + weight.shape[1]))
        self.mean[(slice(None), *sl)] += mean * weight
        if self.std is not None:
            self.std[(slice(None), *sl)] += std * weight
        self.weight[sl] += weight
        self.valid[sl] = valid

    def pop(self, until: int) -> tuple[int, list[np.ndarray]]:
        """HR row ``top`` and the normalised rows [top, until) of mean (and std), NaN where invalid.

        The buffer then starts at ``until``: rows below it that a tile already touched move up.
        """
        n = until - self.top
        ok = self.valid[:n] & (self.weight[:n] > 0)
        denom = np.where(ok, self.weight[:n], 1.0)
        mean = np.where(ok[None], self.mean[:, :n] / denom, OUTPUT_NODATA).astype(np.float32)
        std = None
        if self.std is not None:
            std = np.where(ok[None], self.std[:, :n] / denom, OUTPUT_NODATA).astype(np.float32)
        top = self.top
        for arr in [self.mean, self.std] if self.std is not None else [self.mean]:
            arr[:, : arr.shape[1] - n] = arr[:, n:]
            arr[:, arr.shape[1] - n :] = 0
        self.weight[: self.weight.shape[0] - n] = self.weight[n:]
        self.weight[self.weight.shape[0] - n :] = 0
        self.valid[: self.valid.shape[0] - n] = self.valid[n:]
        self.valid[self.valid.shape[0] - n :] = False
        self.top = until
        return top, [mean] if std is None else [mean, std]


def _model_device(model: object, device: str | torch.device | None) -> torch.device:
    import torch

    if device is not None:
        return torch.device(device)
    found = getattr(model, "device", None)
    if found is not None:
        return torch.device(found)
    params = getattr(model, "parameters", None)
    if callable(params):
        for p in params():
            return p.device
    return torch.device("cpu")


def _run_model(
    model: object,
    batch: np.ndarray,
    indices: list[int],
    *,
    num_samples: int,
    steps: int,
    seed: int,
    device: torch.device,
    on_step: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over samples, (N, C, H, W) float32 each.

    Stochastic models are called one tile at a time with that tile's own generator (their
    ``num_samples`` form the model's batch), so results never depend on how tiles are batched.
    ``on_step(n)``: after each sampling step of a stochastic model, ``n`` of the batch's
    ``len(indices) * steps`` tile-steps are done.
    """
    import torch

    lr = torch.from_numpy(batch).to(device)
    with torch.inference_mode():
        if getattr(model, "stochastic", True):
            outs = []
            for k, index in enumerate(indices):
                gen = torch.Generator(device=device).manual_seed(tile_seed(seed, index))
                extra = {}
                if on_step is not None:
                    def step(done: int, total: int, k: int = k) -> None:
                        on_step(k * steps + min(steps, round(steps * done / max(total, 1))))

                    extra["on_step"] = step
                outs.append(
                    model.sample(lr[k : k + 1], num_samples=num_samples, steps=steps, generator=gen, **extra)
                )
            samples = torch.cat(outs, dim=0)
        else:
            samples = model.sample(lr, num_samples=num_samples, steps=steps, generator=None)
        samples = samples.float()
        mean = samples.mean(dim=1)
        std = samples.std(dim=1, correction=0) if samples.shape[1] > 1 else torch.zeros_like(mean)
    return mean.cpu().numpy(), std.cpu().numpy()


def _batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _validate_options(tile: int, overlap: int, num_samples: int, batch_size: int, steps: int | None) -> None:
    if tile < 1:
        raise ConfigError(f"tile must be at least 1 LR pixel, got {tile}")
    if overlap < 0:
        raise ConfigError(f"overlap must be >= 0 LR pixels, got {overlap}")
    if tile <= 2 * overlap:
        raise ConfigError(
            f"tile ({tile}) must be larger than twice the overlap ({overlap}); "
            f"use tile > {2 * overlap} or a smaller overlap"
        )
    if num_samples < 1:
        raise ConfigError(f"num_samples must be >= 1, got {num_samples}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if steps is not None and steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")


def run_inference(
    model: object,
    input_path: str | Path,
    out_path: str | Path,
    *,
    num_samples: int = 1,
    steps: int | None = None,
    tile: int = 64,
    overlap: int = 8,
    uncertainty_path: str | Path | None = None,
    seed: int = 0,
    batch_size: int = 4,
    device: str | torch.device | None = None,
    allow_no_crs: bool = False,
    band_names: Sequence[str] | None = None,
    dn_scale: float | None = None,
    dn_offset: float = 0.0,
    model_path: str | Path | None = None,
    on_progress: ProgressFn = no_progress,
    on_step: ProgressFn | None = None,
    shard: Shard = SINGLE_PROCESS,
) -> InferenceResult:
    """Super-resolve the LR scene ``input_path`` with ``model`` into the COG ``out_path``.

    ``model`` follows the SRModel interface (``method``, ``scale``, ``band_names``,
    ``default_steps``, ``stochastic``, ``sample``). ``tile`` and ``overlap`` are LR pixels; tile >
    2 x overlap. Output: mean of ``num_samples`` samples on the HR grid (same CRS, pixel size /
    scale), float32 reflectance, NaN nodata where the input is invalid (nearest-upsampled mask).
    ``uncertainty_path``: per-pixel std over samples (0 for deterministic models), same grid.
    The input's bands are matched to the model's by name (band descriptions, sensor IDs such as
    B02..B08, or ``band_names``); a file without descriptions must be in the model's band order.
    Integer DN input needs ``dn_scale`` (reflectance = (DN + dn_offset) x dn_scale). CRS-less
    input needs ``allow_no_crs`` (the output then has the scaled pixel grid and no CRS).
    ``device``: where tiles are sent (default: the model's device). ``model_path`` is recorded in
    the output tags. Results depend on ``seed``, not on ``batch_size``. ``on_progress(done,
    total)`` counts tiles; ``on_step(done, total)`` counts sampling steps over all tiles (``steps`` per
    tile of a stochastic model, one per tile of a deterministic one), after every step, so that a caller
    can stop between steps by raising. Every bad input raises InputError/ConfigError before any tile is
    computed; outputs are written atomically (nothing partial on failure or interrupt). ``shard``:
    this process's share of a multi-process run (module docstring); only rank 0 writes.
    """
    import rasterio
    import torch
    from affine import Affine

    from mindgap_core.io.atomic import check_writable
    from mindgap_core.io.stream import CogWriter

    started = time.perf_counter()
    source, out_path = Path(input_path), Path(out_path)
    unc_path = None if uncertainty_path is None else Path(uncertainty_path)
    steps = int(model.default_steps if steps is None else steps)  # type: ignore[attr-defined]
    _validate_options(tile, overlap, num_samples, batch_size, steps)
    if source.exists() and out_path.exists() and out_path.resolve() == source.resolve():
        raise ConfigError(f"output {out_path} is the input file; choose another output path")
    if unc_path is not None and unc_path.resolve() == out_path.resolve():
        raise ConfigError(f"uncertainty path {unc_path} is the same as the output path")
    scale = int(model.scale)  # type: ignore[attr-defined]
    method = str(model.method)  # type: ignore[attr-defined]
    model_bands = tuple(model.band_names)  # type: ignore[attr-defined]
    dev = _model_device(model, device)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)

    with contextlib.ExitStack() as stack:
        stack.enter_context(rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB))
        ds = stack.enter_context(_open_input(source))
        info = _describe_input(
            ds, source, model_bands, method,
            band_names=band_names, allow_no_crs=allow_no_crs, dn_scale=dn_scale, dn_offset=dn_offset,
        )  # fmt: skip
        _check_looks_like_reflectance(ds, info, source)
        outputs = [out_path] if unc_path is None else [out_path, unc_path]
        rows_hr, cols_hr = info.rows * scale, info.cols * scale
        writers = []
        if shard.rank == 0:  # the only writer; claims the outputs (fails early when unwritable)
            writers = [
                stack.enter_context(CogWriter(
                    path, rows=rows_hr, cols=cols_hr, count=len(model_bands), dtype="float32", crs=info.crs,
                    transform=info.transform @ Affine.scale(1.0 / scale), nodata=OUTPUT_NODATA,
                    layout="striped",
                ))
                for path in outputs
            ]  # fmt: skip
        else:  # the other ranks check what rank 0 will claim, so that they all fail together
            for path in outputs:
                check_writable(path)

        plan = _TilePlan(tile, overlap, scale, info.rows, info.cols)
        strip = _Strip(len(model_bands), min(tile, info.rows) * scale, cols_hr, with_std=unc_path is not None)
        done = skipped = 0
        unit = steps if getattr(model, "stochastic", True) else 1  # sampling steps per tile

        def progress(done: int) -> None:
            on_progress(done, plan.total)
            if on_step is not None:
                on_step(done * unit, plan.total * unit)

        progress(0)
        for iy, y0 in enumerate(plan.ys):
            tiles = []
            for ix, x0 in enumerate(plan.xs):
                window = plan.window(y0, x0)
                array, valid = _read_window(ds, info, source, window)
                filled = _fill_invalid(array, valid)
                if filled is None:  # nothing valid: output stays nodata, skip the model
                    skipped += 1
                    done += 1
                    progress(done)
                    continue
                tiles.append((iy * len(plan.xs) + ix, x0, filled, valid))
            batches = list(_batches(tiles, batch_size))
            # Batches are formed as in one process and dealt out round by round (batch k of a round
            # to rank k); rank 0 adds the results in batch order: the same sums, the same bytes.
            for first in range(0, len(batches), shard.world):
                group = batches[first : first + shard.world]
                mine = group[shard.rank] if shard.rank < len(group) else None
                result = None
                if mine is not None:
                    before = done + sum(len(b) for b in group[: shard.rank])
                    stepped = None if on_step is None else (
                        lambda n, before=before: on_step(before * unit + n, plan.total * unit)
                    )
                    result = _run_model(
                        model, np.stack([t[2] for t in mine]), [t[0] for t in mine],
                        num_samples=num_samples, steps=steps, seed=seed, device=dev, on_step=stepped,
                    )  # fmt: skip
                results = shard.gather(result) if shard.world > 1 else [result]
                for batch, (mean, std) in zip(group, results[: len(group)], strict=True):
                    if shard.rank == 0:
                        for k, (_, x0, _, valid) in enumerate(batch):
                            hr_valid = np.repeat(np.repeat(valid, scale, axis=0), scale, axis=1)
                            strip.add(y0 * scale, x0 * scale, mean[k], std[k], plan.weights(y0, x0), hr_valid)
                    done += len(batch)
                    progress(done)
            until = plan.ys[iy + 1] * scale if iy + 1 < len(plan.ys) else rows_hr
            top, rows = strip.pop(until)
            for writer, values in zip(writers, rows, strict=False):
                writer.write(values, window=rasterio.windows.Window(0, top, cols_hr, until - top))

        tags = {
            "description": f"SR output of {method}",
            "product": "super-resolution: mean over samples",
            "method": method,
            "model_path": str(model_path) if model_path is not None else "(in-memory model)",
            "source": str(source),
            "scale": str(scale),
            "steps": str(steps),
            "num_samples": str(num_samples),
            "seed": str(seed),
            "tile": str(tile),
            "overlap": str(overlap),
        }
        unc_tags = dict(
            tags,
            description=f"SR uncertainty of {method}: per-pixel std over {num_samples} sample(s)",
            product="uncertainty: per-pixel std over samples",
        )
        for writer, what in zip(writers, [tags, unc_tags], strict=False):
            writer.finish(model_bands, what, units="reflectance")

    return InferenceResult(
        out_path=out_path,
        uncertainty_path=unc_path,
        method=method,
        scale=scale,
        steps=steps,
        num_samples=num_samples,
        seed=seed,
        n_tiles=plan.total,
        n_skipped_tiles=skipped,
        seconds=time.perf_counter() - started,
        peak_buffer_bytes=strip.nbytes,
        peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        peak_device_bytes=int(torch.cuda.max_memory_allocated(dev)) if dev.type == "cuda" else None,
    )
