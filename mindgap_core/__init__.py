"""MindGap core: data I/O, pairing, degradations, models, inference, metrics, gap statistics.

This package never imports streamlit; the dashboard lives in ``mindgap_ui`` and ``pages``.
"""

__version__ = "0.1.0"
