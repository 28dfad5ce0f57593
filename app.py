"""MindGap dashboard: ``streamlit run app.py``.

The pages, the menu and the router (page config, navigation, password gate, common sidebar, then the
chosen page) are defined once, in ``mindgap_ui/navigation.py``.

``streamlit run`` finds ``app`` below (an ``st.App``, Streamlit's ASGI application) and serves it; its
lifespan runs once when the server starts, before any visitor: it resumes the job queue left by a
previous server (``mindgap_ui/server.py``). Every session then runs this file as ``__main__``: the
router.
"""

import streamlit as st

if __name__ == "__main__":  # a session's run
    from mindgap_ui.navigation import run_app

    run_app()
else:  # `streamlit run app.py` imports this file to find the server application
    from mindgap_ui.server import lifespan

    app = st.App(__file__, lifespan=lifespan)
