"""What an on-demand inference job does, and what it accepts.

:class:`InferenceExecutor` runs one job of the queue (:mod:`mindgap_core.inference.jobs`): for each input
(a manifest tile's LR in one domain, or an uploaded GeoTIFF) it runs tiled inference
(:func:`~mindgap_core.inference.tiled.run_inference`) into a COG (+ uncertainty when several samples
of a stochastic model are drawn), and when an HR reference exists scores the SR against it with the
:class:`~mindgap_core.metrics.engine.Evaluator` (PSNR, SSIM, SAM, plus LPIPS-Sat when its backbone is
installed) and writes the |SR − HR| error map (and the LPIPS-Sat map). Progress counts inference
windows plus one step per scored input.

:func:`save_upload` validates an uploaded file with the core readers before anything is queued:
size, pixel count, 4 bands named (or ordered) blue, green, red, NIR, a CRS, reflectance values.
:func:`model_choices` lists the models a job may use: ``bicubic`` (no weights) and every saved model
folder under ``<models root>/<method>/<regime>/``.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mindgap_core.errors import ConfigError, InputError, MindGapError
from mindgap_core.inference.jobs import Job, JobContext, JobOutput
from mindgap_core.io.atomic import atomic_path
from mindgap_core.types import CANONICAL_BANDS

#: uploads larger than this are refused before they are written
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
#: uploads with more rows or columns than this are refused
MAX_UPLOAD_SIDE = 2048
#: models that need no weights
WEIGHTLESS_MODELS: tuple[str, ...] = ("bicubic",)
#: metrics scored for every job with an HR reference (LPIPS-Sat is added when available)
JOB_METRICS: tuple[str, ...] = ("psnr", "ssim", "sam")
INFERENCE_TILE = 64
INFERENCE_OVERLAP = 8
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ModelChoice:
    """A model a job can use: ``model`` is what the job stores (a method name or a folder)."""

    label: str
    model: str


def model_choices(models_root: str | Path) -> list[ModelChoice]:
    """``bicubic`` plus every ``<models_root>/<method>/<regime>/`` holding a ``model_index.json``."""
    choices = [ModelChoice("bicubic (no weights)", "bicubic")]
    root = Path(models_root)
    if root.is_dir():
        for index in sorted(root.glob("*/*/model_index.json")):
            folder = index.parent
            choices.append(ModelChoice(f"{folder.parent.name}/{folder.name}", str(folder)))
    return choices


@dataclass(frozen=True)
class UploadInfo:
    """A validated upload."""

    path: Path
    rows: int
    cols: int
    crs: str
    band_names: tuple[str, ...]


def _canonical_band(name: str) -> str:
    from mindgap_core.inference.tiled import BAND_ALIASES

    key = name.strip().lower()
    return BAND_ALIASES.get(key, key)


def check_upload(
    path: str | Path,
    *,
    label: str | None = None,
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_side: int = MAX_UPLOAD_SIDE,
) -> UploadInfo:
    """Validate an LR GeoTIFF for a job; :class:`InputError` naming ``label`` (default: the path)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    from mindgap_core.io import check_reflectance, read_raster

    path = Path(path)
    name = label or str(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise InputError(name, f"is {size / 2**20:.1f} MB; uploads are limited to {max_bytes / 2**20:.0f} MB")
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                rows, cols, count, crs = ds.height, ds.width, ds.count, ds.crs
                descriptions, dtype = ds.descriptions, ds.dtypes[0]
    except (RasterioError, OSError) as exc:
        raise InputError(name, f"is not a readable GeoTIFF ({exc})") from None
    if rows > max_side or cols > max_side:
        raise InputError(name, f"is {cols} × {rows} pixels; uploads are limited to {max_side} × {max_side}")
    if count != len(CANONICAL_BANDS):
        raise InputError(name, f"has {count} band(s); an LR input needs 4: blue, green, red, NIR")
    names = (
        tuple(_canonical_band(d) for d in descriptions) if all(d and d.strip() for d in descriptions) else ()
    )
    if names and sorted(names) != sorted(CANONICAL_BANDS):
        raise InputError(
            name, f"band names {list(names)} are not blue, green, red, nir (or B02, B03, B04, B08)"
        )
    if crs is None:
        raise InputError(
            name, "has no coordinate reference system (CRS); the result must be placed on the map"
        )
    if np.issubdtype(np.dtype(dtype), np.integer):
        raise InputError(
            name,
            f"holds integer digital numbers ({dtype}); upload surface reflectance as floating "
            "point (0–1), e.g. Sentinel-2 L2A DN × 0.0001",
        )
    raster = read_raster(path)
    try:
        check_reflectance(raster.array, name, raster.valid, what="values")
    except InputError as exc:  # keep the diagnosis, drop the advice meant for library users
        diagnosis = exc.problem.split("; read it with")[0]
        raise InputError(name, f"{diagnosis}; upload surface reflectance as floating point (0–1)") from None
    if not raster.valid.any():
        raise InputError(name, "has no valid pixel")
    return UploadInfo(path, rows, cols, crs.to_string(), names or CANONICAL_BANDS)


def save_upload(
    folder: str | Path,
    name: str,
    data: bytes,
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_side: int = MAX_UPLOAD_SIDE,
) -> UploadInfo:
    """Validate ``data`` (an uploaded file called ``name``) and store it in ``folder`` under its hash.

    Nothing is left behind when the file is refused (:class:`InputError`).
    """
    if len(data) > max_bytes:
        raise InputError(
            name, f"is {len(data) / 2**20:.1f} MB; uploads are limited to {max_bytes / 2**20:.0f} MB"
        )
    if not data:
        raise InputError(name, "is empty")
    dest = Path(folder) / f"{hashlib.sha256(data).hexdigest()[:24]}.tif"
    with atomic_path(dest, suffix=".tif") as tmp:
        tmp.write_bytes(data)
        info = check_upload(tmp, label=name, max_bytes=max_bytes, max_side=max_side)
    return UploadInfo(dest, info.rows, info.cols, info.crs, info.band_names)


@dataclass(frozen=True)
class _Input:
    item: str
    domain: str
    lr: Path
    hr: Path | None
    scale: int


def _safe(text: str) -> str:
    return _SAFE.sub("_", text).strip("._") or "input"


def job_inputs(job: Job) -> list[_Input]:
    """The job's inputs: each tile's LR (and HR) from the manifest, or the uploaded file."""
    from mindgap_core.data.manifest import read_manifest, resolve

    spec = job.spec
    if spec.upload:
        path = Path(spec.upload)
        if not path.is_file():
            raise InputError(path, "uploaded file is gone")
        return [_Input(spec.upload_name or path.name, "upload", path, None, spec.scale)]
    manifest = read_manifest(spec.manifest)
    inputs = []
    for tile in spec.tiles:
        rows = manifest[(manifest["tile_id"] == tile) & (manifest["domain"] == spec.domain)]
        if rows.empty:
            raise InputError(spec.manifest, f"has no tile {tile!r} in domain {spec.domain!r}")
        row = rows.iloc[0]
        hr = resolve(spec.manifest, row["hr_path"]) if row["hr_path"] else None
        inputs.append(
            _Input(tile, spec.domain, resolve(spec.manifest, row["lr_path"]), hr, int(row["scale"]))
        )
    return inputs


def _windows(path: Path) -> int:
    import rasterio

    from mindgap_core.inference.blend import tile_starts

    with rasterio.open(path) as ds:
        rows, cols = ds.height, ds.width
    return len(tile_starts(rows, INFERENCE_TILE, INFERENCE_OVERLAP)) * len(
        tile_starts(cols, INFERENCE_TILE, INFERENCE_OVERLAP)
    )


class InferenceExecutor:
    """Runs jobs: inference, then scoring against HR when there is one. Keeps the last model and the
    evaluator loaded between jobs."""

    def __init__(
        self, device: str | None = None, metrics: tuple[str, ...] = JOB_METRICS, lpips_sat: bool = True
    ) -> None:
        self.device = device
        self.metrics = metrics
        self.want_lpips_sat = lpips_sat
        self._model_key: tuple | None = None
        self._model = None
        self._evaluator = None
        self.notes: list[str] = []

    def _device(self) -> str:
        if self.device is None:
            import torch

            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def model(self, name: str, scale: int):
        """The job's model (``bicubic`` built for ``scale``; else loaded from its folder)."""
        from mindgap_core.models.registry import build_model, load_model

        if name in WEIGHTLESS_MODELS:
            key = (name, scale)
        else:
            index = Path(name) / "model_index.json"
            key = (name, index.stat().st_mtime_ns if index.is_file() else None)
        if key != self._model_key:
            self._model = (
                build_model(name, None, scale=scale)
                if name in WEIGHTLESS_MODELS
                else load_model(name, device=self._device())
            )
            self._model = self._model.to(self._device()) if hasattr(self._model, "to") else self._model
            self._model_key = key
        return self._model

    def evaluator(self):
        """PSNR/SSIM/SAM (+ LPIPS-Sat when its backbone loads)."""
        from mindgap_core.metrics.engine import Evaluator

        if self._evaluator is None:
            if self.want_lpips_sat:
                try:
                    self._evaluator = Evaluator([*self.metrics, "lpips_sat"], device=self._device())
                except MindGapError as exc:
                    self.notes.append(f"LPIPS-Sat not scored: {exc}")
            if self._evaluator is None:
                self._evaluator = Evaluator(list(self.metrics), device=self._device())
        return self._evaluator

    def __call__(self, job: Job, ctx: JobContext) -> list[JobOutput]:
        from mindgap_core.inference.tiled import run_inference

        inputs = job_inputs(job)
        windows = [_windows(i.lr) for i in inputs]
        total = sum(windows) + sum(1 for i in inputs if i.hr is not None)
        ctx.progress(0, total, f"0/{len(inputs)} inputs")
        outputs = []
        base = 0
        for n, (inp, count) in enumerate(zip(inputs, windows, strict=True)):
            model = self.model(job.spec.model, inp.scale)
            if int(model.scale) != inp.scale:
                raise InputError(job.spec.model, f"is a ×{model.scale} model; {inp.item} needs ×{inp.scale}")
            stem = _safe(inp.item)
            sr_path = ctx.out_dir / f"{stem}_sr.tif"
            with_unc = job.spec.samples > 1 and bool(getattr(model, "stochastic", False))
            unc_path = ctx.out_dir / f"{stem}_uncertainty.tif" if with_unc else None
            text = f"{n}/{len(inputs)} inputs: super-resolving {inp.item}"

            def on_progress(done: int, _total: int, start: int = base, text: str = text) -> None:
                ctx.progress(start + done, total, text)

            run_inference(
                model,
                inp.lr,
                sr_path,
                num_samples=job.spec.samples,
                steps=job.spec.steps,
                tile=INFERENCE_TILE,
                overlap=INFERENCE_OVERLAP,
                uncertainty_path=unc_path,
                seed=job.spec.seed,
                device=self._device(),
                model_path=None if job.spec.model in WEIGHTLESS_MODELS else job.spec.model,
                on_progress=on_progress,
            )
            base += count
            output = JobOutput(
                job.id,
                inp.item,
                ctx.queue.relative(sr_path),
                domain=inp.domain,
                uncertainty_path=ctx.queue.relative(unc_path) if unc_path else "",
            )
            if inp.hr is not None:
                ctx.progress(base, total, f"{n}/{len(inputs)} inputs: scoring {inp.item}")
                output = self._score(output, inp, sr_path, ctx)
                base += 1
            outputs.append(output)
            ctx.progress(base, total, f"{n + 1}/{len(inputs)} inputs")
        if self.notes:
            ctx.message = "; ".join(dict.fromkeys(self.notes))
        return outputs

    def _score(self, output: JobOutput, inp: _Input, sr_path: Path, ctx: JobContext) -> JobOutput:
        from dataclasses import replace

        from mindgap_core.io import read_raster, write_cog
        from mindgap_core.metrics.engine import validate_pair
        from mindgap_core.metrics.maps import metric_maps

        sr, hr, lr = read_raster(sr_path), read_raster(inp.hr), read_raster(inp.lr)
        validate_pair(sr, hr, lr, names=(f"SR of {inp.item}", f"HR {inp.hr}", f"LR {inp.lr}"))
        evaluator = self.evaluator()
        valid = (sr.valid & hr.valid)[None]
        rows = evaluator.score_arrays(
            sr.array[None],
            hr.array[None],
            lr.array[None],
            band_names=hr.band_names,
            tile_ids=[inp.item],
            valid=valid,
        )
        scores = {r.metric: float(r.value) for r in rows if r.band == "all" and math.isfinite(r.value)}
        kinds = ["abs_error"] + (["lpips_sat"] if evaluator.lpips_sat_model is not None else [])
        maps = metric_maps(sr, hr, kinds, lpips_sat_model=evaluator.lpips_sat_model, device=self._device())
        paths = {}
        for kind, raster in maps.items():
            dest = ctx.out_dir / f"{_safe(inp.item)}_{kind}.tif"
            write_cog(raster, dest)
            paths[kind] = ctx.queue.relative(dest)
        return replace(
            output,
            scores=scores,
            error_path=paths.get("abs_error", ""),
            lpips_sat_path=paths.get("lpips_sat", ""),
        )


def validate_tiles(manifest: str | Path, domain: str, tiles: list[str]) -> None:
    """:class:`ConfigError` when a tile is not in the manifest's ``domain`` (before queueing)."""
    from mindgap_core.data.manifest import read_manifest

    table = read_manifest(manifest)
    known = set(table.loc[table["domain"] == domain, "tile_id"])
    missing = [t for t in tiles if t not in known]
    if missing:
        raise ConfigError(f"tiles {missing} are not in {manifest} for domain {domain!r}")
