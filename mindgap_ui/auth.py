"""An optional password gate for a shared dashboard.

Off by default. On when a password is configured: ``password = "..."`` in ``.streamlit/secrets.toml``
(``st.secrets["password"]``) or the environment variable ``MINDGAP_PASSWORD``. The typed password is
compared in constant time (``hmac.compare_digest``); success is remembered for the browser session
(as a digest of the configured password, so changing the password logs everyone out).
"""

from __future__ import annotations

import hashlib
import hmac
import os

import streamlit as st

PASSWORD_ENV = "MINDGAP_PASSWORD"
_AUTH_KEY = "_mindgap_auth"


def configured_password() -> str | None:
    """The password from Streamlit secrets, else from ``$MINDGAP_PASSWORD``; None when neither is set."""
    try:
        secret = st.secrets.get("password")
    except (FileNotFoundError, KeyError, OSError):  # no secrets file (StreamlitSecretNotFoundError)
        secret = None
    password = secret or os.environ.get(PASSWORD_ENV, "")
    return str(password) if password else None


def _digest(password: str) -> str:
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def password_matches(typed: str, expected: str) -> bool:
    """Constant-time comparison of two passwords."""
    return hmac.compare_digest(typed.encode("utf-8"), expected.encode("utf-8"))


def require_password() -> None:
    """Stop the script with a password prompt until the configured password is typed (no-op when none)."""
    expected = configured_password()
    if expected is None:
        return
    if hmac.compare_digest(st.session_state.get(_AUTH_KEY, ""), _digest(expected)):
        return
    st.title("MindGap")
    typed = st.text_input("Password", type="password", key="_mindgap_password",
                          help="This dashboard is password-protected by its host.")
    if typed and password_matches(typed, expected):
        st.session_state[_AUTH_KEY] = _digest(expected)
        del st.session_state["_mindgap_password"]
        st.rerun()
    if typed:
        st.error("Wrong password.")
    st.stop()
