"""MindGap dashboard router: ``streamlit run app.py``."""

import streamlit as st

st.set_page_config(page_title="MindGap", page_icon="🛰️", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Demo data", icon="🗺️", url_path="home", default=True),
]

st.navigation(PAGES).run()
