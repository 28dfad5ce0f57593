"""On-demand inference: super-resolve demo tiles or an uploaded GeoTIFF with a chosen model, as a job in
the shared queue; watch progress, cancel, and see the scores."""

import streamlit as st

from mindgap_core.data.catalog import DOMAIN_LABELS
from mindgap_core.errors import MindGapError
from mindgap_core.inference.job_runner import MAX_UPLOAD_BYTES, MAX_UPLOAD_SIDE, InferenceSpec, validate_tiles
from mindgap_core.paths import DEMO_MANIFEST
from mindgap_ui import jobs as ui_jobs
from mindgap_ui import maps as ui_maps
from mindgap_ui import navigation
from mindgap_ui.widgets import simulated_banner

navigation.page_start()

st.title("On-demand inference")
simulated_banner()
manifest = str(DEMO_MANIFEST)
folder = ui_jobs.folder()
try:
    ui_jobs.queue(folder)
except MindGapError as exc:
    st.error(f"The job queue cannot be opened: {exc}. Set MINDGAP_JOBS_DIR to a writable folder.")
    st.stop()
st.caption(ui_jobs.worker_status(folder))

source = st.radio(
    "Input",
    ["tiles", "upload"],
    horizontal=True,
    key="inf_source",
    format_func={"tiles": "Demo tiles", "upload": "Upload a GeoTIFF"}.get,
)
tiles, _ = ui_maps.grid(manifest)
tile_ids = tiles["tile_id"].tolist()
if source == "tiles":
    preset = [t for t in st.query_params.get_all("tile") if t in tile_ids]
    chosen = st.multiselect(
        "Tiles",
        tile_ids,
        default=preset,
        key="inf_tiles",
        help="Tiles of the demo scene; a tile selected in the map explorer is preselected",
    )
    domains = ui_maps.lr_domains(manifest)
    domain = st.selectbox(
        "LR input",
        domains,
        key="inf_domain",
        format_func=lambda d: DOMAIN_LABELS.get(d, d),
        index=domains.index("simulated_cross_sensor") if "simulated_cross_sensor" in domains else 0,
    )
    upload = None
else:
    upload = st.file_uploader(
        "LR GeoTIFF (4 bands blue, green, red, NIR as surface reflectance 0–1, with a CRS)",
        type=["tif", "tiff"],
        key="inf_upload",
        help=f"At most {MAX_UPLOAD_BYTES // 2**20} MB and {MAX_UPLOAD_SIDE} × {MAX_UPLOAD_SIDE} pixels",
    )
choices = ui_jobs.model_choices(str(ui_jobs.MODELS_ROOT))
model = st.selectbox(
    "Model",
    choices,
    key="inf_model",
    format_func=lambda c: c.label,
    help="bicubic needs no weights; trained demo checkpoints appear here when installed",
)
col_samples, col_steps = st.columns(2)
samples = col_samples.number_input(
    "Samples",
    min_value=1,
    max_value=32,
    value=1,
    step=1,
    key="inf_samples",
    help="Diffusion samples per tile: their mean is the SR, their std the uncertainty",
)
steps = col_steps.number_input(
    "Sampling steps (0 = model default)", min_value=0, max_value=1000, value=0, step=1, key="inf_steps"
)

if st.button("Submit job", type="primary", key="inf_submit"):
    try:
        if source == "tiles":
            if not chosen:
                raise MindGapError("choose at least one tile")
            validate_tiles(manifest, domain, chosen)
            spec = InferenceSpec(
                model=model.model,
                model_label=model.label,
                tiles=tuple(chosen),
                manifest=manifest,
                domain=domain,
                samples=int(samples),
                steps=int(steps) or None,
            )
        else:
            if upload is None:
                raise MindGapError("choose a GeoTIFF to upload")
            info = ui_jobs.validate_upload(upload.name, upload.getvalue())
            spec = InferenceSpec(
                model=model.model,
                model_label=model.label,
                upload=str(info.path),
                upload_name=upload.name,
                samples=int(samples),
                steps=int(steps) or None,
            )
        job_id = ui_jobs.submit(spec)
    except MindGapError as exc:
        st.error(f"Not queued: {exc}")
    else:
        st.success(f"Job {job_id} queued.")

st.header("Jobs")
ui_jobs.jobs_panel(folder)

st.header("Results")
ui_jobs.outputs_panel(folder)
results = ui_jobs.results_frame(folder)
if results.empty:
    st.caption(
        "Finished jobs' scores appear here (PSNR, SSIM, SAM; LPIPS-Sat when its backbone is installed)."
    )
else:
    st.table(results.set_index("job"))
    ui_jobs.map_links(folder)
    st.caption(
        "Finished tile jobs also appear in the map explorer as models named job:<id>. Inputs on the "
        "simulated cross-sensor domain are simulated."
    )
