"""The rasters one tile can show, and their renderings with one shared stretch per kind.

A tile has: its HR reference and its LR input in every domain (from the pair manifest); for each model
in a results store, the SR mean, its uncertainty (per-pixel std over samples), its error map |SR − HR|
and its LPIPS-Sat map when saved; the same for on-demand inference jobs (whose scores are rows of a
results store too, ``mindgap_core/inference/job_runner.py``). Each is a :class:`LayerSource`
with a stable ``key`` (used in URLs) and a label (simulated inputs say so).

Renderings (:func:`render_layers`): reflectance layers (LR, SR, HR) share one 2–98 % stretch taken from
the HR tile (:mod:`mindgap_core.viz.render`), so they stay comparable; scalar maps share one range per
kind (error and uncertainty: 0 to the 98th percentile over all shown maps of that kind; LPIPS-Sat:
2nd–98th percentile), coloured with :mod:`mindgap_core.viz.overlays` ramps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mindgap_core.data.catalog import DOMAIN_LABELS
from mindgap_core.data.manifest import read_manifest, resolve
from mindgap_core.types import GeoRaster
from mindgap_core.viz.overlays import colourise, robust_range
from mindgap_core.viz.render import render, stretch_limits

#: layer kind -> (display group, colour ramp or None for reflectance)
KINDS: dict[str, tuple[str, str | None]] = {
    "reflectance": ("image", None),
    "error": ("error |SR − HR| (mean over bands)", "inferno"),
    "uncertainty": ("uncertainty (std over samples, mean over bands)", "inferno"),
    "lpips_sat": ("LPIPS-Sat map", "viridis"),
}


@dataclass(frozen=True)
class LayerSource:
    """One raster of a tile. ``kind``: a key of :data:`KINDS`.

    For an ``error`` layer without a saved map, ``path`` is the SR and ``reference`` the HR: the map is
    computed as |SR − HR| when rendered.
    """

    key: str
    label: str
    kind: str
    path: Path
    reference: Path | None = None


@dataclass(frozen=True)
class RenderedLayer:
    """A layer as uint8 RGB on its own grid, plus the stretch it was drawn with."""

    source: LayerSource
    image: np.ndarray  # (rows, cols, 3) uint8
    valid: np.ndarray  # (rows, cols) bool
    transform: object
    crs: object
    value_range: tuple[float, float] | None  # scalar layers: (low, high) of the colour ramp


def domain_label(domain: str) -> str:
    """Display name of a test/LR domain (simulated ones say so)."""
    return DOMAIN_LABELS.get(domain, domain)


def manifest_layers(manifest_path: str | Path, tile_id: str) -> list[LayerSource]:
    """HR and every domain's LR of ``tile_id`` (empty when the tile is not in the manifest)."""
    manifest_path = Path(manifest_path)
    rows = read_manifest(manifest_path)
    rows = rows[rows["tile_id"] == tile_id].sort_values("domain")
    if rows.empty:
        return []
    layers = []
    hr = rows[rows["hr_path"] != ""]
    if not hr.empty:
        layers.append(
            LayerSource("hr", "HR (reference)", "reflectance", resolve(manifest_path, hr.iloc[0]["hr_path"]))
        )
    for row in rows.itertuples(index=False):
        layers.append(
            LayerSource(
                f"lr|{row.domain}",
                f"LR: {domain_label(row.domain)}",
                "reflectance",
                resolve(manifest_path, row.lr_path),
            )
        )
    return layers


def hr_path_of(manifest_path: str | Path, tile_id: str) -> Path | None:
    """The HR file of ``tile_id`` in a manifest, or None."""
    rows = read_manifest(manifest_path)
    rows = rows[(rows["tile_id"] == tile_id) & (rows["hr_path"] != "")]
    return None if rows.empty else resolve(manifest_path, rows.iloc[0]["hr_path"])


def sibling_map(sr_relpath: str, kind: str) -> str | None:
    """The store path of another map of the same unit: ``.../sr_seed0/t.tif`` → ``.../<kind>_seed0/t.tif``.

    Follows :meth:`ResultsStore.map_relpath` as used by the evaluation runner (``<kind>_seed<k>``);
    None when ``sr_relpath`` does not have that layout.
    """
    parts = sr_relpath.split("/")
    if len(parts) < 3 or not parts[-2].startswith("sr"):
        return None
    return "/".join([*parts[:-2], kind + parts[-2][2:], parts[-1]])


def store_layers(
    rows: pd.DataFrame,
    resolve_path,
    hr_path: Path | None = None,
    *,
    labels: Mapping[str, str] | None = None,
) -> list[LayerSource]:
    """SR, uncertainty, error and LPIPS-Sat layers of one tile from results-store rows.

    ``rows``: the tile's rows (columns ``model``, ``test_domain``, ``metric``, ``sr_path``,
    ``uncertainty_path``, ``map_path``); ``resolve_path``: store-relative path → absolute path
    (``ResultsStore.resolve``). Files that do not exist are left out. ``hr_path``: the tile's HR, used
    to compute an error map when none was saved. ``labels``: how a model is named in the layers'
    labels (default: its name; keys always use the name).
    """
    layers: list[LayerSource] = []
    if rows.empty:
        return layers
    for (model, domain), part in rows.groupby(["model", "test_domain"], sort=True):
        sr_rel = next((p for p in part["sr_path"] if p), "")
        if not sr_rel:
            continue
        sr = resolve_path(sr_rel)
        if not sr.is_file():
            continue
        tag = f"{(labels or {}).get(model, model)} ← {domain_label(domain)}"
        key = f"{model}|{domain}"
        layers.append(LayerSource(f"sr|{key}", f"SR {tag}", "reflectance", sr))
        unc_rel = next((p for p in part["uncertainty_path"] if p), "")
        if unc_rel and resolve_path(unc_rel).is_file():
            layers.append(
                LayerSource(f"uncertainty|{key}", f"Uncertainty {tag}", "uncertainty", resolve_path(unc_rel))
            )
        error_rel = sibling_map(sr_rel, "abs_error")
        if error_rel and resolve_path(error_rel).is_file():
            layers.append(LayerSource(f"error|{key}", f"Error {tag}", "error", resolve_path(error_rel)))
        elif hr_path is not None and hr_path.is_file():
            layers.append(LayerSource(f"error|{key}", f"Error {tag}", "error", sr, reference=hr_path))
        lp_rows = part[(part["metric"] == "lpips_sat") & (part["map_path"] != "")]
        lp_rel = lp_rows["map_path"].iloc[0] if not lp_rows.empty else sibling_map(sr_rel, "lpips_sat")
        if lp_rel and resolve_path(lp_rel).is_file():
            layers.append(
                LayerSource(f"lpips_sat|{key}", f"LPIPS-Sat map {tag}", "lpips_sat", resolve_path(lp_rel))
            )
    return layers


def models_without_images(rows: pd.DataFrame) -> dict[str, tuple[str, ...]]:
    """Models with scores in a tile's results-store ``rows`` but no stored SR image (the experiment's
    ``save_outputs`` left them out), with the test domains they were scored on; by model name."""
    if rows.empty:
        return {}
    stored = rows.groupby("model")["sr_path"].agg(lambda paths: any(bool(p) for p in paths))
    return {
        str(model): tuple(sorted(set(rows.loc[rows["model"] == model, "test_domain"])))
        for model, has in stored.items()
        if not has
    }


def hr_mosaic(manifest_path: str | Path) -> GeoRaster:
    """The manifest's HR tiles merged into one raster (NaN / invalid where no tile lies)."""
    import rasterio
    from rasterio.merge import merge

    manifest_path = Path(manifest_path)
    table = read_manifest(manifest_path)
    paths = sorted({str(resolve(manifest_path, p)) for p in table["hr_path"] if p})
    if not paths:
        raise KeyError(f"{manifest_path} has no HR tiles")
    datasets = [rasterio.open(p) for p in paths]
    try:
        array, transform = merge(datasets, nodata=np.nan, dtype="float32")
        names = tuple(d or f"b{i}" for i, d in enumerate(datasets[0].descriptions, start=1))
        crs = datasets[0].crs
    finally:
        for ds in datasets:
            ds.close()
    valid = np.all(np.isfinite(array), axis=0)
    return GeoRaster(array=array, transform=transform, crs=crs, band_names=names, mask=valid)


def read_layer_raster(path: str | Path) -> GeoRaster:
    """A raster file as a GeoRaster (the scene or one layer)."""
    return _read(Path(path))


def _read(path: Path) -> GeoRaster:
    from mindgap_core.io import read_raster

    return read_raster(path)


def scalar_map(source: LayerSource) -> GeoRaster:
    """A one-band raster of a scalar layer (multi-band maps are averaged over bands)."""
    raster = _read(source.path)
    if source.kind == "error" and source.reference is not None:
        hr = _read(source.reference)
        diff = np.abs(raster.array.astype(np.float64) - hr.array.astype(np.float64))
        raster = raster.replace(array=diff, mask=raster.valid & hr.valid)
    values = np.asarray(raster.array, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(values, axis=0) if values.shape[0] > 1 else values[0]
    mean = np.where(raster.valid, mean, np.nan)
    return raster.replace(array=mean[None].astype(np.float32), band_names=(source.kind,))


def render_layers(sources: Sequence[LayerSource], rendering: str = "true_colour") -> list[RenderedLayer]:
    """Render every source with one shared stretch per kind (see the module docstring)."""
    reflectance = {s.key: _read(s.path) for s in sources if s.kind == "reflectance"}
    scalars = {s.key: scalar_map(s) for s in sources if s.kind != "reflectance"}
    limits = None
    if reflectance:
        ref = next((reflectance[s.key] for s in sources if s.key == "hr"), None) or next(
            iter(reflectance.values())
        )
        limits = stretch_limits(ref.array, ref.band_names, rendering, valid=ref.valid)
    ranges: dict[str, tuple[float, float]] = {}
    for kind in {s.kind for s in sources if s.kind != "reflectance"}:
        arrays = [scalars[s.key].array[0] for s in sources if s.kind == kind]
        low, high = robust_range(arrays)
        ranges[kind] = (0.0, high) if kind in ("error", "uncertainty") else (low, high)
        if ranges[kind][1] <= ranges[kind][0]:
            ranges[kind] = (ranges[kind][0], ranges[kind][0] + 1e-6)
    out = []
    for s in sources:
        if s.kind == "reflectance":
            raster = reflectance[s.key]
            image = render(raster.array, raster.band_names, rendering, limits, valid=raster.valid)
            out.append(RenderedLayer(s, image, raster.valid, raster.transform, raster.crs, None))
        else:
            raster = scalars[s.key]
            image, valid = colourise(raster.array[0], *ranges[s.kind], ramp=KINDS[s.kind][1])
            out.append(
                RenderedLayer(s, image, valid & raster.valid, raster.transform, raster.crs, ranges[s.kind])
            )
    return out


def model_of(layer: LayerSource) -> str | None:
    """The model (or ``job:<id>``) a layer belongs to; None for the tile's inputs (LR, HR)."""
    parts = layer.key.split("|")
    return parts[1] if len(parts) == 3 else None


def blank_uncertainty(layer: LayerSource) -> bool:
    """Whether ``layer`` is an uncertainty map that is zero everywhere: a deterministic model, or a
    single sample, whose std over samples says nothing (drawn, it is an all-black image)."""
    if layer.kind != "uncertainty":
        return False
    values = scalar_map(layer).array
    finite = values[np.isfinite(values)]
    return finite.size == 0 or not np.any(finite)


def keys(layers: Iterable[LayerSource]) -> list[str]:
    """The keys of ``layers``, in order."""
    return [layer.key for layer in layers]
