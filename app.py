"""MindGap dashboard router: ``streamlit run app.py``.

Order of a run: page config, the optional password gate, the navigation, the common sidebar (for
the analysis pages; its choices live in the URL), then the chosen page.
"""

import streamlit as st

from mindgap_ui import state
from mindgap_ui.auth import require_password

st.set_page_config(page_title="MindGap", page_icon="🛰️", layout="wide")
require_password()

# URL paths are the file stems, as Streamlit names them while it treats pages/ as a v1 multipage folder
# (the first run of a fresh server): a deep link then means the same page either way. In that mode a
# page runs without this router, so every page calls require_password() itself too.
#: url path -> page of the analysis pages that share the results sidebar
ANALYSIS_PAGES = {
    "overview": st.Page("pages/overview.py", title="Overview", icon="📊", url_path="overview"),
    "distributions": st.Page("pages/distributions.py", title="Distributions", icon="📈",
                             url_path="distributions"),
    "lpips_sat": st.Page("pages/lpips_sat.py", title="LPIPS-Sat heatmaps", icon="🔥", url_path="lpips_sat"),
    "scaling": st.Page("pages/scaling.py", title="Scaling & training", icon="📉", url_path="scaling"),
    "attribution": st.Page("pages/attribution.py", title="Attribution & remedies", icon="🧩",
                           url_path="attribution"),
}
PAGES = {
    "MindGap": [st.Page("pages/home.py", title="Demo data", icon="🗺️", url_path="home", default=True)],
    "Results": list(ANALYSIS_PAGES.values()),
    "Maps & inference": [
        st.Page("pages/map_explorer.py", title="Map explorer", icon="🛰️", url_path="map_explorer"),
        st.Page("pages/inference.py", title="On-demand inference", icon="⚙️", url_path="inference"),
    ],
}

page = st.navigation(PAGES)
if page.url_path in ANALYSIS_PAGES:
    state.set_current_view(state.sidebar())
page.run()
