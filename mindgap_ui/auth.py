"""An optional password gate for a shared dashboard, remembered by a signed, expiring browser cookie.

Off by default. On when a password is configured: ``password = "..."`` in ``.streamlit/secrets.toml``
(``st.secrets["password"]``) or the environment variable ``MINDGAP_PASSWORD``. The router
(``mindgap_ui/navigation.py``) is the only caller: it resolves the requested page first, so a deep
link keeps its URL through the prompt.

Why a cookie and not a token in the URL: the dashboard's URLs are made to be copied to colleagues
(every view lives in the query string); a token there would travel with every shared link, into
browser history and proxy logs, and let whoever gets a link past the gate. The cookie stays in the
browser that typed the password, survives reloads and new tabs, and reaches the server with the
websocket request (``st.context.cookies``). It is written by a two-line script (``st.html``); the
session also keeps the token, so a browser that refuses cookies only loses the reload convenience.

Token: ``"<expiry, unix seconds>.<hex HMAC-SHA256(key, 'mindgap-auth:' + expiry)>"`` where
key = HMAC-SHA256(server secret, password). The password in the key logs everyone out when it
changes; the server secret (``st.secrets["auth_secret"]`` or ``$MINDGAP_AUTH_SECRET``; otherwise a
random one per server process, so a restart asks again) keeps a stolen token from being a test for
password guesses. Lifetime: ``$MINDGAP_AUTH_HOURS`` (default 12 h). Comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Mapping

import streamlit as st

PASSWORD_ENV = "MINDGAP_PASSWORD"
SECRET_ENV = "MINDGAP_AUTH_SECRET"
HOURS_ENV = "MINDGAP_AUTH_HOURS"
DEFAULT_HOURS = 12.0
COOKIE = "mindgap_auth"
_TOKEN_KEY = "_mindgap_auth_token"
_COOKIE_PENDING = "_mindgap_auth_cookie_pending"
_PROCESS_SECRET = secrets.token_bytes(32)
_TOKEN_FORM = re.compile(r"[0-9]{1,12}\.[0-9a-f]{64}")


def _secret(name: str) -> str | None:
    try:
        value = st.secrets.get(name)
    except (FileNotFoundError, KeyError, OSError):  # no secrets file (StreamlitSecretNotFoundError)
        value = None
    return str(value) if value else None


def configured_password() -> str | None:
    """The password from Streamlit secrets, else from ``$MINDGAP_PASSWORD``; None when neither is set."""
    password = _secret("password") or os.environ.get(PASSWORD_ENV, "")
    return str(password) if password else None


def password_matches(typed: str, expected: str) -> bool:
    """Constant-time comparison of two passwords."""
    return hmac.compare_digest(typed.encode("utf-8"), expected.encode("utf-8"))


def token_lifetime_s() -> float:
    """Seconds a token stays valid (``$MINDGAP_AUTH_HOURS``, default 12 h; a bad value means the default)."""
    try:
        hours = float(os.environ.get(HOURS_ENV, DEFAULT_HOURS))
    except ValueError:
        hours = DEFAULT_HOURS
    return 3600.0 * (hours if hours > 0 else DEFAULT_HOURS)


def signing_key(password: str, server_secret: bytes | None = None) -> bytes:
    """The key tokens are signed with: HMAC-SHA256(server secret, password)."""
    if server_secret is None:
        configured = _secret("auth_secret") or os.environ.get(SECRET_ENV, "")
        server_secret = configured.encode("utf-8") if configured else _PROCESS_SECRET
    return hmac.new(server_secret, password.encode("utf-8"), hashlib.sha256).digest()


def _signature(key: bytes, expires: int) -> str:
    return hmac.new(key, f"mindgap-auth:{expires}".encode(), hashlib.sha256).hexdigest()


def issue_token(key: bytes, *, now: float, lifetime_s: float) -> str:
    """A token valid until ``now + lifetime_s``."""
    expires = int(now + lifetime_s)
    return f"{expires}.{_signature(key, expires)}"


def token_valid(token: object, key: bytes, *, now: float) -> bool:
    """Whether ``token`` was signed with ``key`` and has not expired (any other input: False)."""
    if not isinstance(token, str) or not _TOKEN_FORM.fullmatch(token):
        return False
    expires, signature = token.split(".")
    return int(expires) > now and hmac.compare_digest(signature, _signature(key, int(expires)))


def cookie_token(cookies: Mapping[str, str]) -> str | None:
    """The token in the request's cookies, if any."""
    value = cookies.get(COOKIE)
    return value if isinstance(value, str) and value else None


def locked() -> bool:
    """Whether this session must type the password (False when none is configured, or when the session
    or the browser's cookie holds a valid token)."""
    expected = configured_password()
    if expected is None:
        return False
    key, now = signing_key(expected), time.time()
    if token_valid(st.session_state.get(_TOKEN_KEY), key, now=now):
        return False
    from_cookie = cookie_token(st.context.cookies)
    if token_valid(from_cookie, key, now=now):
        st.session_state[_TOKEN_KEY] = from_cookie
        return False
    return True


def password_prompt() -> None:
    """The password form; on the right password the session gets a token and the page reruns. Stops."""
    expected = configured_password()
    if expected is None:
        return
    st.title("MindGap")
    typed = st.text_input("Password", type="password", key="_mindgap_password",
                          help="This dashboard is password-protected by its host.")
    if typed and password_matches(typed, expected):
        st.session_state[_TOKEN_KEY] = issue_token(signing_key(expected), now=time.time(),
                                                   lifetime_s=token_lifetime_s())
        st.session_state[_COOKIE_PENDING] = True
        del st.session_state["_mindgap_password"]
        st.rerun()
    if typed:
        st.error("Wrong password.")
    st.stop()


def cookie_script(token: str, max_age_s: int) -> str:
    """The script that stores ``token`` in the browser (``Secure`` when served over HTTPS)."""
    if not _TOKEN_FORM.fullmatch(token):
        raise ValueError("not a token")  # nothing else is ever written into a script
    attributes = f"Max-Age={int(max_age_s)}; Path=/; SameSite=Strict"
    return (f'<script>document.cookie = "{COOKIE}={token}; {attributes}" + '
            '(location.protocol === "https:" ? "; Secure" : "");</script>')


def remember_in_browser() -> None:
    """Right after a successful login: write the session's token into the browser's cookie (once)."""
    if not st.session_state.pop(_COOKIE_PENDING, False):
        return
    token = st.session_state.get(_TOKEN_KEY)
    if isinstance(token, str):
        st.sidebar.html(cookie_script(token, int(token_lifetime_s())), unsafe_allow_javascript=True)
