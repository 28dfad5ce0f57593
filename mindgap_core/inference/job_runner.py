"""On-demand inference jobs: what a job asks for, what it does, and what it accepts.

:class:`InferenceSpec` is a job's payload in the generic queue (``mindgap_core/jobs/``).
:class:`InferenceExecutor` runs one job: for each input (a manifest tile's LR in one domain, or an
uploaded GeoTIFF) it runs tiled inference (:func:`~mindgap_core.inference.tiled.run_inference`) into a
COG (+ uncertainty when several samples of a stochastic model are drawn), and when an HR reference
exists scores the SR against it through :func:`mindgap_core.scoring.score_pair` (PSNR, SSIM, SAM, plus
LPIPS-Sat when its backbone is installed) with the |SR − HR| error map (and the LPIPS-Sat map).
Progress counts sampling steps (``steps`` per inference window of a stochastic model, one per window of a
deterministic one) plus one step per scored input; a cancelled job stops between two sampling steps.

The jobs folder is also the jobs' results store (``mindgap_core/store/``): a job's scores are rows of
the results schema, run id :func:`job_run_id`, one shard per job written after its files, paths
relative to the jobs folder. Its files are the job's outputs ``(item, kind, path)``: ``outputs/<job
id>/<kind>/<item>.tif`` with kind ``sr``, ``uncertainty``, ``abs_error``, ``lpips_sat``.

:func:`save_upload` validates an uploaded file with the core readers before anything is queued:
size, pixel count, 4 bands named (or ordered) blue, green, red, NIR, a CRS, reflectance values.
:func:`model_choices` lists the models a job may use: ``bicubic`` (no weights), every saved model
folder below the models root and every bring-your-own model card there or in ``$MINDGAP_MODELS``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mindgap_core.errors import ConfigError, InputError, MindGapError
from mindgap_core.io.atomic import atomic_path
from mindgap_core.jobs.queue import Job, JobOutput, JobQueue
from mindgap_core.jobs.worker import JobContext
from mindgap_core.types import CANONICAL_BANDS, MetricRow, canonical_band

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


#: the results rows of a job say where they come from
JOB_EXPERIMENT = "on-demand"


@dataclass(frozen=True)
class InferenceSpec:
    """What a job runs. Either ``tiles`` of ``manifest`` (their LR in ``domain``) or an ``upload`` (a file).

    ``model``: ``"bicubic"`` (needs no weights) or a saved model folder; ``model_label`` is how the
    dashboard shows it. ``steps`` None: the model's default. ``scale`` is used by weightless models
    only (a saved model has its own).
    """

    model: str
    tiles: tuple[str, ...] = ()
    manifest: str = ""
    domain: str = ""
    upload: str = ""
    upload_name: str = ""
    samples: int = 1
    steps: int | None = None
    seed: int = 0
    scale: int = 2
    model_label: str = ""

    @property
    def label(self) -> str:
        """The model as shown: its label, else its name."""
        return self.model_label or self.model

    @property
    def input_label(self) -> str:
        """A short text of the input (tiles and domain, or the upload's name)."""
        if self.upload:
            return f"upload {self.upload_name or Path(self.upload).name}"
        return f"{', '.join(self.tiles)} ({self.domain})"

    def validate(self) -> None:
        """:class:`ConfigError` when the spec cannot be run."""
        if not self.model:
            raise ConfigError("a job needs a model")
        if bool(self.upload) == bool(self.tiles):
            raise ConfigError("a job takes either tiles or one uploaded file")
        if self.tiles and not (self.manifest and self.domain):
            raise ConfigError("tile jobs need the manifest and the LR domain of the tiles")
        if len(set(self.tiles)) != len(self.tiles):
            raise ConfigError(f"tiles repeat: {list(self.tiles)}")
        if self.samples < 1:
            raise ConfigError(f"samples must be >= 1, got {self.samples}")
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")
        if self.scale < 1:
            raise ConfigError(f"scale must be >= 1, got {self.scale}")

    def payload(self) -> dict[str, Any]:
        """The spec as a job payload (plain JSON)."""
        return {**asdict(self), "tiles": list(self.tiles)}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> InferenceSpec:
        """The spec of a job payload; :class:`ConfigError` when it is not one."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(payload) - known)
        if unknown or "model" not in payload:
            raise ConfigError(
                f"not an inference job payload (keys {sorted(payload)}; expected {sorted(known)})"
            )
        return cls(**{**payload, "tiles": tuple(payload.get("tiles", ()))})


def spec_of(job: Job) -> InferenceSpec:
    """The inference spec of a queued job."""
    return InferenceSpec.from_payload(job.payload)


def submit(queue: JobQueue, spec: InferenceSpec, *, owner: str = "") -> int:
    """Check ``spec`` and queue it; returns the job id."""
    spec.validate()
    return queue.submit(spec.payload(), owner=owner)


def job_run_id(job_id: int) -> str:
    """The results-store run id of a job's scores."""
    return f"job-{int(job_id)}"


def uploads_dir(folder: str | Path) -> Path:
    """Where a jobs folder keeps validated uploads (``uploads/<sha256>.tif``)."""
    return Path(folder) / "uploads"


def job_scores(folder: str | Path, job_ids: list[int]) -> pd.DataFrame:
    """Overall scores (band ``all``) of jobs from the jobs folder's results store: columns ``job``,
    ``item``, ``domain``, ``metric``, ``value``, ``higher_better`` (empty when none)."""
    from mindgap_core.store.results import ResultsStore

    columns = ["run_id", "tile_id", "test_domain", "metric", "value", "higher_better"]
    rows = ResultsStore(folder).rows(
        {"run_id": [job_run_id(j) for j in job_ids], "band": "all", "aggregate": "mean"}, columns=columns
    )
    job = rows["run_id"].str.removeprefix("job-").astype(int)
    return rows.assign(job=job).rename(columns={"tile_id": "item", "test_domain": "domain"})[
        ["job", "item", "domain", "metric", "value", "higher_better"]
    ]


@dataclass(frozen=True)
class ModelChoice:
    """A model a job can use: ``model`` is what the job stores (a method name or a folder)."""

    label: str
    model: str


#: environment variable: more folders (``os.pathsep``-separated) whose models and model cards jobs may use
USER_MODELS_ENV = "MINDGAP_MODELS"


def model_choices(
    models_root: str | Path, extra_roots: Sequence[str | Path] | None = None
) -> list[ModelChoice]:
    """``bicubic`` plus every model below ``models_root`` and the ``extra_roots`` (default: the folders in
    ``$MINDGAP_MODELS``): MindGap model folders and bring-your-own model cards (TorchScript, ONNX, entry
    point; :func:`mindgap_core.models.registry.list_models`). A card that cannot be read is left out (the
    CLI's ``mindgap infer`` names its problem)."""
    from mindgap_core.models.registry import list_models

    if extra_roots is None:
        extra_roots = [p for p in os.environ.get(USER_MODELS_ENV, "").split(os.pathsep) if p.strip()]
    choices = [ModelChoice("bicubic (no weights)", "bicubic")]
    for root in [models_root, *extra_roots]:
        if Path(root).is_dir():
            choices += [ModelChoice(info.label, str(info.path)) for info in list_models(root).models]
    return choices


@dataclass(frozen=True)
class UploadInfo:
    """A validated upload."""

    path: Path
    rows: int
    cols: int
    crs: str
    band_names: tuple[str, ...]


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
        tuple(canonical_band(d) for d in descriptions) if all(d and d.strip() for d in descriptions) else ()
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
    split: str = ""


def _safe(text: str) -> str:
    return _SAFE.sub("_", text).strip("._") or "input"


def job_inputs(spec: InferenceSpec) -> list[_Input]:
    """The job's inputs: each tile's LR (and HR) from the manifest, or the uploaded file."""
    from mindgap_core.data.manifest import read_manifest, resolve

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
        inputs.append(_Input(tile, spec.domain, resolve(spec.manifest, row["lr_path"]), hr, int(row["scale"]),
                             str(row["split"])))
    return inputs


def _windows(path: Path) -> int:
    import rasterio

    from mindgap_core.inference.blend import tile_starts

    with rasterio.open(path) as ds:
        rows, cols = ds.height, ds.width
    return len(tile_starts(rows, INFERENCE_TILE, INFERENCE_OVERLAP)) * len(
        tile_starts(cols, INFERENCE_TILE, INFERENCE_OVERLAP)
    )


def _model_columns(spec: InferenceSpec, model: object) -> dict[str, Any]:
    """The results-store columns naming a job's model (as an experiment's rows do)."""
    if spec.model in WEIGHTLESS_MODELS:
        return {"model": spec.model, "method": spec.model, "regime": "none", "train_domain": "none",
                "train_blocks": None}
    from mindgap_core.experiments.spec import training_info

    folder = Path(spec.model)
    info = training_info(folder)
    return {
        "model": f"{folder.parent.name}/{folder.name}",
        "method": str(getattr(model, "method", info["method"])),
        "regime": str(info.get("regime", "unknown")),
        "train_domain": str(info.get("train_domain", "unknown")),
        "train_blocks": info.get("train_blocks"),
    }


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

        spec = spec_of(job)
        inputs = job_inputs(spec)
        # progress counts sampling steps (a job stops between two steps when cancelled), plus one step
        # per scored input
        first = self.model(spec.model, inputs[0].scale)
        unit = int(spec.steps or first.default_steps) if getattr(first, "stochastic", True) else 1
        windows = [_windows(i.lr) * unit for i in inputs]
        total = sum(windows) + sum(1 for i in inputs if i.hr is not None)
        ctx.progress(0, total, f"0/{len(inputs)} inputs")
        outputs: list[JobOutput] = []
        scores: list[pd.DataFrame] = []
        base = 0
        for n, (inp, count) in enumerate(zip(inputs, windows, strict=True)):
            model = self.model(spec.model, inp.scale)
            if int(model.scale) != inp.scale:
                raise InputError(spec.model, f"is a ×{model.scale} model; {inp.item} needs ×{inp.scale}")
            with_unc = spec.samples > 1 and bool(getattr(model, "stochastic", False))
            kinds = ("sr", "uncertainty") if with_unc else ("sr",)
            path_of = {kind: ctx.out_dir / kind / f"{_safe(inp.item)}.tif" for kind in kinds}
            text = f"{n}/{len(inputs)} inputs: super-resolving {inp.item}"

            def on_progress(done: int, _total: int, start: int = base, text: str = text) -> None:
                ctx.progress(start + done, total, text)

            run_inference(
                model,
                inp.lr,
                path_of["sr"],
                num_samples=spec.samples,
                steps=spec.steps,
                tile=INFERENCE_TILE,
                overlap=INFERENCE_OVERLAP,
                uncertainty_path=path_of.get("uncertainty"),
                seed=spec.seed,
                device=self._device(),
                model_path=None if spec.model in WEIGHTLESS_MODELS else spec.model,
                on_step=on_progress,
            )
            base += count
            files = {kind: ctx.queue.relative(path) for kind, path in path_of.items()}
            if inp.hr is not None:
                ctx.progress(base, total, f"{n}/{len(inputs)} inputs: scoring {inp.item}")
                rows, maps = self._score(inp, path_of["sr"], ctx)
                files.update(maps)
                scores.append(self._store_rows(job, spec, model, inp, rows, files))
                base += 1
            outputs += [JobOutput(job.id, inp.item, kind, rel) for kind, rel in files.items()]
            ctx.progress(base, total, f"{n + 1}/{len(inputs)} inputs")
        if scores:
            self._write_scores(job, ctx, pd.concat(scores, ignore_index=True))
        if self.notes:
            ctx.message = "; ".join(dict.fromkeys(self.notes))
        return outputs

    def _score(
        self, inp: _Input, sr_path: Path, ctx: JobContext
    ) -> tuple[tuple[MetricRow, ...], dict[str, str]]:
        """The input's metric rows, and its metric maps written as COGs (job-folder-relative paths)."""
        from mindgap_core.io import read_raster
        from mindgap_core.metrics.engine import validate_pair
        from mindgap_core.scoring import MapOptions, score_pair, write_rasters

        sr, hr, lr = read_raster(sr_path), read_raster(inp.hr), read_raster(inp.lr)
        validate_pair(sr, hr, lr, names=(f"SR of {inp.item}", f"HR {inp.hr}", f"LR {inp.lr}"))
        evaluator = self.evaluator()
        kinds = ["abs_error"] + (["lpips_sat"] if evaluator.lpips_sat_model is not None else [])
        scored = score_pair(evaluator, [hr], [sr], lr=[lr], tile_ids=[inp.item], maps=kinds,
                            map_options=MapOptions(device=self._device()))
        stem = _safe(inp.item)
        written = write_rasters(scored.tiles[0].maps, lambda kind: ctx.out_dir / kind / f"{stem}.tif")
        return scored.rows, {kind: ctx.queue.relative(path) for kind, path in written.items()}

    def _store_rows(self, job: Job, spec: InferenceSpec, model: object, inp: _Input,
                    rows: tuple[MetricRow, ...], files: dict[str, str]) -> pd.DataFrame:
        from mindgap_core.scoring import store_rows

        fields = {"run_id": job_run_id(job.id), "experiment": JOB_EXPERIMENT, **_model_columns(spec, model),
                  "test_domain": inp.domain}
        return store_rows(rows, fields=fields, split={inp.item: inp.split},
                          options={"samples": spec.samples, "steps": spec.steps, "seed": spec.seed},
                          paths={inp.item: files})

    def _write_scores(self, job: Job, ctx: JobContext, frame: pd.DataFrame) -> None:
        """The job's score rows as one shard of the jobs folder's results store, after all its files."""
        from mindgap_core.store.results import ResultsStore, shard_key

        store = ResultsStore(ctx.queue.folder)
        run_id = job_run_id(job.id)
        spec_hash = hashlib.sha256(json.dumps(dict(job.payload), sort_keys=True).encode()).hexdigest()
        store.start_run(run_id, experiment=JOB_EXPERIMENT, spec_hash=spec_hash, extra={"job": job.id})
        store.write_shard(shard_key(job=job.id), frame)
        store.finish_run(run_id)


def validate_tiles(manifest: str | Path, domain: str, tiles: list[str]) -> None:
    """:class:`ConfigError` when a tile is not in the manifest's ``domain`` (before queueing)."""
    from mindgap_core.data.manifest import read_manifest

    table = read_manifest(manifest)
    known = set(table.loc[table["domain"] == domain, "tile_id"])
    missing = [t for t in tiles if t not in known]
    if missing:
        raise ConfigError(f"tiles {missing} are not in {manifest} for domain {domain!r}")
