"""The map explorer's loaders and widgets: cached rasters/overlays, tile values from the results store
and from the jobs folder (a results store of the same schema, one run per finished on-demand job), and
the scene map / split map / small multiples panels. Both are read by the same functions.

View state lives in the URL: ``tile`` (the selected tile) and this module's own ``map_model``,
``map_colour``, ``map_domain``, ``map_left``, ``map_right``, ``map_render``.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from mindgap_core.data import catalog
from mindgap_core.data.manifest import read_manifest
from mindgap_core.inference.job_runner import WEIGHTLESS_MODELS, InferenceSpec, job_run_id, spec_of
from mindgap_core.metrics.registry import METRICS
from mindgap_core.store import views
from mindgap_core.store.results import ResultsStore
from mindgap_core.viz import layers as lyr
from mindgap_core.viz import maps as vmaps
from mindgap_core.viz.overlays import ImageLayer, image_layer, ramp_css
from mindgap_ui import jobs as ui_jobs
from mindgap_ui import navigation
from mindgap_ui.jobs import MODELS_ROOT
from mindgap_ui.jobs import queue as jobs_queue
from mindgap_ui.state import ViewState

RENDERINGS = {"true_colour": "True colour (R, G, B)", "false_colour_nir": "False colour (NIR, R, G)"}
JOB_PREFIX = "job:"
NONE = "(none)"
SCENE_NAME = "HR scene (5 m)"


# --- cached loaders -------------------------------------------------------------------------------
@st.cache_data(show_spinner=False)
def grid(manifest: str) -> tuple[pd.DataFrame, str]:
    """The tile grid of a manifest and its CRS."""
    table = read_manifest(manifest)
    return catalog.tile_grid(table), str(table["crs"].iloc[0])


@st.cache_data(show_spinner=False)
def lr_domains(manifest: str) -> list[str]:
    """The LR domains of a manifest."""
    return sorted(set(read_manifest(manifest)["domain"]))


@st.cache_data(show_spinner="Rendering the scene…")
def scene_layer(manifest: str, rendering: str) -> ImageLayer:
    """The HR scene as an overlay: ``scene/hr_reflectance_5m.tif`` beside the manifest, else a mosaic of
    its HR tiles (2–98 % stretch of the whole scene)."""
    from mindgap_core.viz.render import render

    scene = Path(manifest).parent / "scene" / "hr_reflectance_5m.tif"
    raster = lyr.read_layer_raster(scene) if scene.is_file() else lyr.hr_mosaic(manifest)
    image = render(raster.array, raster.band_names, rendering, valid=raster.valid)
    label = f"{SCENE_NAME}, {RENDERINGS[rendering].split(' (')[0].lower()}"
    return image_layer(
        label, image, raster.transform, raster.crs, raster.valid, min_side=256, max_side=768, fmt="webp"
    )


def _store(root: Path | None) -> ResultsStore | None:
    return ResultsStore(root) if root is not None and (root / "shards").is_dir() else None


@st.cache_data(show_spinner=False)
def store_models(root: str, fingerprint: str, filters: tuple[tuple[str, str], ...]) -> list[str]:
    """Models with results in the store matching ``filters``."""
    with views.connected(root) as con:
        return views.distinct_values(con, "model", dict(filters))


@st.cache_data(show_spinner=False)
def store_domains(root: str, fingerprint: str, filters: tuple[tuple[str, str], ...]) -> list[str]:
    """Test domains with results matching ``filters``."""
    con = ResultsStore(root).connect()
    try:
        return views.domains_present(con, dict(filters))
    finally:
        con.close()


@st.cache_data(show_spinner=False)
def tile_metric(
    root: str, fingerprint: str, filters: tuple[tuple[str, str], ...]
) -> tuple[dict[str, float], bool]:
    """Per-tile mean value under ``filters`` (run, model, metric, band, aggregate, domain); higher_better."""
    con = ResultsStore(root).connect()
    try:
        frame = views.tile_means(con, keys=["metric"], filters=dict(filters))
    finally:
        con.close()
    higher = bool(frame["higher_better"].iloc[0]) if not frame.empty else True
    return dict(zip(frame["tile_id"], frame["value"].astype(float), strict=True)), higher


@st.cache_data(show_spinner=False)
def tile_gap(
    root: str, fingerprint: str, filters: tuple[tuple[str, str], ...], source: str, target: str
) -> dict[str, float]:
    """Per-tile paired gap (target vs source; negative = worse on the target domain)."""
    con = ResultsStore(root).connect()
    try:
        frame = views.paired_tiles(
            con, source_domain=source, target_domain=target, group=("model", "metric"), filters=dict(filters)
        )
    finally:
        con.close()
    sign = frame["higher_better"].map(lambda hb: 1.0 if hb else -1.0)
    return dict(
        zip(frame["tile_id"], ((frame["target"] - frame["source"]) * sign).astype(float), strict=True)
    )


#: the columns of a tile's rows the map explorer uses
_TILE_COLUMNS = [
    "model",
    "test_domain",
    "metric",
    "band",
    "aggregate",
    "value",
    "sr_path",
    "uncertainty_path",
    "map_path",
]


@st.cache_data(show_spinner=False)
def tile_store_rows(root: str, fingerprint: str, run_id: str | None, tile_id: str) -> pd.DataFrame:
    """The store rows of one tile (all models, domains, metrics) of a run."""
    filters = {"tile_id": tile_id, **({"run_id": run_id} if run_id else {})}
    return ResultsStore(root).rows(filters, columns=_TILE_COLUMNS)


def job_rows(folder: str, fingerprint: str) -> pd.DataFrame:
    """The results rows of every done on-demand job (the jobs folder is their results store), with the
    job as the pseudo-model (``model`` = ``job:<id>``) and its display name in ``label``; empty without a
    finished job (``fingerprint`` "" means there is no job database)."""
    if not fingerprint:
        return pd.DataFrame()
    return _job_rows(folder, fingerprint)


@st.cache_data(show_spinner=False, ttl=60)
def _job_rows(folder: str, fingerprint: str) -> pd.DataFrame:
    done = {job_run_id(j.id): j for j in jobs_queue(folder).jobs(["done"])}
    if not done:
        return pd.DataFrame()
    rows = ResultsStore(folder).rows({"run_id": list(done)}, columns=["run_id", "tile_id", *_TILE_COLUMNS])
    names = {run: f"{JOB_PREFIX}{job.id}" for run, job in done.items()}
    labels = {run: f"{JOB_PREFIX}{job.id} ({spec_of(job).label})" for run, job in done.items()}
    return rows.assign(model=rows["run_id"].map(names), label=rows["run_id"].map(labels))


@st.cache_data(show_spinner="Rendering layers…")
def rendered(sources: tuple[lyr.LayerSource, ...], rendering: str) -> list[lyr.RenderedLayer]:
    """Every layer of a tile rendered with the shared stretches."""
    return lyr.render_layers(sources, rendering)


@st.cache_data(show_spinner=False)
def overlay(source: lyr.LayerSource, rendering: str, sources: tuple[lyr.LayerSource, ...]) -> ImageLayer:
    """One rendered layer as a map overlay (stretch shared with ``sources``)."""
    for layer in rendered(sources, rendering):
        if layer.source == source:
            return image_layer(source.label, layer.image, layer.transform, layer.crs, layer.valid)
    raise KeyError(source.key)


@st.cache_data(show_spinner=False)
def blank_uncertainty(source: lyr.LayerSource) -> bool:
    """:func:`mindgap_core.viz.layers.blank_uncertainty`, cached."""
    return lyr.blank_uncertainty(source)


# --- what a tile shows ----------------------------------------------------------------------------
def tile_layers(
    manifest: str, view: ViewState | None, tile_id: str, jobs_folder: str, jobs_fingerprint: str
) -> list[lyr.LayerSource]:
    """LR (each domain) and HR; SR, uncertainty, error, LPIPS-Sat per store model; the same per done job."""
    layers = lyr.manifest_layers(manifest, tile_id)
    hr = lyr.hr_path_of(manifest, tile_id)
    store = _store(view.results_root if view is not None else None)
    if store is not None:
        rows = tile_store_rows(str(store.root), store.fingerprint(), view.run_id, tile_id)
        layers += lyr.store_layers(rows, store.resolve, hr)
    jobs = job_rows(jobs_folder, jobs_fingerprint)
    if not jobs.empty:
        mine = jobs[jobs["tile_id"] == tile_id]
        labels = dict(zip(mine["model"], mine["label"], strict=True))
        layers += lyr.store_layers(mine, ResultsStore(jobs_folder).resolve, hr, labels=labels)
    return layers


def runnable_model(model: str) -> str | None:
    """What an on-demand job runs for store model ``model`` (``<method>/<regime>``): ``bicubic``, or its
    saved folder under the demo models (``data/demo/models/<method>/<regime>/``); None when there is none
    (e.g. an adapter pipeline)."""
    if model in WEIGHTLESS_MODELS:
        return model
    root = MODELS_ROOT.resolve()
    folder = (root / model).resolve()
    if folder.is_relative_to(root) and (folder / "model_index.json").is_file():
        return str(folder)
    return None


def missing_images_panel(manifest: str, view: ViewState | None, tile_id: str) -> None:
    """Says which store models have scores but no stored images for the tile (the chosen grid model
    first, so the split is not taken for its images), and offers to compute them as an on-demand job."""
    store = _store(view.results_root if view is not None else None)
    if store is None:
        return
    missing = lyr.models_without_images(tile_store_rows(str(store.root), store.fingerprint(), view.run_id,
                                                        tile_id))
    if not missing:
        return
    chosen = st.query_params.get("map_model")
    if chosen in missing:
        st.info(f"**{html.escape(chosen)}** has no stored images for tile {tile_id} (its experiment's "
                "save_outputs did not include it): the split and the rasters below show other models.",
                icon=":material/image_not_supported:")
    st.caption(f"No stored images for tile {tile_id}: {html.escape(', '.join(missing))}.")
    runnable = [m for m in missing if runnable_model(m) is not None]
    if not runnable:
        return
    domains = lr_domains(manifest)
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    model = left.selectbox("Compute the images of", runnable, key="map_compute_model",
                           index=runnable.index(chosen) if chosen in runnable else 0,
                           help="As an on-demand inference job on this tile (the shared queue)")
    scored = [d for d in missing[model] if d in domains]
    preferred = view.target_domain if view is not None else None
    domain = preferred if preferred in scored else (scored[0] if scored else domains[0])
    if right.button("Submit an inference job", key="map_compute", icon=":material/play_arrow:"):
        spec = InferenceSpec(model=runnable_model(model), model_label=model, tiles=(tile_id,),
                             manifest=manifest, domain=domain)
        job_id = ui_jobs.submit(spec)
        st.success(f"Job {job_id} queued: {model} on tile {tile_id} ({lyr.domain_label(domain)}). Its "
                   f"images appear here as job:{job_id} when it is done.")
        navigation.page_link("inference", label="Follow it on the On-demand inference page")


# --- grid colouring -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Colouring:
    """How the tile grid is coloured."""

    values: dict[str, float]
    label: str
    unit: str
    ramp: str
    vmin: float
    vmax: float
    note: str


def _query_choice(key: str, options: list[str], default: str | None = None) -> int:
    wanted = st.query_params.get(key, default)
    return options.index(wanted) if wanted in options else 0


def _choice(
    label: str,
    options: list[str],
    key: str,
    *,
    container=st,
    format_func=str,
    help=None,
    default: str | None = None,
    horizontal: bool = False,
    radio: bool = False,
) -> str:
    """A selectbox/radio whose value starts from and returns to ``st.query_params[key]``."""
    index = _query_choice(key, options, default)
    widget = container.radio if radio else container.selectbox
    kwargs = {"horizontal": horizontal} if radio else {}
    value = widget(label, options, index=index, key=f"w_{key}", format_func=format_func, help=help, **kwargs)
    st.query_params[key] = value
    return value


def colour_controls(view: ViewState | None, jobs_folder: str, jobs_fingerprint: str) -> Colouring:
    """Widgets choosing the model (a store model or a done job) and metric/gap that colour the grid;
    returns the values."""
    store = _store(view.results_root if view is not None else None)
    filters = tuple(sorted(view.filters().items())) if view is not None else ()
    score_filters = view.score_filters() if view is not None else {}
    fingerprint = store.fingerprint() if store is not None else ""
    models = store_models(str(store.root), fingerprint, filters) if store is not None else []
    jobs = job_rows(jobs_folder, jobs_fingerprint)
    job_labels = dict(zip(jobs["model"], jobs["label"], strict=True)) if not jobs.empty else {}
    job_models = sorted(job_labels, key=lambda m: int(m[len(JOB_PREFIX) :]))
    choices = models + job_models
    metric = view.metric if view is not None and view.metric else "psnr"
    spec = METRICS.get(metric)
    unit = spec.unit if spec is not None else ""
    cols = st.columns([2, 2, 2])
    if not choices:
        st.caption("No results to colour the grid with: no results store and no finished job yet.")
        return Colouring({}, metric, unit, "viridis", 0.0, 1.0, "")
    labels = {m: m for m in models} | job_labels
    model = _choice(
        "Model",
        choices,
        "map_model",
        container=cols[0],
        format_func=labels.get,
        help="Store models (filtered by the sidebar) and finished on-demand jobs (job:<id>)",
    )
    if model.startswith(JOB_PREFIX):
        job_id = int(model[len(JOB_PREFIX) :])
        part = jobs[jobs["model"] == model]
        domain = str(part["test_domain"].iloc[0]) if not part.empty else ""
        cols[1].markdown(f"**Colour by** {html.escape(metric)} on {html.escape(lyr.domain_label(domain))}")
        filters = {"run_id": job_run_id(job_id), "metric": metric, "band": "all", "aggregate": "mean"}
        values, higher = tile_metric(jobs_folder, jobs_fingerprint, tuple(sorted(filters.items())))
        return _metric_colouring(values, metric, unit, higher, f"job {job_id}")
    model_filters = tuple(sorted({**score_filters, "model": model, "metric": metric}.items()))
    domains = store_domains(str(store.root), fingerprint, model_filters)
    modes = ["metric"] + (
        ["gap"]
        if view.target_domain and view.source_domain in domains and view.target_domain in domains
        else []
    )
    mode = _choice(
        "Colour by",
        modes,
        "map_colour",
        container=cols[1],
        radio=True,
        horizontal=True,
        format_func={"metric": "metric", "gap": "gap (compared − synthetic)"}.get,
    )
    if mode == "gap":
        values = tile_gap(str(store.root), fingerprint, model_filters, view.source_domain, view.target_domain)
        bound = max((abs(v) for v in values.values() if math.isfinite(v)), default=1.0) or 1.0
        note = (
            f"Gap of {metric} per tile: {lyr.domain_label(view.target_domain)} vs "
            f"{lyr.domain_label(view.source_domain)}, signed so that negative (red) = worse on the compared "
            "domain."
        )
        return Colouring(values, f"gap in {metric}", unit, "rdbu", -bound, bound, note)
    domain = _choice("Test domain", domains, "map_domain", container=cols[2], format_func=lyr.domain_label)
    values, higher = tile_metric(
        str(store.root), fingerprint, tuple(sorted({**dict(model_filters), "test_domain": domain}.items()))
    )
    return _metric_colouring(values, metric, unit, higher, f"{model} on {lyr.domain_label(domain)}")


def _metric_colouring(values: dict[str, float], metric: str, unit: str, higher: bool, what: str) -> Colouring:
    finite = [v for v in values.values() if math.isfinite(v)]
    vmin, vmax = (min(finite), max(finite)) if finite else (0.0, 1.0)
    direction = "higher is better" if higher else "lower is better"
    return Colouring(values, metric, unit, "viridis", vmin, vmax, f"{metric} per tile, {what} ({direction}).")


def legend(colouring: Colouring) -> None:
    """A colour bar drawn outside the map (a legend on the map would load d3 from a CDN)."""
    if not colouring.values:
        return
    unit = f" {colouring.unit}" if colouring.unit else ""
    st.markdown(
        f"<div style='display:flex;align-items:center;gap:8px;font-size:0.85rem'>"
        f"<span>{colouring.vmin:.4g}{html.escape(unit)}</span>"
        f"<div style='flex:0 0 240px;height:12px;background:{ramp_css(colouring.ramp)};"
        f"border:1px solid #999'></div><span>{colouring.vmax:.4g}{html.escape(unit)}</span>"
        f"<span style='color:#666'>{html.escape(colouring.label)} · grey: no result</span></div>",
        unsafe_allow_html=True,
    )
    st.caption(colouring.note)


# --- panels ---------------------------------------------------------------------------------------
def rendering_choice() -> str:
    """True or false colour (the same stretch rule for both)."""
    return _choice(
        "Rendering",
        list(RENDERINGS),
        "map_render",
        radio=True,
        horizontal=True,
        format_func=RENDERINGS.get,
        help="Per band, the 2nd–98th percentile maps to black–white (HR reference's for a tile's "
        "layers, so all are comparable)",
    )


def scene_panel(manifest: str, colouring: Colouring, rendering: str, tile: str | None) -> str | None:
    """The scene map with the clickable grid; returns a newly clicked tile id (or None)."""
    tiles, crs = grid(manifest)
    geojson = vmaps.grid_geojson(
        tiles,
        crs,
        colouring.values,
        vmin=colouring.vmin,
        vmax=colouring.vmax,
        ramp=colouring.ramp,
        value_name=colouring.label,
        unit=colouring.unit,
        selected=tile,
    )
    m = vmaps.scene_map(scene_layer(manifest, rendering), geojson)
    out = st_folium(
        m,
        key="scene_map",
        height=460,
        use_container_width=True,
        returned_objects=["last_active_drawing", "last_object_clicked_tooltip", "last_object_clicked"],
    )
    drawing = (out or {}).get("last_active_drawing") or {}
    clicked = (drawing.get("properties") or {}).get("id")
    where = (out or {}).get("last_object_clicked") or {}
    signature = (clicked, where.get("lat"), where.get("lng"))
    if clicked and signature != st.session_state.get("_map_last_click"):
        st.session_state["_map_last_click"] = signature
        return str(clicked)
    return None


def tile_picker(manifest: str, tile: str | None) -> str | None:
    """A tile selectbox bound to ``st.query_params["tile"]``."""
    tiles, _ = grid(manifest)
    options = [NONE, *tiles["tile_id"].tolist()]

    def picked() -> None:
        value = st.session_state["w_tile"]
        if value == NONE:
            st.query_params.pop("tile", None)
        else:
            st.query_params["tile"] = value

    if st.session_state.get("w_tile") != (tile or NONE):
        st.session_state["w_tile"] = tile or NONE
    value = st.selectbox(
        "Selected tile", options, key="w_tile", on_change=picked, help="Or click a tile on the map"
    )
    return None if value == NONE else value


def _default_pair(layers: list[lyr.LayerSource]) -> tuple[str, str]:
    keys = [layer.key for layer in layers]
    left = (
        next((k for k in keys if k.startswith("sr|")), None)
        or next((k for k in keys if k.startswith("lr|simulated")), None)
        or keys[0]
    )
    right = "hr" if "hr" in keys else keys[-1]
    return left, right


def split_panel(manifest: str, tile: str, layers: list[lyr.LayerSource], rendering: str) -> None:
    """Swipe comparison of any two layers of the tile."""
    by_key = {layer.key: layer for layer in layers}
    keys = list(by_key)
    default_left, default_right = _default_pair(layers)
    left_col, right_col = st.columns(2)
    label = lambda k: by_key[k].label  # noqa: E731
    left = _choice(
        "Left of the divider", keys, "map_left", container=left_col, format_func=label, default=default_left
    )
    right = _choice(
        "Right of the divider",
        keys,
        "map_right",
        container=right_col,
        format_func=label,
        default=default_right,
    )
    sources = tuple(layers)
    outline_rows, crs = grid(manifest)
    outline = vmaps.grid_geojson(outline_rows[outline_rows["tile_id"] == tile], crs)
    m = vmaps.split_map(
        overlay(by_key[left], rendering, sources), overlay(by_key[right], rendering, sources), outline=outline
    )
    st_folium(m, key="split_map", height=440, use_container_width=True, returned_objects=[])
    st.caption(
        "Drag the divider to compare. Reflectance layers share the HR tile's 2–98 % stretch; maps of one "
        "kind share one colour range (see below)."
    )


def small_multiples(layers: list[lyr.LayerSource], rendering: str, per_row: int = 4) -> None:
    """Every layer of the tile side by side, drawn with the shared stretches."""
    drawn = rendered(tuple(layers), rendering)
    for start in range(0, len(drawn), per_row):
        columns = st.columns(per_row)
        for column, layer in zip(columns, drawn[start : start + per_row], strict=False):
            caption = layer.source.label
            if layer.value_range is not None:
                caption += f" [{layer.value_range[0]:.3g} – {layer.value_range[1]:.3g}]"
            column.image(layer.image, caption=caption, width="stretch", output_format="PNG")
    ranges = {}
    for layer in drawn:
        if layer.value_range is not None:
            ranges[layer.source.kind] = layer.value_range
    for kind, (low, high) in ranges.items():
        group, ramp = lyr.KINDS[kind]
        st.markdown(
            f"<div style='display:flex;align-items:center;gap:8px;font-size:0.8rem'>"
            f"<span>{html.escape(group)}: {low:.3g}</span><div style='flex:0 0 180px;height:10px;"
            f"background:{ramp_css(ramp)};border:1px solid #999'></div><span>{high:.3g}</span></div>",
            unsafe_allow_html=True,
        )


def _score_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean score (band ``all``) per model and test domain, one column per metric."""
    rows = rows[(rows["band"] == "all") & (rows["aggregate"] == "mean")]
    if rows.empty:
        return rows
    return rows.pivot_table(
        index=["model", "test_domain"], columns="metric", values="value", aggfunc="mean"
    ).reset_index()


def tile_scores(view: ViewState | None, tile: str, jobs_folder: str, jobs_fingerprint: str) -> pd.DataFrame:
    """Scores of the tile (band ``all``): store models per domain, and finished jobs."""
    frames = []
    store = _store(view.results_root if view is not None else None)
    if store is not None:
        frames.append(_score_table(tile_store_rows(str(store.root), store.fingerprint(), view.run_id, tile)))
    jobs = job_rows(jobs_folder, jobs_fingerprint)
    if not jobs.empty:
        mine = jobs[jobs["tile_id"] == tile]
        frames.append(_score_table(mine.assign(model=mine["label"]).drop(columns=["label"])))
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
