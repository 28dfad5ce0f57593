"""Map explorer: the scene, its tile grid coloured by a score or gap, and a swipe comparison of any two
rasters of the selected tile (LR, SR per model or job, HR, error, uncertainty, LPIPS-Sat)."""

import streamlit as st

from mindgap_core.paths import DEMO_MANIFEST
from mindgap_core.viz import layers as lyr
from mindgap_ui import jobs as ui_jobs
from mindgap_ui import maps as ui_maps
from mindgap_ui import navigation, state
from mindgap_ui.state import sidebar
from mindgap_ui.widgets import simulated_banner

navigation.page_start()

st.title("Map explorer")
view = sidebar()
simulated_banner()
manifest = str(DEMO_MANIFEST)
jobs_folder = ui_jobs.folder()
jobs_fp = ui_jobs.fingerprint(jobs_folder)

st.markdown(
    "The 5 m HR scene (real image, **simulated** reflectance calibration) and its tile grid. Click a tile "
    "(or pick it below) to compare its rasters. No web basemap is loaded unless you tick one in the layer "
    "control (top right of the map); everything else is served by this dashboard."
)
colouring = ui_maps.colour_controls(view, jobs_folder, jobs_fp)
rendering = ui_maps.rendering_choice()
tiles, _ = ui_maps.grid(manifest)
tile = st.query_params.get("tile")
tile = tile if tile in set(tiles["tile_id"]) else None
clicked = ui_maps.scene_panel(manifest, colouring, rendering, tile)
if clicked is not None and clicked != tile:
    st.query_params["tile"] = clicked
    st.rerun()
ui_maps.legend(colouring)
tile = ui_maps.tile_picker(manifest, tile)

if tile is None:
    st.info("Select a tile to compare its LR, SR, HR, error and uncertainty rasters.")
else:
    st.header(f"Tile {tile}")
    navigation.page_link("inference", label=f"Run on-demand inference on tile {tile}",
                         query_params={"tile": tile})
    layers = ui_maps.tile_layers(manifest, view, tile, jobs_folder, jobs_fp)
    ui_maps.missing_images_panel(manifest, view, tile)
    ui_maps.split_panel(manifest, tile, layers, rendering)
    st.subheader("Rasters of the tile (one shared stretch per kind)")
    shown = [layer for layer in layers if not ui_maps.blank_uncertainty(layer)]
    models = list(dict.fromkeys(m for m in map(lyr.model_of, shown) if m is not None))
    model = state.page_choice("Rasters of", models, "tile_model")
    ui_maps.small_multiples([layer for layer in shown if lyr.model_of(layer) in (None, model)], rendering,
                            per_row=6)
    if len(shown) < len(layers):
        st.caption(f"{len(layers) - len(shown)} uncertainty maps left out: zero everywhere (a deterministic "
                   "model, or a single sample).")
    scores = ui_maps.tile_scores(view, tile, jobs_folder, jobs_fp)
    if not scores.empty:
        st.subheader("Scores of the tile (band: all)")
        st.dataframe(scores, hide_index=True, width="stretch")
