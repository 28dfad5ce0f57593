"""The optional password gate of the dashboard (env var or Streamlit secrets) and its signed, expiring
token (mindgap_ui/auth.py). The browser side (cookie, reload, deep link) is in
tests/e2e/test_browser_navigation.py."""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from mindgap_ui.auth import (
    COOKIE,
    HOURS_ENV,
    PASSWORD_ENV,
    SECRET_ENV,
    configured_password,
    cookie_script,
    cookie_token,
    issue_token,
    password_matches,
    signing_key,
    token_lifetime_s,
    token_valid,
)
from tests.app.conftest import APP, page_file


def _content_shown(at: AppTest) -> bool:
    return any("MindGap:" in t.value for t in at.title)


def _cookie_scripts(at: AppTest) -> list[str]:
    return [h.proto.body for h in at.get("html") if f"{COOKIE}=" in h.proto.body]


def test_no_password_configured_means_no_gate(monkeypatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert _content_shown(at)
    assert not [t for t in at.text_input if t.label == "Password"]
    assert not _cookie_scripts(at)


def test_env_password_gates_the_deep_link_and_lands_on_it(monkeypatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "s3cret-π")
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["metric"] = "ssim"
    at.switch_page(page_file("overview"))
    at.run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Password"]
    assert not _content_shown(at) and not at.get("plotly_chart") and not at.sidebar.selectbox
    at.text_input[0].input("wrong").run()
    assert [e.value for e in at.error] == ["Wrong password."]
    assert not at.sidebar.selectbox and not _cookie_scripts(at)
    at.text_input[0].input("s3cret-π").run()
    assert not at.exception
    assert not [t for t in at.text_input if t.label == "Password"]
    assert [t.value for t in at.title] == ["Overview: the domain gap"]  # the requested page, its view
    assert at.query_params["metric"] == "ssim"
    assert at.sidebar.selectbox(key="sidebar_metric").value == "ssim"
    scripts = _cookie_scripts(at)  # the token goes to the browser once, right after the login
    assert len(scripts) == 1
    token = re.search(rf"{COOKIE}=([0-9a-f.]+);", scripts[0]).group(1)
    assert token_valid(token, signing_key("s3cret-π"), now=0)
    at.switch_page(page_file("home")).run()  # remembered for the session
    assert _content_shown(at) and not _cookie_scripts(at)


def test_secrets_password_is_used(monkeypatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["password"] = "from-secrets"
    at.run()
    assert [t.label for t in at.text_input] == ["Password"]
    at.text_input[0].input("from-secrets").run()
    assert _content_shown(at)


def test_password_helpers(monkeypatch) -> None:
    assert password_matches("abc", "abc") and not password_matches("abc", "abd")
    assert not password_matches("", "abc")
    monkeypatch.setenv(PASSWORD_ENV, "x")
    assert configured_password() == "x"
    monkeypatch.setenv(PASSWORD_ENV, "")
    assert configured_password() is None


def test_token_is_signed_and_expires() -> None:
    key = signing_key("pw", b"server secret")
    token = issue_token(key, now=1_000_000.0, lifetime_s=3600)
    assert token_valid(token, key, now=1_000_000.0)
    assert token_valid(token, key, now=1_003_599.0)
    assert not token_valid(token, key, now=1_003_600.0)  # expired
    assert not token_valid(token, signing_key("other", b"server secret"), now=1_000_000.0)  # password changed
    assert not token_valid(token, signing_key("pw", b"another server"), now=1_000_000.0)
    expires, signature = token.split(".")
    later = f"{int(expires) + 86400}.{signature}"  # a client extending its own token
    assert not token_valid(later, key, now=1_000_000.0)
    flipped = f"{expires}.{signature[:-1]}{'0' if signature[-1] != '0' else '1'}"
    assert not token_valid(flipped, key, now=1_000_000.0)


@pytest.mark.parametrize("junk", [None, "", "abc", "1.2", f"{'9' * 13}.{'a' * 64}", f"١٢.{'a' * 64}",
                                  f"99999999999.{'A' * 64}", 12345, f"99999999999.{'a' * 64}.x"])
def test_malformed_tokens_are_refused(junk) -> None:
    assert not token_valid(junk, signing_key("pw", b"s"), now=0)


def test_key_uses_the_configured_server_secret(monkeypatch) -> None:
    monkeypatch.setenv(SECRET_ENV, "shared-by-two-servers")
    assert signing_key("pw") == signing_key("pw", b"shared-by-two-servers")
    monkeypatch.delenv(SECRET_ENV)
    assert signing_key("pw") != signing_key("pw", b"shared-by-two-servers")  # the per-process secret
    assert signing_key("pw") == signing_key("pw")


def test_lifetime_and_cookie(monkeypatch) -> None:
    monkeypatch.setenv(HOURS_ENV, "2")
    assert token_lifetime_s() == 7200
    for bad in ("soon", "-1", "0"):
        monkeypatch.setenv(HOURS_ENV, bad)
        assert token_lifetime_s() == 12 * 3600
    token = issue_token(signing_key("pw", b"s"), now=0, lifetime_s=60)
    script = cookie_script(token, 60)
    assert f'"{COOKIE}={token}; Max-Age=60; Path=/; SameSite=Strict"' in script and "Secure" in script
    with pytest.raises(ValueError):
        cookie_script('x"; alert(1); "', 60)
    assert cookie_token({COOKIE: token, "other": "1"}) == token
    assert cookie_token({"other": "1"}) is None and cookie_token({COOKIE: ""}) is None
