"""MindGap dashboard: ``streamlit run app.py``.

The pages, the menu and the router (page config, navigation, password gate, common sidebar, then the
chosen page) are defined once, in ``mindgap_ui/navigation.py``.
"""

from mindgap_ui.navigation import run_app

run_app()
